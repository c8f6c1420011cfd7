"""Previews of KFP v2 datasets and models: what a person needs to recognise the output,
read from the first PREVIEW_BYTES of a file at most (a 200 MB dataset costs the same as a
small one) and from a bounded walk of a folder."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from pipelines.engines.artifacts import KiB

from .base import OutputError

PREVIEW_BYTES = 64 * KiB
DATASET_ROWS = 20  # CSV rows after the header
TEXT_LINES = 50
MAX_FILES = 200  # listed of a folder
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}


def dataset(path: Path) -> dict[str, Any]:
    """A file's first rows or lines, or a folder's files."""
    preview: dict[str, Any] = {"format": "text", "header": [], "rows": [], "text": "",
                               "size": 0, "truncated": False}
    if path.is_dir():
        files, total, more = listing(path)
        return {**preview, "format": "folder", "header": ["File", "Size"],
                "rows": [[f["path"], str(f["size"])] for f in files], "size": total,
                "truncated": more}
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(PREVIEW_BYTES + 1)
    except OSError as exc:
        raise OutputError(f"The dataset cannot be read ({exc.strerror or exc}).") from None
    cut = len(head) > PREVIEW_BYTES or size > PREVIEW_BYTES
    head = head[:PREVIEW_BYTES]
    preview.update(size=size, truncated=cut)
    text = _text(head, cut)
    if text is None:
        return {**preview, "format": "binary"}
    suffix = path.suffix.lower()
    if suffix in JSON_SUFFIXES or text.lstrip()[:1] in ("{", "["):
        pretty = _json(text, cut)
        if pretty is not None:
            return {**preview, "format": "json", "text": pretty[0],
                    "truncated": cut or pretty[1]}
    table = _csv(text, cut, CSV_SUFFIXES.get(suffix))
    if table is not None:
        header, rows, more = table
        return {**preview, "format": "csv", "header": header, "rows": rows,
                "truncated": cut or more}
    lines = text.splitlines()
    return {**preview, "text": "\n".join(lines[:TEXT_LINES]),
            "truncated": cut or len(lines) > TEXT_LINES}


def model(path: Path, recorded_size: int | None) -> dict[str, Any]:
    """A model's files (a file, or up to MAX_FILES of a folder) and its whole size."""
    if path.is_file():
        size = path.stat().st_size
        return {"files": [{"path": path.name, "size": size}], "total_size": size,
                "truncated": False}
    files, total, more = listing(path)
    return {"files": files, "total_size": recorded_size if recorded_size is not None else total,
            "truncated": more}


def listing(folder: Path) -> tuple[list[dict[str, Any]], int, bool]:
    """Up to MAX_FILES files under ``folder`` in a stable order, their total size, and
    whether there are more. Links are not followed (they could lead out of the store)."""
    files: list[dict[str, Any]] = []
    for top, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = Path(top) / name
            if path.is_symlink() or not path.is_file():
                continue
            if len(files) == MAX_FILES:
                return files, sum(f["size"] for f in files), True
            files.append({"path": path.relative_to(folder).as_posix(),
                          "size": path.stat().st_size})
    return files, sum(f["size"] for f in files), False


def _text(head: bytes, cut: bool) -> str | None:
    """The bytes as text, or None when they look binary. A cut may split a UTF-8
    character at the end: that one is dropped."""
    if b"\0" in head:
        return None
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if cut and exc.start >= len(head) - 3:
            try:
                return head[:exc.start].decode("utf-8")
            except UnicodeDecodeError:
                return None
        return None


def _json(text: str, cut: bool) -> tuple[str, bool] | None:
    """JSON pretty-printed, or JSON Lines one document after the other (a cut file's last
    line may be partial: left out); a cut single document cannot be parsed, so its start is
    shown as written. None when it is not JSON. The flag: the text was shortened."""
    if not cut:
        with contextlib.suppress(ValueError):
            return _limited(_pretty(json.loads(text)))
    lines = [line for line in text.splitlines()[:-1 if cut else None] if line.strip()]
    try:
        documents = [_pretty(json.loads(line)) for line in lines]
    except ValueError:
        documents = []
    if documents:
        return _limited("\n".join(documents))
    if cut:
        return text, True
    return None


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _limited(text: str) -> tuple[str, bool]:
    return (text[:PREVIEW_BYTES], True) if len(text) > PREVIEW_BYTES else (text, False)


def _csv(text: str, cut: bool, delimiter: str | None) -> tuple[list[str], list[list[str]],
                                                               bool] | None:
    """Header and first rows when the text is a CSV (by its suffix, or every sampled line
    has the same number, above one, of comma-separated fields); else None."""
    lines = text.splitlines()
    if cut and len(lines) > 1:
        lines = lines[:-1]  # partial
    try:
        rows = [row for row in csv.reader(io.StringIO("\n".join(lines[:DATASET_ROWS + 2])),
                                          delimiter=delimiter or ",") if row]
    except csv.Error:
        return None
    if not rows:
        return None
    if delimiter is None:
        widths = {len(row) for row in rows}
        if len(rows) < 2 or len(widths) != 1 or widths.pop() < 2:
            return None
    more = len(rows) > DATASET_ROWS + 1 or len(lines) > DATASET_ROWS + 2
    return rows[0], rows[1:DATASET_ROWS + 1], more
