"""Live run pages: websockets that check access, then relay what engines commit."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import transaction
from django.db.models import Q
from django.utils.dateparse import parse_datetime

from dashboard import access
from dashboard.consumers import LiveRelay, NamespaceGroupConsumer
from pipelines.engines import EngineError, engine_for
from pipelines.models import Run, RunTask, run_group, runs_group

log = logging.getLogger(__name__)

# The columns a task's live event carries (RunTask.live_event); the heavy JSON ones
# (inputs, outputs, command, runtime) stay in the database.
TASK_EVENT_FIELDS = ("id", "run_id", "revision", "node_id", "spec_id", "kind", "parent_id",
                     "iteration", "display_name", "state", "error", "attempts", "exit_code",
                     "created_at", "started_at", "finished_at")
# A log shown in a page starts with at most this much of what is stored (bytes of a finished
# step's log, characters of a running one's); the whole log is a download away.
LOG_TAIL = 512 * 1024


def _visible_run(user, namespace: str, run_id) -> bool:
    return (access.can(user, "view", namespace)
            and Run.objects.filter(pk=run_id, profile__name=namespace).exists())


class RunConsumer(LiveRelay, AsyncJsonWebsocketConsumer):
    """One run's page: a snapshot of the run and all its tasks, then every change.

    It joins the run's group *before* reading the snapshot, so a change committed in
    between arrives both in the snapshot and as an event; the page applies only events
    whose revision is above the snapshot's, so nothing is missed or applied out of order.
    Channels handles this consumer's messages one at a time, so the snapshot is always
    the first message a page gets. Refusals close with 4403, whether the namespace or
    the run is missing or foreign, as pages answer 404."""

    async def connect(self) -> None:
        kwargs = self.scope["url_route"]["kwargs"]
        run_id = kwargs["run_id"]
        if not await database_sync_to_async(_visible_run)(
                self.scope.get("user"), kwargs["namespace"], run_id):
            await self.close(code=4403)
            return
        self.group = run_group(run_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        snapshot = await database_sync_to_async(self.snapshot)(run_id)
        if snapshot is None:  # deleted in the meantime
            await self.close(code=4404)
            return
        await self.send_json(snapshot)

    @staticmethod
    def snapshot(run_id) -> dict[str, Any] | None:
        """The run and its tasks with the run's revision. The run is read first: every
        commit up to its revision is then visible to the tasks' query, even on a database
        whose transactions see each statement's own snapshot (PostgreSQL's READ
        COMMITTED); a later commit may show in the tasks too, and its event repeats it."""
        with transaction.atomic():
            run = Run.objects.light().filter(pk=run_id).first()
            if run is None:
                return None
            tasks = [task.live_event()
                     for task in RunTask.objects.filter(run_id=run_id).only(*TASK_EVENT_FIELDS)]
        return {"type": "snapshot", "revision": run.revision, "run": run.live_event(),
                "history": run.state_history, "tasks": tasks}

    async def disconnect(self, code) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)


class RunTaskLogConsumer(AsyncJsonWebsocketConsumer):
    """One step's log: what is stored (its tail, when long), then new output as the step
    writes it, then ``{"type": "end"}`` once the step has ended; the socket stays open so
    that the page's client does not reconnect and read it all again."""

    async def connect(self) -> None:
        kwargs = self.scope["url_route"]["kwargs"]
        task = await database_sync_to_async(self._task)(
            self.scope.get("user"), kwargs["namespace"], kwargs["run_id"], kwargs["node_id"])
        if task is None:
            await self.close(code=4403)
            return
        await self.accept()
        self.follower = asyncio.create_task(self._follow(task))

    @staticmethod
    def _task(user, namespace: str, run_id, node_id: str) -> RunTask | None:
        if not access.can(user, "view", namespace):
            return None
        return RunTask.objects.select_related("run").filter(
            run_id=run_id, run__profile__name=namespace, node_id=node_id).first()

    async def _follow(self, task: RunTask) -> None:
        try:
            engine = engine_for(task.run)
            if task.is_finished:
                text = await sync_to_async(engine.read_log)(task, LOG_TAIL)
                await self.send_json({"type": "log", "text": text,
                                      "cut": len(text.encode()) >= LOG_TAIL})
            else:
                first = True
                async for text in engine.follow_log(task):
                    if text:
                        await self._send_log(text, first)
                        first = False
        except EngineError as exc:
            await self.send_json({"type": "error", "message": str(exc)})
        except Exception:  # the page says so rather than waiting forever
            log.exception("cannot stream the log of %s", task)
            await self.send_json({"type": "error", "message": "The log could not be read."})
        await self.send_json({"type": "end"})

    async def _send_log(self, text: str, first: bool) -> None:
        cut = first and len(text) > LOG_TAIL
        await self.send_json({"type": "log", "text": text[-LOG_TAIL:] if cut else text,
                              "cut": cut})

    async def disconnect(self, code) -> None:
        if hasattr(self, "follower"):
            self.follower.cancel()


# --- run lists ----------------------------------------------------------------------------

# The columns Run.live_event reads; a list never loads the pipeline documents.
RUN_EVENT_FIELDS = ("id", "experiment_id", "revision", "name", "state", "error",
                    "storage_state", "created_at", "started_at", "finished_at")
# At most this many runs in a list's catch-up (a page shows 20).
WATCH_LIMIT = 200


class RunListConsumer(NamespaceGroupConsumer):
    """A namespace's run lists (the runs page, an experiment's runs): every committed
    change of one of its runs, as ``Run.live_event()``.

    The list was rendered before this socket joined the group, so its URL says which runs
    the page shows and when it was rendered (``?runs=<id>,<id>&since=<iso time>``); once
    subscribed, the consumer sends those runs' current events and those of the runs created
    since, then every change. Events carry each run's revision and the page applies only
    newer ones, so a change made in between may arrive twice but counts once."""

    def group_for(self, namespace: str) -> str:
        return runs_group(namespace)

    async def connect(self) -> None:
        await super().connect()
        if hasattr(self, "group"):
            query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
            events = await database_sync_to_async(self.catch_up)(
                self.scope["url_route"]["kwargs"]["namespace"],
                ",".join(query.get("runs", [])).split(","), query.get("since", [""])[0])
            for event in events:
                await self.send_json(event)

    @staticmethod
    def catch_up(namespace: str, run_ids: list[str], since: str) -> list[dict[str, Any]]:
        ids = [run_id for run_id in map(_uuid_or_none, run_ids[:WATCH_LIMIT]) if run_id]
        wanted = Q(pk__in=ids)
        moment = _moment(since)
        if moment is not None:
            wanted |= Q(created_at__gt=moment)
        runs = Run.objects.filter(wanted, profile__name=namespace).only(
            *RUN_EVENT_FIELDS).order_by("-created_at")[:WATCH_LIMIT]
        return [run.live_event() for run in runs]


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _moment(value: str):
    """An ISO time with its offset (as pages give it), else None."""
    try:
        moment = parse_datetime(value)
    except ValueError:  # well formed but not a real moment
        return None
    return moment if moment is not None and moment.tzinfo is not None else None
