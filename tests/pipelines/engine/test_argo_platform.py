"""kfp-kubernetes settings on Argo steps: pipelines written with the real kfp 2 SDK and
kfp-kubernetes, loaded as uploads are, compiled by compile_v2_workflow with the package's
platform spec; each step's template must carry every setting exactly, and validate_workflow
(hera's models plus the strict unknown-key walk) must accept the Workflow. What the compiler
cannot apply is a ValueError naming the setting and the task."""

import copy
import json

import pytest
from kfp import compiler, dsl, kubernetes

from pipelines.engines.argo_compile import compile_v2_workflow
from pipelines.engines.argo_compile_ports import OUTPUTS_VOLUME
from pipelines.engines.argo_manifests import validate_workflow
from pipelines.engines.argo_platform import apply_executor_config
from pipelines.specs import load
from tests.pipelines.engine.test_argo_compile import REPOSITORY, RUN_ID, tasks, templates

AFFINITY = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
    {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["batch"]}]}]}}


@dsl.container_component
def echo(word: str):
    return dsl.ContainerSpec(image="alpine", command=["echo", word])


@dsl.container_component
def write(out: dsl.OutputPath(str)):
    return dsl.ContainerSpec(image="alpine", command=["sh", "-c", 'echo hi > "$0"', out])


@dsl.component(base_image="python:3.11")
def name() -> str:
    return "claim"


@dsl.pipeline
def everything(secret: str = "db-creds", claim: str = "shared-data"):
    task = write()
    kubernetes.use_secret_as_env(task, secret_name="api-token",
                                 secret_key_to_env={"token": "TOKEN", "user": "USER"},
                                 optional=True)
    kubernetes.use_secret_as_volume(task, secret_name=secret, mount_path="/etc/db")
    kubernetes.use_config_map_as_env(task, config_map_name="settings",
                                     config_map_key_to_env={"level": "LOG_LEVEL"})
    kubernetes.use_config_map_as_volume(task, config_map_name="settings", mount_path="/etc/cfg",
                                        optional=True)
    kubernetes.mount_pvc(task, pvc_name="models", mount_path="/models")
    kubernetes.mount_pvc(task, pvc_name=claim, mount_path="/data")
    kubernetes.add_node_selector(task, label_key="disktype", label_value="ssd")
    kubernetes.add_toleration(task, key="gpu", operator="Exists", effect="NoSchedule",
                              toleration_seconds=30)
    kubernetes.set_image_pull_secrets(task, ["regcred", "other-cred"])
    kubernetes.add_pod_label(task, "team", "vision")
    kubernetes.add_pod_annotation(task, "example.com/owner", "ada")
    kubernetes.set_image_pull_policy(task, "Always")
    kubernetes.set_timeout(task, 120)
    kubernetes.use_field_path_as_env(task, env_name="POD_NAME", field_path="metadata.name")
    kubernetes.empty_dir_mount(task, volume_name="scratch", mount_path="/scratch",
                               medium="Memory", size_limit="1Gi")
    kubernetes.add_node_affinity(task, match_expressions=[
        {"key": "zone", "operator": "In", "values": ["eu-1a"]}], weight=10)
    kubernetes.add_node_affinity(task, match_fields=[
        {"key": "metadata.name", "operator": "NotIn", "values": ["node-3"]}])
    kubernetes.add_ephemeral_volume(task, volume_name="cache", mount_path="/cache",
                                    access_modes=["ReadWriteOnce"], size="5Gi")
    kubernetes.set_security_context(task, run_as_user=1000, run_as_non_root=True)


@dsl.pipeline
def in_a_group(secret: str = "db-creds", affinity: dict = AFFINITY, flag: str = "on"):
    with dsl.If(flag == "on"):
        task = echo(word="x")
        kubernetes.use_secret_as_volume(task, secret_name=secret, mount_path="/etc/db")
        kubernetes.add_node_affinity_json(task, affinity)
        kubernetes.add_toleration_json(task, {"key": "spot", "operator": "Exists"})
        kubernetes.add_node_selector_json(task, {"pool": "batch"})
    echo(word="y")


@dsl.pipeline
def claim_from_a_task():
    claim = name()
    task = echo(word="x")
    kubernetes.mount_pvc(task, pvc_name=claim.output, mount_path="/data")


@dsl.pipeline
def secret_per_item():
    with dsl.ParallelFor(["a", "b"]) as secret:
        task = echo(word="x")
        kubernetes.use_secret_as_volume(task, secret_name=secret, mount_path="/etc/s")


@dsl.pipeline
def launched():
    task = name()
    kubernetes.use_secret_as_volume(task, secret_name="s", mount_path="/etc/s")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """``loaded(pipeline_function)``: its package, loaded as an upload is."""
    out = tmp_path_factory.mktemp("argo-platform")
    made = {}

    def load_pipeline(pipeline):
        if pipeline not in made:
            path = out / f"{pipeline.name}.yaml"
            compiler.Compiler().compile(pipeline, str(path))
            made[pipeline] = load(path.read_bytes())
        return made[pipeline]

    return load_pipeline


def compiled(loaded_pipeline, platform_spec=None, **parameters) -> dict:
    workflow = compile_v2_workflow(
        loaded_pipeline.spec, loaded_pipeline.document, run_id=RUN_ID, run_name="Nightly run",
        namespace="team-a", parameters=parameters, service_account="default-editor",
        repository=REPOSITORY, launcher_image="kfdash:test",
        platform_spec=loaded_pipeline.platform_spec if platform_spec is None else platform_spec)
    validate_workflow(workflow)
    return workflow


def step(workflow: dict, task: str, dag: str | None = None) -> dict:
    return templates(workflow)[tasks(workflow, dag)[task]["template"]]


def test_it_applies_every_setting_to_the_steps_template(loaded):
    pipeline = loaded(everything)
    assert pipeline.platform_spec is not None
    template = step(compiled(pipeline, claim="team-data"), "write")
    container = template["container"]
    assert container["env"] == [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api-token", "key": "token",
                                                         "optional": True}}},
        {"name": "USER", "valueFrom": {"secretKeyRef": {"name": "api-token", "key": "user",
                                                        "optional": True}}},
        {"name": "LOG_LEVEL", "valueFrom": {"configMapKeyRef": {
            "name": "settings", "key": "level", "optional": False}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    assert template["volumes"] == [
        {"name": OUTPUTS_VOLUME, "emptyDir": {}},
        {"name": "secret-db-creds", "secret": {"secretName": "db-creds", "optional": False}},
        {"name": "configmap-settings", "configMap": {"name": "settings", "optional": True}},
        {"name": "pvc-models", "persistentVolumeClaim": {"claimName": "models"}},
        {"name": "pvc-team-data", "persistentVolumeClaim": {"claimName": "team-data"}},
        {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
        {"name": "cache", "ephemeral": {"volumeClaimTemplate": {"spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}}}},
    ]
    assert container["volumeMounts"][1:] == [
        {"name": "secret-db-creds", "mountPath": "/etc/db"},
        {"name": "configmap-settings", "mountPath": "/etc/cfg"},
        {"name": "pvc-models", "mountPath": "/models"},
        {"name": "pvc-team-data", "mountPath": "/data"},
        {"name": "scratch", "mountPath": "/scratch"},
        {"name": "cache", "mountPath": "/cache"},
    ]
    assert container["volumeMounts"][0]["name"] == OUTPUTS_VOLUME
    assert template["nodeSelector"] == {"disktype": "ssd"}
    assert template["tolerations"] == [{"key": "gpu", "operator": "Exists",
                                        "effect": "NoSchedule", "tolerationSeconds": 30}]
    assert template["affinity"] == {"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "preference": {
            "matchExpressions": [{"key": "zone", "operator": "In", "values": ["eu-1a"]}]}}],
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{
            "matchFields": [{"key": "metadata.name", "operator": "NotIn",
                             "values": ["node-3"]}]}]}}}
    assert json.loads(template["podSpecPatch"]) == {
        "imagePullSecrets": [{"name": "regcred"}, {"name": "other-cred"}]}
    assert template["metadata"] == {"labels": {"team": "vision"},
                                    "annotations": {"example.com/owner": "ada"}}
    assert container["imagePullPolicy"] == "Always"
    assert template["activeDeadlineSeconds"] == 120
    assert container["securityContext"] == {"runAsUser": 1000, "runAsNonRoot": True}


def test_it_reads_a_pipeline_parameters_default_and_leaves_other_steps_alone(loaded):
    workflow = compiled(loaded(everything))
    volumes = step(workflow, "write")["volumes"]
    assert {"name": "pvc-shared-data", "persistentVolumeClaim": {"claimName": "shared-data"}} \
        in volumes
    without = compiled(loaded(everything), platform_spec={})
    template = step(without, "write")
    assert [v["name"] for v in template["volumes"]] == [OUTPUTS_VOLUME]
    assert not {"nodeSelector", "tolerations", "affinity", "metadata", "podSpecPatch",
                "activeDeadlineSeconds"} & set(template)


def test_it_applies_settings_inside_groups_and_keeps_volume_names_unique(loaded):
    workflow = compiled(loaded(in_a_group), secret="other-creds")
    condition = tasks(workflow)["condition-1"]["template"]
    template = step(workflow, "echo", condition)
    assert template["volumes"] == [{"name": "secret-other-creds", "secret": {
        "secretName": "other-creds", "optional": False}}]
    assert template["container"]["volumeMounts"] == [{"name": "secret-other-creds",
                                                      "mountPath": "/etc/db"}]
    assert template["affinity"] == {"nodeAffinity": AFFINITY}
    assert template["tolerations"] == [{"key": "spot", "operator": "Exists"}]
    assert template["nodeSelector"] == {"pool": "batch"}
    plain = step(workflow, "echo-2")
    assert not {"volumes", "affinity", "tolerations", "nodeSelector"} & set(plain)


def test_it_renames_a_volume_that_would_take_the_compilers_name(loaded):
    pipeline = loaded(launched)
    template = step(compiled(pipeline), "name")
    names = [volume["name"] for volume in template["volumes"]]
    assert names == [OUTPUTS_VOLUME, "kfdash-launcher", "secret-s"]
    platform = copy.deepcopy(pipeline.platform_spec)
    config = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-name"]
    config["emptyDirMounts"] = [{"volumeName": OUTPUTS_VOLUME, "mountPath": "/work"}]
    template = step(compiled(pipeline, platform_spec=platform), "name")
    names = [volume["name"] for volume in template["volumes"]]
    assert names == [OUTPUTS_VOLUME, "kfdash-launcher", "secret-s", f"{OUTPUTS_VOLUME}-2"]
    assert template["container"]["volumeMounts"][-1] == {"name": f"{OUTPUTS_VOLUME}-2",
                                                          "mountPath": "/work"}


def test_it_refuses_a_claim_name_from_a_task_output(loaded):
    with pytest.raises(ValueError, match=r"The task 'echo' uses the kfp-kubernetes setting "
                                         r"'pvcMount' with a value from the output 'Output' "
                                         r"of the task 'name'"):
        compiled(loaded(claim_from_a_task))


def test_it_refuses_a_name_from_a_loop_item(loaded):
    with pytest.raises(ValueError, match=r"The task 'echo' uses the kfp-kubernetes setting "
                                         r"'secretAsVolume' with a value from "
                                         r"'pipelinechannel--loop-item-param-1', which is no "
                                         r"pipeline parameter with a value"):
        compiled(loaded(secret_per_item))


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("podAffinity", [{"topologyKey": "zone", "matchPodLabels": {"a": "b"}}],
     "setting 'podAffinity': not supported"),
    ("enabledSharedMemory", {"volumeName": "shm", "size": "1Gi"},
     "setting 'enabledSharedMemory': not supported"),
    ("somethingNew", True, "setting 'somethingNew': not supported"),
    ("secretAsEnv", [{"secretName": "s", "keyToEnv": [], "secretKeyPrefix": "X_"}],
     "'secretAsEnv' with the field 'secretKeyPrefix'"),
    ("imagePullPolicy", "Sometimes", "'imagePullPolicy' with the value \"Sometimes\""),
    ("pvcMount", [{"constant": "c", "mountPath": "/tmp/kfdash/outputs/parameters"}],
     "'pvcMount' with a second volume at /tmp/kfdash/outputs/parameters"),
    ("tolerations", [{"tolerationJson": {"taskOutputParameter": {
        "producerTask": "t", "outputParameterKey": "o"}}}],
     "'tolerations' with a value from the output 'o' of the task 't'"),
    ("nodeAffinity", [{"nodeAffinityJson": {"runtimeValue": {"constant": "not json"}}}],
     "'nodeAffinity' with the value \"not json\""),
    ("activeDeadlineSeconds", "1.5", "'activeDeadlineSeconds' with the number \"1.5\""),
])
def test_it_refuses_what_it_cannot_apply(loaded, setting, value, message):
    pipeline = loaded(everything)
    with pytest.raises(ValueError, match="The task 'write' uses the kfp-kubernetes ") as refused:
        compiled(pipeline, platform_spec=_with(pipeline, **{setting: value}))
    assert message in str(refused.value)


def test_it_reads_packages_from_before_the_name_parameters():
    template = {"name": "t", "container": {"name": "main", "image": "alpine"}}
    config = {"pvcMount": [{"componentInputParameter": "pipelinechannel--claim",
                            "mountPath": "/data"}],
              "secretAsVolume": [{"secretName": "old", "mountPath": "/old"}],
              "imagePullSecret": [{"secretName": "pull"}]}
    applied = apply_executor_config(template, config, parameters={"claim": "c1"},
                                    where="The task 't'")
    assert applied["volumes"] == [
        {"name": "secret-old", "secret": {"secretName": "old"}},
        {"name": "pvc-c1", "persistentVolumeClaim": {"claimName": "c1"}}]
    assert json.loads(applied["podSpecPatch"]) == {"imagePullSecrets": [{"name": "pull"}]}
    assert "volumes" not in template, "the template given is left as it was"


def _with(pipeline, **settings) -> dict:
    """The pipeline's platform spec with its 'write' executor's config changed."""
    platform = copy.deepcopy(pipeline.platform_spec)
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    executors["exec-write"].update(settings)
    return platform
