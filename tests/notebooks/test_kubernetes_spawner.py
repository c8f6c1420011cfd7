"""Kubernetes mode: notebooks become Kubeflow Notebooks (or StatefulSets and Services) and
PVCs, made through the official client against the strict fake API server. The fake runs
no pods: readiness is simulated by writing the Notebook's status as the controller would."""

import threading
import time

import kubernetes_validate
import pytest

from dashboard import kube
from dashboard.models import Profile
from notebooks import watcher
from notebooks.choices import Status
from notebooks.models import Notebook, Volume
from notebooks.spawners import SpawnError
from notebooks.spawners.kubernetes import KubernetesSpawner
from notebooks.spawners.manifests import make_pvc
from tests.notebooks.test_notebook_manifests import IMAGE, make_config

GROUP = "kubeflow.org"
STOP = "kubeflow-resource-stopped"


@pytest.fixture
def cluster(settings, fake_kube, monkeypatch):
    settings.KFDASH_PLATFORM = "kubernetes"
    settings.KUBECONFIG = str(fake_kube.kubeconfig_path)
    kube.reset()
    fake_kube.register_resource(GROUP, "v1beta1", "notebooks", "Notebook",
                                status_subresource=True)

    def pod_spec_is_valid(obj):
        extra = set(obj) - {"apiVersion", "kind", "metadata", "spec", "status"}
        assert not extra, f"unknown fields {sorted(extra)}"
        assert set(obj["spec"]) == {"template"}, "spec holds only template"
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
             "spec": obj["spec"]["template"]["spec"]}, fake_kube.k8s_version, strict=True)

    fake_kube.register_validator(GROUP, "Notebook", pod_spec_is_valid)
    monkeypatch.setattr(KubernetesSpawner, "start_timeout", 2.0)
    monkeypatch.setattr(KubernetesSpawner, "poll_interval", 0.02)
    monkeypatch.setattr(KubernetesSpawner, "_config", lambda self: make_config())
    yield fake_kube
    kube.reset()


@pytest.fixture
def team(cluster, owner):
    return Profile.register("team-a", owner)


@pytest.fixture
def notebook(team, owner):
    workspace = Volume.objects.create(profile=team, name="nb-workspace", size="5Gi",
                                      created_by=owner)
    data = Volume.objects.create(profile=team, name="datasets", size="20Gi")
    nb = Notebook.objects.create(profile=team, name="nb", image=IMAGE, workspace=workspace,
                                 created_by=owner, environment={"A": "1"}, gpu_count=1,
                                 gpu_vendor="nvidia.com/gpu", tolerations="gpu")
    nb.data_mounts.create(volume=data, mount_path="/home/jovyan/data")
    return nb


def pvcs(cluster):
    return sorted(p["metadata"]["name"] for p in
                  cluster.objects("persistentvolumeclaims", namespace="team-a"))


def get_nb(cluster, name="nb"):
    return cluster.get_object("notebooks", name, "team-a", group=GROUP)


def become_ready(cluster, kind="notebooks", name="nb"):
    """Play the notebook controller: once the object exists, report one ready replica."""
    group = GROUP if kind == "notebooks" else "apps"

    def run():
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            obj = cluster.get_object(kind, name, "team-a", group=group)
            if obj is not None and not (obj["metadata"].get("annotations") or {}).get(STOP) \
                    and (kind == "notebooks" or obj["spec"]["replicas"] == 1):
                obj["status"] = {"replicas": 1, "readyReplicas": 1}
                cluster.put_object(obj, kind)
                return
            time.sleep(0.01)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def fail_after_dry_run(cluster, monkeypatch, path, status, reason, message):
    """Inject a failure of the real create (the dry run before it goes through)."""
    dry_run = KubernetesSpawner._dry_run

    def then_fail(self, *args):
        dry_run(self, *args)
        cluster.fail_next("POST", path, status=status, reason=reason, message=message)

    monkeypatch.setattr(KubernetesSpawner, "_dry_run", then_fail)


def start(notebook):
    steps = []
    KubernetesSpawner(notebook).start(steps.append)
    return steps


def test_it_creates_the_volumes_and_the_notebook_and_waits_until_ready(cluster, notebook):
    become_ready(cluster)
    steps = start(notebook)
    assert steps[:3] == ["creating volumes", "creating server", "waiting for server to answer"]
    assert steps[-1] == "ready"
    assert pvcs(cluster) == ["datasets", "nb-workspace"]
    made = get_nb(cluster)
    assert made["metadata"]["annotations"]["notebooks.kubeflow.org/creator"] == (
        "owner@example.com")
    container = made["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert made["spec"]["template"]["spec"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    notebook.refresh_from_db()
    assert notebook.status == Status.RUNNING
    assert notebook.runtime["kind"] == "Notebook" and notebook.runtime["object_name"] == "nb"
    dry = [r for r in cluster.requests if r.method == "POST" and r.query.get("dryRun") == "All"]
    assert len(dry) == 3  # two PVCs and the Notebook, checked before anything was made


def test_it_keeps_volumes_that_already_exist(cluster, notebook, monkeypatch):
    KubernetesSpawner(notebook)._create(make_pvc(Volume.objects.get(name="datasets")))
    fail_after_dry_run(cluster, monkeypatch, r"/notebooks$", 500, "InternalError", "down")
    with pytest.raises(SpawnError):
        start(notebook)
    assert pvcs(cluster) == ["datasets"]  # not made by that start: kept


def test_it_removes_what_it_made_when_the_notebook_cannot_be_created(cluster, notebook,
                                                                      monkeypatch):
    fail_after_dry_run(cluster, monkeypatch, r"/notebooks$", 500, "InternalError",
                       "etcd is down")
    with pytest.raises(SpawnError, match="etcd is down") as failure:
        start(notebook)
    assert failure.value.retryable
    assert pvcs(cluster) == []
    assert get_nb(cluster) is None
    deleted = {r.path.rsplit("/", 1)[1] for r in cluster.requests if r.method == "DELETE"}
    assert deleted == {"datasets", "nb-workspace"}  # they were made, then removed
    notebook.refresh_from_db()
    assert notebook.status == Status.ERROR
    assert "etcd is down" in notebook.status_message


def test_it_makes_nothing_when_the_server_refuses_the_notebook(cluster, notebook,
                                                               monkeypatch):
    config = make_config()  # an administrator's typo in an affinity preset
    config["affinity"].options.append({"configKey": "typo", "affinity": {"nodeAffinty": {}}})
    monkeypatch.setattr(KubernetesSpawner, "_config", lambda self: config)
    notebook.affinity = "typo"
    notebook.save()
    with pytest.raises(SpawnError, match="Kubernetes refused") as failure:
        start(notebook)
    assert not failure.value.retryable
    assert pvcs(cluster) == [] and get_nb(cluster) is None
    assert not [r for r in cluster.requests if r.method == "POST" and not r.query.get("dryRun")
                and r.path.endswith(("/persistentvolumeclaims", "/notebooks"))]
    notebook.refresh_from_db()
    assert notebook.status == Status.ERROR and "nodeAffinty" in notebook.status_message


def test_it_reports_an_image_that_cannot_be_pulled(cluster, notebook):
    def fail():
        while get_nb(cluster) is None:
            time.sleep(0.01)
        obj = get_nb(cluster)
        obj["status"] = {"readyReplicas": 0, "containerState": {"waiting": {
            "reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}
        cluster.put_object(obj, "notebooks")

    threading.Thread(target=fail, daemon=True).start()
    with pytest.raises(SpawnError, match="ImagePullBackOff: Back-off pulling image"):
        start(notebook)
    notebook.refresh_from_db()
    assert notebook.status == Status.ERROR
    assert get_nb(cluster) is not None  # kept, as Kubeflow does: its events say why


def test_it_gives_up_waiting_after_the_timeout(cluster, notebook, monkeypatch):
    monkeypatch.setattr(KubernetesSpawner, "start_timeout", 0.2)
    began = time.monotonic()
    with pytest.raises(SpawnError, match="not ready within") as failure:
        start(notebook)
    assert time.monotonic() - began < 1.5
    assert failure.value.retryable


def test_it_stops_and_starts_with_the_stop_annotation(cluster, notebook):
    become_ready(cluster)
    start(notebook)
    spawner = KubernetesSpawner(notebook)
    spawner.stop()
    stamp = get_nb(cluster)["metadata"]["annotations"][STOP]
    assert stamp.endswith("Z")
    spawner.stop()  # a no-op: the first time is kept
    assert get_nb(cluster)["metadata"]["annotations"][STOP] == stamp
    obj = get_nb(cluster)
    obj["status"] = {"readyReplicas": 0}
    cluster.put_object(obj, "notebooks")
    assert spawner.poll().status == Status.STOPPED
    assert spawner.endpoint() is None

    become_ready(cluster)
    steps = start(notebook)
    assert STOP not in get_nb(cluster)["metadata"]["annotations"]
    assert steps[-1] == "ready"
    assert len(cluster.objects("notebooks", "team-a", group=GROUP)) == 1


def test_it_starts_a_running_notebook_as_a_no_op(cluster, notebook):
    become_ready(cluster)
    start(notebook)
    cluster.clear_requests()
    start(notebook)
    assert {r.method for r in cluster.requests} == {"GET"}


def test_it_gives_the_clusters_service_without_a_token_when_running(cluster, notebook):
    spawner = KubernetesSpawner(notebook)
    assert spawner.endpoint() is None
    become_ready(cluster)
    start(notebook)
    endpoint = spawner.endpoint()
    assert endpoint.url == "http://nb.team-a.svc.cluster.local:80"
    assert endpoint.token == ""
    assert endpoint.strip_prefix == "" and endpoint.request_headers == ()
    assert spawner.poll().status == Status.RUNNING
    # An RStudio server is reached as Istio would route it from its annotations.
    notebook.server_type = "group-two"
    endpoint = spawner.endpoint()
    assert endpoint.strip_prefix == "/notebook/team-a/nb"
    assert endpoint.request_headers == (("X-RStudio-Root-Path", "/notebook/team-a/nb/"),)


def test_it_deletes_the_notebook_and_keeps_the_workspace_unless_asked(cluster, notebook):
    become_ready(cluster)
    start(notebook)
    KubernetesSpawner(notebook).delete(delete_volumes=False)
    assert get_nb(cluster) is None
    assert pvcs(cluster) == ["datasets", "nb-workspace"]
    KubernetesSpawner(notebook).delete(delete_volumes=True)  # gone already: fine
    assert pvcs(cluster) == ["datasets"]  # data volumes are never deleted


def test_it_reads_logs_and_events_of_the_pod(cluster, notebook):
    assert KubernetesSpawner(notebook).logs() == ""
    cluster.put_object({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": "nb-0", "namespace": "team-a"},
                        "spec": {"containers": [{"name": "nb", "image": IMAGE}]}})
    cluster.set_pod_log("team-a", "nb-0", "one\ntwo\nthree\n", container="nb")
    assert KubernetesSpawner(notebook).logs(tail=2) == "two\nthree\n"
    for name, reason, when in (("nb-0", "Pulling", "2024-05-01T12:00:02Z"),
                               ("nb", "Created", "2024-05-01T12:00:01Z"),
                               ("other-0", "Noise", "2024-05-01T12:00:03Z")):
        cluster.put_object({"apiVersion": "v1", "kind": "Event",
                            "metadata": {"name": f"{name}.{reason}", "namespace": "team-a"},
                            "involvedObject": {"kind": "Pod", "name": name,
                                               "namespace": "team-a"},
                            "reason": reason, "message": f"{reason} it", "type": "Normal",
                            "lastTimestamp": when})
    events = KubernetesSpawner(notebook).events()
    assert [(e["reason"], e["message"], e["type"]) for e in events] == [
        ("Created", "Created it", "Normal"), ("Pulling", "Pulling it", "Normal")]
    assert events[0]["time"].startswith("2024-05-01T12:00:01")


def test_it_falls_back_to_a_statefulset_and_service_without_the_crd(cluster, notebook,
                                                                   settings):
    settings.KFDASH_NOTEBOOK_CRD = False
    become_ready(cluster, "statefulsets")
    start(notebook)
    notebook.refresh_from_db()
    assert notebook.runtime["kind"] == "StatefulSet"
    assert get_nb(cluster) is None
    statefulset = cluster.get_object("statefulsets", "nb", "team-a", group="apps")
    service = cluster.get_object("services", "nb", "team-a")
    env = statefulset["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "NB_PREFIX", "value": "/notebook/team-a/nb"} in env
    assert service["spec"]["ports"][0]["targetPort"] == 8888

    settings.KFDASH_NOTEBOOK_CRD = True  # the recorded kind wins
    spawner = KubernetesSpawner(notebook)
    spawner.stop()
    statefulset = cluster.get_object("statefulsets", "nb", "team-a", group="apps")
    assert statefulset["spec"]["replicas"] == 0
    assert STOP in statefulset["metadata"]["annotations"]

    become_ready(cluster, "statefulsets")
    start(notebook)
    assert cluster.get_object("statefulsets", "nb", "team-a", group="apps")["spec"][
        "replicas"] == 1
    spawner.delete(delete_volumes=True)
    assert cluster.get_object("statefulsets", "nb", "team-a", group="apps") is None
    assert cluster.get_object("services", "nb", "team-a") is None
    assert pvcs(cluster) == ["datasets"]


def test_it_cleans_up_the_statefulset_when_the_service_fails(cluster, notebook, settings,
                                                            monkeypatch):
    settings.KFDASH_NOTEBOOK_CRD = False
    fail_after_dry_run(cluster, monkeypatch, r"/services$", 429, "TooManyRequests",
                       "slow down")
    with pytest.raises(SpawnError, match="slow down") as failure:
        start(notebook)
    assert failure.value.retryable
    assert cluster.objects("statefulsets", "team-a", group="apps") == []
    assert pvcs(cluster) == []
    assert any(r.method == "DELETE" and r.path.endswith("/statefulsets/nb")
               for r in cluster.requests)


def test_it_deletes_a_volumes_claim_and_reports_refusals(cluster, team, owner, api):
    fake_kube = cluster
    volume = Volume.objects.create(profile=team, name="old", size="1Gi")
    fake_kube.put_object(make_pvc(volume))
    client = api(owner)
    fake_kube.fail_next("DELETE", r"/persistentvolumeclaims/old$", status=500)
    refused = client.delete("/api/v1/namespaces/team-a/volumes/old")
    assert refused.status_code == 503 and "Kubernetes refused" in refused.json()["message"]
    assert Volume.objects.filter(name="old").exists()
    assert client.delete("/api/v1/namespaces/team-a/volumes/old").status_code == 204
    assert fake_kube.get_object("persistentvolumeclaims", "old", "team-a") is None
    assert not Volume.objects.filter(name="old").exists()


def test_it_shows_the_live_manifest_on_the_details_page(cluster, notebook, owner, login):
    import yaml

    assert KubernetesSpawner(notebook).manifest() == ""  # nothing in the cluster yet
    become_ready(cluster)
    start(notebook)
    shown = yaml.safe_load(KubernetesSpawner(notebook).manifest())
    assert shown["kind"] == "Notebook" and shown["metadata"]["name"] == "nb"
    assert "managedFields" not in shown["metadata"]
    page = login(owner).get("/ns/team-a/notebooks/nb/").content.decode()
    assert "<h2>Manifest</h2>" in page and "kind: Notebook" in page


# --- the watcher keeps rows in step with the cluster (notebooks/watcher.py) -------------

def notebook_object(cluster):
    return cluster.get_object("notebooks", "nb", "team-a", group=GROUP)


def failing(obj):
    obj["status"] = {"readyReplicas": 0, "containerState": {"waiting": {
        "reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}
    return obj


def test_it_applies_watch_events_by_kubeflows_rules(cluster, notebook):
    become_ready(cluster)
    start(notebook)
    obj = notebook_object(cluster)
    assert not watcher.apply_event({"type": "MODIFIED", "object": obj})  # already running
    assert watcher.apply_event({"type": "MODIFIED", "object": failing(obj)})
    notebook.refresh_from_db()
    assert notebook.status == "error" and "ImagePullBackOff" in notebook.status_message
    assert watcher.apply_event({"type": "DELETED", "object": obj})
    notebook.refresh_from_db()
    assert notebook.status == "stopped"
    ghost = {"metadata": {"namespace": "team-a", "name": "ghost"}}
    assert not watcher.apply_event({"type": "ADDED", "object": ghost})


@pytest.mark.django_db(transaction=True)
def test_it_follows_the_cluster_live(cluster, notebook, monkeypatch):
    # The test database is SQLite in memory, where a read here can make the watcher's
    # write fail at once ("table is locked"); the watcher then lists again, so let it
    # do that quickly and read gently.
    monkeypatch.setattr(watcher.NotebookWatcher, "retry_seconds", 0.05)
    become_ready(cluster)
    start(notebook)
    thread = watcher.NotebookWatcher()
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not any(q.get("watch") for _, _, q in cluster.requests):
            assert time.monotonic() < deadline, "the watcher never started watching"
            time.sleep(0.02)
        cluster.put_object(failing(notebook_object(cluster)), "notebooks")
        while time.monotonic() < deadline:
            time.sleep(0.2)
            notebook.refresh_from_db()
            if notebook.status == "error":
                break
        assert notebook.status == "error"
        assert "Back-off pulling image" in notebook.status_message
    finally:
        thread.stop()


@pytest.mark.django_db(transaction=True)
def test_without_the_crd_it_follows_the_statefulset_and_its_pod_live(
        cluster, notebook, settings, monkeypatch):
    settings.KFDASH_NOTEBOOK_CRD = False
    for watcher_class in (watcher.StatefulSetWatcher, watcher.NotebookPodWatcher):
        monkeypatch.setattr(watcher_class, "retry_seconds", 0.05)
    become_ready(cluster, "statefulsets")
    start(notebook)
    threads = [watcher.StatefulSetWatcher(), watcher.NotebookPodWatcher()]
    for thread in threads:
        thread.start()

    def status() -> tuple[str, str]:
        for _ in range(50):  # SQLite's in-memory test database may be held by a watcher
            try:
                notebook.refresh_from_db()
                return notebook.status, notebook.status_message
            except Exception:
                time.sleep(0.02)
        raise AssertionError("the database stayed locked")

    def wait(expected: str) -> None:
        deadline = time.monotonic() + 10
        while status()[0] != expected:
            assert time.monotonic() < deadline, f"still {status()}, not {expected}"
            time.sleep(0.05)

    try:
        deadline = time.monotonic() + 10
        while sum(1 for _, _, q in cluster.requests if q.get("watch")) < 2:
            assert time.monotonic() < deadline, "the watchers never started watching"
            time.sleep(0.02)
        # The pod is gone (its node died): the StatefulSet has no ready replica...
        statefulset = cluster.get_object("statefulsets", "nb", "team-a", group="apps")
        statefulset["status"] = {"replicas": 1, "readyReplicas": 0}
        cluster.put_object(statefulset, "statefulsets")
        wait("waiting")
        # ... and the new pod cannot pull its image: only the pod changes.
        cluster.put_object({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "nb-0", "namespace": "team-a",
                         "labels": {"statefulset": "nb", "notebook-name": "nb"}},
            "spec": {"containers": [{"name": "nb", "image": IMAGE}]},
            "status": {"containerStatuses": [{"name": "nb", "state": {"waiting": {
                "reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]},
        }, "pods")
        wait("error")
        assert "Back-off pulling image" in status()[1]
        # The StatefulSet is deleted behind kfdash's back.
        cluster.delete_object("statefulsets", "nb", "team-a", group="apps")
        wait("stopped")
    finally:
        for thread in threads:
            thread.stop()
