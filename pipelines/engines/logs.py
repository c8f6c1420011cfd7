"""Step logs: each attempt's output, capped, kept on disk, read whole or followed live.

An attempt's log is a folder::

    head              the first half of the cap (KFDASH_MAX_LOG_BYTES)
    tail-<offset>     the rest, in segments of a quarter of the cap, named by where they
                      start in the output after the head; only the last two are kept
    end               written last: {"final": true} when no attempt follows

So a step printing 100 MB leaves at most the cap on disk and never more than one read
chunk in memory; what was dropped between head and tail is said where it was. Readers
need no lock: the writer only appends, starts a new segment, or deletes an old one, and a
reader that finds a segment gone says the bytes were dropped.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

CHUNK = 64 * 1024
POLL_SECONDS = 0.1  # how often a follower looks for new output


def dropped_notice(dropped: int) -> bytes:
    return (f"\n----- kfdash: {dropped} bytes of output were dropped here "
            f"(the log keeps the head and the tail; KFDASH_MAX_LOG_BYTES) -----\n").encode()


class LogWriter:
    """Writes one attempt's output as it comes (``write``), the engine's own lines
    (``note``), and finally the end marker (``close``)."""

    def __init__(self, folder: Path, cap: int):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.head_limit = cap // 2
        self.segment_limit = max(cap // 4, 1)
        self.head_written = 0
        self.tail_written = 0  # bytes after the head, kept or not
        self._head = open(folder / "head", "ab", buffering=0)  # noqa: SIM115 (closed in close)
        self._segment = None
        self._segment_start = 0
        self._segments: list[Path] = []
        self.closed = False
        self.broken = False

    def write(self, data: bytes) -> None:
        """Keep ``data``; when the disk refuses, the rest of the output is dropped (the
        step goes on: its log is not worth its run)."""
        if self.broken:
            return
        try:
            self._write(data)
        except OSError:
            self.broken = True

    def _write(self, data: bytes) -> None:
        if self.head_written < self.head_limit:
            part = data[:self.head_limit - self.head_written]
            self._head.write(part)
            self.head_written += len(part)
            data = data[len(part):]
        while data:
            if self._segment is None or self.tail_written - self._segment_start \
                    >= self.segment_limit:
                self._next_segment()
            room = self.segment_limit - (self.tail_written - self._segment_start)
            part = data[:room]
            self._segment.write(part)
            self.tail_written += len(part)
            data = data[len(part):]

    def _next_segment(self) -> None:
        if self._segment is not None:
            self._segment.close()
        self._segment_start = self.tail_written
        path = self.folder / f"tail-{self.tail_written}"
        self._segment = open(path, "ab", buffering=0)  # noqa: SIM115
        self._segments.append(path)
        while len(self._segments) > 2:
            self._segments.pop(0).unlink(missing_ok=True)

    def note(self, text: str) -> None:
        """An engine line (what runs, how it ended), in the log where it happened."""
        self.write(f"----- kfdash: {text}\n".encode())

    def close(self, final: bool) -> None:
        if self.closed:
            return
        self.closed = True
        self._head.close()
        if self._segment is not None:
            self._segment.close()
        with contextlib.suppress(OSError):
            (self.folder / "end").write_text(json.dumps({"final": final}))


def close_interrupted(folder: Path, text: str, final: bool) -> None:
    """End the log of an attempt whose writer died with a previous server process."""
    if folder.is_dir() and not (folder / "end").exists():
        with open(folder / "head", "ab") as head:
            head.write(f"\n----- kfdash: {text}\n".encode())
        (folder / "end").write_text(json.dumps({"final": final}))


def _segments(folder: Path) -> list[tuple[int, Path]]:
    found = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    for entry in entries:
        if entry.name.startswith("tail-") and entry.name[5:].isdigit():
            found.append((int(entry.name[5:]), Path(entry.path)))
    return sorted(found)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def ended(folder: Path) -> dict | None:
    """The end marker of an attempt's log, or None while it is written."""
    try:
        return json.loads((folder / "end").read_text())
    except (FileNotFoundError, ValueError):
        return None


def read(folders: list[Path], tail_bytes: int | None = None) -> str:
    """The stored logs of these attempts, one after the other (or their last
    ``tail_bytes``), reading only what is returned."""
    parts: list[bytes | tuple[Path, int]] = []  # bytes, or (file, size)
    for folder in folders:
        parts.append((folder / "head", _size(folder / "head")))
        segments = _segments(folder)
        if segments and segments[0][0] > 0:
            parts.append(dropped_notice(segments[0][0]))
        parts.extend((path, _size(path)) for _, path in segments)
    if tail_bytes is not None:
        kept, budget = [], max(tail_bytes, 0)
        for part in reversed(parts):
            if budget <= 0:
                break
            size = len(part) if isinstance(part, bytes) else part[1]
            if size > budget:
                part = part[-budget:] if isinstance(part, bytes) else (part[0], -budget)
            kept.append(part)
            budget -= min(size, budget)
        parts = kept[::-1]
    out = bytearray()
    for part in parts:
        if isinstance(part, bytes):
            out += part
            continue
        path, size = part
        try:
            with open(path, "rb") as handle:
                if size < 0:  # the last -size bytes
                    handle.seek(max(_size(path) + size, 0))
                    out += handle.read(-size)
                else:
                    out += handle.read(size)
        except FileNotFoundError:
            continue  # a segment rotated away meanwhile
    return out.decode("utf-8", errors="replace")


def last_line(folder: Path) -> str:
    """The last line the step printed (an exception's message, usually), for its error."""
    for line in reversed(read([folder], 4096).splitlines()):
        line = line.strip()
        if line and not line.startswith("----- kfdash:"):
            return line[:500]
    return ""


class Cursor:
    """Where a follower is in one attempt's log; ``read`` returns what is new."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.head_position = 0
        self.tail_position = 0
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def read(self) -> tuple[str, bool]:
        """(new text, whether the attempt's log is complete and all of it was read)."""
        complete = ended(self.folder) is not None  # looked at first: nothing comes after it
        out = bytearray()
        head = self.folder / "head"
        head_size = _size(head)
        if self.head_position < head_size:
            with open(head, "rb") as handle:
                handle.seek(self.head_position)
                data = handle.read(min(CHUNK, head_size - self.head_position))
            self.head_position += len(data)
            out += data
        if self.head_position >= head_size and len(out) < CHUNK:
            out += self._read_tail(CHUNK - len(out))
        return self.decoder.decode(bytes(out), final=complete and not out), \
            complete and not out

    def _read_tail(self, limit: int) -> bytes:
        out = bytearray()
        for start, path in _segments(self.folder):
            if self.tail_position < start:
                out += dropped_notice(start - self.tail_position)
                self.tail_position = start
            if len(out) >= limit:
                break
            offset = self.tail_position - start
            try:
                with open(path, "rb") as handle:
                    handle.seek(offset)
                    data = handle.read(limit - len(out))
            except FileNotFoundError:
                break  # rotated away: the next read says what was dropped
            self.tail_position += len(data)
            out += data
        return bytes(out)


async def follow(attempt_folder: Callable[[int], Path], is_finished: Callable,
                 first_attempt: int = 1) -> AsyncIterator[str]:
    """Every attempt's log from ``first_attempt`` on: what is stored, then new output,
    until an attempt ends with no attempt after it. ``is_finished`` (async) says whether
    the task has ended, for attempts that will never come (a cancelled retry)."""
    attempt = first_attempt
    idle = 0
    while True:
        folder = attempt_folder(attempt)
        if not folder.is_dir():
            idle += 1
            if idle % 20 == 0 and await is_finished() and not attempt_folder(attempt).is_dir():
                return
            await asyncio.sleep(POLL_SECONDS)
            continue
        cursor = Cursor(folder)
        while True:
            text, done = await asyncio.to_thread(cursor.read)
            if text:
                yield text
                continue
            if done:
                break
            await asyncio.sleep(POLL_SECONDS)
        marker = ended(folder) or {}
        if marker.get("final", True):
            return
        attempt += 1
        idle = 0
