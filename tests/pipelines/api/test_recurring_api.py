"""Recurring runs in the KFP API: v2beta1 ``recurringruns`` and v1beta1 ``jobs`` — create
(from a package, a stored version, a pipeline's latest version), get, list (paging, sort,
filter, by experiment), enable, disable, delete; bad input; who may do what; and the
runs a schedule started, as the run endpoints show them. Schedules are rows here; the
real SDKs drive them in test_recurring_sdk.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import yaml
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from dashboard.models import Profile
from pipelines.models import Experiment, PipelineVersion, RecurringRun, Run
from tests.pipelines.api.conftest import upload
from tests.pipelines.api.run_samples import make_run

V2 = "/apis/v2beta1/recurringruns"
V1 = "/apis/v1beta1/jobs"
CRON = {"cron_schedule": {"cron": "0 0 9 ? * 2-6"}}  # what the SDK docs show: seconds first
HOURLY = {"periodic_schedule": {"interval_second": 3600}}


@pytest.fixture
def ir(ir_package) -> dict:
    return yaml.safe_load(ir_package)


@pytest.fixture
def version(uploaded) -> PipelineVersion:
    return PipelineVersion.objects.get(pipeline_id=uploaded["pipeline_id"])


@pytest.fixture
def other_namespace(make_user):
    """team-b, owned by someone else; the member of team-a may view it."""
    boss = make_user("boss@example.com")
    team_b = Profile.register("team-b", boss)
    team_b.set_contributor("member@example.com", "view", boss)
    return team_b


def create(client, **body):
    body.setdefault("trigger", HOURLY)
    return client.post(V2, body, format="json")


def create_v1(client, **body):
    body.setdefault("trigger", HOURLY)
    return client.post(V1, body, format="json")


def made(client, **body) -> dict:
    response = create(client, **body)
    assert response.status_code == 200, response.json()
    return response.json()


# --- v2beta1: create ---------------------------------------------------------------------


def test_it_creates_one_from_a_package_with_a_six_field_cron(api, member, ir):
    response = create(api(member), display_name="weekdays", description="at nine",
                      pipeline_spec=ir, trigger=CRON, max_concurrency=2, mode="ENABLE",
                      runtime_config={"parameters": {"a": 40}}, service_account="robot")
    assert response.status_code == 200, response.json()
    body = response.json()
    schedule = RecurringRun.objects.get(pk=body["recurring_run_id"])
    assert schedule.experiment.name == "Default" and schedule.profile.name == "team-a"
    assert schedule.next_slot_at is not None and schedule.enabled
    created = schedule.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert body == {
        "recurring_run_id": str(schedule.pk), "display_name": "weekdays",
        "description": "at nine", "pipeline_version_id": None,
        "pipeline_version_reference": None, "pipeline_spec": ir,
        "runtime_config": {"parameters": {"a": 40, "msg": "hi", "ratio": 0.5}},
        "service_account": "robot", "max_concurrency": "2",
        "trigger": {"cron_schedule": {"cron": "0 0 9 ? * 2-6", "time_zone": "UTC"}},
        "mode": "ENABLE", "status": "ENABLED", "error": None, "no_catchup": False,
        "created_at": created, "updated_at": body["updated_at"], "namespace": "team-a",
        "experiment_id": str(schedule.experiment_id)}


def test_it_creates_one_from_a_stored_version_with_a_period_and_a_window(api, member, version,
                                                                          profile, owner):
    experiment = Experiment.create(profile, "nightly", owner)
    reference = {"pipeline_id": str(version.pipeline_id),
                 "pipeline_version_id": str(version.pk)}
    body = made(api(member), display_name="hourly", experiment_id=str(experiment.pk),
                pipeline_version_reference=reference, max_concurrency="3", no_catchup=True,
                mode="DISABLE", runtime_config={"parameters": {"msg": "bye"}},
                trigger={"periodic_schedule": {"interval_second": "7200",
                                               "start_time": "2030-01-02T03:04:05Z",
                                               "end_time": "2031-01-01T00:00:00+00:00"}})
    assert body["pipeline_version_reference"] == reference
    assert body["pipeline_version_id"] == str(version.pk) and body["pipeline_spec"] is None
    assert body["trigger"] == {"periodic_schedule": {
        "interval_second": "7200", "start_time": "2030-01-02T03:04:05Z",
        "end_time": "2031-01-01T00:00:00Z"}}
    assert (body["mode"], body["status"], body["no_catchup"], body["max_concurrency"]) == (
        "DISABLE", "DISABLED", True, "3")
    assert body["experiment_id"] == str(experiment.pk)
    schedule = RecurringRun.objects.get(pk=body["recurring_run_id"])
    assert schedule.parameters["msg"] == "bye" and not schedule.catchup
    assert schedule.interval_seconds == 7200 and schedule.next_slot_at is None
    assert schedule.start_at == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_it_always_runs_the_latest_version_when_only_the_pipeline_is_named(api, member,
                                                                          uploaded):
    body = made(api(member), display_name="latest",
                pipeline_version_reference={"pipeline_id": uploaded["pipeline_id"]})
    assert body["pipeline_version_reference"] == {"pipeline_id": uploaded["pipeline_id"]}
    assert body["pipeline_version_id"] is None
    schedule = RecurringRun.objects.get(pk=body["recurring_run_id"])
    assert schedule.latest and schedule.pipeline_version is None


def test_it_takes_the_usual_five_field_cron_and_a_time_zone(api, member, ir):
    body = made(api(member), display_name="five", pipeline_spec=ir,
                trigger={"cron_schedule": {"cron": "30 9 * * 1-5",
                                           "time_zone": "Europe/Paris"}})
    assert body["trigger"]["cron_schedule"] == {"cron": "30 9 * * 1-5",
                                                "time_zone": "Europe/Paris"}
    schedule = RecurringRun.objects.get(pk=body["recurring_run_id"])
    assert schedule.next_slot_at.astimezone(schedule.trigger.zone).hour == 9


def test_it_defaults_to_enabled_with_ten_at_a_time(api, member, ir):
    body = made(api(member), display_name="defaults", pipeline_spec=ir)
    assert (body["status"], body["max_concurrency"], body["no_catchup"]) == (
        "ENABLED", "10", False)


def test_it_creates_one_in_a_named_namespace(api, member, ir, other_namespace, make_user):
    other_namespace.set_contributor("member@example.com", "edit", other_namespace.owner)
    body = made(api(member), display_name="there", pipeline_spec=ir, namespace="team-b")
    assert body["namespace"] == "team-b"


# --- v2beta1: bad input ------------------------------------------------------------------


@pytest.mark.parametrize("changes, field, words", [
    ({"trigger": {"cron_schedule": {"cron": "every day"}}}, "trigger.cron_schedule.cron",
     "is not a cron expression"),
    ({"trigger": {"cron_schedule": {"cron": "0 0 25 * * *"}}}, "trigger.cron_schedule.cron",
     "is not a cron expression"),
    ({"trigger": {"cron_schedule": {"cron": ""}}}, "trigger.cron_schedule.cron", "blank"),
    ({"trigger": {"periodic_schedule": {"interval_second": 0}}},
     "trigger.periodic_schedule.interval_second", "at least 1 second"),
    ({"trigger": {"periodic_schedule": {"interval_second": -60}}},
     "trigger.periodic_schedule.interval_second", "at least 1 second"),
    ({"trigger": {"periodic_schedule": {"interval_second": "soon"}}},
     "trigger.periodic_schedule.interval_second", "valid integer"),
    ({"trigger": {"cron_schedule": {"cron": "0 0 * * *", "start_time": "2030-01-02T00:00:00Z",
                                    "end_time": "2030-01-01T00:00:00Z"}}},
     "trigger.cron_schedule.end_time", "The end must come after the start."),
    ({"trigger": {"periodic_schedule": {"interval_second": 60, "start_time": "yesterday"}}},
     "trigger.periodic_schedule.start_time", "Datetime has wrong format"),
    ({"trigger": {"cron_schedule": {"cron": "0 * * * *", "time_zone": "Mars/Olympus"}}},
     "trigger.cron_schedule.time_zone", "is not a time zone"),
    ({"trigger": {}}, "trigger", "Give one of cron_schedule"),
    ({"trigger": {**CRON, **HOURLY}}, "trigger", "Give one of cron_schedule"),
    ({"trigger": None}, "trigger", "may not be null"),
    ({"max_concurrency": 0}, "max_concurrency", "At least 1 run at a time."),
    ({"max_concurrency": -1}, "max_concurrency", "At least 1 run at a time."),
    ({"runtime_config": {"parameters": {"a": "three"}}}, "a",
     "'a' must be an integer, not 'three'."),
    ({"runtime_config": {"parameters": {"zz": 1}}}, "zz", "The pipeline has no parameter 'zz'"),
    ({"mode": "SOMETIMES"}, "mode", "is not a valid choice"),
    ({"display_name": ""}, "display_name", "blank"),
])
def test_it_refuses_bad_input_with_400_and_creates_nothing(api, member, ir, changes, field,
                                                          words):
    body = {"display_name": "bad", "pipeline_spec": ir, "trigger": HOURLY, **changes}
    response = api(member).post(V2, body, format="json")
    assert response.status_code == 400, response.json()
    error = response.json()
    assert error["code"] == 3 and error["message"].startswith(f"{field}: ")
    assert words in error["message"]
    assert [d["field"] for d in error["details"]] == [field]
    assert not RecurringRun.objects.exists()


def test_it_refuses_a_body_without_a_pipeline(api, member):
    response = create(api(member), display_name="x")
    assert response.status_code == 400
    assert "either pipeline_spec or pipeline_version_reference" in response.json()["message"]


def test_it_refuses_a_visible_version_of_another_namespace(api, member, other_namespace,
                                                           ir_package, make_user, profile,
                                                           owner):
    boss = other_namespace.owner
    theirs = upload(api(boss), ir_package, namespace="team-b", name="theirs").json()
    experiment = Experiment.create(profile, "ours", owner)
    response = create(api(member), display_name="x", experiment_id=str(experiment.pk),
                      pipeline_version_reference={"pipeline_id": theirs["pipeline_id"]})
    assert response.status_code == 400
    assert "not in this namespace" in response.json()["message"]
    assert not RecurringRun.objects.exists()


def test_it_hides_experiments_and_pipelines_from_strangers(api, stranger, member, uploaded,
                                                           profile, owner, ir):
    Profile.register("stranger-ns", stranger)
    experiment = Experiment.create(profile, "ours", owner)
    by_experiment = create(api(stranger), display_name="x", pipeline_spec=ir,
                           experiment_id=str(experiment.pk))
    by_pipeline = create(api(stranger), display_name="x",
                         pipeline_version_reference={"pipeline_id": uploaded["pipeline_id"]})
    assert (by_experiment.status_code, by_pipeline.status_code) == (404, 404)
    assert not RecurringRun.objects.exists()


# --- v2beta1: read, list, switch, delete --------------------------------------------------


@pytest.fixture
def schedules(api, member, ir, profile, owner):
    """Three schedules in team-a: two in "nightly", one in Default."""
    nightly = Experiment.create(profile, "nightly", owner)
    made_ = [made(api(member), display_name=name, pipeline_spec=ir, experiment_id=experiment)
             for name, experiment in (("alpha", str(nightly.pk)), ("beta", str(nightly.pk)),
                                      ("gamma", None))]
    return {"nightly": nightly, "ids": [m["recurring_run_id"] for m in made_]}


def listed(client, url=V2, key="recurringRuns", **params) -> dict:
    response = client.get(url, params)
    assert response.status_code == 200, response.json()
    return response.json()


def test_it_lists_under_the_key_kfp_spells_recurringRuns(api, viewer, schedules):
    body = listed(api(viewer), page_token="", page_size=10, sort_by="", namespace="")
    assert set(body) == {"recurringRuns", "total_size", "next_page_token"}
    assert [r["display_name"] for r in body["recurringRuns"]] == ["alpha", "beta", "gamma"]
    assert body["total_size"] == 3 and body["next_page_token"] == ""
    assert "pipeline_spec" not in body["recurringRuns"][0]  # GET one for it


def test_it_lists_an_experiments_or_a_namespaces(api, viewer, schedules):
    by_experiment = listed(api(viewer), experiment_id=str(schedules["nightly"].pk))
    assert [r["display_name"] for r in by_experiment["recurringRuns"]] == ["alpha", "beta"]
    assert listed(api(viewer), namespace="team-a")["total_size"] == 3


def test_it_pages_sorts_and_filters(api, viewer, schedules):
    client, seen, token = api(viewer), [], ""
    while True:
        page = listed(client, page_size=2, page_token=token, sort_by="display_name desc")
        seen += [r["display_name"] for r in page["recurringRuns"]]
        token = page["next_page_token"]
        if not token:
            break
    assert seen == ["gamma", "beta", "alpha"]
    by_name = json.dumps({"predicates": [{"operation": 1, "key": "display_name",
                                          "stringValue": "beta"}]})
    assert [r["recurring_run_id"] for r in listed(client, filter=by_name)["recurringRuns"]] \
        == [schedules["ids"][1]]
    bad = client.get(V2, {"sort_by": "status"})
    assert bad.status_code == 400 and "Can't sort by 'status'" in bad.json()["message"]


def test_it_gets_one_with_its_package(api, viewer, schedules, ir):
    body = api(viewer).get(f"{V2}/{schedules['ids'][0]}").json()
    assert body["display_name"] == "alpha" and body["pipeline_spec"] == ir


def test_it_disables_and_enables(api, member, schedules):
    client, schedule_id = api(member), schedules["ids"][0]
    response = client.post(f"{V2}/{schedule_id}:disable", content_type="application/json")
    assert (response.status_code, response.json()) == (200, {})
    body = client.get(f"{V2}/{schedule_id}").json()
    assert (body["status"], body["mode"]) == ("DISABLED", "DISABLE")
    assert RecurringRun.objects.get(pk=schedule_id).next_slot_at is None
    assert client.post(f"{V2}/{schedule_id}:enable").json() == {}
    assert client.get(f"{V2}/{schedule_id}").json()["status"] == "ENABLED"
    assert RecurringRun.objects.get(pk=schedule_id).next_slot_at is not None


def test_it_shows_why_kfdash_disabled_one(api, viewer, schedules):
    RecurringRun.objects.get(pk=schedules["ids"][0]).disable_because("Its pipeline was gone.")
    body = api(viewer).get(f"{V2}/{schedules['ids'][0]}").json()
    assert body["status"] == "DISABLED"
    assert body["error"] == {"code": 2, "message": "Its pipeline was gone.", "details": []}


def test_it_deletes_one_and_keeps_the_runs_it_started(api, member, schedules, profile, owner,
                                                       ir_package):
    schedule = RecurringRun.objects.get(pk=schedules["ids"][0])
    run = make_run(profile, owner, ir_package, recurring_run=schedule)
    response = api(member).delete(f"{V2}/{schedule.pk}")
    assert (response.status_code, response.json()) == (200, {})
    assert api(member).get(f"{V2}/{schedule.pk}").status_code == 404
    run.refresh_from_db()
    assert run.recurring_run is None


# --- who may do what ----------------------------------------------------------------------


def test_it_hides_a_namespaces_schedules_from_strangers(api, stranger, schedules):
    client, schedule_id = api(stranger), schedules["ids"][0]
    for method, url in (("get", f"{V2}/{schedule_id}"), ("delete", f"{V2}/{schedule_id}"),
                        ("post", f"{V2}/{schedule_id}:enable"),
                        ("post", f"{V2}/{schedule_id}:disable"),
                        ("get", f"{V1}/{schedule_id}"), ("delete", f"{V1}/{schedule_id}"),
                        ("post", f"{V1}/{schedule_id}/disable")):
        response = getattr(client, method)(url)
        assert (response.status_code, response.json()["code"]) == (404, 5), (method, url)
    assert client.get(V2, {"namespace": "team-a"}).status_code == 404
    assert client.get(V2, {"experiment_id": str(schedules["nightly"].pk)}).status_code == 404
    assert listed(client)["recurringRuns"] == []  # no namespace of their own: nothing
    assert RecurringRun.objects.filter(enabled=True).count() == 3


def test_it_lets_viewers_read_but_not_change(api, viewer, schedules, ir):
    client, schedule_id = api(viewer), schedules["ids"][0]
    assert client.get(f"{V2}/{schedule_id}").status_code == 200
    assert client.get(f"{V1}/{schedule_id}").status_code == 200
    refused = [create(client, display_name="x", pipeline_spec=ir),
               client.post(f"{V2}/{schedule_id}:disable"),
               client.post(f"{V2}/{schedule_id}:enable"),
               client.delete(f"{V2}/{schedule_id}"), client.post(f"{V1}/{schedule_id}/disable"),
               client.delete(f"{V1}/{schedule_id}")]
    assert [(r.status_code, r.json()["code"]) for r in refused] == [(403, 7)] * 6
    assert RecurringRun.objects.filter(enabled=True).count() == 3


def test_it_asks_anonymous_callers_to_authenticate(db, schedules, ir):
    client = APIClient()
    schedule_id = schedules["ids"][0]
    for method, url in (("get", V2), ("post", V2), ("get", f"{V2}/{schedule_id}"),
                        ("post", f"{V2}/{schedule_id}:disable"), ("get", V1), ("post", V1),
                        ("delete", f"{V1}/{schedule_id}")):
        response = getattr(client, method)(url)
        assert (response.status_code, response.json()["code"]) == (401, 16), (method, url)


def test_it_answers_404_for_ids_that_name_nothing(api, member):
    for url in (f"{V2}/not-a-uuid", f"{V2}/00000000-0000-4000-8000-000000000000",
                f"{V1}/nope"):
        assert api(member).get(url).status_code == 404


# --- v1beta1 jobs ------------------------------------------------------------------------


def experiment_ref(experiment) -> dict:
    return {"key": {"type": "EXPERIMENT", "id": str(experiment.pk)}, "relationship": "OWNER"}


def test_v1_creates_a_job_from_a_workflow_manifest_as_kfp_1_8_sends_it(api, member, profile,
                                                                       owner, argo_package):
    experiment = Experiment.create(profile, "v1-jobs", owner)
    manifest = json.dumps(yaml.safe_load(argo_package))
    response = create_v1(
        api(member), name="nightly-v1", description="every night",
        pipeline_spec={"workflow_manifest": manifest,
                       "parameters": [{"name": "msg", "value": "from v1"}]},
        resource_references=[experiment_ref(experiment)], max_concurrency=2,
        trigger={"cron_schedule": {"cron": "0 0 0 * * *"}}, enabled=True, no_catchup=True)
    assert response.status_code == 200, response.json()
    body = response.json()
    schedule = RecurringRun.objects.get(pk=body["id"])
    assert schedule.parameters == {"msg": "from v1"} and schedule.experiment == experiment
    assert body["pipeline_spec"]["parameters"] == [{"name": "msg", "value": "from v1"}]
    assert json.loads(body["pipeline_spec"]["workflow_manifest"]) == json.loads(manifest)
    assert body["resource_references"] == [
        {"key": {"type": "EXPERIMENT", "id": str(experiment.pk)}, "relationship": "OWNER",
         "name": "v1-jobs"},
        {"key": {"type": "NAMESPACE", "id": "team-a"}, "relationship": "OWNER",
         "name": "team-a"}]
    assert {k: body[k] for k in ("name", "description", "max_concurrency", "trigger", "mode",
                                 "status", "enabled", "no_catchup", "error",
                                 "service_account")} == {
        "name": "nightly-v1", "description": "every night", "max_concurrency": "2",
        "trigger": {"cron_schedule": {"cron": "0 0 0 * * *", "time_zone": "UTC"}},
        "mode": "ENABLED", "status": "Enabled", "enabled": True, "no_catchup": True,
        "error": "", "service_account": ""}
    assert body["created_at"].endswith("Z") and body["updated_at"].endswith("Z")


def test_v1_creates_a_disabled_job_of_a_stored_version(api, member, version, profile, owner):
    experiment = Experiment.create(profile, "v1-versions", owner)
    version_ref = {"key": {"type": "PIPELINE_VERSION", "id": str(version.pk)},
                   "relationship": "CREATOR"}
    body = create_v1(api(member), name="by-version", enabled=False,
                     pipeline_spec={"parameters": [{"name": "a", "value": "7"}]},
                     resource_references=[experiment_ref(experiment), version_ref]).json()
    assert (body["mode"], body["enabled"], body["status"]) == ("DISABLED", False, "Disabled")
    assert {**version_ref, "name": version.name} in body["resource_references"]
    assert body["pipeline_spec"]["pipeline_id"] == str(version.pipeline_id)
    assert body["trigger"] == {"periodic_schedule": {"interval_second": "3600"}}
    assert RecurringRun.objects.get(pk=body["id"]).parameters["a"] == 7


@pytest.mark.parametrize("changes, field", [
    ({"trigger": {"periodic_schedule": {"interval_second": 0}}},
     "trigger.periodic_schedule.interval_second"),
    ({"trigger": {"cron_schedule": {"cron": "61 * * * *"}}}, "trigger.cron_schedule.cron"),
    ({"max_concurrency": 0}, "max_concurrency"),
    ({"pipeline_spec": {"parameters": [{"name": "a", "value": "x"}]}}, "a"),
    ({"resource_references": [{"key": {"type": "EXPERIMENT"}}]},
     "resource_references[0].key.id"),
])
def test_v1_refuses_bad_input_with_400(api, member, version, changes, field):
    version_ref = {"key": {"type": "PIPELINE_VERSION", "id": str(version.pk)},
                   "relationship": "CREATOR"}
    body = {"name": "bad", "resource_references": [version_ref], "trigger": HOURLY, **changes}
    response = api(member).post(V1, body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["message"].startswith(f"{field}: ")
    assert not RecurringRun.objects.exists()


def test_v1_lists_gets_disables_enables_and_deletes_jobs(api, member, viewer, schedules):
    client, schedule_id = api(member), schedules["ids"][0]
    body = listed(api(viewer), V1, page_token="", page_size=10, sort_by="name desc")
    assert set(body) == {"jobs", "total_size", "next_page_token"}
    assert [j["name"] for j in body["jobs"]] == ["gamma", "beta", "alpha"]
    assert "pipeline_manifest" not in body["jobs"][0]["pipeline_spec"]
    by_experiment = listed(api(viewer), V1, **{
        "resource_reference_key.type": "EXPERIMENT",
        "resource_reference_key.id": str(schedules["nightly"].pk)})
    assert [j["name"] for j in by_experiment["jobs"]] == ["alpha", "beta"]
    detail = client.get(f"{V1}/{schedule_id}").json()
    assert detail["name"] == "alpha" and "pipeline_manifest" in detail["pipeline_spec"]
    assert client.post(f"{V1}/{schedule_id}/disable").json() == {}
    assert client.get(f"{V1}/{schedule_id}").json()["enabled"] is False
    assert client.post(f"{V1}/{schedule_id}/enable").json() == {}
    assert client.get(f"{V1}/{schedule_id}").json()["mode"] == "ENABLED"
    assert client.delete(f"{V1}/{schedule_id}").json() == {}
    assert client.get(f"{V1}/{schedule_id}").status_code == 404


def test_v1_refuses_to_list_by_other_references(api, viewer, schedules):
    response = api(viewer).get(V1, {"resource_reference_key.type": "PIPELINE",
                                     "resource_reference_key.id": "x"})
    assert response.status_code == 400


def queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_lists_take_the_same_number_of_queries_for_one_or_many(api, viewer, member, ir,
                                                               version):
    client = api(viewer)
    client.get(V2)  # the token's first use is recorded once: not part of a list's cost
    made(api(member), display_name="one", pipeline_spec=ir)
    one = {url: queries(client, url) for url in (V1, V2)}
    reference = {"pipeline_id": str(version.pipeline_id)}
    for index in range(4):
        made(api(member), display_name=f"more-{index}", pipeline_version_reference=reference)
    assert {url: queries(client, url) for url in (V1, V2)} == one


# --- the runs a schedule started ----------------------------------------------------------


def test_runs_name_the_recurring_run_that_started_them(api, viewer, schedules, profile,
                                                       owner, ir_package):
    schedule = RecurringRun.objects.get(pk=schedules["ids"][0])
    started = make_run(profile, owner, ir_package, name="started", recurring_run=schedule)
    make_run(profile, owner, ir_package, name="by-hand")
    client = api(viewer)
    v2 = client.get(f"/apis/v2beta1/runs/{started.pk}").json()
    assert v2["recurring_run_id"] == str(schedule.pk)
    by_schedule = json.dumps({"predicates": [{"operation": "EQUALS", "key": "recurring_run_id",
                                              "string_value": str(schedule.pk)}]})
    runs = client.get("/apis/v2beta1/runs", {"filter": by_schedule}).json()["runs"]
    assert [r["display_name"] for r in runs] == ["started"]
    v1 = client.get(f"/apis/v1beta1/runs/{started.pk}").json()["run"]
    assert {"key": {"type": "JOB", "id": str(schedule.pk)}, "relationship": "CREATOR",
            "name": "alpha"} in v1["resource_references"]
    by_job = client.get("/apis/v1beta1/runs", {"resource_reference_key.type": "JOB",
                                               "resource_reference_key.id": str(schedule.pk)})
    assert [r["name"] for r in by_job.json()["runs"]] == ["started"]
    hand = Run.objects.get(name="by-hand")
    assert client.get(f"/apis/v2beta1/runs/{hand.pk}").json()["recurring_run_id"] is None
