"""Pipeline, experiment and run pages (the REST API lives in ``pipelines.api``)."""

from __future__ import annotations

import uuid

from django.http import Http404


def query_uuid(value: str | None) -> uuid.UUID | None:
    """An id from the query string (None when absent); one that is not a UUID names
    nothing: 404."""
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Http404("No such object.") from None


def runs_confirmed(request, run_count: int) -> bool:
    """A deletion that concerns runs (they were started from a pipeline, or belong to an
    experiment) is refused until the person ticks that they saw it (``confirm_runs``)."""
    return run_count == 0 or request.POST.get("confirm_runs") == "on"
