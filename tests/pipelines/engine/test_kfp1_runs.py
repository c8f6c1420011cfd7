"""KFP v1 packages (Argo Workflows compiled by the real kfp 1.8 SDK) run by the local
engine: placeholders, outputs through valueFrom.path, absolute paths private to each step,
conditions, withItems/withParam, exit handlers, retries, metrics."""

import subprocess
import threading
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from pipelines.engines import isolation
from pipelines.models import Artifact, RunMetric
from tests.pipelines.engine.conftest import retrying, tasks_of, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def package(folder: Path, name: str) -> bytes:
    return (folder / f"{name}.yaml").read_bytes()


def test_it_substitutes_parameters_and_reads_outputs_from_their_paths(
        start_run, kfp1_packages, engine):
    run = wait_for(start_run(package(kfp1_packages, "sum_sq"), a="2", b="3"))
    assert run.state == "SUCCEEDED", run.error
    tasks = tasks_of(run)
    assert tasks["sum-sq"].outputs["parameters"] == {"sum-sq-Output": "13"}
    assert tasks["sum-sq-2"].inputs["parameters"] == {"sum-sq-Output": "13"}
    assert tasks["sum-sq-2"].outputs["parameters"] == {"sum-sq-2-Output": "170"}
    # {{workflow.namespace}}, {{workflow.uid}} in the command; /tmp/outputs/... collected.
    shown = retrying(lambda: Artifact.objects.get(task=tasks["show"], name="show-shown"))
    assert Path(shown.uri).read_text() == f"170 team-a {run.pk}\n"
    assert tasks["sum-sq"].command[0:2] == ["sh", "-ec"]
    assert "--a" in tasks["sum-sq"].command and "2" in tasks["sum-sq"].command


@pytest.mark.parametrize("isolation_mode", ["namespace", "rewrite"])
def test_steps_running_together_each_have_their_own_absolute_paths(
        start_run, kfp1_packages, settings, isolation_mode, engine):
    if isolation_mode == "namespace":
        available, why = isolation.namespaces_available(engine.step_python,
                                                        Path(settings.DATA_DIR) / "engine")
        assert available, f"this host should allow unprivileged namespaces: {why}"
    settings.KFDASH_STEP_ISOLATION = isolation_mode
    run = wait_for(start_run(package(kfp1_packages, "same_path")))
    assert run.state == "SUCCEEDED", run.error
    tasks = tasks_of(run)
    left, right = tasks["left"], tasks["right"]
    assert left.started_at < right.finished_at and right.started_at < left.finished_at
    assert left.outputs["parameters"] == {"left-out": "left", "left-root": "left"}
    assert right.outputs["parameters"] == {"right-out": "right", "right-root": "right"}
    assert left.runtime["mode"] == right.runtime["mode"] == isolation_mode
    assert engine.read_log(left).count("left\n") == 2
    assert not Path("/written-at-root.txt").exists()  # nothing reached the host's /
    assert tasks["join"].state == "SUCCEEDED"


def test_a_step_interpreter_in_a_virtualenv_under_tmp_is_there_in_the_private_root(
        start_run, kfp1_packages, settings, tmp_path, engine):
    """A checkout in /tmp (as CI clones it) has its .venv there: the private /tmp of a v1
    step must still hold it, though .venv/bin/python links out of it."""
    import sys

    assert str(tmp_path).startswith("/tmp/")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")],
                   check=True)
    settings.KFDASH_STEP_PYTHON = str(tmp_path / "venv" / "bin" / "python")
    settings.KFDASH_STEP_ISOLATION = "namespace"
    run = wait_for(start_run(package(kfp1_packages, "sum_sq"), a="1", b="1"))
    assert run.state == "SUCCEEDED", run.error
    assert tasks_of(run)["sum-sq"].runtime["mode"] == "namespace"


def test_it_follows_argo_conditions_and_loops(start_run, kfp1_packages, engine):
    run = wait_for(start_run(package(kfp1_packages, "control_v1"), limit="10"))
    assert run.state == "SUCCEEDED", run.error
    tasks = tasks_of(run)
    assert tasks["big"].state == "SUCCEEDED" and tasks["small"].state == "SKIPPED"
    assert "is false" in tasks["small"].error
    each = sorted((t for t in tasks.values() if t.spec_id == "each"), key=lambda t: t.node_id)
    assert [engine.read_log(t).splitlines()[1] for t in each] == ["each 1", "each 2",
                                                                   "each 3"]
    generated = sorted(retrying(lambda: [
        Path(a.uri).read_text() for a in Artifact.objects.filter(
            run=run, task__spec_id="each-generated")]))
    assert generated == ["got 0\n", "got 1\n"]
    pair = next(t for t in tasks.values() if t.spec_id == "each-pair")
    assert "pair first" in engine.read_log(pair)
    loop = next(t for t in tasks.values() if t.kind == "loop" and t.runtime.get("items") == [
        1, 2, 3])
    assert len([t for t in tasks.values() if t.parent_id == loop.pk]) == 3


def test_an_exit_handler_runs_with_the_workflow_status_and_retries_count(
        start_run, kfp1_packages, engine):
    counter = Path(django_settings.DATA_DIR) / f"counter-{threading.get_ident()}"
    counter.unlink(missing_ok=True)
    run = wait_for(start_run(package(kfp1_packages, "exit_v1"), counter=str(counter)))
    assert run.state == "FAILED"
    assert run.error == "The step work: exited with code 3: failing on purpose"
    tasks = tasks_of(run)
    assert tasks["flaky"].state == "SUCCEEDED" and tasks["flaky"].attempts == 2
    assert tasks["work"].state == "FAILED"
    assert tasks["goodbye"].state == "SUCCEEDED"
    assert "bye Failed" in engine.read_log(tasks["goodbye"])
    assert tasks["exit-handler-1"].kind == "exit_handler"


def test_v1_metrics_and_artifacts_become_rows(start_run, kfp1_packages):
    run = wait_for(start_run(package(kfp1_packages, "metrics_v1")))
    assert run.state == "SUCCEEDED", run.error
    metrics = retrying(lambda: {(m.name, m.value, m.format, m.task.node_id)
                                for m in RunMetric.objects.filter(run=run)})
    assert metrics == {("accuracy-score", 0.85, "PERCENTAGE", "report"),
                       ("roc-auc", 0.91, "RAW", "report")}
    artifacts = retrying(lambda: {a.name: a for a in Artifact.objects.filter(run=run)})
    assert set(artifacts) == {"mlpipeline-ui-metadata", "mlpipeline-metrics", "report-text"}
    ui = artifacts["mlpipeline-ui-metadata"]
    assert '"type": "markdown"' in Path(ui.uri).read_text() and ui.size > 0
    # The reader got the text at its declared input path.
    assert tasks_of(run)["reader"].state == "SUCCEEDED"


def test_rewriting_serializes_paths_the_command_does_not_name(tmp_path):
    plan = isolation.PathPlan("rewrite", tmp_path, ["/tmp/outputs/out/data",
                                                    "/mlpipeline-ui-metadata.json"])
    argv = plan.command("/usr/bin/python3", ["sh", "-c", "echo x > /tmp/outputs/out/data"])
    assert argv == ["sh", "-c", f"echo x > {tmp_path}/root/tmp/outputs/out/data"]
    assert plan.unmapped == ["/mlpipeline-ui-metadata.json"]
    assert plan.host_path("/tmp/outputs/out/data") == tmp_path / "root/tmp/outputs/out/data"
    assert plan.host_path("/mlpipeline-ui-metadata.json") == Path("/mlpipeline-ui-metadata.json")
    other = isolation.PathPlan("rewrite", tmp_path / "b", ["/mlpipeline-ui-metadata.json"])
    other.command("/usr/bin/python3", ["true"])
    order = []

    def second_step():
        with other.hold():
            order.append("other")

    with plan.hold():
        waiting = threading.Thread(target=second_step)
        waiting.start()
        waiting.join(0.2)
        order.append("first done")
    waiting.join(2)
    assert order == ["first done", "other"]


def test_a_declared_path_in_a_host_folder_gets_an_overlay_of_its_own(tmp_path, engine):
    available, why = isolation.namespaces_available(engine.step_python,
                                                    Path(django_settings.DATA_DIR) / "engine")
    assert available, f"this host should allow unprivileged namespaces: {why}"
    declared = f"/var/kfdash-engine-test-{tmp_path.name}/out.txt"
    plan = isolation.PathPlan("namespace", tmp_path, [declared], keep=[str(tmp_path)])
    argv = plan.command(engine.step_python, [
        "sh", "-c", f"mkdir -p {Path(declared).parent} && echo private > {declared} "
                    "&& ls /var/lib > /dev/null"])  # the host's /var is still there
    plan.prepare_outputs([declared])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert plan.host_path(declared).read_text() == "private\n"
    assert plan.host_path(declared).is_relative_to(tmp_path / "overlay" / "var" / "upper")
    assert not Path(declared).parent.exists()  # the host's /var never saw it
