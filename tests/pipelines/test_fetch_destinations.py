"""Upload from a URL: redirects are followed hop by hop, and in a shared cluster
(KFDASH_FETCH_PRIVATE_URLS off) no hop may reach a local or private address."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipelines.uploads import PackageUnavailable, check_destination, fetch_package
from tests.pipelines.api.conftest import ir_package, package_server  # noqa: F401


@pytest.fixture
def redirector():
    """A loopback server answering every path with a redirect to ``targets[path]``."""
    targets: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", targets[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", targets
    server.shutdown()
    server.server_close()


def test_it_follows_redirects_to_the_package(package_server, ir_package, redirector):  # noqa: F811
    base, targets = redirector
    targets["/latest"] = "/v2"  # a relative Location
    targets["/v2"] = package_server.serve("/add.yaml", ir_package)
    assert fetch_package(base + "/latest").spec.name == "add-pipeline"


def test_it_stops_after_a_few_redirects(redirector):
    base, targets = redirector
    targets["/loop"] = "/loop"
    with pytest.raises(PackageUnavailable, match="too many redirects"):
        fetch_package(base + "/loop")


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/p.yaml", "http://localhost:8000/p.yaml", "http://[::1]/p.yaml",
    "http://169.254.169.254/latest/meta-data/", "https://10.1.2.3/p.yaml",
    "http://192.168.0.5/p.yaml", "http://100.64.0.1/p.yaml", "http://0.0.0.0/p.yaml",
])
def test_a_shared_cluster_refuses_local_and_private_addresses(settings, url):
    settings.KFDASH_FETCH_PRIVATE_URLS = False
    with pytest.raises(PackageUnavailable, match="local or private address"):
        check_destination(url)


def test_a_shared_cluster_still_fetches_from_public_addresses(settings):
    settings.KFDASH_FETCH_PRIVATE_URLS = False
    check_destination("https://93.184.215.14/pipeline.yaml")  # resolving a literal: no DNS


def test_local_mode_fetches_from_this_machine_by_default(settings):
    assert settings.KFDASH_PLATFORM == "local" and settings.KFDASH_FETCH_PRIVATE_URLS
