"""A database that cannot answer right now — SQLite locked past its busy timeout, a
PostgreSQL server down or restarting — is a 503 with ``Retry-After``, not a 500: the
request was fine and trying again shortly will work.

Both are ``django.db.OperationalError`` (or ``InterfaceError``, a connection already
closed), whatever the backend; a query that is wrong raises ``ProgrammingError`` or
``IntegrityError`` and stays a 500 (or the view's own answer). The API answers the KFP
error body (gRPC code 14, UNAVAILABLE), pages a short static page: rendering the usual
layout would ask the database for the user again.

Two places catch it: the middleware, for what views raise (quietly, a warning), and
``server_error`` (``handler500``) for what is raised around them — saving the session,
loading the user, other middleware — which Django turns into a 500 before any middleware
could see it.
"""

from __future__ import annotations

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.deprecation import MiddlewareMixin
from django.views import defaults

from dashboard.api.errors import error_body

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
MESSAGE = "The database is busy or unreachable; try again in a few seconds."


API_PREFIXES = ("/api/", "/apis/")
UNAVAILABLE = (OperationalError, InterfaceError)


def unavailable_response(path: str) -> HttpResponse:
    if path.startswith(API_PREFIXES):
        response: HttpResponse = JsonResponse(error_body(MESSAGE, 503), status=503)
    else:
        response = HttpResponse(render_to_string("503.html", {"message": MESSAGE}),
                                status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    """Last in ``MIDDLEWARE``, so it sees what views (and DRF's authentication) raise."""

    def process_exception(self, request, exception):
        if not isinstance(exception, UNAVAILABLE):
            return None
        log.warning("database unavailable for %s %s: %s", request.method, request.path,
                    exception)
        return unavailable_response(request.path)


def server_error(request) -> HttpResponse:
    """``handler500``: Django calls it inside its ``except`` for an exception nothing else
    answered. A database outage is still a 503; any other error a 500, in the APIs' error
    body under the API paths (the kfp clients show it) and the 500 page elsewhere."""
    if isinstance(sys.exc_info()[1], UNAVAILABLE):
        return unavailable_response(request.path)
    if request.path.startswith(API_PREFIXES):
        return JsonResponse(error_body("Internal error; it has been logged.", 500), status=500)
    return defaults.server_error(request)
