"""kfp-kubernetes executor settings on a KFP v2 step's Argo container template.

A pipeline written with kfp-kubernetes (``kubernetes.use_secret_as_env(task, …)``,
``mount_pvc``, ``add_node_selector``…) carries, in its platform spec, one
``KubernetesExecutorConfig`` per executor (``executor_config``). The KFP backend's driver
patches each step's pod with it; ``apply_executor_config`` does the same to the container
template ``argo_compile_ports.step_template`` built, when the run is compiled:

- ``secretAsEnv`` / ``configMapAsEnv`` / ``fieldPathAsEnv``: ``env`` of the main container
  (``valueFrom.secretKeyRef`` / ``configMapKeyRef`` / ``fieldRef``);
- ``secretAsVolume``, ``configMapAsVolume``, ``pvcMount``, ``emptyDirMounts``,
  ``genericEphemeralVolume``: a volume of the template (``volumes``) each, mounted in the main
  container (``volumeMounts``). Volume names are made here (DNS labels, unique in the
  template, never one of the compiler's own): the config's names are Kubernetes objects'
  names, not volumes';
- ``nodeSelector`` (labels and ``nodeSelectorJson``), ``tolerations`` (and their JSON),
  ``nodeAffinity`` (a term with a weight is preferred, one without required, as the driver
  reads them; and ``nodeAffinityJson``): the template's ``nodeSelector``, ``tolerations``,
  ``affinity``;
- ``podMetadata``: the template's ``metadata`` (the pod's labels and annotations);
- ``imagePullSecret``: the template's ``podSpecPatch`` (Argo has no template-level field for
  it; its strategic merge adds them to the Workflow's own);
- ``imagePullPolicy``, ``securityContext`` (runAsUser, runAsGroup, runAsNonRoot): the main
  container's;
- ``activeDeadlineSeconds``: the template's.

A name or JSON value the config takes from a parameter is known when the run is compiled only
if it is a constant or a pipeline parameter that has a value (``parameters``); one from a
task's output, or anything else the config holds (``podAffinity``, ``enabledSharedMemory``,
a field this module does not know), is a ValueError naming the setting and ``where`` (the
task), never a pod that runs without it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from typing import Any

from .argo_names import MAIN_CONTAINER, unique_name

CHANNEL_PREFIX = "pipelinechannel--"
VOLUME_NAME_LIMIT = 63
NOT_VOLUME_NAME = re.compile(r"[^a-z0-9-]+")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
NAME_SOURCES = ("runtimeValue", "componentInputParameter", "taskOutputParameter",
                "taskFinalStatus")
# The fields of each setting this module applies (a field outside them is refused).
FIELDS = {
    "secretAsEnv": {"secretName", "secretNameParameter", "keyToEnv", "optional"},
    "secretAsVolume": {"secretName", "secretNameParameter", "mountPath", "optional"},
    "configMapAsEnv": {"configMapName", "configMapNameParameter", "keyToEnv", "optional"},
    "configMapAsVolume": {"configMapName", "configMapNameParameter", "mountPath", "optional"},
    "pvcMount": {"pvcNameParameter", "constant", "componentInputParameter",
                 "taskOutputParameter", "mountPath", "subPath"},
    "emptyDirMounts": {"volumeName", "mountPath", "medium", "sizeLimit"},
    "genericEphemeralVolume": {"volumeName", "mountPath", "accessModes", "size",
                               "defaultStorageClass", "storageClassName", "metadata"},
    "fieldPathAsEnv": {"name", "fieldPath"},
    "nodeSelector": {"labels", "nodeSelectorJson"},
    "tolerations": {"key", "operator", "value", "effect", "tolerationSeconds",
                    "tolerationJson"},
    "nodeAffinity": {"matchExpressions", "matchFields", "weight", "nodeAffinityJson"},
    "podMetadata": {"labels", "annotations"},
    "imagePullSecret": {"secretName", "secretNameParameter"},
    "securityContext": {"runAsUser", "runAsGroup", "runAsNonRoot"},
    "imagePullPolicy": None,  # a scalar
    "activeDeadlineSeconds": None,
}


def apply_executor_config(template: dict, config: dict, *, parameters: dict[str, Any],
                          where: str) -> dict:
    """``template`` (a step's container template) with the executor ``config`` applied, as a
    new dict. ``parameters``: the run's pipeline parameter values (name → JSON value), for
    settings that read one. ValueError naming the setting and ``where`` for anything it
    cannot apply (see the module docstring)."""
    unknown = sorted(set(config) - set(FIELDS))
    if unknown:
        raise ValueError(f"{where} uses the kfp-kubernetes setting "
                         f"{', '.join(map(repr, unknown))}: not supported on Argo yet")
    settings = _Settings(copy.deepcopy(template), parameters, where)
    for setting in FIELDS:
        if config.get(setting) not in (None, [], {}, ""):
            settings.apply(setting, config[setting])
    return settings.template


class _Settings:
    def __init__(self, template: dict, parameters: dict[str, Any], where: str):
        self.template, self.parameters, self.where = template, parameters, where
        self.container = template.setdefault("container", {"name": MAIN_CONTAINER})
        self.volume_names = {volume["name"] for volume in template.get("volumes") or []}

    def apply(self, setting: str, value: Any) -> None:
        entries = value if isinstance(value, list) else [value]
        for entry in entries:
            if FIELDS[setting] is not None:
                if not isinstance(entry, dict):
                    raise self.refused(setting, f"a {type(entry).__name__} where a mapping "
                                                "was expected")
                extra = sorted(set(entry) - FIELDS[setting])
                if extra:
                    raise self.refused(setting, f"the field {', '.join(map(repr, extra))}")
            # One method per setting, named after it as the proto spells it.
            getattr(self, f"_{setting}")(entry, setting)

    def refused(self, setting: str, what: str) -> ValueError:
        return ValueError(f"{self.where} uses the kfp-kubernetes setting '{setting}' with "
                          f"{what}: not supported on Argo yet")

    # --- values known when the run is compiled -------------------------------------------

    def value(self, source: Any, setting: str) -> Any:
        """The value of a parameter the config reads (an ``InputParameterSpec``)."""
        if not isinstance(source, dict) or len(set(source) & set(NAME_SOURCES)) != 1 or \
                set(source) - set(NAME_SOURCES):
            raise self.refused(setting, f"the value {json.dumps(source)}")
        if "runtimeValue" in source:
            runtime = source["runtimeValue"] or {}
            if "constant" in runtime:
                return runtime["constant"]
            constant = runtime.get("constantValue") or {}
            for kind in ("stringValue", "intValue", "doubleValue"):
                if kind in constant:
                    return constant[kind]
            raise self.refused(setting, f"the value {json.dumps(source)}")
        if "componentInputParameter" in source:
            # A pipeline parameter: its own name at the root, plumbed into groups with the
            # channel prefix. Anything else (a loop item, an output passed down) is refused.
            name = str(source["componentInputParameter"]).removeprefix(CHANNEL_PREFIX)
            if name in self.parameters:
                return self.parameters[name]
            raise self.refused(setting, f"a value from '{source['componentInputParameter']}'"
                                        ", which is no pipeline parameter with a value")
        if "taskOutputParameter" in source:
            output = source["taskOutputParameter"] or {}
            raise self.refused(setting, f"a value from the output "
                                        f"'{output.get('outputParameterKey')}' of the task "
                                        f"'{output.get('producerTask')}'")
        raise self.refused(setting, "a task's final status as a value")

    def name(self, entry: dict, parameter: str, legacy: str, setting: str) -> str:
        """The name of a Kubernetes object the entry refers to (a Secret, a ConfigMap…)."""
        if parameter in entry:
            name = self.value(entry[parameter], setting)
        elif legacy in entry:
            name = entry[legacy]
        else:
            raise self.refused(setting, "no name")
        if not isinstance(name, str) or not name:
            raise self.refused(setting, f"the name {json.dumps(name)}")
        return name

    def json_value(self, source: Any, setting: str, kinds: tuple[type, ...]) -> Any:
        value = self.value(source, setting)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):  # a JSON text, or refused below
                value = json.loads(value)
        if not isinstance(value, kinds):
            raise self.refused(setting, f"the value {json.dumps(value)}")
        return value

    def integer(self, value: Any, setting: str) -> int:
        """protobuf's JSON writes int64 as text, and a Struct turns int32 into a float."""
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if not number.is_integer():
            raise self.refused(setting, f"the number {json.dumps(value)}")
        return int(number)

    # --- where things go -----------------------------------------------------------------

    def env(self, variable: dict) -> None:
        self.container.setdefault("env", []).append(variable)

    def mount(self, setting: str, hint: str, source: dict, mount_path: Any,
              sub_path: str = "") -> None:
        if not isinstance(mount_path, str) or not mount_path.startswith("/"):
            raise self.refused(setting, f"the mount path {json.dumps(mount_path)}")
        mounts = self.container.setdefault("volumeMounts", [])
        if any(mount["mountPath"] == mount_path for mount in mounts):
            raise self.refused(setting, f"a second volume at {mount_path}")
        name = self.volume_name(hint)
        self.template.setdefault("volumes", []).append({"name": name, **source})
        mounts.append({"name": name, "mountPath": mount_path,
                       **({"subPath": sub_path} if sub_path else {})})

    def volume_name(self, hint: str) -> str:
        base = NOT_VOLUME_NAME.sub("-", hint.lower()).strip("-")[:VOLUME_NAME_LIMIT]
        return unique_name(base.rstrip("-") or "volume", self.volume_names, VOLUME_NAME_LIMIT)

    def node_affinity(self) -> dict:
        return self.template.setdefault("affinity", {}).setdefault("nodeAffinity", {})

    # --- the settings --------------------------------------------------------------------

    def _secretAsEnv(self, entry: dict, setting: str) -> None:
        self._key_refs(entry, setting, self.name(entry, "secretNameParameter", "secretName",
                                                 setting), "secretKeyRef", "secretKey")

    def _configMapAsEnv(self, entry: dict, setting: str) -> None:
        self._key_refs(entry, setting, self.name(entry, "configMapNameParameter",
                                                 "configMapName", setting),
                       "configMapKeyRef", "configMapKey")

    def _key_refs(self, entry: dict, setting: str, name: str, ref: str, key: str) -> None:
        for pair in entry.get("keyToEnv") or []:
            if not isinstance(pair, dict) or set(pair) != {key, "envVar"}:
                raise self.refused(setting, f"the key mapping {json.dumps(pair)}")
            selector: dict[str, Any] = {"name": name, "key": pair[key]}
            if "optional" in entry:
                selector["optional"] = bool(entry["optional"])
            self.env({"name": pair["envVar"], "valueFrom": {ref: selector}})

    def _fieldPathAsEnv(self, entry: dict, setting: str) -> None:
        if not entry.get("name") or not entry.get("fieldPath"):
            raise self.refused(setting, f"the entry {json.dumps(entry)}")
        self.env({"name": entry["name"],
                  "valueFrom": {"fieldRef": {"fieldPath": entry["fieldPath"]}}})

    def _secretAsVolume(self, entry: dict, setting: str) -> None:
        name = self.name(entry, "secretNameParameter", "secretName", setting)
        source: dict[str, Any] = {"secretName": name}
        if "optional" in entry:
            source["optional"] = bool(entry["optional"])
        self.mount(setting, f"secret-{name}", {"secret": source}, entry.get("mountPath"))

    def _configMapAsVolume(self, entry: dict, setting: str) -> None:
        name = self.name(entry, "configMapNameParameter", "configMapName", setting)
        source: dict[str, Any] = {"name": name}
        if "optional" in entry:
            source["optional"] = bool(entry["optional"])
        self.mount(setting, f"configmap-{name}", {"configMap": source}, entry.get("mountPath"))

    def _pvcMount(self, entry: dict, setting: str) -> None:
        if "pvcNameParameter" in entry:
            claim = self.name(entry, "pvcNameParameter", "", setting)
        else:  # packages from before pvcNameParameter: a oneof of these three
            legacy = {key: entry[key] for key in ("constant", "componentInputParameter",
                                                  "taskOutputParameter") if key in entry}
            source = {"runtimeValue": {"constant": legacy["constant"]}} \
                if "constant" in legacy else legacy
            claim = self.name({"claim": source}, "claim", "", setting)
        self.mount(setting, f"pvc-{claim}", {"persistentVolumeClaim": {"claimName": claim}},
                   entry.get("mountPath"), entry.get("subPath") or "")

    def _emptyDirMounts(self, entry: dict, setting: str) -> None:
        source = {key: entry[key] for key in ("medium", "sizeLimit") if entry.get(key)}
        self.mount(setting, entry.get("volumeName") or "empty-dir", {"emptyDir": source},
                   entry.get("mountPath"))

    def _genericEphemeralVolume(self, entry: dict, setting: str) -> None:
        if not entry.get("size") or not entry.get("accessModes"):
            raise self.refused(setting, "no size or no access modes")
        spec: dict[str, Any] = {"accessModes": list(entry["accessModes"]),
                                "resources": {"requests": {"storage": entry["size"]}}}
        if not entry.get("defaultStorageClass"):
            if not entry.get("storageClassName"):
                raise self.refused(setting, "neither a storage class nor the default one")
            spec["storageClassName"] = entry["storageClassName"]
        claim: dict[str, Any] = {"spec": spec}
        metadata = {key: dict(value) for key, value in (entry.get("metadata") or {}).items()
                    if key in ("labels", "annotations") and value}
        if set(entry.get("metadata") or {}) - {"labels", "annotations"}:
            raise self.refused(setting, f"the metadata {json.dumps(entry['metadata'])}")
        if metadata:
            claim["metadata"] = metadata
        self.mount(setting, entry.get("volumeName") or "ephemeral",
                   {"ephemeral": {"volumeClaimTemplate": claim}}, entry.get("mountPath"))

    def _nodeSelector(self, entry: dict, setting: str) -> None:
        selector = self.template.setdefault("nodeSelector", {})
        selector.update({str(k): str(v) for k, v in (entry.get("labels") or {}).items()})
        if "nodeSelectorJson" in entry:
            labels = self.json_value(entry["nodeSelectorJson"], setting, (dict,))
            selector.update({str(k): str(v) for k, v in labels.items()})
        if not selector:
            del self.template["nodeSelector"]

    def _tolerations(self, entry: dict, setting: str) -> None:
        tolerations = self.template.setdefault("tolerations", [])
        if "tolerationJson" in entry:
            value = self.json_value(entry["tolerationJson"], setting, (dict, list))
            listed = value if isinstance(value, list) else [value]
            if not all(isinstance(item, dict) for item in listed):
                raise self.refused(setting, f"the value {json.dumps(value)}")
            tolerations.extend(listed)
        toleration = {key: entry[key] for key in ("key", "operator", "value", "effect")
                      if entry.get(key)}
        if "tolerationSeconds" in entry:
            toleration["tolerationSeconds"] = self.integer(entry["tolerationSeconds"], setting)
        if toleration:
            tolerations.append(toleration)

    def _nodeAffinity(self, entry: dict, setting: str) -> None:
        if "nodeAffinityJson" in entry:
            given = self.json_value(entry["nodeAffinityJson"], setting, (dict,))
            unknown = set(given) - {"requiredDuringSchedulingIgnoredDuringExecution",
                                    "preferredDuringSchedulingIgnoredDuringExecution"}
            if unknown:
                raise self.refused(setting, f"the field {', '.join(map(repr, sorted(unknown)))}")
            required = given.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
            if set(required) - {"nodeSelectorTerms"}:
                raise self.refused(setting, f"the value {json.dumps(required)}")
            for term in required.get("nodeSelectorTerms") or []:
                self._required(term)
            for preferred in given.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
                self.node_affinity().setdefault(
                    "preferredDuringSchedulingIgnoredDuringExecution", []).append(preferred)
        term = {}
        for field in ("matchExpressions", "matchFields"):
            requirements = []
            for requirement in entry.get(field) or []:
                if not isinstance(requirement, dict) or \
                        set(requirement) - {"key", "operator", "values"}:
                    raise self.refused(setting, f"the requirement {json.dumps(requirement)}")
                requirements.append({key: requirement[key] for key in
                                     ("key", "operator", "values") if requirement.get(key)})
            if requirements:
                term[field] = requirements
        if not term:
            if "weight" in entry:
                raise self.refused(setting, "a weight and no requirement")
            return
        if "weight" in entry:
            self.node_affinity().setdefault(
                "preferredDuringSchedulingIgnoredDuringExecution", []).append(
                {"weight": self.integer(entry["weight"], setting), "preference": term})
        else:
            self._required(term)

    def _required(self, term: dict) -> None:
        required = self.node_affinity().setdefault(
            "requiredDuringSchedulingIgnoredDuringExecution", {"nodeSelectorTerms": []})
        required["nodeSelectorTerms"].append(term)

    def _podMetadata(self, entry: dict, setting: str) -> None:
        metadata = self.template.setdefault("metadata", {})
        for key in ("labels", "annotations"):
            if entry.get(key):
                metadata.setdefault(key, {}).update(
                    {str(k): str(v) for k, v in entry[key].items()})

    def _imagePullSecret(self, entry: dict, setting: str) -> None:
        name = self.name(entry, "secretNameParameter", "secretName", setting)
        patch = json.loads(self.template.get("podSpecPatch") or "{}")
        patch.setdefault("imagePullSecrets", []).append({"name": name})
        self.template["podSpecPatch"] = json.dumps(patch)

    def _securityContext(self, entry: dict, setting: str) -> None:
        context = self.container.setdefault("securityContext", {})
        for key in ("runAsUser", "runAsGroup"):
            if key in entry:
                context[key] = self.integer(entry[key], setting)
        if "runAsNonRoot" in entry:
            context["runAsNonRoot"] = bool(entry["runAsNonRoot"])

    def _imagePullPolicy(self, value: Any, setting: str) -> None:
        if value not in PULL_POLICIES:
            raise self.refused(setting, f"the value {json.dumps(value)}")
        self.container["imagePullPolicy"] = value

    def _activeDeadlineSeconds(self, value: Any, setting: str) -> None:
        seconds = self.integer(value, setting)
        if seconds < 0:
            raise self.refused(setting, f"the number {json.dumps(value)}")
        if seconds:
            self.template["activeDeadlineSeconds"] = seconds
