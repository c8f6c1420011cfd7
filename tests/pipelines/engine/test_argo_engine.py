"""The Argo engine and the Workflow watcher against the fake Kubernetes API server, with
``ArgoSim`` playing Argo's controller: a run is submitted as a validated Workflow, the
watcher records each status change the controller makes (node by node) into the run,
and terminate, retry, logs (live and after the pod is gone), watch disconnects and 410
relists behave as they must, also once Argo has deleted a finished run's Workflow (its
ttlStrategy). Runs are real kfp 1.8 packages (and kfp 2 ones where said)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from pipelines.choices import RunState, TaskState
from pipelines.engines import EngineError, argo_watch
from pipelines.models import Artifact, Run
from pipelines.specs import load
from tests.pipelines.argo_sim import WORKFLOWS, Controller, wait_for_workflow
from tests.pipelines.engine.conftest import retrying, tasks_of, wait_for, wait_until
from tests.pipelines.engine.test_argo_status import kfp1_outputs, package

NAMESPACE = "team-a"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cluster(argo_cluster):
    return argo_cluster


@pytest.fixture
def watcher_of(cluster):
    return next(t for t in threading.enumerate() if isinstance(t, argo_watch.WorkflowWatcher))


def start(owner, profile, packages: Path, name: str, **parameters) -> Run:
    return Run.start(profile, owner, name=f"{name} run", loaded=load(package(packages, name)),
                     parameters=parameters)


def running(cluster, owner, profile, packages: Path) -> tuple[Run, Controller]:
    """A control_v1 run whose first steps Argo has run, and the watcher has seen."""
    run = retrying(lambda: start(owner, profile, packages, "control_v1", limit="10"))
    controller = Controller(cluster, run.pk, outputs=kfp1_outputs)
    controller.run(steps=3)
    wait_until(lambda: Run.objects.get(pk=run.pk).state == RunState.RUNNING,
               what="the run running")
    return run, controller


def test_a_v1_run_is_submitted_watched_to_success_and_keeps_its_logs(
        cluster, owner, profile, kfp1_packages):
    from pipelines.engines import engine

    run, controller = running(cluster, owner, profile, kfp1_packages)
    workflow = controller.workflow
    assert workflow["spec"]["serviceAccountName"] == "default-editor"
    assert workflow["metadata"]["annotations"]["kfdash.io/run-name"] == "control_v1 run"
    assert {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]} == {
        "limit": "10"}
    controller.run()
    run = wait_for(run)
    assert run.state == RunState.SUCCEEDED, run.error
    tasks = tasks_of(run)
    assert tasks["sum-sq"].state == TaskState.SUCCEEDED
    assert tasks["sum-sq"].outputs["parameters"] == {"sum-sq-Output": "101"}
    assert tasks["big"].state == TaskState.SUCCEEDED
    assert tasks["condition-2"].state == TaskState.SKIPPED
    each = sorted(t.node_id for t in tasks.values() if t.spec_id == "each")
    assert len(each) == 3 and tasks[each[0]].parent.kind == "iteration"
    assert Artifact.objects.filter(run=run, task__spec_id="each-generated").count() == 2

    # Each ended step's log is kept by kfdash: it outlives the pod.
    big = tasks["big"]
    wait_until(lambda: engine()._stored(big), what="the log kept")
    assert engine().read_log(big) == "log of big\n"
    cluster.delete_object("pods", big.runtime["pod"], NAMESPACE)
    assert engine().read_log(big) == "log of big\n"


def test_a_running_steps_log_comes_from_its_pod(cluster, owner, profile, kfp1_packages):
    from asgiref.sync import async_to_sync

    from pipelines.engines import engine

    run = start(owner, profile, kfp1_packages, "control_v1", limit="10")
    controller = Controller(cluster, run.pk, outputs=kfp1_outputs)
    while not any(n["phase"] == "Running" and n["displayName"] == "sum-sq"
                  for n in controller.sim.workflow["status"].get("nodes", {}).values()):
        assert controller.step()
    wait_until(lambda: tasks_of(run).get("sum-sq") and tasks_of(run)["sum-sq"].state ==
               TaskState.RUNNING, what="sum-sq running")
    task = tasks_of(run)["sum-sq"]
    assert engine().read_log(task) == "log of sum-sq\n"

    received: list[str] = []

    async def follow() -> None:
        async for text in engine().follow_log(task):
            received.append(text)

    follower = threading.Thread(target=async_to_sync(follow))
    follower.start()
    wait_until(lambda: "".join(received) == "log of sum-sq\n", what="the log so far")
    cluster.append_pod_log(NAMESPACE, task.runtime["pod"], "epoch 1\n", container="main")
    wait_until(lambda: "".join(received).endswith("epoch 1\n"), what="a new line, live")
    assert follower.is_alive()
    while controller.step():  # the step ends: so does its pod, and the follow
        pass
    follower.join(10)
    assert not follower.is_alive()
    assert "".join(received) == "log of sum-sq\nepoch 1\n"


def test_terminate_stops_the_workflow_and_the_run_ends_canceled(
        cluster, owner, profile, kfp1_packages):
    run = start(owner, profile, kfp1_packages, "control_v1", limit="10")
    controller = Controller(cluster, run.pk, outputs=kfp1_outputs)
    controller.run(steps=4)
    wait_until(lambda: Run.objects.get(pk=run.pk).state == RunState.RUNNING,
               what="the run running")
    retrying(run.refresh_from_db)
    retrying(lambda: run.terminate(owner))
    stored = cluster.get_object(WORKFLOWS, controller.name, NAMESPACE)
    assert stored["spec"]["shutdown"] == "Terminate"
    assert retrying(lambda: Run.objects.get(pk=run.pk).state) == RunState.CANCELING
    controller.run()  # Argo stops what runs
    run = wait_for(run)
    assert run.state == RunState.CANCELED
    states = {t.state for t in tasks_of(run).values()}
    assert TaskState.CANCELED in states and TaskState.RUNNING not in states


def test_retry_runs_the_failed_steps_again_and_keeps_what_succeeded(
        cluster, owner, profile, kfp1_packages):
    run = start(owner, profile, kfp1_packages, "exit_v1", counter="/tmp/c")
    failing = Controller(cluster, run.pk, fail=lambda name, attempt: name == "work")
    failing.run()
    run = wait_for(run)
    assert run.state == RunState.FAILED
    before = tasks_of(run)
    assert before["work"].state == TaskState.FAILED
    failed_pod = before["work"].runtime["pod"]
    assert cluster.get_object("pods", failed_pod, NAMESPACE) is not None

    retrying(lambda: run.retry(owner))  # (SQLite's in-memory test database: see retrying)
    assert retrying(lambda: Run.objects.get(pk=run.pk).state) == RunState.RUNNING
    stored = cluster.get_object(WORKFLOWS, failing.name, NAMESPACE)
    assert stored["status"]["phase"] == "Running"
    phases = {n["displayName"]: n["phase"] for n in stored["status"]["nodes"].values()}
    assert "work" not in phases and phases["flaky"] == "Succeeded"
    assert cluster.get_object("pods", failed_pod, NAMESPACE) is None  # Argo remakes it

    again = Controller(cluster, run.pk)  # Argo carries on from the retried status
    again.run()
    run = wait_for(run, states=(RunState.SUCCEEDED,))
    after = tasks_of(run)
    assert after["work"].state == TaskState.SUCCEEDED
    assert after["flaky"].started_at == before["flaky"].started_at  # not run again


def test_the_watch_resumes_after_a_disconnect_and_lists_again_after_410(
        cluster, owner, profile, kfp1_packages, watcher_of):
    run, controller = running(cluster, owner, profile, kfp1_packages)
    watcher_of.retry_seconds = 1.0  # a dropped watch is resumed after a second

    def workflow_calls(since: int) -> list:
        return [r for r in cluster.requests[since:] if r.path.endswith("/workflows")]

    before = len(cluster.requests)
    cluster._httpd.close_connections()  # the connection drops...
    controller.run(steps=3)  # ... Argo goes on meanwhile ...
    # ... and the watcher resumes from the last version it saw, getting what it missed.
    wait_until(lambda: workflow_calls(before), what="the watcher back")
    sum_sq = controller.sim.workflow["status"]["nodes"]
    wait_until(lambda: len(tasks_of(run)) >= sum(
        1 for node in sum_sq.values() if node["type"] not in ("StepGroup",)) - 1,
        what="what happened meanwhile, recorded")
    first = workflow_calls(before)[0]
    assert first.query.get("watch") and int(first.query["resourceVersion"]) > 0, first
    # (Counting lists instead would be fragile: a locked test database makes the watcher
    # list again too.)

    lists = watcher_of.lists
    cluster._httpd.close_connections()  # dropped again, Argo goes on, and meanwhile the
    controller.run(steps=2)  # API server forgets the history the watch would resume
    cluster.compact()  # from: 410 Gone, so everything is listed again
    wait_until(lambda: watcher_of.lists > lists, what="a relist")
    controller.run()
    assert wait_for(run).state == RunState.SUCCEEDED


def test_a_workflow_deleted_while_nobody_watched_fails_its_run(
        cluster, owner, profile, kfp1_packages, watcher_of):
    run, controller = running(cluster, owner, profile, kfp1_packages)
    cluster.delete_object(WORKFLOWS, controller.name, NAMESPACE)
    run = wait_for(run)
    assert run.state == RunState.FAILED and run.error == argo_watch.GONE


def test_a_workflow_the_cluster_refuses_fails_the_run_with_its_reason(
        cluster, owner, profile, kfp1_packages):
    cluster.fail_next("POST", r"/workflows$", status=403, reason="Forbidden",
                      message='workflows.argoproj.io is forbidden: User "kfdash" cannot '
                              'create resource "workflows"')
    run = wait_for(start(owner, profile, kfp1_packages, "control_v1", limit="10"))
    assert run.state == RunState.FAILED
    assert run.error.startswith("The cluster refused to start the run: workflows.argoproj.io"
                                " is forbidden")
    assert cluster.objects(WORKFLOWS, NAMESPACE) == []


def test_submitting_a_run_twice_makes_one_workflow(cluster, owner, profile, kfp1_packages):
    from pipelines.engines import engine

    run = start(owner, profile, kfp1_packages, "control_v1", limit="10")
    wait_for_workflow(cluster, run.pk)
    engine().submit(run)
    assert len(cluster.objects(WORKFLOWS, NAMESPACE)) == 1
    retrying(run.refresh_from_db)
    assert run.state != RunState.FAILED, run.error
    assert json.dumps(cluster.objects(WORKFLOWS, NAMESPACE)[0]["metadata"]["labels"])


def test_a_v1_steps_metrics_reach_the_run_through_argo(cluster, owner, profile,
                                                       kfp1_packages):
    from pipelines.models import RunMetric

    metrics = json.dumps({"metrics": [
        {"name": "accuracy-score", "numberValue": 0.85, "format": "PERCENTAGE"},
        {"name": "roc-auc", "numberValue": 0.91, "format": "RAW"}]})
    run = start(owner, profile, kfp1_packages, "metrics_v1")
    Controller(cluster, run.pk, outputs=lambda name, inputs: {
        "kfdash-mlpipeline-metrics": metrics} if name == "report" else {}).run()
    assert wait_for(run).state == RunState.SUCCEEDED
    wait_until(lambda: RunMetric.objects.filter(run=run).count() == 2, what="the metrics")
    assert {(m.name, m.value, m.format) for m in RunMetric.objects.filter(run=run)} == {
        ("accuracy-score", 0.85, "PERCENTAGE"), ("roc-auc", 0.91, "RAW")}


def test_every_attempt_of_a_retried_step_keeps_its_log(cluster, owner, profile,
                                                       kfp1_packages):
    from pipelines.engines import engine

    run = start(owner, profile, kfp1_packages, "exit_v1", counter="/tmp/c")
    Controller(cluster, run.pk, fail=lambda name, attempt: name == "flaky" and attempt == 0,
               ).run()
    wait_for(run)
    flaky = tasks_of(run)["flaky"]
    assert flaky.attempts == 2 and flaky.state == TaskState.SUCCEEDED
    wait_until(lambda: len(engine()._stored(flaky)) == 2, what="both logs kept")
    for pod in list(cluster.objects("pods", NAMESPACE)):  # gone from the cluster
        cluster.delete_object("pods", pod["metadata"]["name"], NAMESPACE)
    text = engine().read_log(flaky)
    assert text.index("attempt 1 of 2") < text.index("log of flaky(0)") < text.index(
        "attempt 2 of 2") < text.index("log of flaky(1)")


def test_an_importer_shows_done_with_its_artifact(cluster, owner, profile, kfp2_package):
    run = Run.start(profile, owner, name="imports", loaded=load(kfp2_package(
        "artifacts_pipeline")), parameters={"source": "s3://datasets/iris.csv"})
    Controller(cluster, run.pk).run()
    assert wait_for(run).state == RunState.SUCCEEDED, run.error
    importer = tasks_of(run)["importer"]
    assert importer.state == TaskState.SUCCEEDED
    (artifact,) = Artifact.objects.filter(task=importer)
    assert (artifact.uri, artifact.type, artifact.metadata) == (
        "s3://datasets/iris.csv", "system.Dataset", {"origin": "host"})


@pytest.mark.parametrize(("ttl", "strategy", "cleanup"), [
    (600, "OnPodCompletion", {
        "ttlStrategy": {"secondsAfterCompletion": 600},
        "podGC": {"strategy": "OnPodCompletion", "deleteDelayDuration": "5m"}}),
    (0, "", {}),  # kept for ever
])
def test_argo_deletes_each_runs_workflow_and_pods_as_configured(
        cluster, owner, profile, kfp1_packages, kfp2_package, settings, ttl, strategy,
        cleanup):
    settings.KFDASH_ARGO_TTL_SECONDS_AFTER_FINISHED = ttl
    settings.KFDASH_ARGO_POD_GC_STRATEGY = strategy
    settings.KFDASH_ARGO_POD_GC_DELAY = "5m"
    v1 = start(owner, profile, kfp1_packages, "control_v1", limit="10")
    # (The watcher may be recording v1's Workflow: SQLite's test database, see retrying.)
    v2 = retrying(lambda: Run.start(profile, owner, name="v2 run",
                                    loaded=load(kfp2_package("chain")), parameters={}))
    for run in (v1, v2):
        spec = wait_for_workflow(cluster, run.pk)["spec"]
        assert {key: spec[key] for key in ("ttlStrategy", "podGC") if key in spec} == cleanup


def failed_run(cluster, owner, profile, packages: Path) -> tuple[Run, Controller]:
    run = retrying(lambda: start(owner, profile, packages, "exit_v1", counter="/tmp/c"))
    controller = Controller(cluster, run.pk, fail=lambda name, attempt: name == "work")
    controller.run()
    run = wait_for(run)
    assert run.state == RunState.FAILED
    return run, controller


def as_it_is(run: Run) -> tuple:
    retrying(run.refresh_from_db)
    return run.state, run.error, run.revision, run.finished_at


def test_finished_runs_stay_as_they_ended_when_argo_deletes_their_workflows(
        cluster, owner, profile, kfp1_packages, watcher_of):
    """What ttlStrategy makes Argo do once a run is over: the Workflow goes. The watcher
    hears it deleted, then (410) lists again without it; only the run still going fails."""
    succeeded = retrying(lambda: start(owner, profile, kfp1_packages, "control_v1",
                                       limit="10"))
    done = Controller(cluster, succeeded.pk, outputs=kfp1_outputs)
    done.run()
    assert wait_for(succeeded).state == RunState.SUCCEEDED
    failed, failing = failed_run(cluster, owner, profile, kfp1_packages)
    going, controller = running(cluster, owner, profile, kfp1_packages)
    before = {run.pk: as_it_is(run) for run in (succeeded, failed)}

    lists = watcher_of.lists
    for name in (done.name, failing.name, controller.name):
        cluster.delete_object(WORKFLOWS, name, NAMESPACE)
    cluster.compact()
    wait_until(lambda: watcher_of.lists > lists, what="a relist")
    going = wait_for(going)
    assert (going.state, going.error) == (RunState.FAILED, argo_watch.GONE)
    assert {run.pk: as_it_is(run) for run in (succeeded, failed)} == before


def test_retrying_a_run_whose_workflow_argo_deleted_says_to_clone_it(
        cluster, owner, profile, kfp1_packages, settings):
    settings.KFDASH_ARGO_TTL_SECONDS_AFTER_FINISHED = 86400
    run, failing = failed_run(cluster, owner, profile, kfp1_packages)
    retrying(lambda: Run.objects.filter(pk=run.pk).update(
        finished_at=timezone.now() - timedelta(days=2)))  # the watcher may hold the table
    cluster.delete_object(WORKFLOWS, failing.name, NAMESPACE)  # Argo, after a day
    before = as_it_is(run)

    with pytest.raises(EngineError) as refused:
        retrying(lambda: run.retry(owner))
    assert str(refused.value) == (
        "The run exit_v1 run cannot be retried: its Workflow was removed from the cluster, "
        "as Argo does 1 day after a run ends (KFDASH_ARGO_TTL_SECONDS_AFTER_FINISHED=86400), "
        "and it ended 2 days ago. Clone the run to start it again.")
    assert as_it_is(run) == before
    assert cluster.objects(WORKFLOWS, NAMESPACE) == []

    # Gone sooner than the TTL: someone deleted it.
    retrying(lambda: Run.objects.filter(pk=run.pk).update(
        finished_at=timezone.now() - timedelta(hours=1)))
    before = as_it_is(run)
    with pytest.raises(EngineError, match=r"^The run exit_v1 run cannot be retried: its "
                       r"Workflow is no longer on the cluster \(it was deleted\)\. Clone the "
                       r"run to start it again\.$"):
        retrying(lambda: run.retry(owner))
    assert as_it_is(run) == before
