"""An S3-compatible server for tests: moto's (``moto_server``, a separate process on
loopback), standing in for the MinIO or S3 bucket Argo writes step outputs to, since no
real one can be installed here. kfdash reaches it over HTTP with boto3, as it reaches MinIO.

``argo_archive`` packs a file or folder the way Argo's executor does (``TarGzToWriter``:
one root, named after the output's path, with the folder's files under it).
"""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.servers import free_port, stop_process

ACCESS_KEY = "kfdash-test"
SECRET_KEY = "kfdash-test-secret"
BUCKET = "mlpipeline"


@dataclass
class S3Server:
    url: str
    process: subprocess.Popen

    @classmethod
    def start(cls) -> S3Server:
        port = free_port()
        binary = Path(sys.executable).parent / "moto_server"
        process = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("moto_server exited at start")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return cls(url=f"http://127.0.0.1:{port}", process=process)
            time.sleep(0.05)
        stop_process(process)
        raise RuntimeError("moto_server did not start listening within 30 s")

    def reset(self) -> None:
        """Every bucket and object gone (moto's own reset call)."""
        requests.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def stop(self) -> None:
        stop_process(self.process)


def argo_archive(root: str, content: bytes | dict[str, bytes], *,
                 extra: list[tarfile.TarInfo] | None = None) -> bytes:
    """A tar.gz as Argo stores an output: ``content`` bytes is the file ``root``; a dict is
    the folder ``root`` with those files (relative paths) under it. ``extra`` members are
    added as they are (links, odd paths: what a hostile archive holds)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        if isinstance(content, bytes):
            _add(tar, root, content)
        else:
            folders = {root}
            for relative in content:
                parts = relative.split("/")[:-1]
                folders.update("/".join([root, *parts[:i + 1]]) for i in range(len(parts)))
            for folder in sorted(folders):
                info = tarfile.TarInfo(folder)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            for relative, data in content.items():
                _add(tar, f"{root}/{relative}", data)
        for info in extra or []:
            tar.addfile(info, io.BytesIO(b"\0" * info.size) if info.isfile() else None)
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))
