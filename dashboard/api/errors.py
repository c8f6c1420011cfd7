"""One error body for every API: the Kubeflow Pipelines server's.

``{"error": msg, "code": <gRPC code>, "message": msg, "details": [...]}`` — the
kfp clients show it as is, and scripts get one shape whatever the endpoint.
"""

from __future__ import annotations

from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    ValidationError,
)
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from dashboard.errors import PlatformError

GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 409: 6, 413: 8, 415: 3, 429: 8,
              500: 13, 503: 14}


def error_body(message: str, http_status: int, details: list | None = None) -> dict:
    return {"error": message, "code": GRPC_CODES.get(http_status, 2), "message": message,
            "details": details or []}


def _message(detail) -> tuple[str, list]:
    """A one-line message and the field errors, from a DRF error detail."""
    if isinstance(detail, dict):
        details = [{"field": field, "errors": [str(e) for e in (errs if isinstance(errs, list)
                                                                 else [errs])]}
                   for field, errs in detail.items()]
        text = "; ".join(
            f"{d['field']}: {' '.join(d['errors'])}" if d["field"] != "non_field_errors"
            else " ".join(d["errors"]) for d in details
        )
        return text, details
    if isinstance(detail, list):
        return " ".join(str(d) for d in detail), []
    return str(detail), []


def exception_handler(exc, context):
    if isinstance(exc, ValidationError):
        exc = exceptions.ValidationError(detail=exc.messages)
    elif isinstance(exc, PlatformError):
        code = status.HTTP_503_SERVICE_UNAVAILABLE if exc.retryable else status.HTTP_409_CONFLICT
        return Response(error_body(str(exc), code), status=code)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, RequestDataTooBig):  # a form field or JSON body over Django's limit
        message = "The request body (apart from uploaded files) is too large."
        return Response(error_body(message, 413), status=413)
    elif isinstance(exc, SuspiciousOperation):  # too many fields or files, and the like
        exc = exceptions.ParseError(str(exc))
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    message, details = _message(response.data.get("detail", response.data)
                                if isinstance(response.data, dict) and "detail" in response.data
                                else response.data)
    response.data = error_body(message, response.status_code, details)
    return response
