"""Pipeline, experiment and run pages (the REST API lives in ``pipelines.api``)."""

from __future__ import annotations

import uuid

from django.http import Http404
from django.utils.http import url_has_allowed_host_and_scheme


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


def next_url(request, default: str) -> str:
    """Back to the list the buttons were on (its tab, filters and page), else ``default``."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return default
