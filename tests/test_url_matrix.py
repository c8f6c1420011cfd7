"""Every URL of the project refuses strangers and anonymous callers.

The URL patterns are enumerated from the resolver, so a new URL is covered
automatically when it takes a ``namespace`` (or another user's object); a URL
that takes neither must be listed below with the reason, or this test fails.
Later apps extend ``SAMPLE_KWARGS`` with a sample value for their own URL arguments.
"""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

# URLs anyone may open: probes, the login flow, the API schema's own auth aside.
PUBLIC = {"healthz", "readyz", "login", "logout", "oidc_authentication_init",
          "oidc_authentication_callback", "oidc_logout", "api-schema", "api-docs",
          "kfp2-healthz", "kfp1-healthz", "kfp-not-found", "api-not-found"}
# URLs about the caller's own account: any logged-in user may use them, and they
# never show anyone else's data (tested in their own test files).
OWN_ACCOUNT = {"home", "register", "memberships", "switch-namespace", "tokens",
               "api-whoami", "api-namespaces", "api-tokens",
               # KFP list and upload calls name their namespace in the query or the body;
               # tests/pipelines/api proves they refuse namespaces the caller cannot see.
               "kfp2-experiments", "kfp1-experiments", "kfp2-pipelines", "kfp1-pipelines",
               "kfp2-pipeline-create", "kfp2-pipeline-upload", "kfp1-pipeline-upload",
               "kfp2-pipeline-upload-version", "kfp1-pipeline-upload-version",
               "kfp1-pipeline-versions", "kfp2-runs", "kfp1-runs", "kfp2-artifacts",
               "kfp2-recurringruns", "kfp1-jobs"}
METHODS = ("get", "post", "delete")


def all_patterns(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from all_patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def concrete(route: str, kwargs: dict) -> str:
    """Fill a route's ``<conv:name>`` parts with sample values."""
    def fill(match):
        name = match.group(2)
        return str(kwargs[name])
    return "/" + re.sub(r"<(\w+:)?(\w+)>", fill, route).lstrip("^").rstrip("$")


@pytest.fixture
def sample_kwargs(profile, owner, member):
    from dashboard.models import ApiToken
    from notebooks.models import Notebook, Volume
    from pipelines.models import (
        Artifact,
        Experiment,
        Pipeline,
        PipelineVersion,
        RecurringRun,
        Run,
        RunTask,
    )

    token, _ = ApiToken.issue(owner, "owners-token")
    Notebook.objects.create(profile=profile, name="nb", image="x", stopped=True,
                            status="stopped")
    Volume.objects.create(profile=profile, name="vol")
    pipeline = Pipeline.objects.create(profile=profile, name="pl")
    version = PipelineVersion.objects.create(pipeline=pipeline, name="v1", format="kfp-v2",
                                             source="", document={},
                                             graph={"format": "kfp-v2", "name": "pl"})
    experiment = Experiment.objects.create(profile=profile, name="exp")
    run = Run.objects.create(profile=profile, experiment=experiment, name="run",
                             format="kfp-v2", document={}, graph=version.graph,
                             state="SUCCEEDED")
    task = RunTask.objects.create(run=run, node_id="step", spec_id="step", display_name="step",
                                  state="SUCCEEDED")
    artifact = Artifact.objects.create(run=run, task=task, name="out", uri="local://out")
    schedule = RecurringRun.objects.create(profile=profile, experiment=experiment,
                                           name="hourly", interval_seconds=3600)
    return {"namespace": profile.name, "email": member.email, "token_id": token.pk,
            "name": "nb", "volume": "vol", "pipeline_id": pipeline.pk,
            "version_id": version.pk, "experiment_id": experiment.pk, "pipeline_name": "pl",
            "run_id": run.pk, "node_id": "step", "task_id": task.pk,
            "artifact_id": artifact.pk, "artifact_name": "out",
            "recurring_run_id": schedule.pk,
            # run-output-html: the output's place in its artifact
            "index": 0}


NO_SUCH_ID = "00000000-0000-4000-8000-000000000000"
MISSING = {"namespace": "no-such-namespace", "email": "nobody@example.com", "token_id": 999999,
           "name": "no-such-notebook", "volume": "no-such-volume", "pipeline_id": NO_SUCH_ID,
           "version_id": NO_SUCH_ID, "experiment_id": NO_SUCH_ID,
           "pipeline_name": "no-such-pipeline", "run_id": NO_SUCH_ID, "node_id": "no-such-node",
           "task_id": NO_SUCH_ID, "artifact_id": NO_SUCH_ID, "artifact_name": "no-such-artifact",
           "recurring_run_id": NO_SUCH_ID,
           "index": 99}


def guarded_urls(sample_kwargs, values=None):
    """(name, url) of every guarded URL, filled with ``values`` (the samples by default)."""
    urls = []
    for route, pattern in all_patterns():
        if pattern.name in PUBLIC or pattern.name in OWN_ACCOUNT:
            continue
        names = set(re.findall(r"<(?:\w+:)?(\w+)>", route))
        assert names, f"{route} ({pattern.name}) takes no namespace or object: list it above"
        missing = names - sample_kwargs.keys()
        assert not missing, f"{route}: add a sample value for {missing} to sample_kwargs"
        urls.append((pattern.name, concrete(route, {**sample_kwargs, **(values or {})})))
    return urls


def assert_refused(client, sample_kwargs, api_only=False):
    """403/404 for every guarded URL and method. A 405 passes only when a missing
    object gets the same 405, i.e. the method is refused before anything is looked up."""
    missing = dict(guarded_urls(sample_kwargs, MISSING))
    for name, url in guarded_urls(sample_kwargs):
        if api_only and not url.startswith("/api"):
            continue
        for method in METHODS:
            status = getattr(client, method)(url).status_code
            if status == 405:
                status = getattr(client, method)(missing[name]).status_code
                assert status == 405, (name, url, method, "405 depends on the object")
                continue
            assert status in (403, 404), (name, url, method, status)


def test_it_knows_every_url(sample_kwargs):
    names = {p.name for _, p in all_patterns()}
    assert PUBLIC - names <= {"oidc_logout"}, "a PUBLIC entry no longer exists"
    assert names >= OWN_ACCOUNT, "an OWN_ACCOUNT entry no longer exists"
    assert len(guarded_urls(sample_kwargs)) >= 6


def test_it_refuses_strangers_everywhere(sample_kwargs, stranger):
    browser = APIClient()
    browser.force_login(stranger)
    assert_refused(browser, sample_kwargs)


def test_in_kubernetes_mode_strangers_are_refused_before_the_cluster_is_asked(
        sample_kwargs, stranger, api, fake_kube, settings):
    from dashboard import kube

    settings.KFDASH_PLATFORM = "kubernetes"
    settings.KUBECONFIG = str(fake_kube.kubeconfig_path)
    kube.reset()
    fake_kube.clear_requests()
    try:
        browser = APIClient()
        browser.force_login(stranger)
        assert_refused(browser, sample_kwargs)
        assert_refused(api(stranger), sample_kwargs, api_only=True)
    finally:
        kube.reset()
    assert fake_kube.requests == []  # nothing of theirs, not even a read, reached it


def test_it_refuses_strangers_with_tokens_everywhere(sample_kwargs, stranger, api):
    # Tokens authenticate API calls only; pages want a session.
    assert_refused(api(stranger), sample_kwargs, api_only=True)


def test_it_sends_anonymous_callers_to_login(sample_kwargs):
    client = APIClient()
    for name, url in guarded_urls(sample_kwargs):
        for method in METHODS:
            response = getattr(client, method)(url)
            if response.status_code == 302:
                assert response["Location"].startswith("/login/"), (name, url, method)
            else:
                assert response.status_code == 401, (name, url, method, response.status_code)


def test_it_sends_anonymous_callers_of_account_urls_to_login(db):
    client = APIClient()
    for route, pattern in all_patterns():
        if pattern.name not in OWN_ACCOUNT:
            continue
        url = concrete(route, {})
        response = client.get(url)
        if response.status_code == 302:
            assert response["Location"].startswith("/login/"), url
        else:
            assert response.status_code in (401, 405), (url, response.status_code)


def websocket_routes():
    from channels.routing import URLRouter

    from dashboard.routing import websocket_urlpatterns

    assert all(not isinstance(p, URLRouter) for p in websocket_urlpatterns)
    return [str(p.pattern) for p in websocket_urlpatterns]


@pytest.mark.django_db(transaction=True)
def test_it_refuses_strangers_and_anonymous_on_every_websocket(profile, owner, member,
                                                               stranger):
    """Every websocket route, with the same sample values as the pages."""
    from asgiref.sync import async_to_sync
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator
    from django.contrib.auth.models import AnonymousUser

    from dashboard.routing import websocket_urlpatterns
    from notebooks.models import Notebook
    from pipelines.models import Experiment, Run, RunTask

    Notebook.objects.create(profile=profile, name="nb", image="x")
    run = Run.objects.create(profile=profile, name="run", format="kfp-v2", document={},
                             graph={}, experiment=Experiment.default_for(profile, owner),
                             state="SUCCEEDED")
    RunTask.objects.create(run=run, node_id="step", spec_id="step", display_name="step",
                           state="SUCCEEDED")
    samples = {"namespace": "team-a", "name": "nb", "run_id": run.pk, "node_id": "step"}

    async def refused(user, path):
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
        communicator.scope["user"] = user
        connected, _ = await communicator.connect()
        if connected:
            await communicator.disconnect()
        return not connected

    routes = websocket_routes()
    assert routes
    for route in routes:
        names = set(re.findall(r"<(?:\w+:)?(\w+)>", route))
        assert names <= samples.keys(), f"{route}: add a sample value for {names}"
        path = concrete(route, samples)
        for user in (stranger, AnonymousUser()):
            assert async_to_sync(refused)(user, path), (route, user)
        assert not async_to_sync(refused)(member, path), f"{route} refuses a member"


@pytest.mark.django_db(transaction=True)
def test_it_refuses_strangers_and_anonymous_at_the_notebook_proxy(profile, stranger, viewer):
    """The proxy path /notebook/<ns>/<name>/ (not a Django URL): 404 for anyone who may
    not edit, the login page for anonymous callers."""
    from asgiref.sync import async_to_sync
    from channels.testing import HttpCommunicator
    from django.test import Client

    from dashboard.asgi import application
    from notebooks.models import Notebook

    Notebook.objects.create(profile=profile, name="nb", image="x")

    def cookie_of(user) -> bytes:
        client = Client()
        client.force_login(user)
        return f"sessionid={client.cookies['sessionid'].value}".encode()

    async def get(cookie: bytes | None, path="/notebook/team-a/nb/lab"):
        headers = [(b"host", b"testserver")] + ([(b"cookie", cookie)] if cookie else [])
        return await HttpCommunicator(application, "GET", path, headers=headers).get_response(
            timeout=10)

    for user in (stranger, viewer):
        assert async_to_sync(get)(cookie_of(user))["status"] == 404, user
    assert async_to_sync(get)(cookie_of(stranger), "/notebook/team-a/missing/")["status"] == 404
    anonymous = async_to_sync(get)(None)
    assert anonymous["status"] == 302
    assert dict(anonymous["headers"])[b"location"].startswith(b"/login/?next=")


def test_every_page_sends_the_security_headers(sample_kwargs, owner, client, settings):
    """Every URL, as its owner sees it (any status), carries the site's policy: scripts
    only from kfdash, no framing by other sites, no referrer leaving it, no sniffing.
    A step's HTML output and a plain-text log set a stricter sandbox of their own."""
    client.force_login(owner)
    urls = [("home", "/"), ("login", "/login/"), ("api-docs", "/api/docs"),
            *guarded_urls(sample_kwargs)]
    for name, url in urls:
        response = client.get(url)
        policy = response.get("Content-Security-Policy", "")
        assert policy, (name, url, "no Content-Security-Policy")
        assert response["Referrer-Policy"] == "same-origin", (name, url)
        assert response["X-Content-Type-Options"] == "nosniff", (name, url)
        if policy.startswith("sandbox"):
            continue
        directives = dict(f"{d.strip()} ".split(" ", 1) for d in policy.split(";"))
        directives = {key: value.strip() for key, value in directives.items()}
        assert directives["frame-ancestors"] == "'none'", (name, url, policy)
        assert directives["object-src"] == "'none'", (name, url, policy)
        assert "'unsafe-inline'" not in directives["script-src"], (name, url, policy)
        allowed_eval = name == "runs-compare"  # plotly's WebGL chart (see its view)
        assert ("'unsafe-eval'" in directives["script-src"]) == allowed_eval, (name, url)


def test_pages_behind_tls_tell_browsers_to_stay_on_https(client, settings, owner):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    client.force_login(owner)
    response = client.get("/", secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


# --- viewers: they may look at everything in their namespace and change nothing ----------

CHANGING_METHODS = ("post", "put", "patch", "delete")
OTHER_USERS_OWN = {"revoke-token", "api-token"}
# Kept by the requests themselves, not changes a viewer makes: the session, when a token
# was last used, and the namespace last opened (where the next visit starts).
BOOKKEEPING = {("sessions", "session"): None, ("dashboard", "apitoken"): {"last_used_at"},
               ("dashboard", "user"): {"selected_namespace"}}


def database_state() -> dict:
    """Every row of every table, so that a test can show that nothing changed."""
    from django.apps import apps

    state = {}
    for model in apps.get_models():
        key = (model._meta.app_label, model._meta.model_name)
        if key in BOOKKEEPING and BOOKKEEPING[key] is None:
            continue
        skip = BOOKKEEPING.get(key) or set()
        fields = [f.attname for f in model._meta.concrete_fields if f.attname not in skip]
        state[key] = list(model.objects.order_by("pk").values_list(*fields))
    return state


def files_under(folder) -> dict:
    from pathlib import Path

    root = Path(folder)
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*")
            if p.is_file()} if root.exists() else {}


def namespaced_bodies(sample_kwargs) -> list[tuple[str, str, dict]]:
    """The calls that name their namespace in the body or the query, not the URL, as the
    kfp clients send them: (method, url, data) for a viewer of team-a to try."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    namespace, experiment = sample_kwargs["namespace"], str(sample_kwargs["experiment_id"])
    pipeline, version = str(sample_kwargs["pipeline_id"]), str(sample_kwargs["version_id"])
    spec = b"pipelineInfo: {name: sneaky}\nroot: {dag: {tasks: {}}}\nschemaVersion: 2.1.0\n"
    owner_of = {"key": {"type": "NAMESPACE", "id": namespace}, "relationship": "OWNER"}
    in_experiment = {"key": {"type": "EXPERIMENT", "id": experiment}, "relationship": "OWNER"}
    of_version = {"key": {"type": "PIPELINE_VERSION", "id": version},
                  "relationship": "CREATOR"}
    v2_run = {"display_name": "sneaky", "experiment_id": experiment,
              "pipeline_version_reference": {"pipeline_id": pipeline,
                                             "pipeline_version_id": version}}
    v1_run = {"name": "sneaky", "resource_references": [in_experiment, of_version]}
    trigger = {"periodic_schedule": {"interval_second": 3600}}

    def upload():
        return {"uploadfile": SimpleUploadedFile("sneaky.yaml", spec)}

    return [
        ("post", "/apis/v2beta1/experiments", {"display_name": "sneaky",
                                               "namespace": namespace}),
        ("post", "/apis/v1beta1/experiments", {"name": "sneaky",
                                               "resource_references": [owner_of]}),
        ("post", "/apis/v2beta1/pipelines", {"display_name": "sneaky",
                                             "namespace": namespace}),
        ("post", "/apis/v1beta1/pipelines", {
            "name": "sneaky", "url": {"pipeline_url": "http://127.0.0.1:9/x.yaml"},
            "resource_references": [owner_of]}),
        ("post", "/apis/v2beta1/pipelines/create", {
            "pipeline": {"display_name": "sneaky", "namespace": namespace},
            "pipeline_version": {"display_name": "v", "package_url": {
                "pipeline_url": "http://127.0.0.1:9/x.yaml"}}}),
        ("post", f"/apis/v2beta1/pipelines/upload?namespace={namespace}", upload()),
        ("post", f"/apis/v1beta1/pipelines/upload?namespace={namespace}", upload()),
        ("post", f"/apis/v2beta1/pipelines/upload_version?pipelineid={pipeline}", upload()),
        ("post", f"/apis/v1beta1/pipelines/upload_version?pipelineid={pipeline}", upload()),
        ("post", "/apis/v1beta1/pipeline_versions", {
            "name": "sneaky", "package_url": {"pipeline_url": "http://127.0.0.1:9/x.yaml"},
            "resource_references": [{"key": {"type": "PIPELINE", "id": pipeline},
                                     "relationship": "OWNER"}]}),
        ("post", "/apis/v2beta1/runs", v2_run),
        ("post", "/apis/v1beta1/runs", v1_run),
        ("post", "/apis/v2beta1/recurringruns", {
            **v2_run, "trigger": trigger, "max_concurrency": "1", "mode": "ENABLE"}),
        ("post", "/apis/v1beta1/jobs", {
            **v1_run, "trigger": trigger, "max_concurrency": "1", "enabled": True}),
    ]


def assert_changes_nothing(client, sample_kwargs, api_only=False):
    """Every changing method on every guarded URL, and every create call naming the
    namespace in its body: 403 (or 405 for a method the URL never takes; never a 404, the
    namespace is in sight), and not one row or file different afterwards."""
    from django.conf import settings

    before, files_before = database_state(), files_under(settings.DATA_DIR)
    wrong = []
    for name, url in guarded_urls(sample_kwargs):
        if api_only and not url.startswith("/api"):
            continue
        # Another user's own object (the owner's token) is out of a viewer's sight.
        refused = (403, 404, 405) if name in OTHER_USERS_OWN else (403, 405)
        for method in CHANGING_METHODS:
            status = getattr(client, method)(url).status_code
            if status not in refused:
                wrong.append((name, url, method, status))
    for method, url, data in namespaced_bodies(sample_kwargs):
        multipart = any(hasattr(value, "read") for value in data.values())
        response = getattr(client, method)(url, data, **({} if multipart else
                                                         {"format": "json"}))
        if response.status_code != 403:
            wrong.append((url, response.status_code, response.content[:200]))
    assert not wrong, "\n".join(map(str, wrong))
    assert database_state() == before
    assert files_under(settings.DATA_DIR) == files_before


def test_a_viewer_changes_nothing_anywhere(sample_kwargs, viewer):
    browser = APIClient()
    browser.force_login(viewer)
    assert_changes_nothing(browser, sample_kwargs)


def test_a_viewer_with_a_token_changes_nothing_anywhere(sample_kwargs, viewer, api):
    assert_changes_nothing(api(viewer), sample_kwargs, api_only=True)

