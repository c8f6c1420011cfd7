"""Take the one pipeline file out of a .tar.gz or .zip upload, safely.

Archives come from users, so nothing in their headers is trusted: members are
read in chunks and counted (a gzip or zip bomb stops at the limit, not after
filling memory), links, devices and paths that could escape a directory are
refused, and so is an archive with an absurd number of members.
"""

from __future__ import annotations

import gzip
import io
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO

from pipelines.specs.errors import SpecError

MAX_MEMBERS = 1000
PIPELINE_SUFFIXES = (".yaml", ".yml", ".json")
PREFERRED = "pipeline.yaml"  # what the KFP compilers write and the KFP backend looks for first
CHUNK = 64 * 1024
TAR_FRAMING = 1024 * 1024  # headers and padding the tar stream may add around its members


def from_tar_gz(data: bytes, max_bytes: int) -> tuple[bytes, str]:
    """The pipeline file inside a gzipped tar, and its member name."""
    stream = _Counted(gzip.GzipFile(fileobj=io.BytesIO(data)), max_bytes)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            return _pick(_tar_members(tar, max_bytes))
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise SpecError(f"The .tar.gz archive cannot be read: {exc}") from exc


def from_zip(data: bytes, max_bytes: int) -> tuple[bytes, str]:
    """The pipeline file inside a zip, and its member name."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_MEMBERS:
                raise SpecError(f"The archive has {len(infos)} members; at most {MAX_MEMBERS} "
                                "are accepted")
            return _pick(_zip_members(archive, infos, max_bytes))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error,
            NotImplementedError, RuntimeError) as exc:
        # RuntimeError: an encrypted member; NotImplementedError: an unknown compression.
        raise SpecError(f"The .zip archive cannot be read: {exc}") from exc


def _pick(members: Iterator[tuple[str, bytes | None]]) -> tuple[bytes, str]:
    """Apply the one-pipeline-file rule to (name, content) pairs; content is None for members
    that are not pipeline files and were skipped without reading."""
    found: dict[str, bytes] = {}
    for name, content in members:
        if content is None:
            continue
        if name in found:  # which one a tool would unpack last is anyone's guess
            raise SpecError(f"The archive holds '{name}' twice")
        found[name] = content
    if PREFERRED in found:
        return found[PREFERRED], PREFERRED
    if not found:
        raise SpecError("The archive holds no pipeline file (.yaml, .yml or .json)")
    if len(found) > 1:
        raise SpecError("The archive holds several pipeline files (" + ", ".join(sorted(found))
                        + "); it must hold exactly one, or one named pipeline.yaml")
    name, content = next(iter(found.items()))
    return content, name


def _tar_members(tar: tarfile.TarFile, max_bytes: int) -> Iterator[tuple[str, bytes | None]]:
    for count, member in enumerate(tar, start=1):
        if count > MAX_MEMBERS:
            raise SpecError(f"The archive has more than {MAX_MEMBERS} members")
        name = _safe_name(member.name)
        if member.isdir():
            continue
        if not member.isreg():
            kind = ("a symbolic link" if member.issym() else "a hard link" if member.islnk()
                    else "a device or special file")
            raise SpecError(f"Archive member '{member.name}' is {kind}; only regular files "
                            "are accepted")
        if not _is_pipeline_file(name):
            yield name, None
            continue
        handle = tar.extractfile(member)
        if handle is None:  # cannot happen for a regular file; keeps the type checker honest
            raise SpecError(f"Archive member '{member.name}' cannot be read")
        # the stream itself is counted (_Counted), so one allowance per member is enough
        yield name, _read_limited(handle, max_bytes, max_bytes, member.name)


def _zip_members(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], max_bytes: int,
                 ) -> Iterator[tuple[str, bytes | None]]:
    used = 0  # one allowance for all members together: a thousand small bombs are one big one
    for info in infos:
        name = _safe_name(info.filename)
        if info.is_dir():
            continue
        mode = info.external_attr >> 16
        # Unix archivers store the file type there; others (and the kfp compiler) leave it 0.
        if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
            kind = "a symbolic link" if stat.S_ISLNK(mode) else "a device or special file"
            raise SpecError(f"Archive member '{info.filename}' is {kind}; only regular files "
                            "are accepted")
        if not _is_pipeline_file(name):
            yield name, None
            continue
        with archive.open(info) as handle:
            content = _read_limited(handle, max_bytes - used, max_bytes, info.filename)
        used += len(content)
        yield name, content


def _safe_name(raw: str) -> str:
    """The member's path without a leading ``./``; refuse any that could land outside the
    directory it is unpacked into (zip-slip)."""
    name = raw.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise SpecError(f"Archive member '{raw}' has an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise SpecError(f"Archive member '{raw}' has a '..' in its path")
    return "/".join(parts)


def _is_pipeline_file(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    # macOS archivers add AppleDouble "._name" companions and a __MACOSX folder.
    return (name.lower().endswith(PIPELINE_SUFFIXES) and not base.startswith("._")
            and not name.startswith("__MACOSX/"))


def _read_limited(handle: IO[bytes], allowance: int, max_bytes: int, name: str) -> bytes:
    """The member's content, in chunks, failing as soon as it passes ``allowance``."""
    chunks, total = [], 0
    while chunk := handle.read(CHUNK):
        total += len(chunk)
        if total > allowance:
            raise SpecError(f"The archive unpacks to more than {max_bytes} bytes (at member "
                            f"'{name}')")
        chunks.append(chunk)
    return b"".join(chunks)


class _Counted(io.RawIOBase):
    """A read-only stream that fails once more than ``max_bytes`` (plus tar framing) came
    out of it, so a decompression bomb is stopped while it streams."""

    def __init__(self, inner: IO[bytes], max_bytes: int):
        self.inner, self.max_bytes, self.total = inner, max_bytes, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self.inner.read(CHUNK if size is None or size < 0 else min(size, CHUNK))
        self.total += len(chunk)
        if self.total > self.max_bytes + TAR_FRAMING:
            raise SpecError(f"The archive unpacks to more than {self.max_bytes} bytes")
        return chunk
