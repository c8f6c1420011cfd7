"""The sandboxed page of a step's HTML output (a v2 ``system.HTML`` artifact, a v1
``web-app`` output), for the iframe of its card.

What a step wrote must never act as the person looking at it: the page is served with a
CSP whose ``sandbox`` (without ``allow-same-origin``) gives it an opaque origin, so its
scripts run but cannot read kfdash's cookies, storage or pages, and it may load nothing
from the network; only kfdash itself may frame it. Access is the run page's: view role in
the run's namespace, 404 for anyone else.
"""

from __future__ import annotations

from pathlib import Path

from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.clickjacking import xframe_options_sameorigin

from dashboard.decorators import namespace_view
from pipelines.models import Artifact
from pipelines.views.run_detail import namespace_run
from pipelines.visualizations.base import OutputError
from pipelines.visualizations.html import html_output

CONTENT_SECURITY_POLICY = (
    "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; connect-src 'none'; "
    "form-action 'none'; frame-ancestors 'self'; base-uri 'none'")
HTML = "text/html; charset=utf-8"


@xframe_options_sameorigin
@namespace_view()
def output_html(request, profile, run_id, artifact_id, index: int):
    run = namespace_run(profile, run_id)
    artifact = get_object_or_404(Artifact.objects.select_related("task"), run=run,
                                 pk=artifact_id)
    artifact.run = run  # with its profile and graph: a v1 source is found through them
    try:
        page = html_output(artifact, index)
    except OutputError as exc:
        raise Http404(str(exc)) from None
    if isinstance(page, Path):  # streamed, never read whole
        response = FileResponse(page.open("rb"), content_type=HTML)
    else:
        response = HttpResponse(page, content_type=HTML)
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-cache"
    return response
