"""pipelines/uploads.py: packages from an uploaded file or a URL, under the size limit."""

from __future__ import annotations

import socket

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from pipelines.specs import SpecError
from pipelines.uploads import PackageTooLarge, PackageUnavailable, fetch_package, read_upload
from tests.pipelines.api.conftest import tar_gz, upload_file


def test_it_reads_an_uploaded_file(ir_package):
    loaded = read_upload(upload_file(ir_package))
    assert loaded.format == "kfp-v2" and loaded.spec.name == "add-pipeline"


def test_it_reads_an_uploaded_archive(argo_package):
    loaded = read_upload(upload_file(tar_gz("pipeline.yaml", argo_package), "demo-0.tar.gz"))
    assert loaded.format == "argo" and loaded.filename == "pipeline.yaml"


def test_it_refuses_an_upload_over_the_limit_before_reading_it(settings, ir_package):
    settings.KFDASH_MAX_PIPELINE_BYTES = 100

    class Unread(SimpleUploadedFile):
        def read(self, *args):
            raise AssertionError("read although too large")

    upload = Unread("p.yaml", ir_package)
    with pytest.raises(PackageTooLarge, match="larger than the limit of 100 bytes"):
        read_upload(upload)


def test_it_passes_the_loaders_message_on(db):
    with pytest.raises(SpecError, match="neither a KFP v2 pipeline nor an Argo Workflow"):
        read_upload(upload_file(b"kind: ConfigMap\napiVersion: v1\n"))


def test_it_fetches_a_package_url(package_server, ir_package):
    url = package_server.serve("/add.yaml", ir_package)
    assert fetch_package(url).spec.name == "add-pipeline"


def test_it_fetches_a_package_sent_in_chunks(package_server, argo_package):
    url = package_server.serve("/demo.tar.gz", tar_gz("pipeline.yaml", argo_package), True)
    assert fetch_package(url).format == "argo"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_it_stops_fetching_over_the_limit(settings, package_server, ir_package, chunked):
    settings.KFDASH_MAX_PIPELINE_BYTES = 1000
    url = package_server.serve(f"/big-{chunked}.yaml", ir_package + b"#" * 20000, chunked)
    with pytest.raises(PackageTooLarge, match="larger than the limit of 1000 bytes"):
        fetch_package(url)


def test_it_says_when_the_url_is_not_found(package_server):
    with pytest.raises(PackageUnavailable, match="answered 404"):
        fetch_package(package_server.url + "/missing.yaml")


def test_it_says_when_nothing_listens():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(PackageUnavailable, match="could not connect"):
        fetch_package(f"http://127.0.0.1:{port}/p.yaml")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/p.yaml",
                                 "p.yaml", "http://"])
def test_it_fetches_only_http_urls(url):
    with pytest.raises(PackageUnavailable, match="http:// or https://"):
        fetch_package(url)


def test_it_gives_up_on_a_server_that_trickles(monkeypatch, settings):
    """Bytes that keep coming, each within the read timeout, still end at the deadline."""
    import threading
    import time

    import pipelines.uploads

    settings.KFDASH_FETCH_PRIVATE_URLS = True
    monkeypatch.setattr(pipelines.uploads, "FETCH_SECONDS", 1)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def trickle():
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            while not stop.is_set():
                connection.sendall(b"#")
                time.sleep(0.1)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    began = time.monotonic()
    try:
        with pytest.raises(PackageUnavailable, match="took longer than 1 s"):
            fetch_package(f"http://127.0.0.1:{listener.getsockname()[1]}/p.yaml")
    finally:
        stop.set()
        thread.join(5)
        listener.close()
    assert time.monotonic() - began < 5
