"""The run page's websockets: a snapshot then every change, with nothing missed when a page
connects while an engine commits; one step's log, stored then live; refusals."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from dashboard.routing import websocket_urlpatterns
from pipelines.consumers import RunConsumer
from pipelines.models import RunTask
from tests.pipelines.run_rows import NotebookEngine, add_task, every_state_run, hello_run

pytestmark = pytest.mark.django_db(transaction=True)


def socket(user, path: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    communicator.scope["user"] = user
    return communicator


def run_socket(user, run, namespace: str = "team-a") -> WebsocketCommunicator:
    return socket(user, f"/ws/ns/{namespace}/runs/{run.pk}/")


@pytest.fixture
def engine(monkeypatch, settings):
    from pipelines import engines

    double = NotebookEngine()
    monkeypatch.setitem(engines._engines, settings.KFDASH_PLATFORM, double)
    return double


@database_sync_to_async
def commit(run, task=None, **fields):
    """What an engine does: change rows, then commit them under a new revision."""
    tasks = []
    if task is not None:
        for name, value in fields.pop("task_fields", {}).items():
            setattr(task, name, value)
        tasks.append(task)
    run.commit_changes(tasks, **fields)


def test_it_sends_a_snapshot_then_every_change(profile, owner, viewer):
    run = every_state_run(profile, owner)
    run.commit_changes(state="RUNNING")  # revision 1
    evaluate = run.tasks.get(node_id="evaluate")

    async def scenario():
        page = run_socket(viewer, run)
        assert (await page.connect())[0]
        snapshot = await page.receive_json_from(timeout=2)
        assert snapshot["type"] == "snapshot" and snapshot["revision"] == 1
        assert snapshot["run"]["state"] == "RUNNING" and snapshot["run"]["name"] == "nightly"
        assert [h["state"] for h in snapshot["history"]] == ["PENDING", "RUNNING"]
        assert len(snapshot["tasks"]) == 3 + 2 + 16  # 3 tasks, condition, loop, 8 x 2
        notify = next(t for t in snapshot["tasks"] if t["node_id"] == "notify.5")
        assert (notify["state"], notify["kind"], notify["exit_code"]) == ("FAILED", "task", 1)
        iteration = next(t for t in snapshot["tasks"] if t["task_id"] == notify["parent"])
        assert (iteration["kind"], iteration["iteration"]) == ("iteration", 5)
        assert "inputs" not in notify and "command" not in notify  # the panel fetches those

        await commit(run, evaluate, task_fields={"state": "SUCCEEDED", "exit_code": 0})
        run_event = await page.receive_json_from(timeout=2)
        task_event = await page.receive_json_from(timeout=2)
        assert (run_event["type"], run_event["revision"]) == ("run", 2)
        assert (task_event["type"], task_event["node_id"], task_event["state"],
                task_event["revision"]) == ("task", "evaluate", "SUCCEEDED", 2)
        assert task_event["finished_at"]
        await page.disconnect()

    async_to_sync(scenario)()


def test_a_page_connecting_mid_run_ends_with_every_change(profile, owner, viewer):
    """An engine commits 60 changes while pages connect at different moments; each page's
    snapshot plus the events above its revision add up to what the database holds."""
    run = every_state_run(profile, owner)
    notify = list(RunTask.objects.filter(run=run, spec_id="notify").order_by("iteration"))
    changes = 60

    async def engine_commits():
        for number in range(changes):
            task = notify[number % len(notify)]
            await commit(run, task, task_fields={"attempts": number + 1})
            await asyncio.sleep(0.003)

    async def page(delay: float) -> dict:
        await asyncio.sleep(delay)
        communicator = run_socket(viewer, run)
        assert (await communicator.connect())[0]
        snapshot = await communicator.receive_json_from(timeout=5)
        rows = {task["task_id"]: task for task in snapshot["tasks"]}
        revision = last = snapshot["revision"]
        applied = []
        while last < changes:  # each commit sends the run, then its one task
            event = await communicator.receive_json_from(timeout=5)
            if event["type"] == "task":
                last = event["revision"]
            if event["revision"] <= revision:
                continue  # already in the snapshot: what run-detail.js drops too
            if event["type"] == "task":
                rows[event["task_id"]] = event
                applied.append(event["revision"])
        await communicator.disconnect()
        # Every commit after the snapshot arrived, once, in order.
        assert applied == list(range(revision + 1, changes + 1))
        return rows

    async def scenario():
        pages = [page(delay) for delay in (0, 0.01, 0.05, 0.1, 0.15, 0.2)]
        _, *seen = await asyncio.gather(engine_commits(), *pages)
        return seen

    seen = async_to_sync(scenario)()
    final = {str(t.pk): t.attempts for t in RunTask.objects.filter(run=run)}
    for rows in seen:
        assert {task_id: row["attempts"] for task_id, row in rows.items()} == final


def test_a_late_commit_shows_in_the_snapshot_and_again_as_an_event(profile, owner, viewer,
                                                                    monkeypatch):
    """A change committed after the page subscribed but before its snapshot was read is in
    both; its event carries a revision the page knows to skip."""
    run = hello_run(profile, owner)
    task = add_task(run, "load-data", "RUNNING")
    read = RunConsumer.snapshot

    def snapshot_after_a_commit(run_id):
        task.state = "SUCCEEDED"
        run.commit_changes([task])
        return read(run_id)

    monkeypatch.setattr(RunConsumer, "snapshot", staticmethod(snapshot_after_a_commit))

    async def scenario():
        page = run_socket(viewer, run)
        assert (await page.connect())[0]
        snapshot = await page.receive_json_from(timeout=2)
        assert snapshot["revision"] == 1 and snapshot["tasks"][0]["state"] == "SUCCEEDED"
        repeated = [await page.receive_json_from(timeout=2) for _ in range(2)]
        assert {e["revision"] for e in repeated} == {1}
        await page.disconnect()

    async_to_sync(scenario)()


def test_a_change_committed_on_an_engine_thread_reaches_the_page_at_once(
        profile, owner, viewer, monkeypatch):
    """The local engine commits on threads of its own. Their sends go through the loop that
    serves the pages (``dashboard.live.serve_on``, done at ASGI start-up), which they wake:
    sent from the thread's own loop, the in-memory layer's message would wait for
    something else to wake the page's loop (here: its 5 s timeout)."""
    import threading

    from django.db import connection

    from dashboard import live

    run = hello_run(profile, owner)
    task = add_task(run, "train", "RUNNING")

    def engine_thread():
        task.state = "SUCCEEDED"
        run.commit_changes([task])
        connection.close()

    async def scenario():
        monkeypatch.setattr(live, "_serving_loop", asyncio.get_running_loop())
        page = run_socket(viewer, run)
        assert (await page.connect())[0]
        await page.receive_json_from(timeout=2)
        thread = threading.Thread(target=engine_thread)
        thread.start()
        events = [await page.receive_json_from(timeout=5) for _ in range(2)]
        await asyncio.to_thread(thread.join)
        assert [(e["type"], e["state"]) for e in events] == [
            ("run", "RUNNING"), ("task", "SUCCEEDED")]
        await page.disconnect()

    async_to_sync(scenario)()


def test_it_refuses_strangers_anonymous_and_other_namespaces(profile, owner, stranger, viewer,
                                                             make_user):
    from dashboard.models import Profile

    run = hello_run(profile, owner)
    other = Profile.register("team-b", make_user("b@example.com"))
    theirs = hello_run(other, other.owner, name="theirs")

    async def refused(user, run_, namespace="team-a"):
        connected, code = await run_socket(user, run_, namespace).connect()
        return not connected and code == 4403

    async def scenario():
        assert await refused(stranger, run)
        assert await refused(AnonymousUser(), run)
        assert await refused(viewer, theirs)  # named under team-a, but team-b's
        assert await refused(viewer, theirs, "team-b")

    async_to_sync(scenario)()


def log_socket(user, run, node_id: str) -> WebsocketCommunicator:
    return socket(user, f"/ws/ns/team-a/runs/{run.pk}/tasks/{node_id}/log/")


def test_it_streams_a_running_steps_log_then_says_it_ended(profile, owner, viewer, engine):
    run = hello_run(profile, owner)
    step = add_task(run, "for-loop-3/train", "RUNNING", node_id="for-loop-3/train.0")
    engine.logs[step.node_id] = "epoch 1\n"

    async def scenario():
        page = log_socket(viewer, run, step.node_id)
        assert (await page.connect())[0]
        assert await page.receive_json_from(timeout=2) == {
            "type": "log", "text": "epoch 1\n", "cut": False}
        engine.logs[step.node_id] += "epoch 2\n"
        assert (await page.receive_json_from(timeout=2))["text"] == "epoch 2\n"
        await commit(run, step, task_fields={"state": "SUCCEEDED"})
        assert await page.receive_json_from(timeout=2) == {"type": "end"}
        await page.disconnect()

    async_to_sync(scenario)()


def test_it_sends_the_tail_of_a_finished_steps_log(profile, owner, viewer, engine):
    from pipelines.consumers import LOG_TAIL

    run = hello_run(profile, owner)
    step = add_task(run, "train", "FAILED")
    engine.logs["train"] = "x" * (LOG_TAIL + 10) + "Traceback: boom\n"

    async def scenario():
        page = log_socket(viewer, run, "train")
        assert (await page.connect())[0]
        log = await page.receive_json_from(timeout=2)
        assert log["cut"] and len(log["text"]) == LOG_TAIL
        assert log["text"].endswith("Traceback: boom\n")
        assert await page.receive_json_from(timeout=2) == {"type": "end"}
        await page.disconnect()

    assert step.is_finished
    async_to_sync(scenario)()


def test_it_says_why_a_log_cannot_be_read(profile, owner, viewer, settings, tmp_path):
    import json

    from dashboard import kube
    from tests.fakekube import kubeconfig_dict

    # The Argo engine, asked to follow a running step's pod, finds no cluster answering.
    config = tmp_path / "kubeconfig"
    config.write_text(json.dumps(kubeconfig_dict("http://127.0.0.1:9")))
    settings.KFDASH_PLATFORM, settings.KUBECONFIG = "kubernetes", str(config)
    kube.reset()
    run = hello_run(profile, owner)
    add_task(run, "train", "RUNNING", runtime={"pod": "train-pod"})

    async def scenario():
        page = log_socket(viewer, run, "train")
        assert (await page.connect())[0]
        error = await page.receive_json_from(timeout=10)
        assert error["type"] == "error"
        assert "kfdash cannot reach the cluster to follow the step's log" in error["message"]
        assert await page.receive_json_from(timeout=2) == {"type": "end"}
        await page.disconnect()

    try:
        async_to_sync(scenario)()
    finally:
        kube.reset()


def test_it_refuses_logs_to_strangers_and_of_missing_steps(profile, owner, stranger, viewer):
    run = hello_run(profile, owner)
    add_task(run, "train", "RUNNING")

    async def scenario():
        for user, node in [(stranger, "train"), (AnonymousUser(), "train"), (viewer, "nope")]:
            connected, code = await log_socket(user, run, node).connect()
            assert not connected and code == 4403, (user, node)

    async_to_sync(scenario)()
