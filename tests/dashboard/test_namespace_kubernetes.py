"""Kubernetes mode: namespaces and contributors become Namespaces and RoleBindings,
checked against the strict fake API server (every object validated by its schema)."""

import pytest
from django.core.exceptions import ValidationError

from dashboard import kube
from dashboard.models import Contributor, Profile
from dashboard.namespaces import BackendError, get_backend


@pytest.fixture
def cluster(settings, fake_kube):
    settings.KFDASH_PLATFORM = "kubernetes"
    settings.KUBECONFIG = str(fake_kube.kubeconfig_path)
    kube.reset()
    yield fake_kube
    kube.reset()


def bindings(cluster, namespace="team-a"):
    return {b["metadata"]["name"]: b for b in cluster.objects(
        "rolebindings", namespace=namespace, group="rbac.authorization.k8s.io")}


def test_it_creates_a_kubeflow_profile_namespace(cluster, owner):
    Profile.register("team-a", owner)
    namespace = cluster.get_object("namespaces", "team-a")
    assert namespace["metadata"]["annotations"]["owner"] == "owner@example.com"
    assert namespace["metadata"]["labels"]["app.kubernetes.io/part-of"] == "kubeflow-profile"
    assert {a["metadata"]["name"] for a in cluster.objects("serviceaccounts", "team-a")} == {
        "default-editor", "default-viewer"}
    made = bindings(cluster)
    assert set(made) == {"namespaceAdmin", "default-editor", "default-viewer"}
    assert made["namespaceAdmin"]["roleRef"]["name"] == "kubeflow-admin"
    assert made["namespaceAdmin"]["subjects"][0]["name"] == "owner@example.com"


def test_it_maps_contributors_to_role_bindings(cluster, owner):
    profile = Profile.register("team-a", owner)
    profile.set_contributor("bob@example.com", "view", owner)
    binding = bindings(cluster)["user-bob-example-com-clusterrole-view"]
    assert binding["metadata"]["annotations"] == {"user": "bob@example.com", "role": "view"}
    assert binding["roleRef"]["name"] == "kubeflow-view"

    profile.set_contributor("bob@example.com", "edit", owner)
    names = set(bindings(cluster))
    assert "user-bob-example-com-clusterrole-edit" in names
    assert "user-bob-example-com-clusterrole-view" not in names

    profile.remove_contributor("bob@example.com", owner)
    assert not [n for n in bindings(cluster) if "bob" in n]
    assert "namespaceAdmin" in bindings(cluster)


def test_it_uses_the_configured_cluster_roles(cluster, owner, settings):
    settings.KFDASH_CLUSTER_ROLES = {"admin": "ns-admin", "edit": "ns-edit", "view": "ns-view"}
    profile = Profile.register("team-a", owner)
    profile.set_contributor("bob@example.com", "edit", owner)
    assert bindings(cluster)["user-bob-example-com-clusterrole-edit"]["roleRef"]["name"] == (
        "ns-edit")


def test_it_rolls_everything_back_when_the_cluster_fails_half_way(cluster, owner):
    cluster.fail_next("POST", r"/rolebindings$", status=500)
    with pytest.raises(BackendError) as failure:
        Profile.register("team-a", owner)
    assert failure.value.retryable
    assert not Profile.objects.filter(name="team-a").exists()
    assert not Contributor.objects.exists()
    assert cluster.get_object("namespaces", "team-a") is None


def test_it_keeps_a_contributor_out_when_the_cluster_refuses(cluster, owner):
    profile = Profile.register("team-a", owner)
    cluster.fail_next("POST", r"/rolebindings$", status=403, reason="Forbidden")
    with pytest.raises(BackendError, match="Kubernetes refused"):
        profile.set_contributor("bob@example.com", "edit", owner)
    assert not profile.contributors.filter(email="bob@example.com").exists()
    assert not profile.activities.filter(target="bob@example.com").exists()


def test_it_refuses_a_namespace_that_exists_and_is_not_a_profile(cluster, owner):
    cluster.put_object({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": "team-a", "labels": {"team": "ops"}}})
    with pytest.raises(BackendError, match="already exists"):
        Profile.register("team-a", owner)
    assert not Profile.objects.exists()
    labels = cluster.get_object("namespaces", "team-a")["metadata"]["labels"]
    assert labels["team"] == "ops" and "app.kubernetes.io/part-of" not in labels


def test_it_adopts_the_same_owners_profile_namespace(cluster, owner):
    from dashboard.namespaces.manifests import make_namespace

    cluster.put_object(make_namespace("team-a", owner.email))
    Profile.register("team-a", owner)
    assert "namespaceAdmin" in bindings(cluster)


def test_it_reports_cluster_errors_through_the_api(cluster, owner, api):
    Profile.register("team-a", owner)
    cluster.fail_next("POST", r"/rolebindings$", status=503, reason="ServiceUnavailable")
    response = api(owner).post("/api/v1/namespaces/team-a/contributors",
                               {"email": "bob@example.com", "role": "edit"}, format="json")
    assert response.status_code == 503
    assert "Kubernetes refused" in response.json()["message"]
    assert not Contributor.objects.filter(email="bob@example.com").exists()


def test_it_shows_cluster_errors_on_the_registration_page(cluster, login, make_user):
    cluster.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "taken"}})
    page = login(make_user("new@example.com")).post("/register/", {"name": "taken"})
    assert page.status_code == 200
    assert b"already exists in the cluster" in page.content


def test_it_deletes_the_namespace(cluster, owner):
    profile = Profile.register("team-a", owner)
    get_backend().delete_namespace(profile)
    assert cluster.get_object("namespaces", "team-a") is None
    get_backend().delete_namespace(profile)  # already gone: not an error


def test_it_does_not_touch_the_cluster_before_it_is_needed(cluster, owner):
    kube.reset()
    import importlib

    import dashboard.namespaces.kubernetes as module

    importlib.reload(module)
    assert cluster.requests == []
    with pytest.raises(ValidationError):
        Profile.register("Bad Name", owner)
    assert cluster.requests == []
