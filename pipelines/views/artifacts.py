"""The artifacts of a namespace: a list of every output its runs' steps stored (searchable,
filtered by type and run, paged with a fixed number of queries however many there are), and
one artifact's page: its facts, its visualization or preview, its lineage (the step that
produced it, the steps that consumed it) and its download.

Artifacts belong to runs, and runs to namespaces: every lookup goes through the run's
namespace, so an artifact of another namespace is as missing as one that never existed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404, render

from dashboard.decorators import namespace_view
from pipelines.choices import TaskKind
from pipelines.models import Artifact, Run, RunTask
from pipelines.views import query_uuid
from pipelines.views.listing import SORTS, paginate
from pipelines.views.run_detail import artifact_entries
from pipelines.visualizations.cards import artifact_cards, files_of_run

# What a row of the list shows: never ``metadata`` (an ROC curve's points can be megabytes
# per artifact), nor the run's pipeline documents or the task's inputs and outputs.
ROW_FIELDS = ("id", "run", "task", "name", "type", "uri", "path", "size", "created_at",
              "run__id", "run__name", "task__id", "task__node_id", "task__display_name")
# The run's pipeline documents and the task's recorded I/O: not what an artifact page shows.
DETAIL_DEFERRED = ("run__document", "run__platform_spec", "run__graph", "task__inputs",
                   "task__outputs", "task__command", "task__runtime")
# How many runs that reused the artifact through caching the lineage looks into: each
# one's tasks are read to find consumers, so a dataset cached by hundreds of runs stays
# one bounded query.
LINEAGE_RUNS = 50
METADATA_SHOWN = 200_000  # characters of pretty-printed metadata a page shows


def search_artifacts(artifacts: QuerySet, text: str) -> QuerySet:
    return artifacts.filter(Q(name__icontains=text) | Q(uri__icontains=text))


@namespace_view()
def artifact_list(request, profile):
    """Newest first. Four queries whatever the namespace holds: the types present (for the
    filter), the count, the page (rows with their run and step, joined) and, when the list
    is narrowed to a run, that run."""
    artifacts = Artifact.objects.filter(run__profile=profile)
    types = list(artifacts.order_by("type").values_list("type", flat=True).distinct())
    chosen_type = request.GET.get("type", "")
    run_id = query_uuid(request.GET.get("run"))
    run = get_object_or_404(Run.objects.only("id", "name"), profile=profile,
                            pk=run_id) if run_id else None
    rows = artifacts.select_related("run", "task").only(*ROW_FIELDS)
    if chosen_type:
        rows = rows.filter(type=chosen_type)
    if run is not None:
        rows = rows.filter(run=run)
    listing = paginate(request, rows, SORTS, "-created",
                       {"type": chosen_type, "run": str(run.pk) if run else ""},
                       search=search_artifacts)
    return render(request, "pipelines/artifacts.html", {
        "profile": profile, "listing": listing, "artifacts": list(listing.page.object_list),
        "types": types, "chosen_type": chosen_type, "run": run,
        "filtered": bool(listing.query or chosen_type or run),
        "clear_link": listing.link(q=None, type=None, run=None, page=None),
        "all_runs_link": listing.link(run=None, page=None),
    })


@namespace_view()
def artifact_detail(request, profile, artifact_id):
    artifact = get_object_or_404(
        Artifact.objects.select_related("run", "task").defer(*DETAIL_DEFERRED),
        run__profile=profile, pk=artifact_id)
    artifact.run.profile = profile  # the cards name the namespace in their HTML links
    return render(request, "pipelines/artifact_detail.html", {
        "profile": profile, "artifact": artifact, "run": artifact.run,
        "cards": artifact_cards(artifact, files_of_run(artifact.run)),
        "lineage": lineage(profile, artifact),
        "metadata": _pretty(artifact.metadata),
    })


@dataclass
class Use:
    """A step that read the artifact (or its cached copy) as the input ``input``."""

    task: RunTask
    input: str
    artifact: Artifact  # the one it read: this artifact, or a copy in the step's run


@dataclass
class Lineage:
    producer: RunTask
    cached_from: Artifact | None  # the original, when the producer was a cache hit
    copies: list[Artifact]  # the same output reused by cache hits in later runs
    consumers: list[Use]


def lineage(profile, artifact: Artifact) -> Lineage:
    """Where the artifact came from and where it went, in at most three queries.

    Consumers record their inputs by URI (``RunTask.inputs["artifacts"]``). A step that
    was a cache hit in a later run got a copy with that run's own URI, so the runs to look
    into are this one and those of the copies; only their tasks are read, never every task
    of the namespace."""
    producer = artifact.task
    same_output = Artifact.objects.filter(name=artifact.name).select_related(
        "run", "task").only(*ROW_FIELDS)
    cached_from = same_output.filter(task_id=producer.cached_from_id, run__profile=profile) \
        .first() if producer.cached_from_id else None
    # Led by the tasks cached from the producer (an indexed column), not by the namespace's
    # runs: filtering the artifacts by namespace would walk every run of it.
    hits = RunTask.objects.filter(cached_from_id=producer.pk, run__profile=profile)
    copies = list(same_output.filter(task__in=hits.values("pk"))
                  .order_by("-created_at", "-pk")[:LINEAGE_RUNS])
    by_uri = {a.uri: a for a in [artifact, *copies] if a.uri}
    tasks = RunTask.objects.filter(
        run_id__in={artifact.run_id, *(a.run_id for a in copies)}, kind=TaskKind.TASK,
    ).select_related("run").only("id", "run", "node_id", "display_name", "inputs",
                                 "created_at", "run__id", "run__name", "run__created_at")
    consumers = []
    for task in tasks.order_by("run__created_at", "created_at", "node_id"):
        for entry in artifact_entries((task.inputs or {}).get("artifacts")):
            if entry["uri"] in by_uri:
                consumers.append(Use(task, entry["name"], by_uri[entry["uri"]]))
    return Lineage(producer, cached_from, copies, consumers)


def _pretty(metadata: Any) -> dict[str, Any]:
    """The metadata as indented JSON, cut at ``METADATA_SHOWN`` characters: a long ROC
    curve's points are in the chart already, and the whole page must stay light."""
    if not metadata:
        return {"text": "", "truncated": False}
    text = json.dumps(metadata, indent=2, sort_keys=True, ensure_ascii=False)
    return {"text": text[:METADATA_SHOWN], "truncated": len(text) > METADATA_SHOWN}
