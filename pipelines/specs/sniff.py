"""Bytes of an upload → the text of its pipeline file, judged by content, never by name.

The file name and Content-Type of an upload are unreliable (the kfp client sends
``application/octet-stream`` for everything), so the first bytes decide: gzip
magic → a tar.gz, zip magic → a zip, anything else → YAML or JSON text.
"""

from __future__ import annotations

from django.conf import settings

from pipelines.specs import archives
from pipelines.specs.errors import SpecError

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members, an empty zip
DEFAULT_MAX_BYTES = 32 * 1024 * 1024  # what the KFP API server accepts


def max_pipeline_bytes() -> int:
    return getattr(settings, "KFDASH_MAX_PIPELINE_BYTES", DEFAULT_MAX_BYTES)


def unpack(data: bytes, max_bytes: int | None = None) -> tuple[bytes, str, str]:
    """The pipeline file's bytes, its text and its archive member name ("" for a plain
    file)."""
    limit = max_pipeline_bytes() if max_bytes is None else max_bytes
    if not data:
        raise SpecError("The file is empty")
    if data.startswith(GZIP_MAGIC):
        content, filename = archives.from_tar_gz(data, limit)
    elif data.startswith(ZIP_MAGICS):
        content, filename = archives.from_zip(data, limit)
    else:
        if len(data) > limit:
            raise SpecError(f"The file is larger than {limit} bytes")
        content, filename = data, ""
    return content, decode(content, filename), filename


def decode(content: bytes, filename: str = "") -> str:
    """UTF-8 text (a byte-order mark is allowed, as YAML allows it)."""
    where = f"Archive member '{filename}'" if filename else "The file"
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    if not content or content.isspace():  # not .strip(): that copies a 32 MB file
        raise SpecError(f"{where} is empty")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{where} is not UTF-8 text (invalid byte at offset {exc.start})") from exc
