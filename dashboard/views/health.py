"""Probes for process supervisors and Kubernetes: no login, no session, no redirects."""

from django.db import connection
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@never_cache
@require_GET
def healthz(request):
    """The process is alive and serving requests."""
    return HttpResponse("ok\n", content_type="text/plain")


@never_cache
@require_GET
def readyz(request):
    """The process can serve real pages: its database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any database failure means "not ready"
        return HttpResponse(f"database unavailable: {exc.__class__.__name__}\n",
                            status=503, content_type="text/plain")
    return HttpResponse("ok\n", content_type="text/plain")
