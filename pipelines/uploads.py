"""Pipeline packages from an uploaded file or from a URL, under the size limit.

Both the REST API and the upload page call these; they know nothing of HTTP frameworks.
Every failure is a ``SpecError`` (its message is for the user); ``PackageTooLarge`` says
the limit was the problem (HTTP 413), ``PackageUnavailable`` that the URL could not be
fetched.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from django.conf import settings

from pipelines.specs import LoadedPipeline, SpecError, load

FETCH_TIMEOUT = (5, 30)  # seconds to connect, seconds between bytes
CHUNK = 64 * 1024


class PackageTooLarge(SpecError):
    """The package is over ``KFDASH_MAX_PIPELINE_BYTES``."""


class PackageUnavailable(SpecError):
    """The package URL could not be fetched (bad scheme, unreachable, not 200)."""


def max_bytes() -> int:
    return settings.KFDASH_MAX_PIPELINE_BYTES


def too_large(size: int | None = None) -> PackageTooLarge:
    limit = max_bytes()
    got = f" ({size} bytes)" if size else ""
    return PackageTooLarge(f"The pipeline package{got} is larger than the limit of "
                           f"{limit} bytes ({limit / 2**20:g} MB).")


def read_upload(uploaded_file) -> LoadedPipeline:
    """Load a Django ``UploadedFile``. Its size is known before it is read (Django has
    spooled it to memory or a temporary file), so an oversized one is never read."""
    if uploaded_file.size is not None and uploaded_file.size > max_bytes():
        raise too_large(uploaded_file.size)
    uploaded_file.seek(0)
    data = uploaded_file.read(max_bytes() + 1)
    if len(data) > max_bytes():
        raise too_large()
    # An archive that unpacks to more than the limit is refused by ``load`` with a 400:
    # the upload itself was within the limit.
    return load(data, max_bytes=max_bytes())


def fetch_package(url: str) -> LoadedPipeline:
    """Download and load the package at an http(s) URL (KFP's ``package_url``), streaming
    and stopping as soon as it is over the limit."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PackageUnavailable(f"The package URL should be an http:// or https:// URL, "
                                 f"not {url!r}.")
    limit = max_bytes()
    try:
        with requests.get(url, stream=True, timeout=FETCH_TIMEOUT,
                          headers={"Accept": "*/*"}) as response:
            if response.status_code != 200:
                raise PackageUnavailable(
                    f"Fetching {url} failed: the server answered {response.status_code} "
                    f"{response.reason or ''}".rstrip() + ".")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise too_large(int(declared))
            chunks, total = [], 0
            for chunk in response.iter_content(CHUNK):
                total += len(chunk)
                if total > limit:
                    raise too_large()
                chunks.append(chunk)
    except requests.RequestException as exc:
        raise PackageUnavailable(f"Fetching {url} failed: {_reason(exc)}.") from exc
    return load(b"".join(chunks), max_bytes=max_bytes())


def _reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "it did not answer in time"
    if isinstance(exc, requests.ConnectionError):
        return "could not connect"
    if isinstance(exc, requests.TooManyRedirects):
        return "too many redirects"
    return type(exc).__name__
