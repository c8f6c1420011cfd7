"""The run details page: the graph's data, the steps, the parameters, the spec and the
details; a step's panel (values, artifacts, command, image, log); artifact and log
downloads; the actions of editors. Runs are rows made here (tests/pipelines/run_rows.py)."""

import io
import json
import re
import tarfile

import pytest

from pipelines.engines.layout import artifacts_root
from pipelines.models import Artifact, Run
from tests.pipelines.run_rows import (
    EVERY_STATE,
    LOOP,
    NotebookEngine,
    add_task,
    every_state_run,
    hello_run,
    write_artifact,
)


@pytest.fixture
def engine(monkeypatch, settings):
    """The engine the views reach through ``engine_for``: a double that notes its calls."""
    from pipelines import engines

    double = NotebookEngine()
    monkeypatch.setitem(engines._engines, settings.KFDASH_PLATFORM, double)
    return double


@pytest.fixture
def run(profile, owner):
    return every_state_run(profile, owner)


def url(run, rest: str = "") -> str:
    return f"/ns/{run.profile.name}/runs/{run.pk}/{rest}"


def json_script(html: str, element_id: str):
    found = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>',
                      html, re.S)
    return json.loads(found.group(1))


@pytest.mark.parametrize("who", ["owner", "member", "viewer"])
def test_it_shows_the_run_to_its_namespace(request, login, who, run):
    html = login(request.getfixturevalue(who)).get(url(run)).content.decode()
    graph = json_script(html, "pipeline-graph-data")
    assert sorted(t["id"] for t in graph["tasks"]) == [
        "evaluate", "load-data", "notify", "publish", "train"]
    assert {g["id"] for g in graph["groups"]} == {LOOP, "condition-1"}
    page = json_script(html, "run-page-data")
    assert page["live"] == f"/ws/ns/team-a/runs/{run.pk}/"
    assert page["log_live"] == f"/ws/ns/team-a/runs/{run.pk}/tasks/__node__/log/"
    assert page["step_url"] == f"/ns/team-a/runs/{run.pk}/steps/{page['zero_uuid']}/"
    # The header, the legend and the tabs.
    assert '<span class="run-state s-RUNNING" data-run-state>Running</span>' in html
    for state in ["Pending", "Running", "Succeeded", "Cached", "Skipped", "Failed", "Canceling",
                  "Canceled"]:
        assert f'aria-hidden="true"></span>{state}</li>' in html
    for tab in ["graph", "timeline", "parameters", "spec", "details"]:
        assert f'<a href="#{tab}" data-tab="{tab}">' in html
    # Without JavaScript: every step in a table, with its state and loop iteration.
    steps = re.findall(r'<tr data-step="([^"]+)">', html)
    assert steps == ["load-data", "train", "evaluate"] + [f"notify.{i}" for i in range(8)]
    assert re.search(r'notify</a> <span class="muted">#6</span></th>\s*'
                     r'<td><span class="run-state s-FAILED">Failed</span>', html)
    # The parameters, the spec as YAML, the details.
    assert re.search(r'<code>lr</code></td><td>NUMBER_DOUBLE</td><td><code class="run-value">'
                     r'0.1</code>', html)
    assert "\npipelineInfo:\n" in html and "  name: hello-pipeline\n" in html
    assert f"<code>{run.pk}</code>" in html
    assert f'href="/ns/team-a/experiments/{run.experiment_id}/">Default</a>' in html
    # Actions for editors only; the clone form is the create-run form, pre-filled.
    for action in ["Terminate", "Archive", "Delete nightly"]:
        assert (f">{action}</button>" in html) == (who != "viewer"), action
    assert (f'href="/ns/team-a/runs/new/?clone={run.pk}">Clone</a>' in html) == (
        who != "viewer")


def test_it_shows_only_the_actions_a_runs_state_allows(login, owner, profile):
    failed = hello_run(profile, owner, name="broken", state="FAILED")
    html = login(owner).get(url(failed)).content.decode()
    terminate = re.search(r'<form[^>]*data-run-action="terminate"[^>]*>', html, re.S).group(0)
    retry = re.search(r'<form[^>]*data-run-action="retry"[^>]*>', html, re.S).group(0)
    assert "hidden" in terminate and "hidden" not in retry
    failed.commit_changes(storage_state="ARCHIVED")
    html = login(owner).get(url(failed)).content.decode()
    assert re.search(r'data-run-action="archive"\s+hidden', html)
    assert not re.search(r'data-run-action="unarchive"\s+hidden', html)


def test_it_hides_runs_from_strangers_and_other_namespaces(login, run, stranger, make_user):
    from dashboard.models import Profile

    assert login(stranger).get(url(run)).status_code == 404
    other = Profile.register("team-b", make_user("b@example.com"))
    theirs = hello_run(other, other.owner, name="theirs")
    client = login(run.profile.owner)
    assert client.get(f"/ns/team-a/runs/{theirs.pk}/").status_code == 404
    artifact = Artifact.objects.get(run=run)
    assert client.get(f"/ns/team-a/runs/{theirs.pk}/artifacts/{artifact.pk}/").status_code \
        == 404


def test_it_shows_a_steps_panel_with_values_artifacts_and_log(login, viewer, run, engine):
    load_data = run.tasks.get(node_id="load-data")
    engine.logs["load-data"] = "reading 100 rows\n<script>alert(1)</script>\n"
    client = login(viewer)
    fragment = client.get(url(run, f"steps/{load_data.pk}/")).content.decode()
    assert fragment.lstrip().startswith('<div class="run-step"')
    assert "<html" not in fragment
    assert '<span class="run-state s-SUCCEEDED" data-step-state>Succeeded</span>' in fragment
    assert '<code>rows</code> = <code class="run-value">100</code>' in fragment
    assert '<code>Output</code> = <code class="run-value">100</code>' in fragment
    artifact = Artifact.objects.get(task=load_data)
    assert (f'<code>data</code> <span class="badge">system.Dataset</span>\n  <a href="'
            f'/ns/team-a/runs/{run.pk}/artifacts/{artifact.pk}/" download>Download</a>'
            ) in fragment
    assert "would run in <code>python:3.11</code>; in local mode it ran on this host" in fragment
    assert "python3\n-m\nkfp.dsl.executor_main" in fragment  # the command, a word a line
    assert f'href="/ns/team-a/runs/{run.pk}/tasks/load-data/log/" download' in fragment
    # The input artifact of the next step links to the same download.
    train = client.get(url(run, f"steps/{run.tasks.get(node_id='train').pk}/")).content.decode()
    assert f"/runs/{run.pk}/artifacts/{artifact.pk}/" in train
    assert "(up to 3)" in train  # train retries twice
    # The page with ?step= has the same panel, and the log, for browsers without JavaScript.
    page = client.get(url(run) + f"?step={load_data.pk}").content.decode()
    assert 'data-step-panel="' + str(load_data.pk) in page
    assert "reading 100 rows\n&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert client.get(url(run) + "?step=nonsense").status_code == 404


def test_it_shows_a_failed_iterations_error_and_exit_code(login, owner, run):
    failed = run.tasks.get(node_id="notify.5")
    html = login(owner).get(url(run, f"steps/{failed.pk}/")).content.decode()
    assert EVERY_STATE[5] == "FAILED"
    assert '<p class="run-error">notify failed: exit code 1</p>' in html
    assert "<dt>Exit code</dt><dd>1</dd>" in html
    assert "in for each in [a, b] (1 at a time), iteration 6" in html


def test_it_says_when_the_engine_cannot_read_a_log(login, owner, run, settings, tmp_path):
    from dashboard import kube
    from tests.fakekube import kubeconfig_dict

    # The Argo engine, whose cluster does not answer, asked for a running step's log.
    config = tmp_path / "kubeconfig"
    config.write_text(json.dumps(kubeconfig_dict("http://127.0.0.1:9")))
    settings.KFDASH_PLATFORM, settings.KUBECONFIG = "kubernetes", str(config)
    kube.reset()
    task = run.tasks.get(node_id="evaluate")
    task.runtime, task.state = {"pod": "evaluate-pod"}, "RUNNING"
    task.save()
    page = login(owner).get(url(run) + f"?step={task.pk}").content.decode()
    kube.reset()
    assert "kfdash cannot reach the cluster to read the step&#x27;s log" in page
    assert login(owner).get(url(run, "tasks/evaluate/log/")).status_code == 404


def test_it_downloads_a_log_as_plain_text(login, viewer, run, engine):
    engine.logs["notify.5"] = "line 1\nline 2\n"
    response = login(viewer).get(url(run, "tasks/notify.5/log/"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="nightly-notify.5.log"'
    assert response.content == b"line 1\nline 2\n"
    assert login(viewer).get(url(run, "tasks/missing/log/")).status_code == 404


def test_it_finds_steps_whose_node_ids_hold_slashes(login, viewer, run, engine):
    nested = add_task(run, "for-loop-3/train", "SUCCEEDED", node_id="for-loop-3/train.0")
    engine.logs[nested.node_id] = "nested\n"
    response = login(viewer).get(url(run, "tasks/for-loop-3/train.0/log/"))
    assert response.content == b"nested\n"
    assert response["Content-Disposition"] == \
        'attachment; filename="nightly-for-loop-3-train.0.log"'


def test_it_downloads_artifacts_as_attachments_only(login, viewer, run):
    task = run.tasks.get(node_id="evaluate")
    page = write_artifact(run, task, "report.html", b"<script>alert(1)</script>", "system.HTML")
    response = login(viewer).get(url(run, f"artifacts/{page.pk}/"))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"<script>alert(1)</script>"
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="report.html"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "sandbox"


def test_it_names_downloads_safely(login, viewer, run):
    task = run.tasks.get(node_id="evaluate")
    odd = write_artifact(run, task, 'we"ird\r\nname;.csv', b"x")
    disposition = login(viewer).get(url(run, f"artifacts/{odd.pk}/"))["Content-Disposition"]
    assert disposition == 'attachment; filename="we-ird-name-.csv"'


def test_it_never_serves_files_outside_the_artifact_store(login, owner, run, settings):
    from pathlib import Path

    task = run.tasks.get(node_id="evaluate")
    secret = Path(settings.DATA_DIR) / "secret_key"
    secret.write_text("s3cret")
    client = login(owner)
    for path in ["../secret_key", "../../etc/passwd", str(secret), "", "."]:
        artifact = Artifact.objects.create(run=run, task=task, name="x", path=path, uri="x")
        assert client.get(url(run, f"artifacts/{artifact.pk}/")).status_code == 404, path
    link = artifacts_root() / "team-a" / "link"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(secret)
    linked = Artifact.objects.create(run=run, task=task, name="l", path="team-a/link", uri="x")
    assert client.get(url(run, f"artifacts/{linked.pk}/")).status_code == 404
    gone = write_artifact(run, task, "gone", None)
    assert client.get(url(run, f"artifacts/{gone.pk}/")).status_code == 404


def test_it_streams_a_folder_artifact_as_a_tar_gz(login, viewer, run, settings):
    task = run.tasks.get(node_id="evaluate")
    model = write_artifact(run, task, "model", None, "system.Model")
    folder = artifacts_root() / model.path
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"\x08\x01" * 300_000)
    (folder / "variables" / "data").write_text("weights")
    (folder / "leak").symlink_to(settings.DATA_DIR)
    response = login(viewer).get(url(run, f"artifacts/{model.pk}/"))
    assert response["Content-Disposition"] == 'attachment; filename="model.tar.gz"'
    body = io.BytesIO(b"".join(response.streaming_content))
    with tarfile.open(fileobj=body, mode="r:gz") as archive:
        assert sorted(archive.getnames()) == ["saved_model.pb", "variables", "variables/data"]
        assert archive.extractfile("saved_model.pb").read() == b"\x08\x01" * 300_000
        assert archive.extractfile("variables/data").read() == b"weights"


def test_it_terminates_retries_archives_and_restores(login, member, run, engine):
    client = login(member)
    response = client.post(url(run, "terminate/"))
    assert response["Location"] == url(run)
    run.refresh_from_db()
    assert run.state == "CANCELING" and engine.calls == [("terminate", "nightly")]
    assert "Terminating the run nightly." in client.get(url(run)).content.decode()
    # Terminating twice is refused with the model's reason, on the page.
    client.post(url(run, "terminate/"))
    assert "The run nightly has already ended (canceling)." in client.get(url(run)).content.decode()
    run.commit_changes(state="CANCELED")
    client.post(url(run, "retry/"))
    run.refresh_from_db()
    assert run.state == "RUNNING" and engine.calls[-1] == ("retry", "nightly")
    client.post(url(run, "retry/"))
    assert "Only a failed or canceled run can be retried" in client.get(url(run)).content.decode()
    client.post(url(run, "archive/"))
    run.refresh_from_db()
    assert run.storage_state == "ARCHIVED"
    client.post(url(run, "unarchive/"))
    run.refresh_from_db()
    assert run.storage_state == "AVAILABLE"


def test_it_deletes_a_run_with_its_rows(login, member, run, engine):
    client = login(member)
    assert client.get(url(run, "delete/")).status_code == 405  # only a POST deletes
    response = client.post(url(run, "delete/"))
    assert response["Location"] == "/ns/team-a/runs/"
    assert not Run.objects.filter(pk=run.pk).exists()
    assert not Artifact.objects.filter(run_id=run.pk).exists()
    assert ("forget", "nightly") in engine.calls


def test_it_lets_viewers_look_but_not_act(login, viewer, run, engine):
    client = login(viewer)
    for action in ["terminate/", "retry/", "archive/", "unarchive/", "delete/"]:
        assert client.post(url(run, action)).status_code == 403, action
    run.refresh_from_db()
    assert run.state == "RUNNING" and engine.calls == []


def test_its_queries_do_not_grow_with_the_steps(login, owner, run):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(owner)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url(run)).status_code == 200
        return len(captured)

    before = queries()
    loop = run.tasks.get(node_id=LOOP)
    for index in range(8, 208):
        iteration = add_task(run, LOOP, "SUCCEEDED", node_id=f"{LOOP}.{index}",
                             kind="iteration", parent=loop, iteration=index)
        add_task(run, "notify", "SUCCEEDED", node_id=f"notify.{index}", parent=iteration)
    assert queries() == before
