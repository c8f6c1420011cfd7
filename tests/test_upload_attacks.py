"""Hostile uploads against a live kfdash server (uvicorn serving dashboard.asgi, local mode):
billion laughs, gzip and zip bombs, zip-slip and absolute paths, links in a tar, a 100 MB
body, deep nesting, millions of tiny values, invalid UTF-8 and broken multipart bodies.

Every attack goes through the KFP API (v2beta1 and v1beta1 upload, v2beta1 upload_version,
a bearer token) and the upload page (a logged-in session with its CSRF token). The API must
answer 4xx with the KFP error body naming the problem; the page re-renders the form (200,
as for any invalid form) with that message on the file field, except for a body over the
cap in front of Django (dashboard/body_limit.py), which is a 413 before anything reads it.
After each attack nothing is stored (pipelines, versions and runs listed through the
API), the server has left no file behind (its TMPDIR, where uploads are spooled, and its
data dir), it still answers /healthz, and its peak resident memory (VmHWM of the uvicorn
process, the Popen's own pid) stays within PEAK_GROWTH_MB of what it was after a warm-up.

The bodies are built small (tests/upload_attacks.py): bombs are a few MB on the wire,
the 100 MB body is a generator, nothing big is written to disk by the test.
"""

from __future__ import annotations

import html
import json
import tarfile
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
import requests

from tests.servers import ROOT, KfdashServer, log_in, start_kfdash
from tests.upload_attacks import (
    MB,
    Body,
    Client,
    Content,
    Repeat,
    Reply,
    billion_laughs,
    form_fields,
    gzip_bomb,
    multipart,
    nested_json,
    nested_yaml,
    overlapping_zip,
    part,
    peak_rss_mb,
    tar_gz,
    tar_member,
    zip_bomb,
    zipped,
)

EMAIL, PASSWORD, NAMESPACE = "mallory@example.com", "correct horse battery staple", "team-m"
LIMIT = 32 * MB  # KFDASH_MAX_PIPELINE_BYTES, the default
TOO_BIG = "is larger than the limit of"  # the view's words, and those of a limit before it
UNPACKS = f"The archive unpacks to more than {LIMIT} bytes"
# Over the warm server's peak, for the whole attack set. A package at the limit is held twice
# while it is parsed (its bytes, its text), and glibc keeps freed blocks that size in each
# thread's arena: the set measures +125 to +165 MB. Before the value cap (yaml_safe.py),
# 30 MB of tiny YAML values alone took the server to 3 GB (and 38 s).
PEAK_GROWTH_MB = 200
WORKFLOW = b"""apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: warm-up-}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: alpine, command: [echo, hello]}
"""
ROUTES = ["v2", "v1", "version", "form"]


# --- the server under attack ----------------------------------------------------------------


@dataclass
class Target:
    server: KfdashServer
    root: Path  # the test's folder: absolute-path members point into it
    temp: Path  # the server's TMPDIR
    api: Client
    form: Client
    csrf: str
    headers: dict[str, str]
    pipeline_id: str = ""
    baseline_mb: float = 0
    files: set[Path] = field(default_factory=set)
    peaks: list[tuple[str, float]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.server.process.pid

    def path(self, route: str) -> str:
        return {
            "v2": f"/apis/v2beta1/pipelines/upload?namespace={NAMESPACE}&name=attack",
            "v1": f"/apis/v1beta1/pipelines/upload?namespace={NAMESPACE}&name=attack",
            "version": f"/apis/v2beta1/pipelines/upload_version?pipelineid={self.pipeline_id}"
                       "&name=attack",
            "form": f"/ns/{NAMESPACE}/pipelines/upload/",
        }[route]

    def upload(self, route: str, content: Content, **send) -> Reply:
        if route == "form":
            fields = form_fields(csrfmiddlewaretoken=self.csrf, target="new", origin="file",
                                 name="", description="")
            return self.form.post(self.path(route), multipart(*fields, part("package", content)),
                                  **send)
        return self.api.post(self.path(route), multipart(part("uploadfile", content)), **send)

    def get(self, path: str) -> dict:
        response = requests.get(self.server.url + path, headers=self.headers, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def stored(self) -> dict[str, int]:
        return {
            "pipelines": self.get(f"/apis/v2beta1/pipelines?namespace={NAMESPACE}")["total_size"],
            "versions": self.get(f"/apis/v2beta1/pipelines/{self.pipeline_id}/versions")
            ["total_size"],
            "runs": self.get(f"/apis/v2beta1/runs?namespace={NAMESPACE}")["total_size"],
        }

    def leftovers(self) -> set[Path]:
        """Files in the data dir and TMPDIR that were not there after the warm-up (the
        database and the server's log change, by design)."""
        found = {path for base in (self.server.data_dir, self.temp)
                 for path in base.rglob("*") if path.is_file()
                 and not path.name.startswith(("kfdash.sqlite3", "server.log"))}
        return found - self.files

    def check_unharmed(self, label: str, before: dict[str, int]) -> None:
        """Nothing stored, nothing left behind, still serving, memory within bounds."""
        assert self.stored() == before, f"{label} stored something"
        health = requests.get(f"{self.server.url}/healthz", timeout=10)
        assert health.status_code == 200 and health.text == "ok\n"
        deadline = time.monotonic() + 3  # temporary files close after the answer is sent
        while (left := self.leftovers()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not left, f"{label} left files behind: {sorted(left)}"
        peak = peak_rss_mb(self.pid)
        raised = peak > max((mb for _, mb in self.peaks), default=self.baseline_mb)
        self.peaks.append((label, peak))
        print(f"{label}: peak RSS {peak:.0f} MB (+{peak - self.baseline_mb:.0f} MB)")
        # Only the attack that raised the peak is to blame for it.
        assert not raised or peak - self.baseline_mb < PEAK_GROWTH_MB, (
            f"after {label} the server's peak RSS is {peak:.0f} MB, "
            f"{peak - self.baseline_mb:.0f} MB over the {self.baseline_mb:.0f} MB after warm-up")


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    root = tmp_path_factory.mktemp("upload-attacks")
    temp = root / "server-tmp"
    temp.mkdir()
    server = start_kfdash(root / "server", TMPDIR=str(temp))
    try:
        server.manage("create_user", EMAIL, "--password", PASSWORD, "--namespace", NAMESPACE)
        token = server.manage("create_token", EMAIL).stdout.strip().splitlines()[-1]
        headers = {"Authorization": f"Bearer {token}"}
        browser = log_in(server, EMAIL, PASSWORD)
        page = browser.get(f"{server.url}/ns/{NAMESPACE}/pipelines/upload/", timeout=10)
        marker = 'name="csrfmiddlewaretoken" value="'
        csrf = page.text.split(marker, 1)[1].split('"', 1)[0]
        cookies = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
        target = Target(server, root, temp, Client(server.url, headers),
                        Client(server.url, {"Cookie": cookies}), csrf, headers)
        _warm_up(target)
        yield target
    finally:
        server.stop()


def _warm_up(target: Target) -> None:
    """Store one pipeline (the upload_version route needs it) and send one refused package
    of each kind through every route, so that the baseline has every module the attacks
    use already imported."""
    stored = target.upload("v2", WORKFLOW)
    assert stored.status == 200, stored.text
    target.pipeline_id = stored.json()["pipeline_id"]
    packages = [b"not: [a, pipeline]\n", tar_gz((tar_member("x.yaml"), b"a: 1\n")),
                zipped(("x.yaml", b"a: 1\n"))]
    for route in ROUTES:
        for package in packages:
            assert target.upload(route, package).status in (200, 400)
    target.files = target.leftovers()
    target.baseline_mb = peak_rss_mb(target.pid)
    print(f"warm server (pid {target.pid}): peak RSS {target.baseline_mb:.0f} MB")


# --- the attacks ----------------------------------------------------------------------------


@dataclass
class Attack:
    name: str
    package: Callable[[Target], Content]
    message: str  # in the API's error and on the page's file field
    status: int = 400  # the API's


def _evil_name() -> str:
    return f"kfdash-attack-{uuid.uuid4().hex[:8]}.yaml"


@cache
def _gzip_bomb(member: str) -> list:
    return gzip_bomb(4 * 2**30, member)  # 4 GB unpacked, 4 MB on the wire


@cache
def _zip_bomb() -> list:
    return zip_bomb(4095 * MB)


@cache
def _overlapping_zip() -> bytes:
    return overlapping_zip(20 * MB, 50)  # one 20 MB member listed 50 times: 1 GB, 24 kB


def _zip_symlink(_target) -> bytes:
    info = zipfile.ZipInfo("pipeline.yaml")
    info.external_attr = 0o120777 << 16  # S_IFLNK
    return zipped((info, b"/etc/passwd"))


HUNDRED_MB = Repeat(WORKFLOW.ljust(MB, b"#"), 100)  # a pipeline, then 100 MB of comments

ATTACKS = [
    Attack("billion-laughs", lambda t: billion_laughs(),
           "The YAML's aliases (*name) expand to more than 10000 values"),
    Attack("gzip-bomb", lambda t: _gzip_bomb("pipeline.yaml"), UNPACKS),
    Attack("gzip-bomb-skipped-member", lambda t: _gzip_bomb("padding.bin"), UNPACKS),
    Attack("zip-bomb", lambda t: _zip_bomb(), UNPACKS),
    Attack("zip-overlapping-entries", lambda t: _overlapping_zip(), UNPACKS),
    Attack("zip-1001-members", lambda t: zipped(*[(f"f{i}.txt", b"") for i in range(1001)]),
           "The archive has 1001 members; at most 1000 are accepted"),
    Attack("tar-1001-members", lambda t: tar_gz(*[(tar_member(f"f{i}.txt"), b"")
                                                  for i in range(1001)]),
           "The archive has more than 1000 members"),
    Attack("zip-slip", lambda t: zipped((f"../../{_evil_name()}", WORKFLOW)),
           "has a '..' in its path"),
    Attack("zip-slip-backslashes", lambda t: zipped((f"..\\..\\{_evil_name()}", WORKFLOW)),
           "has a '..' in its path"),
    Attack("zip-absolute-path", lambda t: zipped((str(t.root / _evil_name()), WORKFLOW)),
           "has an absolute path"),
    Attack("zip-drive-letter", lambda t: zipped((f"C:\\{_evil_name()}", WORKFLOW)),
           "has an absolute path"),
    Attack("zip-symlink", _zip_symlink, "'pipeline.yaml' is a symbolic link"),
    Attack("tar-slip", lambda t: tar_gz((tar_member(f"../../{_evil_name()}"), WORKFLOW)),
           "has a '..' in its path"),
    Attack("tar-absolute-path", lambda t: tar_gz((tar_member(str(t.root / _evil_name())),
                                                  WORKFLOW)),
           "has an absolute path"),
    Attack("tar-symlink", lambda t: tar_gz(
        (tar_member("pipeline.yaml", tarfile.SYMTYPE, "/etc/passwd"), b"")),
        "'pipeline.yaml' is a symbolic link"),
    Attack("tar-hardlink", lambda t: tar_gz(
        (tar_member("pipeline.yaml", tarfile.LNKTYPE, "/etc/passwd"), b"")),
        "'pipeline.yaml' is a hard link"),
    Attack("tar-symlinked-dir", lambda t: tar_gz(
        (tar_member("d", tarfile.SYMTYPE, str(t.root)), b""),
        (tar_member(f"d/{_evil_name()}"), WORKFLOW)),
        "'d' is a symbolic link"),
    Attack("tar-device", lambda t: tar_gz((tar_member("pipeline.yaml", tarfile.CHRTYPE), b"")),
           "is a device or special file"),
    Attack("100MB-body", lambda t: HUNDRED_MB, TOO_BIG, status=413),
    Attack("nested-json", lambda t: nested_json(30_000), "The JSON is nested more than 100"),
    Attack("nested-json-lists", lambda t: b"[" * 50_000 + b"]" * 50_000,
           "The JSON is nested more than 100"),
    Attack("nested-yaml", lambda t: nested_yaml(100_000), "The YAML is nested more than 100"),
    # A few MB of the smallest values YAML and JSON have build into gigabytes of objects.
    Attack("30MB-of-tiny-yaml-values", lambda t: Repeat(b"- {}\n" * (MB // 5), 30),
           "The YAML holds more than 100000 values"),
    Attack("30MB-of-tiny-json-values",
           lambda t: [b"[", Repeat(b"{}," * (MB // 3), 30), b"{}]"],
           "The JSON holds more than 100000 values"),
    Attack("invalid-utf8", lambda t: WORKFLOW + b"# \xff\xfe\xc3\x28\n",
           f"The file is not UTF-8 text (invalid byte at offset {len(WORKFLOW) + 2})"),
    Attack("utf16", lambda t: WORKFLOW.decode().encode("utf-16"),
           "The file is not UTF-8 text (invalid byte at offset 0)"),
    Attack("invalid-utf8-in-a-tar", lambda t: tar_gz((tar_member("pipeline.yaml"),
                                                      b"a: \xff\n")),
           "Archive member 'pipeline.yaml' is not UTF-8 text"),
]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("attack", ATTACKS, ids=[attack.name for attack in ATTACKS])
def test_it_refuses_the_package(target, attack, route):
    label = f"{attack.name} via {route}"
    before = target.stored()
    reply = target.upload(route, attack.package(target))
    if route == "form" and attack.status == 413:  # refused before the page could read it
        assert reply.status == 413 and attack.message in reply.text, f"{label}: {reply.text}"
    elif route == "form":
        assert reply.status == 200, f"{label}: {reply.status} {reply.text[:500]}"
        page = html.unescape(reply.text)
        assert "<h1>Upload pipeline</h1>" in page  # the form again, not a pipeline's page
        assert attack.message in page, f"{label}: the page does not say {attack.message!r}"
    else:
        assert reply.status == attack.status, f"{label}: {reply.status} {reply.text[:500]}"
        assert reply.headers["content-type"] == "application/json"
        error = reply.json()
        assert attack.message in error["message"], f"{label}: {error}"
        assert error["error"] == error["message"] and error["code"] in (3, 8)
    _assert_no_escape(target)
    target.check_unharmed(label, before)


def _assert_no_escape(target: Target) -> None:
    """No archive member was written anywhere a '..' or absolute path could reach."""
    for base in (target.root, target.temp, target.server.data_dir, ROOT):
        for up in range(4):
            folder = base.joinpath(*[".."] * up).resolve()
            assert not list(folder.glob("kfdash-attack-*")), f"a member escaped to {folder}"


# --- broken request bodies ------------------------------------------------------------------


def _api_v2(target: Target, body: Body, **send) -> Reply:
    return target.api.post(target.path("v2"), body, **send)


BROKEN = [
    ("wrong-field", lambda: multipart(part("file", WORKFLOW)), 400,
     "Send the pipeline file as the multipart part 'uploadfile'"),
    ("part-without-filename", lambda: multipart(part("uploadfile", WORKFLOW, filename=None)),
     400, "Send the pipeline file as the multipart part 'uploadfile'"),
    # Django ignores a part whose headers are not UTF-8, so the file is missing
    ("invalid-utf8-filename", lambda: multipart(part("uploadfile", WORKFLOW,
                                                     filename=b"\xff\xfe.yaml")),
     400, "Send the pipeline file as the multipart part 'uploadfile'"),
    ("100kB-filename", lambda: multipart(part("uploadfile", WORKFLOW,
                                              filename="a" * 100_000 + ".yaml")),
     400, "Request max total header size exceeded"),
    ("no-boundary", lambda: Body("multipart/form-data", [b"--x\r\n\r\n"]), 400,
     "Invalid boundary in multipart"),
    ("not-multipart", lambda: Body("application/json", [json.dumps({"a": 1}).encode()]), 415,
     "Unsupported media type"),
    ("yaml-as-the-body", lambda: Body("application/x-yaml", [WORKFLOW]), 415,
     "Unsupported media type"),
]


@pytest.mark.parametrize("make, status, message", [case[1:] for case in BROKEN],
                         ids=[case[0] for case in BROKEN])
def test_it_refuses_a_broken_multipart_body(target, make, status, message):
    before = target.stored()
    reply = _api_v2(target, make())
    assert reply.status == status, reply.text[:500]
    assert message in reply.json()["message"]
    target.check_unharmed(f"broken body: {message}", before)


def test_a_body_longer_than_its_content_length_is_cut_off(target):
    """The server takes the 1000 bytes Content-Length says as the body, answers, and closes
    the connection; uvicorn discards what else arrives until then (how much varies)."""
    before = target.stored()
    reply = _api_v2(target, multipart(part("uploadfile", HUNDRED_MB)), length=1000)
    assert reply.status == 400
    assert "Send the pipeline file as the multipart part 'uploadfile'" in reply.json()["message"]
    target.check_unharmed("a short Content-Length", before)


# --- request bodies past a limit ---------------------------------------------------------


@pytest.mark.parametrize("route", ["v2", "form"])
def test_a_huge_body_is_refused_before_it_is_read(target, route):
    """Django's ASGI handler would spool a whole body to disk before any view: the cap in
    front of it (dashboard/body_limit.py) answers on the Content-Length alone."""
    before = target.stored()
    reply = target.upload(route, HUNDRED_MB)
    assert reply.status == 413
    assert reply.sent < 64 * MB, f"the server took {reply.sent} bytes before answering"
    target.check_unharmed(f"a 100 MB body to {route}", before)


def test_a_chunked_upload_is_refused_and_leaves_nothing(target):
    before = target.stored()
    reply = _api_v2(target, multipart(part("uploadfile", HUNDRED_MB)), chunked=True)
    assert reply.status == 413, reply.text[:500]  # once past the cap, not at its end
    target.check_unharmed("a chunked 100 MB upload", before)


def test_a_chunked_upload_is_asked_for_its_length(target):
    """Without a Content-Length Django reads no body; saying the file is missing would
    mislead."""
    reply = _api_v2(target, multipart(part("uploadfile", WORKFLOW)), chunked=True)
    assert reply.status == 411
    assert "Content-Length" in reply.json()["message"]


# Django's DATA_UPLOAD_MAX_NUMBER_FILES, _NUMBER_FIELDS and _MEMORY_SIZE (a part without a
# file name is a field; a JSON body is read whole)
DJANGO_LIMITS = [
    ("101-files", "upload", 400, lambda: multipart(*[part("uploadfile", WORKFLOW)] * 101)),
    ("1001-fields", "upload", 400, lambda: multipart(
        *form_fields(**{f"f{i}": "x" for i in range(1001)}), part("uploadfile", WORKFLOW))),
    ("3MB-field", "upload", 413, lambda: multipart(
        part("uploadfile", Repeat(b"#" * MB, 3), filename=None))),
    ("3MB-json-body", "pipelines", 413, lambda: Body("application/json", [
        b'{"display_name": "x", "junk": [', Repeat(b"{}," * MB, 1), b"{}]}"])),
]
NESTED_BODIES = [
    ("pipelines", lambda: Body("application/json", [b"[" * 50_000 + b"]" * 50_000])),
    ("runs", lambda: Body("application/json", [nested_json(50_000)])),
]
_JSON_PATHS = {"pipelines": f"/apis/v2beta1/pipelines?namespace={NAMESPACE}",
               "runs": f"/apis/v2beta1/runs?namespace={NAMESPACE}"}


@pytest.mark.parametrize("name, to, status, make", DJANGO_LIMITS,
                         ids=[m[0] for m in DJANGO_LIMITS])
def test_django_request_limits_are_a_kfp_error_and_leave_nothing(target, name, to, status,
                                                                 make):
    before = target.stored()
    reply = target.api.post(target.path("v2") if to == "upload" else _JSON_PATHS[to], make())
    assert reply.status == status, reply.text[:300]
    assert reply.headers["content-type"] == "application/json", reply.text[:300]
    assert reply.json()["message"]
    target.check_unharmed(f"Django's limit: {name}", before)


@pytest.mark.parametrize("name, make", NESTED_BODIES, ids=[m[0] for m in NESTED_BODIES])
def test_a_deeply_nested_json_request_is_a_400_and_leaves_the_server_well(target, name, make):
    before = target.stored()
    reply = target.api.post(_JSON_PATHS[name], make())
    assert reply.status == 400, reply.text[:300]
    assert "nested too deeply" in reply.json()["message"]
    target.check_unharmed(f"a nested JSON body to {name}", before)


def test_a_run_with_an_inline_pipeline_of_too_many_values_is_refused(target):
    """The runs API takes a pipeline as JSON (pipeline_spec): the same value cap applies."""
    before = target.stored()
    spec = {"pipelineInfo": {"name": "x"}, "root": {"dag": {"tasks": {}}},
            "schemaVersion": "2.1.0", "padding": [0] * 100_001}
    reply = target.api.post(_JSON_PATHS["runs"], Body("application/json", [json.dumps(
        {"display_name": "attack", "pipeline_spec": spec}).encode()]))
    assert reply.status == 400
    assert "holds more than 100000 values" in reply.json()["message"]
    target.check_unharmed("an inline pipeline of 100001 values", before)


def test_the_heaviest_attacks_repeated_do_not_raise_the_peak(target):
    """What the set costs is a plateau, not a leak: the packages at the limit, sent again
    and again, leave the peak where their first round put it."""
    heaviest = [attack for attack in ATTACKS if attack.name.startswith("30MB")]
    rounds = []
    for _ in range(4):
        for attack in heaviest:
            assert target.upload("v2", attack.package(target)).status == 400
        rounds.append(peak_rss_mb(target.pid))
    print(f"peak RSS after each round of {len(heaviest)} packages at the limit: {rounds}")
    # Keeping one package of each round would add 180 MB over the last three rounds.
    assert rounds[-1] - rounds[0] < 48, "the peak kept rising"


def test_the_peak_memory_over_all_attacks(target):
    """Each test checks the bound; this one prints the whole set's numbers."""
    peak = peak_rss_mb(target.pid)
    print(f"peak RSS: {target.baseline_mb:.0f} MB after warm-up, {peak:.0f} MB after "
          f"{len(target.peaks)} attacks (+{peak - target.baseline_mb:.0f} MB, bound "
          f"{PEAK_GROWTH_MB} MB)")
    assert peak - target.baseline_mb < PEAK_GROWTH_MB


# --- the value cap, without a server --------------------------------------------------------


def test_the_value_cap_counts_keys_items_and_scalars_exactly():
    from pipelines.specs import SpecError, load, load_document

    def refusal(data) -> str:
        with pytest.raises(SpecError) as error:
            load(data) if isinstance(data, bytes) else load_document(data)
        return str(error.value)

    # one sequence and its items; JSON's count ignores the commas and colons in strings
    assert "it is a list" in refusal(b"- a\n" * 99_999)
    assert "holds more than 100000 values" in refusal(b"- a\n" * 100_000)
    assert "it is a list" in refusal(json.dumps(["a,b:c[d"] * 99_999).encode())
    assert "holds more than 100000 values" in refusal(json.dumps([0] * 100_000).encode())
    # a mapping, its 3 keys and their values: 7, and then the list's items
    document = {"pipelineInfo": {}, "root": {}, "padding": [0] * (100_000 - 7)}
    assert "holds more than" not in refusal(document)
    document["padding"].append(0)
    assert "holds more than 100000 values" in refusal(document)
