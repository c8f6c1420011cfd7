"""Hostile upload bodies, built small, and a raw HTTP client to send them with
(tests/test_upload_attacks.py).

Bombs are written without ever holding what they expand to: a deflate stream of zeros is
one compressed megabyte-block repeated (after a full flush the compressor's state is reset,
so every block compresses to the same bytes). Big bodies are generators. The client is a
plain socket so that a test controls every byte of the request (a Content-Length that
does not match, chunked transfer, invalid UTF-8 in a part's headers) and can tell how
much of a body the server had taken when it answered.
"""

from __future__ import annotations

import http.client
import io
import itertools
import json
import select
import socket
import struct
import tarfile
import time
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MB = 2**20
ZEROS = bytes(MB)


# --- bodies ---------------------------------------------------------------------------------


@dataclass
class Repeat:
    """``chunk`` ``count`` times, never joined."""

    chunk: bytes
    count: int

    def __len__(self) -> int:
        return len(self.chunk) * self.count

    def __iter__(self) -> Iterator[bytes]:
        return itertools.repeat(self.chunk, self.count)


Content = bytes | Repeat | list[bytes | Repeat]


@dataclass
class Body:
    content_type: str
    parts: list[bytes | Repeat]

    def __len__(self) -> int:
        return sum(len(part) for part in self.parts)

    def chunks(self) -> Iterator[bytes]:
        for part in self.parts:
            if isinstance(part, bytes):
                yield part
            else:
                yield from part


BOUNDARY = "kfdash-attack-boundary-7d3f"


def part(name: str, content: Content, filename: str | bytes | None = "pipeline.yaml",
         ) -> tuple[bytes, Content]:
    """A multipart part: its Content-Disposition (bytes, so that a test may put anything in a
    file name) and its content."""
    disposition = b'form-data; name="' + name.encode() + b'"'
    if filename is not None:
        raw = filename if isinstance(filename, bytes) else filename.encode()
        disposition += b'; filename="' + raw + b'"'
    return disposition, content


def multipart(*parts: tuple[bytes, Content]) -> Body:
    pieces: list[bytes | Repeat] = []
    for disposition, content in parts:
        pieces.append(b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: " + disposition
                      + b"\r\nContent-Type: application/octet-stream\r\n\r\n")
        pieces.extend(content if isinstance(content, list) else [content])
        pieces.append(b"\r\n")
    pieces.append(b"--" + BOUNDARY.encode() + b"--\r\n")
    return Body(f"multipart/form-data; boundary={BOUNDARY}", pieces)


def form_fields(**values: str) -> list[tuple[bytes, Content]]:
    return [part(name, value.encode(), filename=None) for name, value in values.items()]


# --- hostile packages -----------------------------------------------------------------------


def billion_laughs(levels: int = 9) -> bytes:
    """Nine anchors of nine aliases each: 9⁹ strings once expanded, 700 bytes as text."""
    lines = ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        aliases = ", ".join([f"*lol{level - 1}"] * 9)
        lines.append(f"lol{level}: &lol{level} [{aliases}]")
    return ("\n".join(lines) + "\n").encode()


def nested_json(depth: int) -> bytes:
    return b'{"a": ' * depth + b"1" + b"}" * depth


def nested_yaml(depth: int) -> bytes:
    """Block sequences, ``- - - … x``: YAML's own nesting, not JSON's."""
    return b"- " * depth + b"x\n"


def tar_gz(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, content in members:
            info.size = len(content) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(content) if info.isreg() else None)
    return buffer.getvalue()


def tar_member(name: str, kind: bytes = tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def zipped(*members: tuple[str | zipfile.ZipInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members:
            archive.writestr(name, content)
    return buffer.getvalue()


def _deflated_zeros(size: int, before: bytes = b"") -> tuple[list[bytes | Repeat], int]:
    """Raw deflate of ``before`` and then ``size`` zero bytes, and the CRC-32 of it all."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = packer.compress(before) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(ZEROS) + packer.flush(zlib.Z_FULL_FLUSH)
    whole, rest = divmod(size, MB)
    tail = packer.compress(bytes(rest)) + packer.flush()
    crc = zlib.crc32(before)
    for _ in range(whole):  # ≈ 0.3 s a GB: simpler than the CRC algebra that skips zeros
        crc = zlib.crc32(ZEROS, crc)
    crc = zlib.crc32(bytes(rest), crc)
    return [head, Repeat(block, whole), tail], crc


def gzip_bomb(size: int, member: str = "pipeline.yaml") -> list[bytes | Repeat]:
    """A .tar.gz of one member of ``size`` zero bytes (up to 8 GB, the tar header's limit),
    about a thousandth of that on the wire."""
    info = tarfile.TarInfo(member)
    info.size = size
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    padding = -size % tarfile.BLOCKSIZE
    zeros = size + padding + 2 * tarfile.BLOCKSIZE  # the member, its padding, the end marker
    deflated, crc = _deflated_zeros(zeros, before=header)
    gzip_header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, (len(header) + zeros) & 0xFFFFFFFF)
    return [gzip_header, *deflated, trailer]


def zip_bomb(size: int, member: str = "pipeline.yaml") -> list[bytes | Repeat]:
    """A .zip of one deflated member of ``size`` zero bytes (under 4 GB: no ZIP64)."""
    assert size < 0xFFFFFFFF
    deflated, crc = _deflated_zeros(size)
    compressed = sum(len(piece) for piece in deflated)
    name = member.encode()
    common = struct.pack("<HHHHHIII", 20, 0, zipfile.ZIP_DEFLATED, 0, 0x21, crc, compressed,
                         size)
    local = b"PK\x03\x04" + common + struct.pack("<HH", len(name), 0) + name
    central = (b"PK\x01\x02" + struct.pack("<H", 3 << 8 | 20) + common  # made by: Unix
               + struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, 0o100644 << 16, 0) + name)
    offset = len(local) + compressed
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 1, 1, len(central), offset, 0)
    return [local, *deflated, central, end]


def overlapping_zip(member_size: int, entries: int) -> bytes:
    """A zip whose central directory lists ``entries`` members that are all the same bytes
    (one local header and its data, each listed under the same name): the zip bomb that
    needs no more than one compressed member on the wire."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive, \
            archive.open("pipeline.yaml", "w") as handle:
        for _ in range(member_size // MB):
            handle.write(ZEROS)
    one = buffer.getvalue()
    end_at = one.rindex(b"PK\x05\x06")
    (_disk, _start, _here, _total, size, offset, comment) = struct.unpack(
        "<HHHHIIH", one[end_at + 4:end_at + 22])
    central = one[offset:offset + size]
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, entries, entries, size * entries,
                                      offset, comment)
    return one[:offset] + central * entries + end


# --- the raw client -------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # bytes of the request body sent before the answer came (or the body's size)
    seconds: float
    error: str = ""  # how sending stopped early, if it did

    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Client:
    """HTTP/1.1 to one loopback server, one connection per request."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 60

    def post(self, path: str, body: Body, *, chunked: bool = False,
             length: int | None = None) -> Reply:
        """POST ``body``; with ``chunked`` without a Content-Length, else with ``length`` (the
        body's own by default). Sending stops as soon as the server has answered."""
        parts = urlsplit(self.url)
        assert parts.hostname == "127.0.0.1", "attacks go to the local test server only"
        headers = {"Host": parts.netloc, "Content-Type": body.content_type,
                   "Connection": "close", **self.headers}
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
        else:
            headers["Content-Length"] = str(len(body) if length is None else length)
        head = f"POST {path} HTTP/1.1\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
        started = time.monotonic()
        with socket.create_connection((parts.hostname, parts.port), timeout=self.timeout) as sock:
            sock.sendall(head.encode("latin-1"))
            sent, error = self._send_body(sock, body.chunks(), chunked)
            response = http.client.HTTPResponse(sock)
            response.begin()
            content = response.read()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                         content, sent,
                         time.monotonic() - started, error)

    @staticmethod
    def _send_body(sock: socket.socket, chunks: Iterable[bytes], chunked: bool,
                   ) -> tuple[int, str]:
        sent = 0
        try:
            for chunk in chunks:
                if select.select([sock], [], [], 0)[0]:
                    return sent, "the server answered before the whole body was sent"
                if chunked:
                    sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                else:
                    sock.sendall(chunk)
                sent += len(chunk)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError) as exc:
            return sent, f"the server closed the connection ({type(exc).__name__})"
        return sent, ""


# --- the server process ---------------------------------------------------------------------


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size (VmHWM), in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")
