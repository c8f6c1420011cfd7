"""The Kubernetes objects of a notebook, compared as dicts with what Kubeflow's Jupyter
web app (and its notebook controller) make, and checked strictly against the schemas;
and Kubeflow's status rules, table-driven."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from notebooks.choices import Status
from notebooks.config import DEFAULT_PATH, SpawnerConfig
from notebooks.models import Notebook, Volume
from notebooks.spawners.base import Observed
from notebooks.spawners.manifests import (
    make_notebook,
    make_pvc,
    make_statefulset_and_service,
    notebook_view_of_statefulset,
    rfc3339,
    status_of,
)

K8S = latest_version()
IMAGE = "kubeflownotebookswg/jupyter-scipy:v1.9.2"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
GPU_AFFINITY = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
    "nodeSelectorTerms": [{"matchExpressions": [
        {"key": "gpu", "operator": "In", "values": ["a100"]}]}]}}}


def make_config(mount="/home/jovyan") -> SpawnerConfig:
    data = yaml.safe_load(Path(DEFAULT_PATH).read_text())
    defaults = data["spawnerFormDefaults"]
    defaults["workspaceVolume"]["value"]["mount"] = mount
    defaults["affinityConfig"]["options"] = [
        {"configKey": "gpu-a100", "displayName": "A100 nodes", "affinity": GPU_AFFINITY}]
    defaults["tolerationGroup"]["options"] = [
        {"groupKey": "gpu", "configKey": "gpu", "displayName": "GPU nodes",
         "tolerations": [GPU_TOLERATION]}]
    return SpawnerConfig(data, "test")


def strict(obj: dict) -> None:
    kubernetes_validate.validate(obj, K8S, strict=True)


def strict_pod_spec(notebook_cr: dict) -> None:
    strict({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
            "spec": notebook_cr["spec"]["template"]["spec"]})


@pytest.fixture
def workspace(profile, owner):
    return Volume.objects.create(profile=profile, name="nb-workspace", size="5Gi",
                                 created_by=owner)


@pytest.fixture
def plain(profile, owner, workspace):
    return Notebook.objects.create(profile=profile, name="nb", image=IMAGE, cpu="0.5",
                                   memory="1Gi", workspace=workspace, shm=False,
                                   created_by=owner)


def test_it_makes_a_read_write_once_claim_of_the_volume_size(workspace):
    pvc = make_pvc(workspace)
    assert pvc == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "nb-workspace", "namespace": "team-a",
                     "labels": {"app.kubernetes.io/managed-by": "kfdash"}},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "5Gi"}}},
    }
    strict(pvc)


def test_it_makes_the_notebook_the_jupyter_web_app_posts(plain):
    notebook = make_notebook(plain, make_config())
    assert notebook == {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Notebook",
        "metadata": {
            "name": "nb", "namespace": "team-a",
            "labels": {"app": "nb", "app.kubernetes.io/managed-by": "kfdash"},
            "annotations": {"notebooks.kubeflow.org/server-type": "jupyter",
                            "notebooks.kubeflow.org/creator": "owner@example.com"},
        },
        "spec": {"template": {"spec": {
            "serviceAccountName": "default-editor",
            "containers": [{
                "name": "nb", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                "resources": {"requests": {"cpu": "0.5", "memory": "1Gi"}},
                "volumeMounts": [{"name": "nb-workspace", "mountPath": "/home/jovyan"}],
            }],
            "volumes": [{"name": "nb-workspace",
                         "persistentVolumeClaim": {"claimName": "nb-workspace"}}],
        }}},
    }
    strict_pod_spec(notebook)


def test_it_adds_limits_gpus_shm_data_volumes_presets_and_configurations(profile, owner,
                                                                         workspace):
    data = Volume.objects.create(profile=profile, name="datasets", size="50Gi")
    nb = Notebook.objects.create(
        profile=profile, name="gpu-nb", image=IMAGE, image_pull_policy="Always", cpu="2",
        cpu_limit="4", memory="8Gi", memory_limit="16Gi", gpu_count=2,
        gpu_vendor="nvidia.com/gpu", workspace=workspace, shm=True,
        environment={"ZED": "last", "ACCESS_ML_PIPELINE": "1"},
        labels={"access-ml-pipeline": "true"}, affinity="gpu-a100", tolerations="gpu",
        created_by=owner)
    nb.data_mounts.create(volume=data, mount_path="/home/jovyan/datasets")
    notebook = make_notebook(nb, make_config(mount="/home/user"))
    assert notebook["metadata"]["labels"] == {"app": "gpu-nb", "access-ml-pipeline": "true",
                                              "app.kubernetes.io/managed-by": "kfdash"}
    spec = notebook["spec"]["template"]["spec"]
    assert spec == {
        "serviceAccountName": "default-editor",
        "containers": [{
            "name": "gpu-nb", "image": IMAGE, "imagePullPolicy": "Always",
            "resources": {"requests": {"cpu": "2", "memory": "8Gi"},
                          "limits": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "2"}},
            "env": [{"name": "ACCESS_ML_PIPELINE", "value": "1"},
                    {"name": "ZED", "value": "last"}],
            "volumeMounts": [
                {"name": "nb-workspace", "mountPath": "/home/user"},
                {"name": "datasets", "mountPath": "/home/jovyan/datasets"},
                {"name": "dshm", "mountPath": "/dev/shm"},
            ],
        }],
        "volumes": [
            {"name": "nb-workspace", "persistentVolumeClaim": {"claimName": "nb-workspace"}},
            {"name": "datasets", "persistentVolumeClaim": {"claimName": "datasets"}},
            {"name": "dshm", "emptyDir": {"medium": "Memory"}},
        ],
        "tolerations": [GPU_TOLERATION],
        "affinity": GPU_AFFINITY,
    }
    strict_pod_spec(notebook)


def test_it_leaves_out_unknown_presets_and_a_missing_workspace(profile):
    nb = Notebook.objects.create(profile=profile, name="bare", image=IMAGE, workspace=None,
                                 shm=False, affinity="nope", tolerations="nope")
    spec = make_notebook(nb, make_config())["spec"]["template"]["spec"]
    assert spec == {"serviceAccountName": "default-editor", "containers": [{
        "name": "bare", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
        "resources": {"requests": {"cpu": "0.5", "memory": "1Gi"}}}]}
    assert "notebooks.kubeflow.org/creator" not in make_notebook(nb, None)["metadata"][
        "annotations"]


def test_it_marks_a_stopped_notebook_with_kubeflows_annotation(plain):
    notebook = make_notebook(plain, make_config(), stopped_at="2024-05-01T12:00:00Z")
    assert notebook["metadata"]["annotations"]["kubeflow-resource-stopped"] == (
        "2024-05-01T12:00:00Z")
    assert rfc3339().endswith("Z") and len(rfc3339()) == 20


def test_it_annotates_vscode_and_rstudio_as_the_web_app_does(plain):
    plain.server_type = "group-one"
    plain.image = "kubeflownotebookswg/codeserver-python:v1.9.2"
    vscode = make_notebook(plain, make_config())
    assert vscode["metadata"]["annotations"] == {
        "notebooks.kubeflow.org/server-type": "group-one",
        "notebooks.kubeflow.org/creator": "owner@example.com",
        "notebooks.kubeflow.org/http-rewrite-uri": "/",
    }
    assert vscode["spec"]["template"]["spec"]["containers"][0]["image"] == plain.image
    strict_pod_spec(vscode)

    plain.server_type = "group-two"
    plain.image = "kubeflownotebookswg/rstudio-tidyverse:v1.9.2"
    rstudio = make_notebook(plain, make_config())
    assert rstudio["metadata"]["annotations"] == {
        "notebooks.kubeflow.org/server-type": "group-two",
        "notebooks.kubeflow.org/creator": "owner@example.com",
        "notebooks.kubeflow.org/http-rewrite-uri": "/",
        # byte for byte what the web app writes (set_server_type in its form.py)
        "notebooks.kubeflow.org/http-headers-request-set":
            '{"X-RStudio-Root-Path":"/notebook/team-a/nb/"}',
    }
    strict_pod_spec(rstudio)


def test_the_statefulset_of_a_vscode_or_rstudio_server_is_routed_by_the_proxy(plain):
    """Without the CRD there is no controller (and no Istio route) to act on the
    annotations: kfdash's proxy does, from the same ServerType answers."""
    from notebooks.spawners.base import Endpoint

    plain.server_type = "group-two"
    statefulset, service = make_statefulset_and_service(plain, make_config())
    strict(statefulset)
    strict(service)
    assert statefulset["metadata"]["annotations"][
        "notebooks.kubeflow.org/http-headers-request-set"] == (
        '{"X-RStudio-Root-Path":"/notebook/team-a/nb/"}')
    endpoint = Endpoint.for_notebook(plain, "http://nb.team-a.svc.cluster.local:80")
    assert endpoint.strip_prefix == "/notebook/team-a/nb"
    assert endpoint.request_headers == (("X-RStudio-Root-Path", "/notebook/team-a/nb/"),)
    plain.server_type = "group-one"
    assert Endpoint.for_notebook(plain, "http://x").request_headers == ()
    assert Endpoint.for_notebook(plain, "http://x").strip_prefix == "/notebook/team-a/nb"
    plain.server_type = "jupyter"
    assert Endpoint.for_notebook(plain, "http://x") == Endpoint("http://x")


def test_it_makes_the_controllers_statefulset_and_service(plain):
    statefulset, service = make_statefulset_and_service(plain, make_config())
    strict(statefulset)
    strict(service)
    assert statefulset["spec"]["replicas"] == 1
    assert statefulset["spec"]["selector"] == {"matchLabels": {"statefulset": "nb"}}
    template = statefulset["spec"]["template"]
    assert template["metadata"]["labels"] == {"statefulset": "nb", "notebook-name": "nb",
                                              "app": "nb"}
    container = template["spec"]["containers"][0]
    assert container["env"] == [{"name": "NB_PREFIX", "value": "/notebook/team-a/nb"}]
    assert container["ports"] == [{"name": "notebook-port", "containerPort": 8888,
                                   "protocol": "TCP"}]
    assert container["workingDir"] == "/home/jovyan"
    assert template["spec"]["securityContext"] == {"fsGroup": 100}
    assert service["spec"] == {"type": "ClusterIP", "selector": {"statefulset": "nb"},
                               "ports": [{"name": "http-nb", "port": 80, "targetPort": 8888,
                                          "protocol": "TCP"}]}
    stopped, _ = make_statefulset_and_service(plain, make_config(), stopped_at="t")
    assert stopped["spec"]["replicas"] == 0
    assert stopped["metadata"]["annotations"]["kubeflow-resource-stopped"] == "t"


# --- status rules ----------------------------------------------------------------------

STOP = {"kubeflow-resource-stopped": "2024-05-01T12:00:00Z"}


def nb(annotations=None, status=None, deleting=False) -> dict:
    metadata = {"name": "nb", "annotations": annotations or {}}
    if deleting:
        metadata["deletionTimestamp"] = "2024-05-01T12:00:00Z"
    return {"metadata": metadata, "status": status or {}}


def event(kind, reason, message, time="2024-05-01T12:00:00Z"):
    return {"type": kind, "reason": reason, "message": message, "lastTimestamp": time}


@pytest.mark.parametrize(("obj", "events", "expected"), [
    (nb(status={"readyReplicas": 1}), [], Observed(Status.RUNNING, "")),
    (nb(STOP), [], Observed(Status.STOPPED, "No pods are running for this notebook server.")),
    (nb(STOP, {"readyReplicas": 1}), [],
     Observed(Status.TERMINATING, "The notebook server is stopping.")),
    (nb(status={"readyReplicas": 1}, deleting=True), [],
     Observed(Status.TERMINATING, "Deleting this notebook server.")),
    (nb(status={"containerState": {"waiting": {"reason": "ContainerCreating"}}}), [],
     Observed(Status.WAITING, "ContainerCreating")),
    (nb(status={"containerState": {"waiting": {
        "reason": "ImagePullBackOff", "message": 'Back-off pulling image "nope"'}}}), [],
     Observed(Status.ERROR, 'ImagePullBackOff: Back-off pulling image "nope"')),
    (nb(status={"containerState": {"waiting": {
        "reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}}}),
     [], Observed(Status.ERROR, "CrashLoopBackOff: back-off 5m0s restarting failed container")),
    (nb(status={"containerState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}),
     [], Observed(Status.ERROR, "The server terminated (OOMKilled, exit code 137)")),
    (nb(), [event("Normal", "Pulling", 'Pulling image "big"')],
     Observed(Status.WAITING, 'Pulling image "big"')),
    (nb(), [event("Normal", "Scheduled", "assigned", "2024-05-01T12:00:02Z"),
            event("Warning", "FailedScheduling", "0/3 nodes are available",
                  "2024-05-01T12:00:01Z")],
     Observed(Status.WAITING, "0/3 nodes are available")),
    (nb(), [event("Warning", "Failed", "Error: ErrImagePull")],
     Observed(Status.ERROR, "Error: ErrImagePull")),
    (nb(status={"conditions": [{"type": "PodScheduled", "status": "False",
                                "message": "Unschedulable: no GPU"}]}), [],
     Observed(Status.WAITING, "Unschedulable: no GPU")),
    (nb(), [], Observed(Status.WAITING, "Scheduling the pod")),
], ids=["ready", "stopped", "stopping", "deleting", "creating", "image-pull", "crash-loop",
        "terminated", "pulling", "warning-first", "failed-event", "condition", "scheduling"])
def test_it_reads_kubeflows_status_rules(obj, events, expected):
    assert status_of(obj, events) == expected


def test_it_sees_a_statefulset_and_its_pod_as_a_notebook():
    statefulset = {"metadata": {"name": "nb"}, "spec": {"replicas": 1},
                   "status": {"readyReplicas": 0}}
    pod = {"status": {"containerStatuses": [
        {"name": "nb", "state": {"waiting": {"reason": "ErrImagePull", "message": "no"}}}]}}
    assert status_of(notebook_view_of_statefulset(statefulset, pod), []) == Observed(
        Status.ERROR, "ErrImagePull: no")
    statefulset["spec"]["replicas"] = 0
    assert status_of(notebook_view_of_statefulset(statefulset, None), []).status == (
        Status.STOPPED)
