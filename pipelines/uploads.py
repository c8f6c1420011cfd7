"""Pipeline packages from an uploaded file or from a URL, under the size limit.

Both the REST API and the upload page call these; they know nothing of HTTP frameworks.
Every failure is a ``SpecError`` (its message is for the user); ``PackageTooLarge`` says
the limit was the problem (HTTP 413), ``PackageUnavailable`` that the URL could not be
fetched.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings

from pipelines.specs import LoadedPipeline, SpecError, load

FETCH_TIMEOUT = (5, 30)  # seconds to connect, seconds between bytes
# In all, redirects included: a server that trickles bytes would otherwise hold one of the
# few requests computed at once (KFDASH_REQUEST_CONCURRENCY) for as long as it likes.
FETCH_SECONDS = 60
CHUNK = 64 * 1024
MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)


class PackageTooLarge(SpecError):
    """The package is over ``KFDASH_MAX_PIPELINE_BYTES``."""


class PackageUnavailable(SpecError):
    """The package URL could not be fetched (bad scheme, unreachable, not 200)."""


def max_bytes() -> int:
    return settings.KFDASH_MAX_PIPELINE_BYTES


def too_large(size: int | None = None) -> PackageTooLarge:
    limit = max_bytes()
    got = f" ({size} bytes)" if size else ""
    return PackageTooLarge(f"The pipeline package{got} is larger than the limit of "
                           f"{limit} bytes ({limit / 2**20:g} MB).")


def read_upload(uploaded_file) -> LoadedPipeline:
    """Load a Django ``UploadedFile``. Its size is known before it is read (Django has
    spooled it to memory or a temporary file), so an oversized one is never read."""
    if uploaded_file.size is not None and uploaded_file.size > max_bytes():
        raise too_large(uploaded_file.size)
    uploaded_file.seek(0)
    data = uploaded_file.read(max_bytes() + 1)
    if len(data) > max_bytes():
        raise too_large()
    # An archive that unpacks to more than the limit is refused by ``load`` with a 400:
    # the upload itself was within the limit.
    return load(data, max_bytes=max_bytes())


def fetch_package(url: str) -> LoadedPipeline:
    """Download and load the package at an http(s) URL (KFP's ``package_url``), streaming
    and stopping as soon as it is over the limit. Redirects are followed by hand, so
    that every hop's destination is checked (see ``check_destination``)."""
    url = (url or "").strip()
    limit = max_bytes()
    deadline = time.monotonic() + FETCH_SECONDS
    try:
        for _hop in range(MAX_REDIRECTS + 1):
            check_destination(url)
            with requests.get(url, stream=True, timeout=FETCH_TIMEOUT, allow_redirects=False,
                              headers={"Accept": "*/*"}) as response:
                if response.status_code in REDIRECTS and response.headers.get("Location"):
                    url = urljoin(url, response.headers["Location"])
                    continue
                if response.status_code != 200:
                    raise PackageUnavailable(
                        f"Fetching {url} failed: the server answered {response.status_code} "
                        f"{response.reason or ''}".rstrip() + ".")
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise too_large(int(declared))
                return load(_body(response, url, limit, deadline), max_bytes=limit)
        raise PackageUnavailable(f"Fetching {url} failed: too many redirects.")
    except requests.RequestException as exc:
        raise PackageUnavailable(f"Fetching {url} failed: {_reason(exc)}.") from exc


def _body(response: requests.Response, url: str, limit: int, deadline: float) -> bytes:
    """The body, read as it arrives (``read1``: whatever came, not a full chunk), so that
    neither the size limit nor the deadline waits for a slow sender."""
    chunks, total = [], 0
    while chunk := response.raw.read1(CHUNK, decode_content=True):
        total += len(chunk)
        if total > limit:
            raise too_large()
        if time.monotonic() > deadline:
            raise PackageUnavailable(
                f"Fetching {url} failed: it took longer than {FETCH_SECONDS} s.")
        chunks.append(chunk)
    return b"".join(chunks)


def check_destination(url: str) -> None:
    """Refuse URLs that are not http(s), and, unless ``KFDASH_FETCH_PRIVATE_URLS``, hosts
    that resolve to loopback, private, link-local or otherwise non-public addresses (a
    shared cluster's metadata service and internal services must not be reachable
    through kfdash). A host re-resolving differently between this check and the request
    is not prevented; the check stops the plain cases."""
    try:
        parts = urlsplit(url)
        web = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # urlsplit refuses some, e.g. "http://[x" (an unclosed IPv6 host)
        web = False
    if not web:
        raise PackageUnavailable(f"The package URL should be an http:// or https:// URL, "
                                 f"not {url!r}.")
    if settings.KFDASH_FETCH_PRIVATE_URLS:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = {info[4][0] for info in socket.getaddrinfo(
            parts.hostname, port, type=socket.SOCK_STREAM)}
    except (OSError, ValueError) as exc:
        raise PackageUnavailable(f"Fetching {url} failed: its host could not be "
                                 "resolved.") from exc
    for address in sorted(addresses):
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global or ip.is_multicast:
            raise PackageUnavailable(
                f"kfdash does not fetch packages from {parts.hostname}: it is a local or "
                f"private address ({ip}). Download the file and upload it instead.")


def _reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "it did not answer in time"
    if isinstance(exc, requests.ConnectionError):
        return "could not connect"
    if isinstance(exc, requests.TooManyRedirects):
        return "too many redirects"
    return type(exc).__name__
