"""Artifacts of runs on Argo, read back from the artifact store Argo wrote them to.

A step's outputs stay in the bucket; kfdash reads one when a person looks at it:

- ``remote_key``: the key kfdash may read, or None. Only in kubernetes mode, only the
  configured bucket, and only under ``<key prefix>/<the run's namespace>/`` (where kfdash's
  Workflows put outputs), so a URI that names another namespace's outputs, or another
  bucket, is never fetched with kfdash's credentials.
- ``local_copy``: the artifact as a file or folder in kfdash's data dir, copied from the
  store on first use and kept beside the run (``layout.artifact_path``), for previews,
  charts and the API's ``:read``; at most ``KFDASH_ARTIFACT_FETCH_MAX_BYTES`` unpacked.
- ``download``: the content streamed from the store, for downloads of any size.

Argo stores an output as a tar.gz of it (a key ending in ``.tgz``, one root: the file, or
the folder with its files under it) unless its template says ``archive: none`` (the
object itself, or a folder of objects under the key). Archives are unpacked as data only:
no links, devices, absolute paths or ``..``, a bounded number of members, a bounded size.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from django.conf import settings

from . import artifacts, layout
from .object_store import ObjectStore, StoreError

ARCHIVE_SUFFIX = ".tgz"
MAX_MEMBERS = 10_000  # files and folders in one archive or folder
CHUNK = 256 * 1024


class RemoteArtifactError(Exception):
    """Why an artifact cannot be read: ``status`` 404 when it is not there to read, 413 when
    it is too big to copy, 502 when the store failed."""

    def __init__(self, message: str, status: int = 404):
        super().__init__(message)
        self.status = status


@dataclass
class Download:
    chunks: Iterator[bytes]
    folder: bool  # the chunks are a .tar.gz of a folder


def remote_key(artifact) -> str | None:
    """The key of ``artifact`` in the artifact store when kfdash may read it there."""
    if settings.KFDASH_PLATFORM != "kubernetes" or not artifact.uri:
        return None
    key = ObjectStore.from_settings().key_of(artifact.uri)
    if key is None:
        return None
    prefix = "/".join(part for part in (settings.KFDASH_ARTIFACT_KEY_PREFIX.strip("/"),
                                        _namespace(artifact)) if part) + "/"
    path = PurePosixPath(key)
    if not key.startswith(prefix) or ".." in path.parts:
        return None
    return key


def cached_copy(artifact) -> Path | None:
    """The copy ``local_copy`` made earlier, if any."""
    if remote_key(artifact) is None:
        return None
    path = _copy_path(artifact)
    return path if path.exists() else None


def local_copy(artifact) -> Path:
    """The artifact's file or folder on this host: in kfdash's store, or copied from the
    artifact store (once)."""
    stored = artifact.stored_file() or cached_copy(artifact)
    if stored is not None:
        return stored
    key = _readable_key(artifact)
    target = _copy_path(artifact)
    target.parent.mkdir(parents=True, exist_ok=True)
    limit = settings.KFDASH_ARTIFACT_FETCH_MAX_BYTES
    store = ObjectStore.from_settings()
    work = Path(tempfile.mkdtemp(prefix=".fetch-", dir=target.parent))
    try:
        with _store_errors():
            made = _fetch(store, key, work, limit, artifact.name)
        with contextlib.suppress(OSError):  # another request may have finished first
            os.rename(made, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not target.exists():
        raise RemoteArtifactError(f"The artifact {artifact.name} could not be kept on "
                                  "kfdash's disk.", status=502)
    return target


def download(artifact) -> Download:
    """The artifact's content from the store: a file as it is, a folder as a .tar.gz."""
    key = _readable_key(artifact)
    store = ObjectStore.from_settings()
    with _store_errors():
        if key.endswith(ARCHIVE_SUFFIX):
            return _archived_download(store, key)
        with contextlib.suppress(StoreError):
            store.size(key)
            return Download(_chunks(store.open(key)), folder=False)
    # Argo stored a folder unarchived: a folder of objects, packed here from a copy.
    return Download(artifacts.tar_gz(local_copy(artifact)), folder=True)


def _readable_key(artifact) -> str:
    key = remote_key(artifact)
    if key is not None:
        return key
    if artifact.path:
        raise RemoteArtifactError(
            f"The file of the artifact {artifact.name} is no longer stored.")
    raise RemoteArtifactError(f"The artifact {artifact.name} is not in kfdash's artifact store"
                              f"{f' ({artifact.uri})' if artifact.uri else ''}.")


def _copy_path(artifact) -> Path:
    return layout.artifact_path(_namespace(artifact), artifact.run_id,
                                artifact.task.node_id, artifact.name)


def _namespace(artifact) -> str:
    """The run's namespace: annotated on the rows where lists load many (``namespace``),
    else through the run."""
    return getattr(artifact, "namespace", None) or artifact.run.profile.name


@contextlib.contextmanager
def _store_errors():
    try:
        yield
    except StoreError as exc:
        raise RemoteArtifactError(str(exc), status=404 if exc.missing else 502) from None


def _fetch(store: ObjectStore, key: str, work: Path, limit: int, name: str) -> Path:
    """The object at ``key`` made a file or folder inside ``work``; its path."""
    if key.endswith(ARCHIVE_SUFFIX):
        with store.open(key) as stream:
            return _unpack(stream, work, limit, name)
    try:
        size = store.size(key)
    except StoreError:
        return _fetch_folder(store, key, work / "folder", limit, name)
    _check_size(size, limit, name)
    target = work / "file"
    with store.open(key) as stream, target.open("wb") as out:
        _copy(stream, out, size)
    return target


def _fetch_folder(store: ObjectStore, key: str, target: Path, limit: int, name: str) -> Path:
    prefix = key.rstrip("/") + "/"
    objects = []
    for found, size in store.listing(prefix):
        objects.append((found, size))
        if len(objects) > MAX_MEMBERS:
            raise RemoteArtifactError(f"The artifact {name} holds more than {MAX_MEMBERS} "
                                      "files; kfdash reads no more.", status=413)
    if not objects:
        raise RemoteArtifactError(f"s3://{store.bucket}/{key} is not in the artifact store "
                                  "(deleted since the step wrote it?).")
    _check_size(sum(size for _, size in objects), limit, name)
    for found, size in objects:
        relative = PurePosixPath(found[len(prefix):])
        if not relative.parts or ".." in relative.parts:
            continue
        path = target.joinpath(*relative.parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        with store.open(found) as stream, path.open("wb") as out:
            _copy(stream, out, size)
    return target


def _unpack(stream, work: Path, limit: int, name: str) -> Path:
    """Argo's tar.gz of one file or folder, unpacked under ``work``; the file or folder."""
    total = count = 0
    root: str | None = None
    single_file = False
    try:
        with tarfile.open(fileobj=stream, mode="r|gz") as tar:
            for member in tar:
                count += 1
                if count > MAX_MEMBERS:
                    raise RemoteArtifactError(f"The artifact {name} holds more than "
                                              f"{MAX_MEMBERS} files; kfdash reads no more.",
                                              status=413)
                parts = _member_parts(member.name, name)
                if root is None:
                    root = parts[0]
                elif parts[0] != root:
                    raise _not_argo(name)
                path = work.joinpath(*parts)
                if member.isdir():
                    path.mkdir(parents=True, exist_ok=True)
                elif member.isfile():
                    total += member.size
                    _check_size(total, limit, name)
                    single_file = len(parts) == 1
                    path.parent.mkdir(parents=True, exist_ok=True)
                    source = tar.extractfile(member)
                    with path.open("wb") as out:
                        _copy(source, out, member.size)
                # links and devices are left out: they could lead outside the copy
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise RemoteArtifactError(f"The artifact {name} is not a readable tar.gz "
                                  f"({exc}).", status=502) from None
    if root is None:
        raise RemoteArtifactError(f"The artifact {name}'s archive is empty.", status=502)
    made = work / root
    if single_file and count > 1:
        raise _not_argo(name)
    return made


def _member_parts(member: str, name: str) -> tuple[str, ...]:
    path = PurePosixPath(member)
    parts = tuple(part for part in path.parts if part not in ("", "."))
    if path.is_absolute() or not parts or ".." in parts:
        raise RemoteArtifactError(f"The artifact {name}'s archive names a path outside "
                                  f"itself ({member!r}); kfdash does not unpack it.",
                                  status=502)
    return parts


def _not_argo(name: str) -> RemoteArtifactError:
    return RemoteArtifactError(f"The artifact {name}'s archive is not one file or folder, "
                               "as Argo writes them.", status=502)


def _check_size(size: int, limit: int, name: str) -> None:
    if size > limit:
        raise RemoteArtifactError(
            f"The artifact {name} is over {artifacts.size_text(limit)} "
            f"(KFDASH_ARTIFACT_FETCH_MAX_BYTES), more than kfdash copies out of the "
            f"artifact store to show; download it instead.", status=413)


def _copy(source, out, size: int) -> None:
    left = size
    while left > 0:
        chunk = source.read(min(CHUNK, left))
        if not chunk:
            raise RemoteArtifactError("The artifact store sent less than it announced.",
                                      status=502)
        out.write(chunk)
        left -= len(chunk)


def _chunks(stream) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(CHUNK):
            yield chunk


def _archived_download(store: ObjectStore, key: str) -> Download:
    """A file's content out of its one-member archive, streamed; a folder's archive as it
    is (already a .tar.gz)."""
    stream = store.open(key)
    try:
        tar = tarfile.open(fileobj=stream, mode="r|gz")  # noqa: SIM115 (the chunks close it)
        first = tar.next()
        if first is not None and first.isfile() and len(_member_parts(first.name, key)) == 1:
            return Download(_member_chunks(stream, tar, first), folder=False)
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        stream.close()
        raise RemoteArtifactError(f"The archive at {key} is not a readable tar.gz ({exc}).",
                                  status=502) from None
    except RemoteArtifactError:
        stream.close()
        raise
    stream.close()
    return Download(_chunks(store.open(key)), folder=True)


def _member_chunks(stream, tar: tarfile.TarFile, member: tarfile.TarInfo) -> Iterator[bytes]:
    with stream, tar:
        source = tar.extractfile(member)
        left = member.size
        while left > 0 and (chunk := source.read(min(CHUNK, left))):
            left -= len(chunk)
            yield chunk
