"""Tests of the fake kube-apiserver, always through the official ``kubernetes`` client: what the
fake promises is real wire behaviour, so that is what has to be checked."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from typing import Any

import kubernetes_validate
import pytest
import requests
from kubernetes import client, config, dynamic, watch
from kubernetes.client.exceptions import ApiException

from tests.fakekube.server import FakeKubeServer, SchemaValidator

RBAC = "rbac.authorization.k8s.io"
KF = "kubeflow.org"


# ---- helpers --------------------------------------------------------------------------------


def status_of(excinfo: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    """The Status body the client received with the error."""
    return json.loads(excinfo.value.body)


def role_binding(name: str, role: str = "kubeflow-edit", **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, **extra.pop("metadata", {})},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": RBAC, "kind": "User", "name": "alice@example.com"}],
        **extra,
    }


def notebook(name: str, **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{KF}/v1",
        "kind": "Notebook",
        "metadata": {"name": name, **metadata},
        "spec": {"template": {"spec": {"containers": [{"name": name, "image": "jupyter"}]}}},
    }


def configmap(name: str, namespace: str = "team-a", **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "data": {"k": "v"}}


@pytest.fixture
def core(kube_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube_client)


@pytest.fixture
def rbac(kube_client: client.ApiClient) -> client.RbacAuthorizationV1Api:
    return client.RbacAuthorizationV1Api(kube_client)


@pytest.fixture
def custom(kube_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_client)


@pytest.fixture
def team_a(core: client.CoreV1Api) -> str:
    core.create_namespace({"metadata": {"name": "team-a"}})
    return "team-a"


# ---- CRUD -----------------------------------------------------------------------------------


def test_it_serves_namespaces_like_a_fresh_cluster(core: client.CoreV1Api) -> None:
    names = [ns.metadata.name for ns in core.list_namespace().items]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]

    created = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="t")))

    meta = created.metadata
    assert re.fullmatch(r"[0-9a-f-]{36}", meta.uid)
    assert meta.resource_version.isdigit()
    assert meta.creation_timestamp.tzinfo is not None
    assert meta.labels == {"kubernetes.io/metadata.name": "t"}
    assert created.status.phase == "Active"
    assert core.read_namespace("t").metadata.uid == meta.uid
    assert "t" in [ns.metadata.name for ns in core.list_namespace().items]

    core.delete_namespace("t")
    with pytest.raises(ApiException) as excinfo:
        core.read_namespace("t")
    assert excinfo.value.status == 404


def test_it_does_crud_on_role_bindings_and_service_accounts(
    core: client.CoreV1Api, rbac: client.RbacAuthorizationV1Api, team_a: str,
) -> None:
    account = core.create_namespaced_service_account(team_a, {"metadata": {"name": "editor"}})
    binding = rbac.create_namespaced_role_binding(team_a, role_binding("alice"))
    assert binding.metadata.namespace == team_a
    assert account.metadata.namespace == team_a

    binding.subjects.append(client.RbacV1Subject(kind="ServiceAccount", name="editor",
                                                 namespace=team_a))
    replaced = rbac.replace_namespaced_role_binding("alice", team_a, binding)
    assert int(replaced.metadata.resource_version) > int(binding.metadata.resource_version)
    assert [s.name for s in rbac.read_namespaced_role_binding("alice", team_a).subjects] == [
        "alice@example.com", "editor"]
    assert [b.metadata.name for b in rbac.list_namespaced_role_binding(team_a).items] == ["alice"]

    # RoleBinding deletes answer with a Success Status, ServiceAccount deletes with the object.
    deleted = rbac.delete_namespaced_role_binding("alice", team_a, _preload_content=False)
    assert json.loads(deleted.data)["status"] == "Success"
    assert core.delete_namespaced_service_account("editor", team_a).metadata.name == "editor"
    assert rbac.list_namespaced_role_binding(team_a).items == []
    assert core.list_namespaced_service_account(team_a).items == []


def test_it_does_crud_on_custom_objects(
    custom: client.CustomObjectsApi, team_a: str, fake_kube: FakeKubeServer,
) -> None:
    created = custom.create_namespaced_custom_object(KF, "v1", team_a, "notebooks",
                                                     notebook("nb"))
    assert created["metadata"]["generation"] == 1
    fetched = custom.get_namespaced_custom_object(KF, "v1", team_a, "notebooks", "nb")
    assert fetched == created

    fetched["spec"]["template"]["spec"]["containers"][0]["image"] = "jupyter:2"
    replaced = custom.replace_namespaced_custom_object(KF, "v1", team_a, "notebooks", "nb",
                                                       fetched)
    assert replaced["metadata"]["generation"] == 2

    # Custom resources refuse unconditional updates, like a real server.
    del fetched["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as excinfo:
        custom.replace_namespaced_custom_object(KF, "v1", team_a, "notebooks", "nb", fetched)
    assert excinfo.value.status == 422

    # Cluster-scoped (profiles) and never-declared (Argo workflows) custom resources.
    profile = {"apiVersion": f"{KF}/v1", "kind": "Profile", "metadata": {"name": "team-a"},
               "spec": {"owner": {"kind": "User", "name": "alice@example.com"}}}
    custom.create_cluster_custom_object(KF, "v1", "profiles", profile)
    assert "namespace" not in custom.get_cluster_custom_object(KF, "v1", "profiles",
                                                               "team-a")["metadata"]
    custom.create_namespaced_custom_object(
        "argoproj.io", "v1alpha1", team_a, "workflows",
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
         "metadata": {"name": "run-1"}, "spec": {"entrypoint": "main"}})
    listed = custom.list_cluster_custom_object("argoproj.io", "v1alpha1", "workflows")
    assert listed["kind"] == "WorkflowList"
    assert [w["metadata"]["name"] for w in listed["items"]] == ["run-1"]

    deleted = custom.delete_namespaced_custom_object(KF, "v1", team_a, "notebooks", "nb")
    assert deleted["metadata"]["name"] == "nb"
    assert fake_kube.objects("notebooks", team_a, group=KF) == []
    assert len(fake_kube.objects("profiles.kubeflow.org")) == 1


@pytest.mark.parametrize(("selector", "expected"), [
    ("app=web", ["a", "b"]),
    ("app==web,tier=front", ["a"]),
    ("app!=web", ["c", "d"]),
    ("tier", ["a", "c"]),
    ("!tier", ["b", "d"]),
    ("app in (web, db)", ["a", "b", "c"]),
    ("app notin (web),tier", ["c"]),
    ("", ["a", "b", "c", "d"]),
])
def test_it_selects_by_label(core: client.CoreV1Api, fake_kube: FakeKubeServer, team_a: str,
                             selector: str, expected: list[str]) -> None:
    fake_kube.put_object(configmap("a", app="web", tier="front"))
    fake_kube.put_object(configmap("b", app="web"))
    fake_kube.put_object(configmap("c", app="db", tier="back"))
    fake_kube.put_object(configmap("d"))

    found = core.list_namespaced_config_map(team_a, label_selector=selector)

    assert [cm.metadata.name for cm in found.items] == expected


def test_it_selects_by_field_and_refuses_unsupported_selectors(
    core: client.CoreV1Api, fake_kube: FakeKubeServer, team_a: str,
) -> None:
    fake_kube.put_object(configmap("a"))
    fake_kube.put_object(configmap("b"))
    fake_kube.put_object(configmap("a", namespace="default"))

    def names(**kw: str) -> list[tuple[str, str]]:
        return [(cm.metadata.namespace, cm.metadata.name)
                for cm in core.list_config_map_for_all_namespaces(**kw).items]

    assert names(field_selector="metadata.name=a") == [("default", "a"), ("team-a", "a")]
    assert names(field_selector="metadata.namespace=team-a,metadata.name!=a") == [
        ("team-a", "b")]
    for bad in ({"field_selector": "data.k=v"}, {"label_selector": "app in web"}):
        with pytest.raises(ApiException) as excinfo:
            names(**bad)
        assert excinfo.value.status == 400
        assert status_of(excinfo)["reason"] == "BadRequest"


def test_it_generates_names(custom: client.CustomObjectsApi, team_a: str) -> None:
    body = notebook("")
    body["metadata"] = {"generateName": "nb-"}

    first = custom.create_namespaced_custom_object(KF, "v1", team_a, "notebooks", body)
    second = custom.create_namespaced_custom_object(KF, "v1", team_a, "notebooks", body)

    assert re.fullmatch(r"nb-[a-z0-9]{5}", first["metadata"]["name"])
    assert first["metadata"]["name"] != second["metadata"]["name"]


# ---- errors ---------------------------------------------------------------------------------


def test_it_answers_not_found_and_already_exists_with_status_bodies(
    core: client.CoreV1Api, custom: client.CustomObjectsApi, team_a: str,
) -> None:
    with pytest.raises(ApiException) as excinfo:
        core.read_namespace("nope")
    assert excinfo.value.status == 404
    assert status_of(excinfo) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'namespaces "nope" not found', "reason": "NotFound",
        "details": {"name": "nope", "kind": "namespaces"}, "code": 404}

    with pytest.raises(ApiException) as excinfo:
        custom.get_namespaced_custom_object(KF, "v1", team_a, "notebooks", "nope")
    assert status_of(excinfo)["details"] == {"name": "nope", "group": KF, "kind": "notebooks"}

    with pytest.raises(ApiException) as excinfo:
        core.create_namespace({"metadata": {"name": team_a}})
    assert excinfo.value.status == 409
    assert status_of(excinfo)["reason"] == "AlreadyExists"
    assert status_of(excinfo)["message"] == 'namespaces "team-a" already exists'


def test_it_rejects_a_stale_resource_version_with_conflict(
    rbac: client.RbacAuthorizationV1Api, custom: client.CustomObjectsApi, team_a: str,
) -> None:
    stale = rbac.create_namespaced_role_binding(team_a, role_binding("alice"))
    rbac.patch_namespaced_role_binding("alice", team_a, {"metadata": {"labels": {"x": "1"}}})

    with pytest.raises(ApiException) as excinfo:
        rbac.replace_namespaced_role_binding("alice", team_a, stale)
    assert excinfo.value.status == 409
    assert status_of(excinfo)["reason"] == "Conflict"

    nb = custom.create_namespaced_custom_object(KF, "v1", team_a, "notebooks", notebook("nb"))
    custom.patch_namespaced_custom_object(KF, "v1", team_a, "notebooks", "nb",
                                          {"spec": {"x": 1}})
    with pytest.raises(ApiException) as excinfo:
        custom.patch_namespaced_custom_object(
            KF, "v1", team_a, "notebooks", "nb",
            {"metadata": {"resourceVersion": nb["metadata"]["resourceVersion"]},
             "spec": {"x": 2}})
    assert excinfo.value.status == 409


def test_it_rejects_unknown_fields_strictly(
    custom: client.CustomObjectsApi, kube_client: client.ApiClient, fake_kube: FakeKubeServer,
    team_a: str,
) -> None:
    # The typed APIs stop such bodies client-side; untyped callers reach the server with them.
    def create(body: dict[str, Any]) -> pytest.ExceptionInfo[ApiException]:
        with pytest.raises(ApiException) as excinfo:
            custom.create_namespaced_custom_object(RBAC, "v1", team_a, "rolebindings", body)
        assert excinfo.value.status == 422
        assert status_of(excinfo)["reason"] == "Invalid"
        return excinfo

    excinfo = create(role_binding("a", spec={"roleRef": {}}))
    assert status_of(excinfo)["message"] == (
        'RoleBinding.rbac.authorization.k8s.io "a" is invalid: spec: Additional properties are '
        "not allowed ('spec' was unexpected)")
    typo = role_binding("b")
    typo["roleRef"]["nmae"] = typo["roleRef"].pop("name")
    assert status_of(create(typo))["details"]["causes"][0]["field"] in ("roleRef",
                                                                       "roleRef.nmae")
    create(role_binding("c", subjects="alice"))

    dyn = dynamic.DynamicClient(kube_client)
    pods = dyn.resources.get(api_version="v1", kind="Pod")
    with pytest.raises(ApiException) as excinfo:
        pods.create(namespace=team_a, body={
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "x", "imagePullPolcy": "Always"}]}})
    assert excinfo.value.status == 422
    assert status_of(excinfo)["details"]["causes"][0]["field"] == (
        "spec.containers[0].imagePullPolcy")
    with pytest.raises(ApiException) as excinfo:
        custom.create_namespaced_custom_object(KF, "v1", team_a, "notebooks",
                                               notebook("nb", lables={"a": "b"}))
    assert excinfo.value.status == 422
    assert fake_kube.objects("rolebindings", group=RBAC) == []
    assert fake_kube.objects("pods") == []


def test_it_validates_names_and_labels(core: client.CoreV1Api, rbac: client.RbacAuthorizationV1Api,
                                       team_a: str) -> None:
    for body in ({"metadata": {"name": "Team_A"}},
                 {"metadata": {"name": "a" * 64}},
                 {"metadata": {"name": "ok", "labels": {"owner": "alice@example.com"}}},
                 {"metadata": {"name": "ok", "labels": {"bad key!": "x"}}}):
        with pytest.raises(ApiException) as excinfo:
            core.create_namespace(body)
        assert excinfo.value.status == 422, body
        assert status_of(excinfo)["details"]["causes"][0]["field"].startswith("metadata.")

    # RBAC names are path segments: the colons of "kubeflow:edit" are fine there.
    rbac.create_cluster_role({"metadata": {"name": "kubeflow:edit"}, "rules": []})
    with pytest.raises(ApiException) as excinfo:
        core.create_namespaced_config_map(team_a, {"metadata": {"name": "a:b"}})
    assert excinfo.value.status == 422


def test_it_refuses_objects_for_missing_or_mismatched_namespaces(
    rbac: client.RbacAuthorizationV1Api, custom: client.CustomObjectsApi, team_a: str,
) -> None:
    with pytest.raises(ApiException) as excinfo:
        rbac.create_namespaced_role_binding("nowhere", role_binding("alice"))
    assert excinfo.value.status == 404
    assert status_of(excinfo)["details"] == {"name": "nowhere", "kind": "namespaces"}

    with pytest.raises(ApiException) as excinfo:
        custom.create_namespaced_custom_object(KF, "v1", team_a, "notebooks",
                                               notebook("nb", namespace="default"))
    assert excinfo.value.status == 400
    assert status_of(excinfo)["reason"] == "BadRequest"


def test_it_refuses_to_change_a_role_ref(rbac: client.RbacAuthorizationV1Api,
                                        team_a: str) -> None:
    binding = rbac.create_namespaced_role_binding(team_a, role_binding("alice"))
    binding.role_ref.name = "kubeflow-view"

    with pytest.raises(ApiException) as excinfo:
        rbac.replace_namespaced_role_binding("alice", team_a, binding)

    assert excinfo.value.status == 422
    assert "cannot change roleRef" in status_of(excinfo)["message"]


# ---- patches --------------------------------------------------------------------------------


def test_it_merge_patches_and_counts_generations(custom: client.CustomObjectsApi,
                                                 core: client.CoreV1Api, fake_kube: FakeKubeServer,
                                                 team_a: str) -> None:
    custom.create_namespaced_custom_object(KF, "v1", team_a, "notebooks",
                                           notebook("nb", labels={"a": "1", "b": "2"}))

    spec = custom.patch_namespaced_custom_object(KF, "v1", team_a, "notebooks", "nb",
                                                 {"spec": {"stopped": True}})
    labels = custom.patch_namespaced_custom_object(
        KF, "v1", team_a, "notebooks", "nb", {"metadata": {"labels": {"a": None, "c": "3"}}})
    same = custom.patch_namespaced_custom_object(KF, "v1", team_a, "notebooks", "nb",
                                                 {"metadata": {"labels": {"c": "3"}}})

    assert spec["metadata"]["generation"] == 2
    assert labels["metadata"]["generation"] == 2  # metadata changes leave generation alone
    assert labels["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert same["metadata"]["resourceVersion"] == labels["metadata"]["resourceVersion"]

    # The client sends core dict patches as strategic merge patches; treated as merge patches.
    core.create_namespaced_config_map(team_a, {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    patched = core.patch_namespaced_config_map("cm", team_a, {"data": {"b": "2"}})
    assert patched.data == {"a": "1", "b": "2"}
    # ...but a real server has no strategic merge for custom resources.
    refused = requests.patch(
        f"{fake_kube.url}/apis/{KF}/v1/namespaces/{team_a}/notebooks/nb", json={"spec": {}},
        headers={"Content-Type": "application/strategic-merge-patch+json"}, timeout=10)
    assert refused.status_code == 415


def test_it_applies_json_patches_and_fails_a_failing_test_op(
    rbac: client.RbacAuthorizationV1Api, fake_kube: FakeKubeServer, team_a: str,
) -> None:
    rbac.create_namespaced_role_binding(team_a, role_binding("alice",
                                                             metadata={"labels": {"a": "1"}}))
    patched = rbac.patch_namespaced_role_binding("alice", team_a, [
        {"op": "test", "path": "/metadata/labels/a", "value": "1"},
        {"op": "add", "path": "/subjects/-",
         "value": {"apiGroup": RBAC, "kind": "User", "name": "bob@example.com"}},
        {"op": "replace", "path": "/subjects/0/name", "value": "carol@example.com"},
        {"op": "copy", "from": "/metadata/labels/a", "path": "/metadata/labels/b"},
        {"op": "move", "from": "/metadata/labels/a", "path": "/metadata/labels/c"},
        {"op": "remove", "path": "/metadata/labels/b"},
    ])
    assert [s.name for s in patched.subjects] == ["carol@example.com", "bob@example.com"]
    assert patched.metadata.labels == {"c": "1"}

    before = fake_kube.get_object("rolebindings", "alice", team_a, RBAC)
    for operations in ([{"op": "test", "path": "/metadata/labels/c", "value": "2"},
                        {"op": "remove", "path": "/subjects"}],
                       [{"op": "remove", "path": "/metadata/labels/zzz"}]):
        with pytest.raises(ApiException) as excinfo:
            rbac.patch_namespaced_role_binding("alice", team_a, operations)
        assert excinfo.value.status == 422
        assert status_of(excinfo)["reason"] == "Invalid"
    assert fake_kube.get_object("rolebindings", "alice", team_a, RBAC) == before


def test_it_keeps_status_behind_the_status_subresource(custom: client.CustomObjectsApi,
                                                       team_a: str) -> None:
    body = notebook("nb")
    body["status"] = {"readyReplicas": 1}
    created = custom.create_namespaced_custom_object(KF, "v1", team_a, "notebooks", body)
    assert "status" not in created

    updated = custom.patch_namespaced_custom_object_status(
        KF, "v1", team_a, "notebooks", "nb", {"status": {"readyReplicas": 1}})
    ignored = custom.patch_namespaced_custom_object(KF, "v1", team_a, "notebooks", "nb",
                                                    {"status": {"readyReplicas": 7}})

    assert updated["status"] == {"readyReplicas": 1}
    assert ignored["status"] == {"readyReplicas": 1}
    assert updated["metadata"]["generation"] == 1


# ---- deletion -------------------------------------------------------------------------------


def test_it_cascades_namespace_deletion(
    core: client.CoreV1Api, rbac: client.RbacAuthorizationV1Api,
    custom: client.CustomObjectsApi, fake_kube: FakeKubeServer, team_a: str,
) -> None:
    core.create_namespace({"metadata": {"name": "team-b"}})
    for namespace in (team_a, "team-b"):
        core.create_namespaced_service_account(namespace, {"metadata": {"name": "editor"}})
        rbac.create_namespaced_role_binding(namespace, role_binding("alice"))
        custom.create_namespaced_custom_object(KF, "v1", namespace, "notebooks",
                                               notebook("nb", finalizers=["kubeflow.org/x"]))

    answer = json.loads(core.delete_namespace(team_a, _preload_content=False).data)

    assert answer["status"]["phase"] == "Terminating"
    assert fake_kube.objects("serviceaccounts", team_a) == []
    assert fake_kube.objects("rolebindings", team_a, group=RBAC) == []
    assert fake_kube.objects("notebooks", team_a, group=KF) == []
    assert len(fake_kube.objects("notebooks", "team-b", group=KF)) == 1
    with pytest.raises(ApiException) as excinfo:
        core.delete_namespace("default")
    assert excinfo.value.status == 403


def test_it_deletes_collections_by_label(core: client.CoreV1Api, fake_kube: FakeKubeServer,
                                         team_a: str) -> None:
    for name, app in (("a", "x"), ("b", "x"), ("c", "y")):
        fake_kube.put_object(configmap(name, app=app))

    core.delete_collection_namespaced_config_map(team_a, label_selector="app=x")

    assert [cm["metadata"]["name"] for cm in fake_kube.objects("configmaps", team_a)] == ["c"]


def test_it_holds_objects_with_finalizers_until_released(custom: client.CustomObjectsApi,
                                                         team_a: str) -> None:
    custom.create_namespaced_custom_object(KF, "v1", team_a, "notebooks",
                                           notebook("nb", finalizers=["kubeflow.org/cleanup"]))

    _, code, _ = custom.delete_namespaced_custom_object_with_http_info(
        KF, "v1", team_a, "notebooks", "nb")
    held = custom.get_namespaced_custom_object(KF, "v1", team_a, "notebooks", "nb")
    custom.patch_namespaced_custom_object(KF, "v1", team_a, "notebooks", "nb",
                                          {"metadata": {"finalizers": None}})

    assert code == 202
    assert held["metadata"]["deletionTimestamp"]
    with pytest.raises(ApiException) as excinfo:
        custom.get_namespaced_custom_object(KF, "v1", team_a, "notebooks", "nb")
    assert excinfo.value.status == 404


# ---- watch ----------------------------------------------------------------------------------


def test_it_watches_added_modified_deleted_in_order_and_resumes(
    custom: client.CustomObjectsApi, team_a: str,
) -> None:
    start = custom.list_namespaced_custom_object(KF, "v1", team_a, "notebooks")
    custom.create_namespaced_custom_object(KF, "v1", team_a, "notebooks", notebook("nb"))
    custom.patch_namespaced_custom_object(KF, "v1", team_a, "notebooks", "nb",
                                          {"spec": {"stopped": True}})
    custom.delete_namespaced_custom_object(KF, "v1", team_a, "notebooks", "nb")

    def events(resource_version: str, count: int) -> list[dict[str, Any]]:
        seen = []
        for event in watch.Watch().stream(
                custom.list_namespaced_custom_object, KF, "v1", team_a, "notebooks",
                resource_version=resource_version, timeout_seconds=5):
            seen.append(event)
            if len(seen) == count:
                break
        return seen

    replay = events(start["metadata"]["resourceVersion"], 3)
    assert [e["type"] for e in replay] == ["ADDED", "MODIFIED", "DELETED"]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in replay]
    assert versions == sorted(versions)
    assert replay[1]["object"]["spec"]["stopped"] is True

    resumed = events(replay[1]["object"]["metadata"]["resourceVersion"], 1)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in resumed] == [("DELETED", "nb")]


def test_it_streams_live_events_through_a_label_selector(core: client.CoreV1Api,
                                                         fake_kube: FakeKubeServer,
                                                         team_a: str) -> None:
    fake_kube.put_object(configmap("before", app="x"))

    def change_things() -> None:
        time.sleep(0.05)
        core.create_namespaced_config_map(team_a, configmap("other", app="y"))
        core.create_namespaced_config_map(team_a, configmap("live", app="x"))
        core.patch_namespaced_config_map("live", team_a, {"data": {"k": "2"}})
        core.patch_namespaced_config_map("live", team_a, {"metadata": {"labels": {"app": "z"}}})

    writer = threading.Thread(target=change_things)
    writer.start()
    seen = []
    stream = watch.Watch().stream(core.list_namespaced_config_map, team_a,
                                  label_selector="app=x", timeout_seconds=5)
    for event in stream:
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 4:
            break
    writer.join()

    # Existing objects come first as ADDED; leaving the selection reads as DELETED.
    assert seen == [("ADDED", "before"), ("ADDED", "live"), ("MODIFIED", "live"),
                    ("DELETED", "live")]


def test_it_answers_an_ancient_resource_version_with_410_gone(
    core: client.CoreV1Api, fake_kube: FakeKubeServer,
) -> None:
    core.create_namespace({"metadata": {"name": "t"}})
    fake_kube.compact()

    with pytest.raises(ApiException) as excinfo:
        for _ in watch.Watch().stream(core.list_namespace, resource_version="1",
                                      timeout_seconds=5):
            pass
    assert excinfo.value.status == 410

    with FakeKubeServer(history_limit=2) as small, client.ApiClient(
            client.Configuration(host=small.url)) as api:
        v1 = client.CoreV1Api(api)
        start = v1.list_namespace().metadata.resource_version
        for name in "abc":
            v1.create_namespace({"metadata": {"name": name}})
        with pytest.raises(ApiException) as excinfo:
            for _ in watch.Watch().stream(v1.list_namespace, resource_version=start):
                pass  # no timeout: the client retries once, then gives up
        assert excinfo.value.status == 410
        assert "too old resource version" in excinfo.value.reason


def test_it_ends_open_watches_cleanly_when_stopped() -> None:
    server = FakeKubeServer().start()
    api = client.ApiClient(client.Configuration(host=server.url))
    events: list[str] = []
    failures: list[BaseException] = []

    def consume() -> None:
        try:
            for event in watch.Watch().stream(client.CoreV1Api(api).list_namespace,
                                              timeout_seconds=30):
                events.append(event["type"])
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    consumer = threading.Thread(target=consume)
    consumer.start()
    deadline = time.monotonic() + 5
    while len(events) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    server.stop()
    consumer.join(5)
    api.close()

    assert not consumer.is_alive()
    assert failures == []
    assert events == ["ADDED"] * 4
    assert time.monotonic() - started < 2


# ---- test hooks -----------------------------------------------------------------------------


def test_it_injects_a_single_failure(rbac: client.RbacAuthorizationV1Api,
                                     fake_kube: FakeKubeServer, team_a: str) -> None:
    fake_kube.fail_next("POST", r"/rolebindings$", 503, "ServiceUnavailable")

    with pytest.raises(ApiException) as excinfo:
        rbac.create_namespaced_role_binding(team_a, role_binding("alice"))
    assert excinfo.value.status == 503
    assert status_of(excinfo)["reason"] == "ServiceUnavailable"
    assert fake_kube.objects("rolebindings", team_a, group=RBAC) == []

    rbac.create_namespaced_role_binding(team_a, role_binding("alice"))
    assert len(fake_kube.objects("rolebindings", team_a, group=RBAC)) == 1


def test_it_records_requests(core: client.CoreV1Api, fake_kube: FakeKubeServer) -> None:
    fake_kube.clear_requests()

    core.create_namespace({"metadata": {"name": "t"}})
    core.list_namespace(label_selector="a=b")

    assert fake_kube.requests == [("POST", "/api/v1/namespaces", {}),
                                  ("GET", "/api/v1/namespaces", {"labelSelector": "a=b"})]


def test_it_serves_pod_logs(core: client.CoreV1Api, fake_kube: FakeKubeServer,
                            team_a: str) -> None:
    containers = [{"name": "main", "image": "jupyter"}, {"name": "sidecar", "image": "proxy"}]
    core.create_namespaced_pod(team_a, {"metadata": {"name": "p"},
                                        "spec": {"containers": containers[:1]}})
    core.create_namespaced_pod(team_a, {"metadata": {"name": "two"},
                                        "spec": {"containers": containers}})
    fake_kube.set_pod_log(team_a, "p", "one\ntwo\nthree\n")
    fake_kube.set_pod_log(team_a, "two", "proxy says hi\n", container="sidecar")

    assert core.read_namespaced_pod_log("p", team_a) == "one\ntwo\nthree\n"
    assert core.read_namespaced_pod_log("p", team_a, tail_lines=1) == "three\n"
    assert core.read_namespaced_pod_log("two", team_a, container="sidecar") == "proxy says hi\n"
    for name, kwargs, code in (("two", {}, 400), ("nope", {}, 404)):
        with pytest.raises(ApiException) as excinfo:
            core.read_namespaced_pod_log(name, team_a, **kwargs)
        assert excinfo.value.status == code


def test_a_followed_pod_log_streams_until_the_pod_finishes(
        core: client.CoreV1Api, fake_kube: FakeKubeServer, team_a: str) -> None:
    core.create_namespaced_pod(team_a, {"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "main", "image": "python"}]}})
    fake_kube.set_pod_log(team_a, "p", "one\n")
    response = core.read_namespaced_pod_log("p", team_a, follow=True, _preload_content=False)
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(response.stream(1024)))
    reader.start()
    fake_kube.append_pod_log(team_a, "p", "two\n")
    deadline = time.monotonic() + 5
    while b"".join(chunks) != b"one\ntwo\n":
        assert time.monotonic() < deadline, chunks
        time.sleep(0.01)
    assert reader.is_alive()  # still following
    pod = fake_kube.get_object("pods", "p", team_a)
    pod["status"] = {"phase": "Succeeded"}
    fake_kube.put_object(pod, "pods")
    reader.join(5)
    assert not reader.is_alive() and b"".join(chunks) == b"one\ntwo\n"


def test_it_runs_registered_validators(custom: client.CustomObjectsApi,
                                       fake_kube: FakeKubeServer, team_a: str) -> None:
    def needs_image(obj: dict[str, Any]) -> None:
        for container in obj["spec"]["template"]["spec"]["containers"]:
            if not container.get("image"):
                raise ValueError("spec.template.spec.containers[].image: Required value")

    fake_kube.register_validator(KF, "Notebook", needs_image)
    body = notebook("nb")
    body["spec"]["template"]["spec"]["containers"][0]["image"] = ""

    with pytest.raises(ApiException) as excinfo:
        custom.create_namespaced_custom_object(KF, "v1", team_a, "notebooks", body)
    assert excinfo.value.status == 422
    assert "image: Required value" in status_of(excinfo)["message"]
    custom.create_namespaced_custom_object(KF, "v1", team_a, "notebooks", notebook("ok"))


def test_it_paginates_lists(core: client.CoreV1Api, fake_kube: FakeKubeServer,
                            team_a: str) -> None:
    for name in "abcde":
        fake_kube.put_object(configmap(name))

    names, token = [], None
    while True:
        page = core.list_namespaced_config_map(team_a, limit=2, _continue=token)
        names += [cm.metadata.name for cm in page.items]
        token = page.metadata._continue
        if not token:
            break

    assert names == list("abcde")


def test_it_resets_to_a_fresh_cluster(core: client.CoreV1Api, fake_kube: FakeKubeServer,
                                      team_a: str) -> None:
    rv = int(fake_kube.resource_version)
    fake_kube.fail_next("*", ".", 500)

    fake_kube.reset()

    assert [ns["metadata"]["name"] for ns in fake_kube.objects("namespaces")] == [
        "default", "kube-node-lease", "kube-public", "kube-system"]
    assert int(fake_kube.resource_version) > rv
    assert fake_kube.requests == []
    core.list_namespace()  # the injected failure is gone too


# ---- configuration and validation plumbing --------------------------------------------------


def test_it_is_reachable_through_its_kubeconfig(fake_kube: FakeKubeServer) -> None:
    assert os.environ["KUBECONFIG"] == str(fake_kube.kubeconfig_path)
    configuration = client.Configuration()

    config.load_kube_config(config_file=str(fake_kube.kubeconfig_path),
                            client_configuration=configuration)

    assert configuration.host == fake_kube.url
    with client.ApiClient(configuration) as api:
        assert client.VersionApi(api).get_code().major == "1"
        assert len(client.CoreV1Api(api).list_namespace().items) == 4


def test_it_validates_as_kubernetes_validate_does_but_cached(fake_kube: FakeKubeServer) -> None:
    assert fake_kube.k8s_version == kubernetes_validate.latest_version()
    schemas = SchemaValidator.shared()
    good = role_binding("alice", metadata={"namespace": "team-a"})
    bad = role_binding("alice", spec={})

    assert kubernetes_validate.validate(good, fake_kube.k8s_version, strict=True)
    assert schemas.validate(good) is True
    with pytest.raises(kubernetes_validate.ValidationError) as theirs:
        kubernetes_validate.validate(bad, fake_kube.k8s_version, strict=True)
    with pytest.raises(kubernetes_validate.ValidationError) as ours:
        schemas.validate(bad)
    assert ours.value.message == theirs.value.message
    assert schemas.validate({"apiVersion": f"{KF}/v1", "kind": "Notebook"}) is False

    started = time.perf_counter()
    for _ in range(50):
        schemas.validate(good)
    assert (time.perf_counter() - started) / 50 < 0.005
