"""Sniffing and unpacking uploads: archives of the real packages, the limits that stop
bombs and escapes, multi-document YAML and already-parsed documents."""

from __future__ import annotations

import io
import re
import stat
import tarfile
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest
import yaml

from pipelines.choices import SpecFormat
from pipelines.specs import SpecError, load, load_document

MB = 1024 * 1024
PLATFORM = "platforms:\n  kubernetes:\n    deploymentSpec:\n      executors:\n" \
           "        exec-train:\n          secretAsEnv:\n          - secretName: creds\n"


@pytest.fixture(scope="module")
def dag_yaml(kfp2_packages) -> bytes:
    return (kfp2_packages / "dag.yaml").read_bytes()


def tar_gz(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def tar_gz_with(info: tarfile.TarInfo) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.addfile(info)
    return buffer.getvalue()


def zipped(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members:
            archive.writestr(name, content)
    return buffer.getvalue()


def refused(data: bytes, *messages: str, max_bytes: int | None = None) -> None:
    with pytest.raises(SpecError) as error:
        load(data, max_bytes)
    for message in messages:
        assert message in str(error.value)


def test_it_reads_a_tar_gz_and_a_zip_of_the_yaml(dag_yaml):
    plain = load(dag_yaml)
    for package in (tar_gz(("pipeline.yaml", dag_yaml)), zipped(("pipeline.yaml", dag_yaml))):
        loaded = load(package)
        assert (loaded.filename, loaded.format) == ("pipeline.yaml", SpecFormat.KFP_V2)
        assert loaded.spec == plain.spec
        assert loaded.source == dag_yaml.decode()


def test_directories_and_other_files_are_ignored_and_pipeline_yaml_wins(dag_yaml):
    loaded = load(tar_gz(("./pkg/README.md", b"hello"), ("./pkg/my.yml", dag_yaml)))
    assert loaded.filename == "pkg/my.yml"
    loaded = load(zipped(("pkg/", b""), ("other.yaml", b"x: 1"), ("pipeline.yaml", dag_yaml)))
    assert loaded.filename == "pipeline.yaml"


def test_an_archive_without_a_pipeline_file_is_refused():
    refused(tar_gz(("README.md", b"hello")), "no pipeline file")
    refused(zipped(("notes.txt", b"hello")), "no pipeline file")
    refused(zipped(), "no pipeline file")  # an empty zip is just its end record


def test_an_archive_with_two_pipeline_files_names_them(dag_yaml):
    refused(tar_gz(("a.yaml", dag_yaml), ("b.json", b"{}")),
            "several pipeline files (a.yaml, b.json)")
    refused(zipped(("a.yaml", dag_yaml), ("sub/b.yml", dag_yaml)), "(a.yaml, sub/b.yml)")
    with pytest.warns(UserWarning, match="Duplicate name"):
        twice = zipped(("pipeline.yaml", dag_yaml), ("pipeline.yaml", b"x: 1"))
    refused(twice, "holds 'pipeline.yaml' twice")
    refused(tar_gz(("pipeline.yaml", dag_yaml), ("./pipeline.yaml", b"x: 1")),
            "holds 'pipeline.yaml' twice")


@pytest.mark.parametrize("name, message", [
    ("../pipeline.yaml", "'..' in its path"),
    ("pkg/../../pipeline.yaml", "'..' in its path"),
    ("/etc/pipeline.yaml", "absolute path"),
    ("C:\\pipeline.yaml", "absolute path"),
])
def test_paths_that_escape_are_refused(dag_yaml, name, message):
    refused(tar_gz((name, dag_yaml)), message)
    refused(zipped((name, dag_yaml)), message)


@pytest.mark.parametrize("kind, message", [
    (tarfile.SYMTYPE, "is a symbolic link"),
    (tarfile.LNKTYPE, "is a hard link"),
    (tarfile.CHRTYPE, "is a device or special file"),
    (tarfile.FIFOTYPE, "is a device or special file"),
])
def test_links_and_devices_in_a_tar_are_refused(kind, message):
    info = tarfile.TarInfo("pipeline.yaml")
    info.type, info.linkname = kind, "/etc/passwd"
    refused(tar_gz_with(info), f"'pipeline.yaml' {message}")


def test_a_symlink_in_a_zip_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("pipeline.yaml")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    refused(buffer.getvalue(), "is a symbolic link")


def test_too_many_members_are_refused():
    members = [(f"f{i}.txt", b"") for i in range(1001)]
    refused(tar_gz(*members), "more than 1000 members")
    refused(zipped(*members), "1001 members")


def _zeros_tar_gz(name: str, size: int) -> bytes:
    """A tar.gz whose one member is ``size`` zero bytes, built without ever holding them."""
    info = tarfile.TarInfo(name)
    info.size = size
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    parts = [packer.compress(info.tobuf(format=tarfile.GNU_FORMAT))]
    chunk = bytes(MB)
    for _ in range(size // MB):
        parts.append(packer.compress(chunk))
    parts.append(packer.flush())
    return b"".join(parts)


def _peak_memory_of(action) -> int:
    tracemalloc.start()
    try:
        action()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("member", ["pipeline.yaml", "padding.bin"])
def test_a_gzip_bomb_stops_at_the_limit_without_unpacking(member):
    bomb = _zeros_tar_gz(member, 100 * MB)
    assert len(bomb) < 200_000
    peak = _peak_memory_of(lambda: refused(bomb, "more than 1048576 bytes", max_bytes=MB))
    assert peak < 8 * MB


def test_a_zip_bomb_stops_at_the_limit_without_unpacking():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive, \
            archive.open("pipeline.yaml", "w", force_zip64=True) as member:
        chunk = bytes(MB)
        for _ in range(100):
            member.write(chunk)
    bomb = buffer.getvalue()
    assert len(bomb) < 200_000
    peak = _peak_memory_of(lambda: refused(bomb, "more than 1048576 bytes", max_bytes=MB))
    assert peak < 8 * MB


def test_a_plain_file_over_the_limit_is_refused(dag_yaml, settings):
    refused(dag_yaml, f"larger than {len(dag_yaml) - 1} bytes", max_bytes=len(dag_yaml) - 1)
    settings.KFDASH_MAX_PIPELINE_BYTES = 100
    refused(dag_yaml, "larger than 100 bytes")
    assert load(dag_yaml, max_bytes=len(dag_yaml)).spec.name == "dag-pipeline"


def test_broken_archives_are_refused(dag_yaml):
    package = tar_gz(("pipeline.yaml", dag_yaml))
    refused(package[: len(package) // 2], "The .tar.gz archive cannot be read")
    refused(zlib.compress(dag_yaml, wbits=31), "The .tar.gz archive cannot be read")  # no tar
    refused(zipped(("pipeline.yaml", dag_yaml))[:100], "The .zip archive cannot be read")


def test_a_byte_order_mark_is_allowed(dag_yaml):
    assert load(b"\xef\xbb\xbf" + dag_yaml).spec.name == "dag-pipeline"


def test_a_second_document_is_the_platform_spec(dag_yaml):
    text = dag_yaml.decode() + "---\n" + PLATFORM
    loaded = load(text.encode())
    assert loaded.platform_spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"] == {
        "exec-train": {"secretAsEnv": [{"secretName": "creds"}]}}
    assert loaded.document["pipelineInfo"]["name"] == "dag-pipeline"
    assert loaded.source == text
    assert load(dag_yaml + b"---\n").platform_spec is None  # a trailing separator


def test_a_platform_spec_must_be_a_mapping_after_a_kfp_pipeline(dag_yaml, kfp1_packages):
    refused(dag_yaml + b"---\n- a list\n", "should be a platform spec", "not a list")
    refused(dag_yaml + b"---\nplatform: {}\n", "not the keys platform")
    argo = (kfp1_packages / "demo_param.yaml").read_bytes()
    refused(argo + b"---\n" + PLATFORM.encode(), "only goes with a KFP v2 pipeline")


def test_load_document_takes_the_ir_as_the_v2_sdk_sends_it(dag_yaml):
    plain = load(dag_yaml)
    loaded = load_document(plain.document)
    assert (loaded.format, loaded.spec, loaded.platform_spec) == (
        SpecFormat.KFP_V2, plain.spec, None)
    assert load(loaded.source.encode()).spec == plain.spec

    platform = yaml.safe_load(PLATFORM)
    nested = load_document({"pipeline_spec": plain.document, "platform_spec": platform})
    assert (nested.document, nested.platform_spec) == (plain.document, platform)
    assert load(nested.source.encode()).platform_spec == platform


def test_load_document_takes_a_workflow(kfp1_packages):
    plain = load((kfp1_packages / "sum_sq.tar.gz").read_bytes())
    loaded = load_document(plain.document)
    assert (loaded.format, loaded.spec, loaded.filename) == (SpecFormat.ARGO, plain.spec, "")


@pytest.mark.parametrize("document, message", [
    ([1, 2], "should be a mapping, not a list"),
    ({"pipeline_spec": "x"}, "pipeline_spec should be a mapping, not a string"),
    ({"kind": "Pod", "apiVersion": "v1"}, "it is a Kubernetes Pod (v1)"),
])
def test_load_document_refuses_what_is_not_a_pipeline(document, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        load_document(document)


def test_load_document_refuses_deep_nesting():
    document: dict = {}
    inner = document
    for _ in range(200):
        inner["a"] = {}
        inner = inner["a"]
    with pytest.raises(SpecError, match="nested more than 100 levels"):
        load_document(document)


def test_every_file_of_the_fixture_directories_loads(kfp1_packages, kfp2_packages: Path):
    for path in [*kfp2_packages.iterdir(), *kfp1_packages.glob("*.tar.gz"),
                 *kfp1_packages.glob("*.yaml")]:
        assert load(path.read_bytes()).spec.tasks, path.name


def test_the_limit_holds_for_all_members_together():
    half = b"#" * (MB // 2 + 1)
    refused(zipped(("a.yaml", half), ("b.yaml", half)), "more than 1048576 bytes (at member "
            "'b.yaml')", max_bytes=MB)
