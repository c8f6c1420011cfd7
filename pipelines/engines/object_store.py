"""kfdash's reader of the S3-compatible artifact store that Argo writes step outputs to
(kubernetes mode; configured like KFP's MinIO, ``KFDASH_ARTIFACT_S3_*``), through boto3.

It only reads, and only the configured bucket: what a URI names elsewhere is not kfdash's
to fetch with its credentials. Every failure is a ``StoreError`` in words a user can act on.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import urlsplit

from django.conf import settings

# URI schemes that name an object in an S3-compatible bucket (KFP v1 writes minio://).
SCHEMES = ("s3", "minio")
DEFAULT_REGION = "us-east-1"  # SigV4 needs one; MinIO accepts any


class StoreError(Exception):
    """The artifact store could not give what was asked, said for the user; ``missing``
    when the store answered that it has no such object."""

    def __init__(self, message: str, missing: bool = False):
        super().__init__(message)
        self.missing = missing


@dataclass(frozen=True)
class ObjectStore:
    endpoint: str  # host:port, or a URL with its scheme
    bucket: str
    region: str = ""
    insecure: bool = False
    access_key: str = ""  # empty: boto3's own chain (AWS_* variables, web identity, role)
    secret_key: str = ""
    timeout: float = 10.0

    @classmethod
    def from_settings(cls) -> ObjectStore:
        return cls(endpoint=settings.KFDASH_ARTIFACT_S3_ENDPOINT,
                   bucket=settings.KFDASH_ARTIFACT_S3_BUCKET,
                   region=settings.KFDASH_ARTIFACT_S3_REGION,
                   insecure=settings.KFDASH_ARTIFACT_S3_INSECURE,
                   access_key=settings.KFDASH_ARTIFACT_S3_ACCESS_KEY,
                   secret_key=settings.KFDASH_ARTIFACT_S3_SECRET_KEY)

    @property
    def url(self) -> str:
        if "://" in self.endpoint:
            return self.endpoint
        return f"{'http' if self.insecure else 'https'}://{self.endpoint}"

    def key_of(self, uri: str) -> str | None:
        """The key ``uri`` names in this store's bucket; None for anything else."""
        parts = urlsplit(uri)
        if parts.scheme not in SCHEMES or parts.netloc != self.bucket:
            return None
        key = parts.path.lstrip("/")
        return key or None

    def size(self, key: str) -> int:
        answer = self._call(lambda: self._client().head_object(Bucket=self.bucket, Key=key),
                            key)
        return int(answer.get("ContentLength") or 0)

    def open(self, key: str) -> BinaryIO:
        """The object's content as a stream (close it when done)."""
        answer = self._call(lambda: self._client().get_object(Bucket=self.bucket, Key=key), key)
        return _Body(answer["Body"], self, key)

    def listing(self, prefix: str) -> Iterator[tuple[str, int]]:
        """``(key, size)`` of every object under ``prefix`` (a folder Argo stored unarchived)."""
        pages = self._client().get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix)
        iterator = iter(pages)
        while True:
            page = self._call(lambda: next(iterator, None), prefix)
            if page is None:
                return
            for item in page.get("Contents") or []:
                yield item["Key"], int(item.get("Size") or 0)

    def _client(self):
        return _client(self.url, self.region or DEFAULT_REGION, self.access_key,
                       self.secret_key, self.timeout)

    def _call(self, action, key: str):
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            return action()
        except NoCredentialsError:
            raise StoreError("kfdash has no credentials for the artifact store (set "
                             "KFDASH_ARTIFACT_S3_ACCESS_KEY and "
                             "KFDASH_ARTIFACT_S3_SECRET_KEY).") from None
        except ClientError as exc:
            raise StoreError(*self._refusal(exc, key)) from None
        except (BotoCoreError, OSError) as exc:
            raise StoreError(f"kfdash cannot reach the artifact store at {self.url} "
                             f"({exc}).") from None

    def _refusal(self, exc, key: str) -> tuple[str, bool]:
        error = exc.response.get("Error") or {}
        code = str(error.get("Code") or "")
        status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        where = f"s3://{self.bucket}/{key}"
        if code == "NoSuchBucket":
            return f"The artifact store has no bucket {self.bucket}.", False
        if code in ("NoSuchKey", "404", "NotFound") or status == 404:
            return (f"{where} is not in the artifact store (deleted since the step wrote "
                    "it?)."), True
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch") \
                or status == 403:
            return (f"The artifact store refused kfdash access to {where}: check "
                    f"KFDASH_ARTIFACT_S3_ACCESS_KEY and KFDASH_ARTIFACT_S3_SECRET_KEY."), False
        return f"The artifact store answered {code or status} for {where}.", False


class _Body:
    """A streamed object whose read errors are StoreErrors too."""

    def __init__(self, body, store: ObjectStore, key: str):
        self._body, self._store, self._key = body, store, key

    def read(self, size: int = -1) -> bytes:
        return self._store._call(lambda: self._body.read(None if size < 0 else size),
                                 self._key)

    def close(self) -> None:
        self._body.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@functools.lru_cache(maxsize=4)
def _client(url: str, region: str, access_key: str, secret_key: str, timeout: float):
    """One client per configuration: making one costs tens of milliseconds, and boto3's
    clients are safe to share between threads."""
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=timeout, read_timeout=timeout,
                    retries={"max_attempts": 2, "mode": "standard"},
                    s3={"addressing_style": "path"}, signature_version="s3v4")
    credentials = {"aws_access_key_id": access_key, "aws_secret_access_key": secret_key} \
        if access_key and secret_key else {}
    return boto3.session.Session().client("s3", endpoint_url=url, region_name=region,
                                          config=config, **credentials)
