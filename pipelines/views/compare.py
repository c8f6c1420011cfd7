"""Results pages: the comparison of runs checked on a runs list (a shareable URL:
``runs/compare/?runs=<id>,<id>``, open to anyone who may view the namespace), and a run's
outputs (every visualization of its steps), which the run page loads into its "Run
output" tab and which is a page of its own for browsers without JavaScript."""

from __future__ import annotations

from csp.decorators import csp_update
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import render

from dashboard.decorators import namespace_view
from pipelines.comparison import Comparison, run_ids
from pipelines.models import Run
from pipelines.views.run_detail import namespace_run
from pipelines.visualizations import run_cards


# plotly's parallel-coordinates chart draws with WebGL through regl, which compiles its
# draw calls with Function(): the one page whose scripts may evaluate code.
@csp_update({"script-src": ["'unsafe-eval'"]})
@namespace_view()
def run_compare(request, profile):
    try:
        ids = run_ids(request.GET.getlist("runs"))
    except ValidationError as exc:
        return render(request, "pipelines/run_compare.html",
                      {"profile": profile, "error": exc.messages[0]}, status=400)
    found = Run.objects.filter(profile=profile, pk__in=ids).select_related(
        "experiment", "pipeline", "pipeline_version").defer("document", "platform_spec")
    by_id = {run.pk: run for run in found}
    if len(by_id) != len(ids):  # another namespace's run is no more visible than a missing one
        raise Http404("A run to compare does not exist in this namespace.")
    comparison = Comparison([by_id[run_id] for run_id in ids])
    return render(request, "pipelines/run_compare.html", {
        "profile": profile, "comparison": comparison,
        "chart_data": comparison.chart_data(),
        "roc_cards": comparison.cards_of("roc"),
        "matrix_cards": comparison.cards_of("confusion_matrix"),
    })


@namespace_view()
def run_outputs(request, profile, run_id):
    run = namespace_run(profile, run_id)
    fragment = request.GET.get("fragment") == "1"
    return render(request, "pipelines/_run_outputs.html" if fragment
                  else "pipelines/run_outputs.html",
                  {"profile": profile, "run": run, "cards": run_cards(run)})
