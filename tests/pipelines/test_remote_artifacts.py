"""Outputs of runs on Argo, read back from the S3-compatible artifact store (moto's server,
tests.s3) the way Argo wrote them: previews, charts, downloads and the API's ``:read``,
each copied once into kfdash's data dir; hostile or oversized archives refused whole."""

from __future__ import annotations

import base64
import io
import tarfile

import pytest
from django.urls import reverse

from pipelines.engines import remote_artifacts
from pipelines.models import Artifact, Experiment, Run, RunTask
from pipelines.visualizations import task_cards
from tests import s3

pytestmark = pytest.mark.django_db


@pytest.fixture
def step(profile, owner, artifact_store):
    run = Run.objects.create(profile=profile, experiment=Experiment.default_for(profile, owner),
                             name="on-argo", format="pipeline-spec", document={},
                             graph={"format": "pipeline-spec", "name": "p", "tasks": []},
                             state="SUCCEEDED", created_by=owner)
    return RunTask.objects.create(run=run, node_id="train", spec_id="train",
                                  display_name="train", state="SUCCEEDED",
                                  runtime={"argo_node": "wf-1", "pod": "wf-train-1"})


def key_in(step, name: str, namespace: str = "") -> str:
    """Where kfdash's Workflows have Argo put an output (argo_compile_ports)."""
    return f"artifacts/{namespace or step.run.profile.name}/wf/wf-train-1/{name}.tgz"


def output(step, name: str, content, type_: str = "system.Artifact", *, key: str = "",
           raw: bytes | None = None) -> Artifact:
    """An output as the watcher records it, its archive put where the uri says."""
    key = key or key_in(step, name)
    body = raw if raw is not None else s3.argo_archive(name, content)
    s3_client().put_object(Bucket=s3.BUCKET, Key=key, Body=body)
    return Artifact.objects.create(run=step.run, task=step, name=name, type=type_,
                                   uri=f"s3://{s3.BUCKET}/{key}")


def s3_client():
    import boto3
    from django.conf import settings

    return boto3.client("s3", endpoint_url=settings.KFDASH_ARTIFACT_S3_ENDPOINT,
                        region_name="us-east-1", aws_access_key_id=s3.ACCESS_KEY,
                        aws_secret_access_key=s3.SECRET_KEY)


def only(step):
    [card] = task_cards(step)
    return card


def test_a_markdown_output_is_shown_from_the_store_and_copied_once(step):
    artifact = output(step, "notes", b"# Report\n\nall **good**", "system.Markdown")
    card = only(step)
    assert (card.kind, card.error) == ("markdown", "")
    assert "<strong>good</strong>" in card.data["html"]
    s3_client().delete_object(Bucket=s3.BUCKET, Key=key_in(step, "notes"))
    assert "<strong>good</strong>" in only(step).data["html"]  # the copy on kfdash's disk
    assert remote_artifacts.cached_copy(artifact).read_bytes() == b"# Report\n\nall **good**"


def test_a_folder_output_is_previewed_as_its_files(step):
    output(step, "data", {"train.csv": b"a,b\n1,2\n", "parts/test.csv": b"a,b\n3,4\n"},
           "system.Dataset")
    card = only(step)
    assert card.kind == "dataset" and card.error == ""
    assert sorted(row[0] for row in card.data["rows"]) == ["parts/test.csv", "train.csv"]


def test_an_unarchived_object_and_an_unarchived_folder_are_read_too(step):
    """Argo's ``archive: none``: the object itself, or objects under the key."""
    client = s3_client()
    prefix = f"artifacts/{step.run.profile.name}/wf/wf-train-1"
    client.put_object(Bucket=s3.BUCKET, Key=f"{prefix}/notes", Body=b"plain *text*")
    client.put_object(Bucket=s3.BUCKET, Key=f"{prefix}/data/a.csv", Body=b"x\n1\n")
    client.put_object(Bucket=s3.BUCKET, Key=f"{prefix}/data/b/c.csv", Body=b"y\n2\n")
    notes = Artifact.objects.create(run=step.run, task=step, name="notes",
                                    type="system.Markdown", uri=f"s3://{s3.BUCKET}/{prefix}/notes")
    data = Artifact.objects.create(run=step.run, task=step, name="data", type="system.Dataset",
                                   uri=f"s3://{s3.BUCKET}/{prefix}/data")
    assert remote_artifacts.local_copy(notes).read_bytes() == b"plain *text*"
    folder = remote_artifacts.local_copy(data)
    assert (folder / "a.csv").read_bytes() == b"x\n1\n"
    assert (folder / "b" / "c.csv").read_bytes() == b"y\n2\n"


def test_the_run_page_downloads_a_file_and_a_folder_from_the_store(client, owner, step):
    model = output(step, "model", b"\x00weights" * 1000)
    data = output(step, "data", {"a.csv": b"1\n", "b/c.csv": b"2\n"})
    client.force_login(owner)
    answer = client.get(_download(step, model))
    assert answer.status_code == 200, answer.content
    assert answer["Content-Disposition"] == 'attachment; filename="model"'
    assert b"".join(answer.streaming_content) == b"\x00weights" * 1000
    answer = client.get(_download(step, data))
    assert answer["Content-Disposition"] == 'attachment; filename="data.tar.gz"'
    with tarfile.open(fileobj=io.BytesIO(b"".join(answer.streaming_content))) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    assert members == {"data/a.csv": b"1\n", "data/b/c.csv": b"2\n"}
    assert remote_artifacts.cached_copy(model) is None  # a download is streamed, not kept


def test_a_download_bigger_than_the_copy_limit_still_streams(client, owner, step, settings):
    settings.KFDASH_ARTIFACT_FETCH_MAX_BYTES = 1024
    big = output(step, "model", b"m" * 300_000)
    client.force_login(owner)
    answer = client.get(_download(step, big))
    assert b"".join(answer.streaming_content) == b"m" * 300_000
    with pytest.raises(remote_artifacts.RemoteArtifactError,
                       match=r"over 1\.0 KiB .*download it instead") as caught:
        remote_artifacts.local_copy(big)
    assert caught.value.status == 413


def test_the_api_reads_an_output_from_the_store(api, owner, step):
    output(step, "metrics", b'{"accuracy": 0.9}')
    answer = api(owner).get(f"/apis/v2beta1/runs/{step.run.pk}/nodes/train/artifacts/"
                            "metrics:read")
    assert answer.status_code == 200, answer.content
    data = base64.b64decode(answer.json()["data"])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.extractfile("metrics").read() == b'{"accuracy": 0.9}'


def test_the_api_lists_a_download_link_for_an_output_in_the_store(api, owner, step):
    artifact = output(step, "model", b"weights")
    listed = api(owner).get(f"/apis/v2beta1/artifacts/{artifact.pk}?view=DOWNLOAD").json()
    assert listed["storage_provider"] == "s3"
    assert listed["download_url"].endswith(f"/apis/v2beta1/artifacts/{artifact.pk}:download")
    answer = api(owner).get(f"/apis/v2beta1/artifacts/{artifact.pk}:download")
    assert b"".join(answer.streaming_content) == b"weights"


def test_another_namespaces_outputs_and_other_buckets_are_never_read(step, make_user):
    """A URI is the pipeline's to write (an importer names any): kfdash reads only its own
    namespace's outputs, with its own credentials."""
    from dashboard.models import Profile

    other = Profile.objects.create(name="someone-else", owner=make_user("e@example.com"))
    foreign = output(step, "stolen", b"secret", "system.Markdown",
                     key=key_in(step, "stolen", namespace=other.name))
    elsewhere = Artifact.objects.create(run=step.run, task=step, name="elsewhere",
                                        type="system.Markdown", uri="s3://other-bucket/x.tgz")
    climbing = output(step, "climb", b"secret", "system.Markdown",
                      key=f"artifacts/{step.run.profile.name}/../{other.name}/x.tgz")
    for artifact in (foreign, elsewhere, climbing):
        assert remote_artifacts.remote_key(artifact) is None
        assert not artifact.downloadable
    errors = sorted(card.error for card in task_cards(step))
    assert all("is not in kfdash's artifact store" in error for error in errors), errors


def test_in_local_mode_nothing_is_read_from_a_bucket(step, settings):
    artifact = output(step, "notes", b"# hi", "system.Markdown")
    settings.KFDASH_PLATFORM = "local"
    assert not artifact.downloadable
    assert "not in kfdash's artifact store" in only(step).error


@pytest.mark.parametrize("member, why", [
    ("../escape", "names a path outside itself"),
    ("/etc/passwd", "names a path outside itself"),
])
def test_an_archive_leading_outside_itself_is_refused_whole(step, member, why):
    escape = tarfile.TarInfo(member)
    escape.size = 4
    raw = s3.argo_archive("data", {"ok.csv": b"1\n"}, extra=[escape])
    artifact = output(step, "data", None, "system.Dataset", raw=raw)
    with pytest.raises(remote_artifacts.RemoteArtifactError, match=why):
        remote_artifacts.local_copy(artifact)
    assert remote_artifacts.cached_copy(artifact) is None
    assert not any(p.name.startswith(".fetch-")
                   for p in remote_artifacts._copy_path(artifact).parent.iterdir())


def test_links_in_an_archive_are_left_out(step):
    link = tarfile.TarInfo("data/passwd")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    hard = tarfile.TarInfo("data/hard")
    hard.type, hard.linkname = tarfile.LNKTYPE, "/etc/shadow"
    raw = s3.argo_archive("data", {"ok.csv": b"1\n"}, extra=[link, hard])
    folder = remote_artifacts.local_copy(output(step, "data", None, raw=raw))
    assert sorted(p.name for p in folder.iterdir()) == ["ok.csv"]


def test_an_archive_bomb_is_refused_before_it_fills_the_disk(step, settings):
    settings.KFDASH_ARTIFACT_FETCH_MAX_BYTES = 1024 * 1024
    raw = s3.argo_archive("data", {f"zeros-{i}": b"\0" * 600_000 for i in range(3)})
    assert len(raw) < 20_000  # compresses to almost nothing
    artifact = output(step, "data", None, "system.Dataset", raw=raw)
    with pytest.raises(remote_artifacts.RemoteArtifactError, match=r"over 1\.0 MiB"):
        remote_artifacts.local_copy(artifact)
    folder = remote_artifacts._copy_path(artifact).parent
    assert [p.name for p in folder.iterdir()] == []


def test_too_many_members_are_refused(step, monkeypatch):
    monkeypatch.setattr(remote_artifacts, "MAX_MEMBERS", 5)
    artifact = output(step, "data", {f"f{i}": b"" for i in range(6)})
    with pytest.raises(remote_artifacts.RemoteArtifactError, match="more than 5 files"):
        remote_artifacts.local_copy(artifact)


def test_what_is_not_an_argo_archive_says_so(step):
    artifact = output(step, "notes", None, "system.Markdown", raw=b"not gzip at all")
    assert "is not a readable tar.gz" in only(step).error
    assert remote_artifacts.cached_copy(artifact) is None


def test_a_missing_object_and_an_unreachable_store_are_clear_errors(client, owner, step,
                                                                    settings):
    from tests.servers import free_port

    artifact = output(step, "notes", b"# hi", "system.Markdown")
    s3_client().delete_object(Bucket=s3.BUCKET, Key=key_in(step, "notes"))
    assert "is not in the artifact store (deleted since the step wrote it?)" in only(step).error
    client.force_login(owner)
    answer = client.get(_download(step, artifact))
    assert answer.status_code == 404
    settings.KFDASH_ARTIFACT_S3_ENDPOINT = f"http://127.0.0.1:{free_port()}"
    assert only(step).error.startswith("kfdash cannot reach the artifact store at "
                                       "http://127.0.0.1:")
    answer = client.get(_download(step, artifact))
    assert answer.status_code == 502 and b"cannot reach the artifact store" in answer.content


def test_a_stranger_gets_nothing_from_the_store(client, stranger, step):
    artifact = output(step, "model", b"weights")
    client.force_login(stranger)
    assert client.get(_download(step, artifact)).status_code == 404


def _download(step, artifact) -> str:
    return reverse("run-artifact", args=[step.run.profile.name, step.run.pk, artifact.pk])
