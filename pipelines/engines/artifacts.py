"""Output artifacts: files in the artifact store (``layout.py``), an ``Artifact`` row
each, and the scalar metrics among them as ``RunMetric`` rows (v2 ``system.Metrics``
metadata, v1 ``mlpipeline-metrics`` files).

A task's ``outputs["artifacts"]`` maps each output name to a list of entries
``{name, type, uri, path, metadata, size, fingerprint}``: ``uri`` is what a component
reads (a local path, or a remote URI an importer named), ``path`` is relative to the
store (empty when the artifact is not in it), ``fingerprint`` identifies the content for
caching (the execution that produced it).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipelines.models import Artifact, RunMetric

from . import layout

V1_METRICS = "mlpipeline-metrics"
METRIC_FORMATS = ("RAW", "PERCENTAGE")
CHUNK = 256 * 1024  # read at a time when packing a folder
KiB = 1024
MiB = 1024 * KiB


def size_of(path: Path) -> int | None:
    """Bytes in a file or a folder tree; None when nothing is there."""
    try:
        if path.is_file():
            return path.stat().st_size
        if path.is_dir():
            return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file())
    except OSError:
        return None
    return None


def size_text(size: int) -> str:
    """"2.5 MiB", "3.0 KiB", "12 bytes"."""
    if size >= MiB:
        return f"{size / MiB:.1f} MiB"
    if size >= KiB:
        return f"{size / KiB:.1f} KiB"
    return f"{size} bytes"


def store_relative(path: Path) -> str:
    try:
        return str(Path(path).relative_to(layout.artifacts_root()))
    except ValueError:
        return ""


def clear(path: Path) -> None:
    """Remove what a previous attempt left at an output's place."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def copy(source: Path, target: Path, link: bool = False) -> None:
    """Copy a file or a folder tree; ``link``: hard links where the filesystem allows
    (a cached task's artifacts cost no space, and deleting the original run keeps them)."""
    clear(target)
    target.parent.mkdir(parents=True, exist_ok=True)

    def copy_file(src, dst):
        if link:
            try:
                os.link(src, dst)
                return dst
            except OSError:
                pass
        return shutil.copy2(src, dst)

    if source.is_dir():
        shutil.copytree(source, target, copy_function=copy_file, symlinks=True)
    else:
        copy_file(source, target)


def rows(run, task, entries: dict[str, list[dict]]) -> list[Artifact]:
    return [Artifact(run=run, task=task, name=entry.get("name") or name,
                     type=entry.get("type") or "system.Artifact", uri=entry["uri"],
                     path=entry.get("path", ""), metadata=entry.get("metadata") or {},
                     size=entry.get("size"))
            for name, listed in entries.items() for entry in listed]


def metrics(run, task, entries: dict[str, list[dict]]) -> list[RunMetric]:
    """Scalar metrics of these output artifacts: the numbers in a system.Metrics
    artifact's metadata, and the entries of a v1 mlpipeline-metrics file."""
    found: dict[str, tuple[float, str]] = {}
    for name, listed in entries.items():
        for entry in listed:
            if entry.get("type") == "system.Metrics":
                for key, value in (entry.get("metadata") or {}).items():
                    if _finite(value):
                        found[str(key)[:255]] = (float(value), "RAW")
            elif name == V1_METRICS and (entry.get("path") or entry.get("content")):
                text = entry.get("content") or _small_text(
                    layout.artifacts_root() / entry["path"])
                for key, value, form in _v1_metrics(text):
                    found[key] = (value, form)
    return [RunMetric(run=run, task=task, name=key, value=value, format=form)
            for key, (value, form) in found.items()]


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value)


def _small_text(path: Path) -> str:
    """A file's text when it is a file of at most 1 MiB, else "" (skipped)."""
    try:
        return path.read_text() if path.is_file() and path.stat().st_size < 1024 * 1024 \
            else ""
    except (OSError, ValueError):
        return ""


def _v1_metrics(text: str) -> list[tuple[str, float, str]]:
    """``{"metrics": [{"name", "numberValue", "format"}]}`` (a file's text, or what Argo
    reported of it); anything unreadable is skipped (the file is still there)."""
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return []
    found = []
    for item in data.get("metrics", []) if isinstance(data, dict) else []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        value = item.get("numberValue")
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = float(value)
        if _finite(value):
            form = str(item.get("format") or "RAW").upper()
            found.append((item["name"][:255], float(value),
                          form if form in METRIC_FORMATS else "RAW"))
    return found


def tar_gz(folder: Path) -> Iterator[bytes]:
    """A gzipped tar of ``folder``, produced as it is sent: headers and file contents chunk
    by chunk, so a large model folder never sits in memory. Links are left out (they could
    point outside the store)."""
    gzip = zlib.compressobj(wbits=31)
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            continue
        info = tarfile.TarInfo(path.relative_to(folder).as_posix())
        stat = path.stat()
        info.mtime = int(stat.st_mtime)
        info.mode = 0o755 if path.is_dir() else 0o644
        if path.is_dir():
            info.type = tarfile.DIRTYPE
            yield gzip.compress(info.tobuf(format=tarfile.PAX_FORMAT))
            continue
        info.size = stat.st_size
        yield gzip.compress(info.tobuf(format=tarfile.PAX_FORMAT))
        written = 0
        with path.open("rb") as handle:
            while written < info.size and (chunk := handle.read(min(CHUNK, info.size - written))):
                written += len(chunk)
                yield gzip.compress(chunk)
        # A file that shrank while being sent is padded to the size its header announced.
        padding = (info.size - written) + (-info.size % tarfile.BLOCKSIZE)
        yield gzip.compress(b"\0" * padding)
    yield gzip.compress(b"\0" * tarfile.BLOCKSIZE * 2) + gzip.flush()
