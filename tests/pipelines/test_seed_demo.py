"""``manage.py seed_demo``: many realistic runs in a namespace, made or reused, shown by the
runs list of the API and of the page."""

from io import StringIO
from urllib.parse import urlencode

import pytest
from django.core.management import CommandError, call_command

from dashboard.models import Profile, User
from pipelines.choices import FINISHED
from pipelines.models import Experiment, Pipeline, Run, RunMetric, RunTask


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def test_it_makes_the_namespace_its_owner_and_runs_with_tasks_metrics_and_parameters(db):
    out = seed("--runs", "12")
    assert "Created user demo@example.com and namespace demo." in out
    assert "Added 12 runs (" in out and "36 tasks and 36 metrics" in out
    profile = Profile.objects.get(name="demo")
    assert profile.owner.email == "demo@example.com"
    assert not profile.owner.has_usable_password()
    runs = Run.objects.filter(profile=profile)
    assert runs.count() == 12
    assert set(runs.values_list("state", flat=True)) <= FINISHED  # no engine picks them up
    for run in runs:
        assert set(run.parameters) == {"learning_rate", "epochs", "optimizer"}
        assert run.state_history[0]["state"] == "PENDING"
        assert run.state_history[-1]["state"] == run.state
        assert run.created_by == profile.owner
        assert {task.id for task in run.spec.tasks} == {"preprocess", "train", "evaluate"}
    assert RunTask.objects.filter(run__profile=profile).count() == 36
    assert set(RunTask.objects.values_list("spec_id", flat=True)) == {
        "preprocess", "train", "evaluate"}
    metrics = RunMetric.objects.filter(run__profile=profile)
    assert metrics.count() == 36
    assert set(metrics.values_list("name", "task__spec_id")) == {
        ("accuracy", "evaluate"), ("loss", "evaluate"), ("f1", "evaluate")}
    created = sorted(runs.values_list("created_at", flat=True))
    assert 4 * 60 <= (created[1] - created[0]).total_seconds() <= 6 * 60  # minutes apart
    assert set(Experiment.objects.filter(profile=profile).values_list("name", flat=True)) \
        == {"Default", "tuning", "nightly"}
    assert all(e.last_run_created_at for e in Experiment.objects.filter(profile=profile))
    pipeline = Pipeline.objects.get(profile=profile)
    assert pipeline.versions.count() == 2
    assert runs.filter(pipeline_version__isnull=False).count() == 8  # two thirds


def test_it_adds_as_many_again_when_run_twice_reusing_the_pipeline(db, owner, profile):
    seed("--runs", "5", "--namespace", "team-a")
    out = seed("--runs", "5", "--namespace", "team-a")
    assert "Created" not in out and "(now 10 runs)" in out and f"by {owner.email}" in out
    runs = Run.objects.filter(profile=profile)
    assert runs.count() == 10
    assert len(set(runs.values_list("name", flat=True))) == 10  # numbered on
    assert Pipeline.objects.filter(profile=profile).count() == 1
    assert Experiment.objects.filter(profile=profile).count() == 3
    assert User.objects.count() == 1


def test_it_makes_runs_as_a_contributor_who_may_edit_and_refuses_others(
        db, profile, member, viewer, stranger):
    assert f"by {member.email}" in seed("--runs", "2", "--namespace", "team-a",
                                        "--owner", member.email)
    for user in (viewer, stranger):
        with pytest.raises(CommandError, match="may not start runs in the namespace team-a"):
            seed("--runs", "2", "--namespace", "team-a", "--owner", user.email)
    with pytest.raises(CommandError, match="at least 1"):
        seed("--runs", "0")
    with pytest.raises(CommandError):  # not a DNS name: nothing made, not even the user
        seed("--runs", "2", "--namespace", "Not_A_Name", "--owner", "new@example.com")
    assert not User.objects.filter(email="new@example.com").exists()
    assert Run.objects.count() == 2


def test_the_runs_list_of_the_api_and_of_the_page_shows_them(db, api, login, owner, profile):
    seed("--runs", "30", "--namespace", "team-a")
    newest = list(Run.objects.filter(profile=profile).order_by("-created_at")
                  .values_list("name", flat=True))
    query = urlencode({"namespace": "team-a", "page_size": 10, "sort_by": "created_at desc"})
    response = api(owner).get(f"/apis/v2beta1/runs?{query}")
    assert response.status_code == 200
    body = response.json()
    assert body["total_size"] == 30
    assert [run["display_name"] for run in body["runs"]] == newest[:10]
    assert body["runs"][0]["runtime_config"]["parameters"].keys() == {
        "learning_rate", "epochs", "optimizer"}
    page = login(owner).get("/ns/team-a/runs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count("<tr data-run=") == 20
    assert f">{newest[0]}</a>" in html and "accuracy" in html
