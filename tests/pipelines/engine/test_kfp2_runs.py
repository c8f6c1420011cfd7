"""KFP v2 pipelines, compiled by the real kfp 2 SDK, run by the local engine as real
processes: data flow, parallelism, conditions, loops, exit handlers, retries, caching,
failures, artifacts and metrics, and the events pages receive."""

from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from pipelines.engines import layout
from pipelines.models import Artifact, RunMetric, run_group
from tests.pipelines.engine.conftest import retrying, tasks_of, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def intervals(marker: Path) -> list[tuple[float, float]]:
    return [tuple(map(float, line.split())) for line in marker.read_text().splitlines()]


def most_at_once(spans) -> int:
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


def test_it_runs_a_chain_passing_parameters(start_run, kfp2_package, engine):
    run = wait_for(start_run(kfp2_package("chain"), start=5, name="the chain"))
    assert run.state == "SUCCEEDED" and run.error == ""
    assert [h["state"] for h in run.state_history] == ["PENDING", "RUNNING", "SUCCEEDED"]
    tasks = tasks_of(run)
    assert {n: t.outputs["parameters"] for n, t in tasks.items()} == {
        "add": {"Output": 6}, "add-2": {"Output": 16}, "add-3": {"Output": 116},
        "echo": {"Output": "total 116"}, "shout": {"out": "the chain!"}}
    assert all(t.state == "SUCCEEDED" and t.attempts == 1 and t.kind == "task"
               for t in tasks.values())
    assert tasks["add-2"].started_at >= tasks["add"].finished_at
    assert tasks["add-2"].inputs == {"parameters": {"a": 6, "b": 10}, "artifacts": {}}
    assert tasks["add"].image == "python:3.11"
    # Python components run on the warm Python, the container component as a process.
    assert tasks["add"].runtime["mode"] == "warm python"
    assert tasks["shout"].runtime["mode"] == "process"
    assert tasks["shout"].command[-2:-1] == ["the chain"]
    text = engine.read_log(tasks["echo"])
    assert "echo says total 116" in text
    assert "the pip install before the component was skipped" in text
    assert "a cluster would pull the image python:3.11" in text
    folder = layout.attempt_folder("team-a", run.pk, "add", 1)
    assert (folder / "work").is_dir() and (folder / "outputs" / "executor_output.json").exists()


def test_it_runs_a_fan_out_in_parallel_within_the_limit(start_run, kfp2_package, tmp_path,
                                                         settings):
    settings.KFDASH_RUN_PARALLELISM = 3
    marker = tmp_path / "naps"
    run = wait_for(start_run(kfp2_package("fan_out"), marker=str(marker), seconds=0.6))
    assert run.state == "SUCCEEDED"
    spans = intervals(marker)
    assert len(spans) == 4 and most_at_once(spans) == 3
    tasks = tasks_of(run)
    join = tasks["total"]
    assert join.outputs["parameters"]["Output"] == 3
    assert join.started_at >= max(t.finished_at for n, t in tasks.items() if n != "total")


def test_it_takes_the_branches_the_conditions_choose(start_run, kfp2_package):
    run = wait_for(start_run(kfp2_package("branches"), value=5))
    assert run.state == "SUCCEEDED"
    tasks = tasks_of(run)
    by_label = {t.display_name: t for t in tasks.values() if t.kind == "condition"}
    assert {label: t.state for label, t in by_label.items()} == {
        "big": "SUCCEEDED", "medium": "SKIPPED", "small": "SKIPPED", "five": "SUCCEEDED",
        "tails": "SKIPPED"}
    echoed = {t.outputs["parameters"]["Output"] for t in tasks.values()
              if t.spec_id.startswith("echo") and t.state == "SUCCEEDED"}
    assert echoed == {"big", "five", "heads"}
    skipped = [t for t in tasks.values() if t.kind == "task" and t.state == "SKIPPED"]
    assert len(skipped) == 3 and all("condition is false" in t.error for t in skipped)
    assert tasks["condition-branches-1"].kind == "dag"
    assert tasks["condition-branches-1"].state == "SUCCEEDED"
    # The same pipeline the other way: the Else branch.
    other = wait_for(start_run(kfp2_package("branches"), value=0))
    ran = {t.spec_id: t for t in tasks_of(other).values()
           if t.spec_id.startswith("echo") and t.state in ("SUCCEEDED", "CACHED")}
    assert {t.outputs["parameters"]["Output"] for t in ran.values()} == {"small", "heads"}
    assert ran["echo-3"].state == "SUCCEEDED" and ran["echo-5"].state == "CACHED"


def test_it_runs_loops_over_lists_parameters_and_outputs(start_run, kfp2_package, tmp_path):
    marker = tmp_path / "loop-naps"
    run = wait_for(start_run(kfp2_package("loops"), values=[1, 2, 3], marker=str(marker)))
    assert run.state == "SUCCEEDED", run.error
    tasks = tasks_of(run)
    loops = sorted(t.node_id for t in tasks.values() if t.kind == "loop")
    assert len(loops) == 4
    iterations = {t.node_id: t for t in tasks.values() if t.kind == "iteration"}
    assert len(iterations) == 2 + 3 + 2 + 2
    for node_id, iteration in iterations.items():
        loop_id, index = node_id.rsplit(".", 1)
        assert iteration.parent.node_id == loop_id and iteration.iteration == int(index)
    added = sorted(t.outputs["parameters"]["Output"] for t in tasks.values()
                   if t.spec_id == "add" and t.parent.kind == "iteration")
    assert added == [11, 21]
    shouted = sorted(t.outputs["parameters"]["out"] for t in tasks.values()
                     if t.spec_id == "shout")
    assert shouted == ["x!", "y!"]
    # parallelism=1: one iteration after the other.
    assert most_at_once(intervals(marker)) == 1 and len(intervals(marker)) == 3
    # dsl.Collected: the outputs of every iteration of the loop over an output.
    assert tasks["total"].inputs["parameters"]["values"] == [8, 10]
    assert tasks["total"].outputs["parameters"]["Output"] == 18


def test_an_exit_handler_runs_after_a_failure_and_sees_it(start_run, kfp2_package, tmp_path):
    marker = tmp_path / "final-status"
    run = wait_for(start_run(kfp2_package("exit_handling"), marker=str(marker)))
    assert run.state == "FAILED"
    assert run.error == "The step boom: exited with code 1: ValueError: boom: inside"
    tasks = tasks_of(run)
    assert tasks["exit-handler-1"].kind == "exit_handler"
    assert tasks["exit-handler-1"].state == "FAILED"
    assert tasks["report"].state == "SUCCEEDED"
    assert marker.read_text().startswith("FAILED ")


def test_it_retries_a_failing_step_until_its_retries_run_out(start_run, kfp2_package, tmp_path,
                                                              engine):
    run = wait_for(start_run(kfp2_package("retrying"), counter=str(tmp_path / "a"),
                             other_counter=str(tmp_path / "b")))
    tasks = tasks_of(run)
    assert tasks["flaky"].state == "SUCCEEDED" and tasks["flaky"].attempts == 2
    assert tasks["flaky"].outputs["parameters"]["Output"] == 2
    assert tasks["flaky-2"].state == "FAILED" and tasks["flaky-2"].attempts == 2
    assert "failing on purpose, run 2" in tasks["flaky-2"].error
    assert run.state == "FAILED"
    text = engine.read_log(tasks["flaky"])
    assert text.count("failing on purpose") >= 1 and "attempt 2 of 3" in text
    assert "attempt 1 exited with code 1" in text


def test_a_failed_step_fails_the_run_and_what_follows_it_does_not_run(start_run, kfp2_package):
    run = wait_for(start_run(kfp2_package("failing")))
    assert run.state == "FAILED"
    assert run.error.startswith("The step boom: exited with code 1")
    tasks = tasks_of(run)
    assert tasks["boom"].state == "FAILED" and tasks["boom"].exit_code == 1
    assert tasks["echo"].state == "SKIPPED" and tasks["echo"].attempts == 0
    assert tasks["echo"].error == "not run: boom failed"


def test_it_retries_a_run_keeping_what_succeeded(start_run, kfp2_package, tmp_path, engine):
    counter = tmp_path / "other"
    run = wait_for(start_run(kfp2_package("retrying"), counter=str(tmp_path / "a"),
                             other_counter=str(counter)))
    assert run.state == "FAILED"
    counter.write_text("10")  # it succeeds from now on
    # The engine's part of Run.retry (whose activity record would race the engine's
    # threads for SQLite's shared in-memory test database).
    engine.retry(run)
    assert retrying(lambda: type(run).objects.get(pk=run.pk).state) in ("RUNNING",
                                                                        "SUCCEEDED")
    wait_for(run)
    tasks = tasks_of(run)
    assert run.state == "SUCCEEDED"
    assert tasks["flaky"].attempts == 2 and tasks["flaky"].state == "SUCCEEDED"
    assert tasks["flaky-2"].attempts == 3 and tasks["flaky-2"].state == "SUCCEEDED"
    assert [h["state"] for h in run.state_history][-2:] == ["RUNNING", "SUCCEEDED"]


def test_a_second_run_reuses_the_first_ones_outputs(start_run, kfp2_package, tmp_path):
    counter = tmp_path / "count"
    first = wait_for(start_run(kfp2_package("cached"), counter=str(counter)))
    assert first.state == "SUCCEEDED" and counter.read_text().count("ran") == 2
    second = wait_for(start_run(kfp2_package("cached"), counter=str(counter)))
    assert second.state == "SUCCEEDED"
    assert counter.read_text().count("ran") == 2  # nothing ran again
    old, new = tasks_of(first), tasks_of(second)
    for node_id in ("count-run", "count-run-2", "make-dataset", "read-dataset"):
        assert new[node_id].state == "CACHED"
        assert new[node_id].cached_from_id == old[node_id].pk
        assert new[node_id].outputs["parameters"] == old[node_id].outputs["parameters"]
    assert new["read-dataset"].outputs["parameters"]["Output"] == 404
    # The cached artifacts are this run's own (linked), so deleting the first keeps them.
    data = retrying(lambda: Artifact.objects.get(task=new["make-dataset"], name="data"))
    assert data.path.startswith(f"team-a/{second.pk}/")
    assert Path(data.uri).read_text() == "0\n1\n2\n3"
    assert retrying(lambda: RunMetric.objects.filter(run=second).count()) == 2
    first.remove(first.created_by)
    assert Path(data.uri).exists()
    # Caching off for the run: everything runs.
    third = wait_for(start_run(kfp2_package("cached"), counter=str(counter), caching=False))
    assert {t.state for t in tasks_of(third).values()} == {"SUCCEEDED"}
    assert counter.read_text().count("ran") == 4


def test_it_stores_artifacts_and_metrics(start_run, kfp2_package, tmp_path):
    source = tmp_path / "imported.txt"
    source.write_text("a\nb\n")
    run = wait_for(start_run(kfp2_package("artifacts_pipeline"), source=str(source), rows=3))
    assert run.state == "SUCCEEDED", run.error
    tasks = tasks_of(run)
    rows = {(a.task.node_id, a.name): a for a in retrying(
        lambda: list(Artifact.objects.filter(run=run).select_related("task")))}
    data = rows["make-dataset", "data"]
    store = Path(settings.DATA_DIR) / "artifacts"
    assert Path(data.uri) == store / "team-a" / str(run.pk) / "make-dataset" / "data"
    assert data.type == "system.Dataset" and data.size == len("0\n1\n2")
    assert data.metadata == {"rows": 3} and data.path == f"team-a/{run.pk}/make-dataset/data"
    metrics = rows["make-dataset", "metrics"]
    assert metrics.type == "system.Metrics" and metrics.metadata == {"accuracy": 0.75, "rows": 3}
    assert {(m.name, m.value, m.format) for m in retrying(
        lambda: list(RunMetric.objects.filter(run=run)))} == {("accuracy", 0.75, "RAW"),
                                                             ("rows", 3.0, "RAW")}
    assert tasks["read-dataset"].outputs["parameters"]["Output"] == 303
    assert tasks["read-dataset"].inputs["artifacts"]["data"][0]["uri"] == data.uri
    assert tasks["write-path"].outputs["parameters"]["out"] == "QUIET"
    # An importer: an artifact without a process, read by the next step.
    imported = rows["importer", "artifact"]
    assert imported.uri == str(source) and imported.metadata == {"origin": "host"}
    assert tasks["importer"].attempts == 0 and tasks["importer"].state == "SUCCEEDED"
    assert tasks["read-dataset-2"].outputs["parameters"]["Output"] == 2


def test_one_of_takes_the_branch_that_ran(start_run, kfp2_package):
    run = wait_for(start_run(kfp2_package("one_of"), value=5))
    assert run.state == "SUCCEEDED"
    tasks = tasks_of(run)
    assert tasks["add-3"].inputs["parameters"]["a"] == 1005
    small = wait_for(start_run(kfp2_package("one_of"), value=1))
    assert tasks_of(small)["add-3"].inputs["parameters"]["a"] == 1


def test_a_fresh_interpreter_gives_the_same_results(start_run, kfp2_package, settings):
    settings.KFDASH_STEP_WARM_PYTHON = False
    run = wait_for(start_run(kfp2_package("chain"), start=1))
    tasks = tasks_of(run)
    assert tasks["add-3"].outputs["parameters"]["Output"] == 112
    assert tasks["add"].runtime["mode"] == "process"
    assert tasks["add"].runtime["exec"][1:3] == ["-m", "kfp.dsl.executor_main"]


def test_it_publishes_every_change_in_revision_order(start_run, kfp2_package, owner, profile):
    from pipelines.models import Run
    from pipelines.specs import load

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    # The run's id is only known once it exists: subscribe before it can start, by
    # creating it inside a transaction whose commit starts it.
    from django.db import transaction

    with transaction.atomic():
        run = Run.start(profile, owner, name="watched", loaded=load(kfp2_package("chain")))
        async_to_sync(layer.group_add)(run_group(run.pk), channel)
    wait_for(run)

    async def drain():
        import asyncio

        events = []
        while True:
            try:
                message = await asyncio.wait_for(layer.receive(channel), timeout=0.5)
            except TimeoutError:
                return events
            events.append(message["event"])

    events = async_to_sync(drain)()
    revisions = [event["revision"] for event in events]
    assert revisions == sorted(revisions) and revisions[0] == 0
    assert revisions[-1] == run.revision
    run_events = [e for e in events if e["type"] == "run"]
    assert [e["state"] for e in run_events][-1] == "SUCCEEDED"
    task_states = {}
    for event in events:
        if event["type"] == "task":
            task_states.setdefault(event["node_id"], []).append(event["state"])
    assert task_states["add"][-2:] == ["RUNNING", "SUCCEEDED"]
    assert len(task_states) == 5


def test_deleting_a_run_deletes_its_folders_and_artifacts(start_run, kfp2_package, tmp_path):
    run = wait_for(start_run(kfp2_package("artifacts_pipeline"),
                             source=str(tmp_path / "missing")))
    assert run.state == "FAILED"
    assert "read imported" in run.error
    folders = [layout.run_folder("team-a", run.pk), layout.run_artifacts("team-a", run.pk)]
    assert all(folder.is_dir() for folder in folders)
    run.remove(run.created_by)
    assert not any(folder.exists() for folder in folders)
