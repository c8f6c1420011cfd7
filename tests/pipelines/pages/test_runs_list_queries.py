"""The runs list's metric columns: chosen from the latest runs of the list's scope (a
namespace's or an experiment's runs under the tab shown), whatever the filters, search,
sort and page, in one query whose cost does not grow with the namespace."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pipelines.models import Experiment
from pipelines.views import runs as run_views
from tests.pipelines.pages.run_factory import make_run

LIST = "/ns/team-a/runs/"


def columns(response) -> list[str]:
    return [m["name"] for m in response.context["metric_columns"]]


def test_it_chooses_the_columns_from_the_latest_runs_only(login, owner, profile, monkeypatch):
    monkeypatch.setattr(run_views, "RECENT_RUNS", 2)
    for n in range(3):  # what the team used to report
        make_run(profile, f"old-{n}", ago=3600 + n, metrics={"recall": 0.5, "precision": 0.5})
    make_run(profile, "new-1", ago=60, metrics={"accuracy": 0.75, "loss": 0.5})
    make_run(profile, "new-2", ago=30, metrics={"accuracy": 0.875})
    page = login(owner).get(LIST + "?sort=name")
    assert columns(page) == ["accuracy", "loss"]
    assert [(run.name, run.metric_cells) for run in page.context["runs"]] == [
        ("new-1", ["0.75", "0.5"]), ("new-2", ["0.875", ""]),
        ("old-0", ["", ""]), ("old-1", ["", ""]), ("old-2", ["", ""])]
    # Narrowed to the old runs, the columns stay.
    assert columns(login(owner).get(LIST + "?q=old")) == ["accuracy", "loss"]
    assert columns(login(owner).get(LIST + "?metric=recall+>+0")) == ["accuracy", "loss"]


def test_it_chooses_the_columns_per_tab_and_experiment(login, owner, profile):
    tuning = Experiment.create(profile, "tuning", owner)
    make_run(profile, "active", metrics={"accuracy": 0.5})
    make_run(profile, "shelved", storage_state="ARCHIVED", metrics={"recall": 0.5})
    make_run(profile, "tuned", experiment=tuning, ago=3600, metrics={"f1": 0.5, "auc": 0.5})
    client = login(owner)
    assert columns(client.get(LIST)) == ["accuracy", "auc"]
    assert columns(client.get(LIST + "?show=archived")) == ["recall"]
    assert columns(client.get(f"/ns/team-a/experiments/{tuning.pk}/")) == ["auc", "f1"]
    assert columns(client.get(LIST + "?q=nothing-matches")) == []  # no rows, no columns


@pytest.mark.parametrize("query", ["", "?state=FAILED&q=r&sort=-duration&page=2",
                                   "?metric=accuracy+>+0.5&show=archived"])
def test_its_columns_query_reads_a_bounded_number_of_runs(login, owner, profile, query):
    for n in range(25):
        make_run(profile, f"r-{n}", state="FAILED", metrics={"accuracy": n / 25},
                 storage_state="ARCHIVED" if "archived" in query else "AVAILABLE")
    client = login(owner)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(LIST + query).status_code == 200
    [aggregate] = [q["sql"] for q in queries if "COUNT(DISTINCT" in q["sql"]]
    # The scope's latest runs, not the filtered ones: the filters are not in it.
    assert f"LIMIT {run_views.RECENT_RUNS}" in aggregate
    assert "LIKE" not in aggregate and "EXISTS" not in aggregate and "FAILED" not in aggregate
    if connection.vendor == "sqlite":  # walked through indexes, not a scan of every metric
        with connection.cursor() as cursor:  # (the captured SQL has its values inlined)
            cursor.execute(f"EXPLAIN QUERY PLAN {aggregate}")
            plan = " / ".join(row[-1] for row in cursor.fetchall())
        assert "SCAN" not in plan, plan
