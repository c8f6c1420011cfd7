"""Packages and helpers for the KFP API tests.

``ir_package`` is compiled here by the real kfp 2 compiler; ``argo_package`` is the
output of the real kfp 1.8 compiler for ``demo_param`` (recorded in packages/, since
kfp 1.8 lives in its own virtualenv and is slow to start)."""

from __future__ import annotations

import contextlib
import io
import tarfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

PACKAGES = Path(__file__).parent / "packages"


@pytest.fixture(scope="session")
def ir_package(tmp_path_factory) -> bytes:
    """KFP v2 IR YAML of ``add-pipeline`` (parameters a=3, msg="hi", ratio=0.5)."""
    from kfp import compiler

    from tests.pipelines.api.add_pipeline import add_pipeline

    out = tmp_path_factory.mktemp("ir")
    compiler.Compiler().compile(add_pipeline, str(out / "add.yaml"))
    return (out / "add.yaml").read_bytes()


@pytest.fixture(scope="session")
def argo_package() -> bytes:
    """An Argo Workflow from kfp 1.8 (``demo-param``, parameter msg="hello")."""
    return (PACKAGES / "demo_param.yaml").read_bytes()


def tar_gz(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def upload_file(data: bytes, name: str = "pipeline.yaml") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def upload(client, data: bytes, version: str = "v2beta1", filename: str = "pipeline.yaml",
           **query):
    """POST a package to /apis/<version>/pipelines/upload with the query as the SDK sends it."""
    from urllib.parse import urlencode

    url = f"/apis/{version}/pipelines/upload"
    if query:
        url += "?" + urlencode(query)
    return client.post(url, {"uploadfile": upload_file(data, filename)}, format="multipart")


@pytest.fixture
def uploaded(api, owner, profile, ir_package):
    """A pipeline ``add-pipeline`` in team-a, uploaded by the owner; its v2 JSON."""
    response = upload(api(owner), ir_package, namespace="team-a")
    assert response.status_code == 200, response.json()
    return response.json()


class _Handler(BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):
        route = self.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        # The client may stop reading: that is what the size-limit tests check.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.send(*route)

    def send(self, data: bytes, chunked: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if chunked:  # no Content-Length: the size is only known by reading
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(data), 4096):
                piece = data[start:start + 4096]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def log_message(self, *args):
        pass


@dataclass
class PackageServer:
    """A real HTTP server on loopback that serves packages for ``package_url``."""

    url: str
    routes: dict

    def serve(self, path: str, data: bytes, chunked: bool = False) -> str:
        self.routes[path] = (data, chunked)
        return self.url + path


@pytest.fixture(scope="session")
def package_server():
    handler = type("Handler", (_Handler,), {"routes": {}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.protocol_version = "HTTP/1.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield PackageServer(f"http://127.0.0.1:{server.server_port}", handler.routes)
    server.shutdown()
    server.server_close()


@dataclass
class LiveKfp:
    """A real kfdash server with a user ``ada@example.com`` owning ``team-a`` and her token."""

    url: str
    token: str
    workdir: Path
    env: dict


@pytest.fixture(scope="module")
def live_kfp(tmp_path_factory):
    """One server per test module: starting one costs about a second, the SDKs' scripts more."""
    from tests.servers import start_kfdash

    root = tmp_path_factory.mktemp("kfp-live")
    server = start_kfdash(root / "server")
    try:
        server.manage("create_user", "ada@example.com", "--namespace", "team-a")
        token = server.manage("create_token", "ada@example.com").stdout.strip().splitlines()[-1]
        workdir = root / "work"
        workdir.mkdir()
        # The SDKs read ~/.config/kfp/context.json: give them an empty home of their own.
        yield LiveKfp(server.url, token, workdir, {"HOME": str(workdir)})
    finally:
        server.stop()
