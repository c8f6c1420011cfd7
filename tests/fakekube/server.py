"""A strict, in-memory fake of the Kubernetes API server, speaking real HTTP on 127.0.0.1.

Why a fake at all: no cluster can exist where the tests run, yet the dashboard must be tested
through the official ``kubernetes`` client exactly as it will run in production.  So this
server mimics what a real kube-apiserver does *on the wire*: URL layout, verbs, metadata
bookkeeping (uid, resourceVersion, generation, generateName), Status error bodies, optimistic
concurrency, watches with resume and 410 Gone, and strict schema validation with
``kubernetes-validate``.  Where a real server would reject a request, this one does too: a fake
that accepts more than a cluster would only hides bugs.

Deliberate differences from a real server (documented so nobody is surprised):

* Unknown fields are *rejected* (422) rather than dropped with a warning, for every request.
* Deletion is immediate (no kubelet, no garbage collector); finalizers are honoured for
  ordinary objects, but deleting a namespace removes everything in it at once.
* Strategic merge patch is treated as a JSON merge patch (lists are replaced, not merged).
* Server-side apply is approximated: create if missing, otherwise a merge patch.
* Objects of one custom resource are stored once whatever the version requested; responses just
  carry the requested apiVersion (no conversion webhooks exist here).

The public surface is :class:`FakeKubeServer`; see its docstring.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
import re
import secrets
import select
import socket
import socketserver
import tempfile
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

import jsonschema
import kubernetes_validate
from kubernetes_validate import utils as kv_utils
from packaging.version import Version
from referencing import Registry, Resource

JSON = dict[str, Any]
Validator = Callable[[JSON], Any]

# --------------------------------------------------------------------------------------------
# Resource table: adding a resource is one row.
# --------------------------------------------------------------------------------------------

RBAC = "rbac.authorization.k8s.io"
COORDINATION = "coordination.k8s.io"


@dataclass(frozen=True)
class ResourceType:
    """One REST resource: where it lives, what it is called and how the server treats it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    #: status is written only through ``/status``; the main endpoint ignores status changes.
    status_subresource: bool = False
    #: name validation: "subdomain", "label", "dns1035" or "path" (RBAC objects allow ':').
    name_rule: str = "subdomain"
    #: a DELETE answers with the object (True) or with a Status "Success" (False).
    return_deleted: bool = True
    #: metadata.generation is maintained (bumped when anything but metadata/status changes).
    has_generation: bool = True
    #: a built-in type: validated by kubernetes-validate, version fixed, items in lists bare.
    builtin: bool = False
    #: extra field-selector labels beyond metadata.name / metadata.namespace.
    field_labels: tuple[str, ...] = ()
    #: kind was derived from the plural, to be replaced by the first created object's kind.
    kind_guessed: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> str:
        """The group-qualified resource name used in messages: ``rolebindings.rbac...``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)


def _core(plural: str, kind: str, **kw: Any) -> ResourceType:
    return ResourceType("", "v1", plural, kind, builtin=True, **kw)


BUILTIN_RESOURCES: tuple[ResourceType, ...] = (
    _core("namespaces", "Namespace", namespaced=False, name_rule="label",
          status_subresource=True, has_generation=False),
    _core("serviceaccounts", "ServiceAccount", has_generation=False),
    _core("configmaps", "ConfigMap", return_deleted=False, has_generation=False),
    _core("secrets", "Secret", return_deleted=False, has_generation=False,
          field_labels=("type",)),
    _core("services", "Service", name_rule="dns1035", status_subresource=True),
    _core("persistentvolumeclaims", "PersistentVolumeClaim", status_subresource=True),
    _core("pods", "Pod", status_subresource=True,
          field_labels=("spec.nodeName", "spec.serviceAccountName", "status.phase")),
    _core("events", "Event", return_deleted=False, has_generation=False,
          field_labels=("involvedObject.kind", "involvedObject.namespace",
                        "involvedObject.name", "involvedObject.uid",
                        "involvedObject.apiVersion", "involvedObject.resourceVersion",
                        "involvedObject.fieldPath", "reason", "reportingComponent",
                        "source", "type")),
    _core("resourcequotas", "ResourceQuota", status_subresource=True),
    *(ResourceType(RBAC, "v1", plural, kind, namespaced=namespaced, name_rule="path",
                   return_deleted=False, has_generation=False, builtin=True)
      for plural, kind, namespaced in (("roles", "Role", True),
                                       ("rolebindings", "RoleBinding", True),
                                       ("clusterroles", "ClusterRole", False),
                                       ("clusterrolebindings", "ClusterRoleBinding", False))),
    ResourceType("apps", "v1", "statefulsets", "StatefulSet", status_subresource=True,
                 return_deleted=False, builtin=True),
    ResourceType("apps", "v1", "deployments", "Deployment", status_subresource=True,
                 return_deleted=False, builtin=True),
    ResourceType(COORDINATION, "v1", "leases", "Lease", return_deleted=False,
                 has_generation=False, builtin=True),
)

#: Custom resources known up front (anything else is accepted on first use, namespaced).
DEFAULT_CUSTOM_RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("kubeflow.org", "v1", "profiles", "Profile", namespaced=False,
                 status_subresource=True),
    ResourceType("kubeflow.org", "v1", "notebooks", "Notebook", status_subresource=True),
    ResourceType("kubeflow.org", "v1alpha1", "poddefaults", "PodDefault"),
    ResourceType("argoproj.io", "v1alpha1", "workflows", "Workflow"),
)

#: Groups served by the API server itself: unknown plurals there are 404, not new CRDs.
BUILTIN_GROUPS = frozenset({"", RBAC, "apps", COORDINATION})

SYSTEM_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
PROTECTED_NAMESPACES = frozenset({"default", "kube-public", "kube-system"})


# --------------------------------------------------------------------------------------------
# Errors as Status bodies
# --------------------------------------------------------------------------------------------


class ApiError(Exception):
    """An API failure that becomes a ``Status`` body, exactly as a real server sends it."""

    def __init__(self, code: int, reason: str, message: str,
                 details: JSON | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> JSON:
        body: JSON = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                      "status": "Failure", "message": self.message, "reason": self.reason}
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(rt: ResourceType | None, name: str, kind: str | None = None) -> JSON:
    details: JSON = {"name": name}
    if rt is not None and rt.group:
        details["group"] = rt.group
    details["kind"] = kind if kind is not None else (rt.plural if rt else "")
    return details


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.resource} "{name}" not found', _details(rt, name))


def already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{rt.resource} "{name}" already exists',
                    _details(rt, name))


def conflict(rt: ResourceType, name: str, why: str = "") -> ApiError:
    why = why or ("the object has been modified; please apply your changes to the latest "
                  "version and try again")
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {rt.resource} "{name}": '
                    f"{why}", _details(rt, name))


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(rt: ResourceType, kind: str, name: str,
            causes: list[tuple[str, str, str]]) -> ApiError:
    """422 Invalid; ``causes`` are (reason, field, message) like field.ErrorList."""
    texts = [f"{fld}: {msg}" if fld else msg for _, fld, msg in causes]
    summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    qualified = f"{kind}.{rt.group}" if rt.group else kind
    details = _details(rt, name, kind)
    details["causes"] = [{"reason": r, "message": m, "field": f} for r, f, m in causes]
    return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {summary}', details)


def route_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed",
                    "the server does not allow this method on the requested resource", {})


# --------------------------------------------------------------------------------------------
# Name, label and annotation validation (apimachinery's validation messages)
# --------------------------------------------------------------------------------------------

_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QNAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
              "or '-', and must start and end with an alphanumeric character (e.g. 'my-name',"
              "  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                  "characters, '-' or '.', and must start and end with an alphanumeric "
                  "character (e.g. 'example.com', regex used for validation is "
                  r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
_DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                "start with an alphabetic character, and end with an alphanumeric character "
                "(e.g. 'my-name',  or 'abc-123', regex used for validation is "
                "'[a-z]([-a-z0-9]*[a-z0-9])?')")
_QNAME_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must "
              "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  "
              "or '123-abc', regex used for validation is "
              "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric "
                    "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                    "character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
                    "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")


def name_errors(name: str, rule: str) -> list[str]:
    """Why ``name`` is not a valid object name under ``rule`` (empty list: it is valid)."""
    if rule == "path":
        if name in (".", ".."):
            return [f"may not be '{name}'"]
        return [f"may not contain '{c}'" for c in "/%" if c in name]
    limit, regex, msg = {
        "label": (63, _LABEL_RE, _LABEL_MSG),
        "dns1035": (63, _DNS1035_RE, _DNS1035_MSG),
    }.get(rule, (253, _SUBDOMAIN_RE, _SUBDOMAIN_MSG))
    errors = [] if regex.match(name) else [msg]
    if len(name) > limit:
        errors.append(f"must be no more than {limit} characters")
    return errors


def qualified_name_errors(key: str) -> list[str]:
    """Errors for a label/annotation key: ``[prefix/]name`` with a DNS-subdomain prefix."""
    prefix, _, name = key.rpartition("/")
    errors = []
    if "/" in key and not prefix:
        errors.append("prefix part must be non-empty")
    elif prefix:
        if not _SUBDOMAIN_RE.match(prefix):
            errors.append("prefix part " + _SUBDOMAIN_MSG)
        if len(prefix) > 253:
            errors.append("prefix part must be no more than 253 characters")
    if not name:
        errors.append("name part must be non-empty")
    else:
        if not _QNAME_RE.match(name):
            errors.append(_QNAME_MSG)
        if len(name) > 63:
            errors.append("name part must be no more than 63 characters")
    return errors


def label_value_errors(value: Any) -> list[str]:
    if not isinstance(value, str):
        return ["must be a string"]
    errors = [] if value == "" or _QNAME_RE.match(value) else [_LABEL_VALUE_MSG]
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    return errors


# --------------------------------------------------------------------------------------------
# Selectors
# --------------------------------------------------------------------------------------------

_TOKEN = r"[^\s=!,()<>]+"
_REQUIREMENT = re.compile(
    rf"""^\s*(?:
        !\s*(?P<nkey>{_TOKEN})
      | (?P<skey>{_TOKEN})\s+(?P<setop>in|notin)\s*\((?P<values>[^()]*)\)
      | (?P<ekey>{_TOKEN})\s*(?P<eop>==|=|!=)\s*(?P<evalue>[^\s=!,()<>]*)
      | (?P<ckey>{_TOKEN})\s*(?P<cop>[<>])\s*(?P<cvalue>-?\d+)
      | (?P<xkey>{_TOKEN})
    )\s*$""",
    re.X,
)


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside ``( ... )``."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


class LabelSelector:
    """A parsed ``labelSelector``; grammar and semantics of apimachinery's ``labels.Parse``."""

    def __init__(self, text: str | None) -> None:
        self.requirements: list[tuple[str, str, frozenset[str]]] = []
        if not text or not text.strip():
            return
        for part in _split_top_level(text):
            match = _REQUIREMENT.match(part)
            if not match:
                raise bad_request(f"unable to parse requirement: {part.strip()!r}")
            groups = match.groupdict()
            if groups["nkey"]:
                req = (groups["nkey"], "!", frozenset())
            elif groups["skey"]:
                values = frozenset(v.strip() for v in groups["values"].split(",") if v.strip())
                req = (groups["skey"], groups["setop"], values)
            elif groups["ekey"]:
                op = "=" if groups["eop"] == "==" else groups["eop"]
                req = (groups["ekey"], op, frozenset({groups["evalue"]}))
            elif groups["ckey"]:
                req = (groups["ckey"], groups["cop"], frozenset({groups["cvalue"]}))
            else:
                req = (groups["xkey"], "exists", frozenset())
            errors = qualified_name_errors(req[0])
            for value in req[2]:
                errors += label_value_errors(value) if req[1] not in "<>" else []
            if errors:
                raise bad_request(f"unable to parse requirement: {part.strip()}: {errors[0]}")
            self.requirements.append(req)

    def matches(self, labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        for key, op, values in self.requirements:
            present = key in labels
            value = labels.get(key)
            if op == "exists":
                ok = present
            elif op == "!":
                ok = not present
            elif op in ("=", "in"):
                ok = present and value in values
            elif op in ("!=", "notin"):
                ok = not present or value not in values
            else:  # numeric < or >
                try:
                    ok = present and (int(value or "") > int(next(iter(values))) if op == ">"
                                      else int(value or "") < int(next(iter(values))))
                except ValueError:
                    ok = False
            if not ok:
                return False
        return True


def _dig(obj: JSON, dotted: str) -> str:
    current: Any = obj
    for part in dotted.split("."):
        if not isinstance(current, dict):
            return ""
        current = current.get(part)
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current) if not isinstance(current, dict | list) else ""


class FieldSelector:
    """A parsed ``fieldSelector``: only the field labels a real server supports per resource."""

    _TERM = re.compile(r"^\s*(?P<field>[^=!\s]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^,]*?)\s*$")

    def __init__(self, text: str | None, rt: ResourceType) -> None:
        self.terms: list[tuple[str, bool, str]] = []
        if not text or not text.strip():
            return
        allowed = {"metadata.name", "metadata.namespace", *rt.field_labels}
        for part in text.split(","):
            match = self._TERM.match(part)
            if not match:
                raise bad_request(f"invalid selector: {text!r}; can't understand {part!r}")
            fld = match["field"]
            if fld not in allowed:
                raise bad_request(f"field label not supported: {fld}")
            self.terms.append((fld, match["op"] == "!=", match["value"]))

    def matches(self, obj: JSON) -> bool:
        for fld, negate, value in self.terms:
            actual = _dig(obj, "source.component" if fld == "source" else fld)
            if (actual == value) == negate:
                return False
        return True


# --------------------------------------------------------------------------------------------
# Patches
# --------------------------------------------------------------------------------------------


class PatchError(Exception):
    """A patch could not be applied: 422 Invalid (e.g. a failing RFC 6902 ``test`` op or a
    missing path), or 400 BadRequest when ``malformed`` (not a patch document at all)."""

    def __init__(self, message: str, *, malformed: bool = False) -> None:
        super().__init__(message)
        self.malformed = malformed


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (``null`` deletes a key, objects merge, the rest replace)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise PatchError(f"invalid JSON pointer: {path!r}", malformed=True)
    if path == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(token: str, bound: int, path: list[str]) -> int:
    if not re.fullmatch(r"0|[1-9][0-9]*", token) or int(token) >= bound:
        raise PatchError(f"index {token!r} out of range in path /{'/'.join(path)}")
    return int(token)


def _lookup(doc: Any, tokens: list[str]) -> Any:
    current = doc
    for i, token in enumerate(tokens):
        if isinstance(current, dict) and token in current:
            current = current[token]
        elif isinstance(current, list):
            current = current[_index(token, len(current), tokens[: i + 1])]
        else:
            raise PatchError(f"path not found: /{'/'.join(tokens[: i + 1])}")
    return current


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: unlike Python's ``==``, ``true`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _lookup(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            parent.insert(_index(last, len(parent) + 1, tokens), value)
    else:
        raise PatchError(f"cannot add at /{'/'.join(tokens)}: parent is not a container")
    return doc


def _remove(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _lookup(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(last, len(parent), tokens))
    raise PatchError(f"path not found: /{'/'.join(tokens)}")


def apply_json_patch(doc: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch: add, remove, replace, move, copy and test."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations", malformed=True)
    doc = copy.deepcopy(doc)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation:
            raise PatchError(f"invalid operation: {operation!r}", malformed=True)
        op = operation["op"]
        path = _pointer(operation.get("path"))
        needs_value = op in ("add", "replace", "test")
        if needs_value and "value" not in operation:
            raise PatchError(f"operation {op!r} requires a value", malformed=True)
        value = copy.deepcopy(operation.get("value"))
        if op == "add":
            doc = _add(doc, path, value)
        elif op == "remove":
            _remove(doc, path)
        elif op == "replace":
            _lookup(doc, path)
            if path:
                _remove(doc, path)
            doc = _add(doc, path, value)
        elif op in ("move", "copy"):
            source = _pointer(operation.get("from"))
            if op == "move" and path[: len(source)] == source and path != source:
                raise PatchError("cannot move a value into one of its children")
            moved = copy.deepcopy(_lookup(doc, source))
            if op == "move":
                _remove(doc, source)
            doc = _add(doc, path, moved)
        elif op == "test":
            if not _json_equal(_lookup(doc, path), value):
                raise PatchError(f"testing value /{'/'.join(path)} failed")
        else:
            raise PatchError(f"unknown operation {op!r}", malformed=True)
    return doc


# --------------------------------------------------------------------------------------------
# Strict schema validation, cached
# --------------------------------------------------------------------------------------------

VERSION_ENV = "FAKEKUBE_K8S_VERSION"
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


class SchemaValidator:
    """``kubernetes_validate.validate(obj, version, strict=True)``, with everything cached.

    ``kubernetes_validate.validate`` re-reads and re-parses its 1.8 MB definitions file on every
    call (~12 ms).  This class resolves the schema directory exactly as it does, through its own
    helpers, but loads each file once and keeps one compiled jsonschema validator per kind, so a
    RoleBinding validates in well under a millisecond after the first.  Errors are the library's
    own ``kubernetes_validate.ValidationError``.
    """

    _shared: dict[str, SchemaValidator] = {}
    _shared_lock = threading.Lock()

    def __init__(self, desired_version: str) -> None:
        desired = desired_version.removeprefix("v")
        wanted = Version(kv_utils.major_minor(desired))
        shipped = kv_utils.all_versions()
        if wanted > Version(kv_utils.major_minor(shipped[-1])):
            raise ValueError(f"kubernetes-validate {kubernetes_validate.__version__} does not "
                             f"ship schemas for Kubernetes {desired}")
        usable = [v for v in shipped if Version(kv_utils.major_minor(v)) <= wanted]
        if not usable:
            raise ValueError(f"no kubernetes-validate schemas at or below {desired}")
        self.desired_version = desired
        self.schema_version = usable[-1]
        self._dir = f"kubernetes-json-schema/v{self.schema_version}-local-strict"
        self._lock = threading.Lock()
        self._registry: Registry | None = None
        self._validators: dict[tuple[str, str], Any] = {}

    @classmethod
    def shared(cls, desired_version: str | None = None) -> SchemaValidator:
        """One cache per version for the whole process: servers come and go per test."""
        version = (desired_version or os.environ.get(VERSION_ENV)
                   or kubernetes_validate.latest_version())
        with cls._shared_lock:
            if version not in cls._shared:
                cls._shared[version] = cls(version)
            return cls._shared[version]

    def _load(self, name: str) -> Any:
        return kv_utils.schema_contents(f"{self._dir}/{name}", self.desired_version)

    def _get_registry(self) -> Registry:
        if self._registry is None:
            self._registry = Resource.from_contents(self._load("_definitions.json")) @ Registry()
        return self._registry

    def _validator(self, api_version: str, kind: str) -> Any:
        key = (api_version, kind)
        if key not in self._validators:
            if key == ("", _OBJECT_META):
                schema: Any = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                               "$ref": f"https://kubernetes.io/api/_definitions.json#/$defs/"
                                       f"{_OBJECT_META}"}
            else:
                # Same file naming as kubernetes_validate.validate: rbac.authorization.k8s.io/v1
                # -> rbac-v1.
                slug = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
                try:
                    schema = self._load(f"{kind.lower()}-{slug}.json")
                except FileNotFoundError:
                    schema = None
            self._validators[key] = schema and jsonschema.validators.Draft202012Validator(
                schema, registry=self._get_registry())
        return self._validators[key]

    def has_schema(self, api_version: str, kind: str) -> bool:
        with self._lock:
            return self._validator(api_version, kind) is not None

    def validate(self, obj: JSON) -> bool:
        """Validate strictly; False when no schema exists for the kind.  Raises
        ``kubernetes_validate.ValidationError`` on failure."""
        with self._lock:
            validator = self._validator(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
            if validator is None:
                return False
            try:
                validator.validate(obj)
            except jsonschema.ValidationError as exc:
                raise kubernetes_validate.ValidationError(
                    exc, version=kv_utils.major_minor(self.schema_version)) from None
        return True

    def validate_metadata(self, metadata: Any) -> None:
        """Strict ObjectMeta check, for custom resources that have no schema of their own."""
        with self._lock:
            validator = self._validator("", _OBJECT_META)
            try:
                validator.validate(metadata)
            except jsonschema.ValidationError as exc:
                raise kubernetes_validate.ValidationError(
                    exc, version=kv_utils.major_minor(self.schema_version)) from None


def _field_path(path: Any) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# --------------------------------------------------------------------------------------------
# Kind-specific behaviour: defaults and immutable fields
# --------------------------------------------------------------------------------------------


def _apply_defaults(rt: ResourceType, obj: JSON) -> None:
    """The handful of defaults a real API server adds that callers commonly read back."""
    kind, meta = rt.kind, obj["metadata"]
    if rt.builtin and kind == "Namespace":
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    elif rt.builtin and kind in ("Pod", "PersistentVolumeClaim"):
        obj.setdefault("status", {}).setdefault("phase", "Pending")
    elif rt.builtin and kind == "Service":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
    elif rt.builtin and kind == "StatefulSet":
        obj.setdefault("spec", {}).setdefault("replicas", 1)


def _without(obj: Any, *keys: str) -> Any:
    return {k: v for k, v in obj.items() if k not in keys} if isinstance(obj, dict) else obj


_STS_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "revisionHistoryLimit",
                "persistentVolumeClaimRetentionPolicy", "minReadySeconds")


def _immutability_errors(rt: ResourceType, old: JSON, new: JSON) -> list[tuple[str, str, str]]:
    """Updates a real server forbids, as (reason, field, message) causes."""
    if not rt.builtin:
        return []
    kind = rt.kind
    if kind in ("RoleBinding", "ClusterRoleBinding") and old.get("roleRef") != new.get("roleRef"):
        return [("FieldValueInvalid", "roleRef",
                 f"Invalid value: {json.dumps(new.get('roleRef'))}: cannot change roleRef")]
    if kind in ("ConfigMap", "Secret"):
        errors = []
        if kind == "Secret" and old.get("type", "Opaque") != new.get("type", "Opaque"):
            errors.append(("FieldValueInvalid", "type",
                           f'Invalid value: "{new.get("type")}": field is immutable'))
        if old.get("immutable"):
            msg = "Forbidden: field is immutable when `immutable` is set"
            if not new.get("immutable"):
                errors.append(("FieldValueForbidden", "immutable", msg))
            for key in ("data", "binaryData"):
                if old.get(key) != new.get(key):
                    errors.append(("FieldValueForbidden", key, msg))
        return errors
    if kind == "StatefulSet" and (_without(old.get("spec"), *_STS_MUTABLE)
                                  != _without(new.get("spec"), *_STS_MUTABLE)):
        return [("FieldValueForbidden", "spec",
                 "Forbidden: updates to statefulset spec for fields other than 'replicas', "
                 "'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
                 "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
                 "forbidden")]
    if kind == "PersistentVolumeClaim":
        def core(spec: Any) -> Any:
            spec = _without(spec, "volumeAttributesClassName")
            if isinstance(spec, dict) and isinstance(spec.get("resources"), dict):
                spec = {**spec, "resources": _without(spec["resources"], "requests")}
            return spec
        if core(old.get("spec")) != core(new.get("spec")):
            return [("FieldValueForbidden", "spec",
                     "Forbidden: spec is immutable after creation except resources.requests and "
                     "volumeAttributesClassName for bound claims")]
    if kind == "Pod":
        def core(spec: Any) -> Any:
            spec = copy.deepcopy(_without(spec, "activeDeadlineSeconds", "tolerations",
                                          "terminationGracePeriodSeconds", "schedulingGates"))
            for key in ("containers", "initContainers"):
                for container in (spec or {}).get(key) or []:
                    container.pop("image", None)
            return spec
        if core(old.get("spec")) != core(new.get("spec")):
            return [("FieldValueForbidden", "spec",
                     "Forbidden: pod updates may not change fields other than "
                     "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                     "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
                     "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to "
                     "be set to 1 if it was previously negative)")]
    return []


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class RecordedRequest(NamedTuple):
    """One request as the server saw it; ``query`` keeps the last value of each parameter."""

    method: str
    path: str
    query: dict[str, str]


@dataclass(frozen=True)
class _Event:
    rv: int
    key: tuple[str, str]
    type: str
    obj: JSON
    old: JSON | None


@dataclass
class _Failure:
    method: str
    path: re.Pattern[str]
    code: int
    reason: str
    message: str
    times: int


@dataclass
class _Response:
    code: int
    body: bytes
    content_type: str = "application/json"


@dataclass
class _Stream:
    chunks: Iterator[bytes]
    content_type: str = "application/json"


@dataclass
class _Route:
    rt: ResourceType
    version: str
    namespace: str | None
    name: str | None = None
    subresource: str | None = None
    all_namespaces: bool = False
    watch_path: bool = False


@dataclass
class _WatchSpec:
    rt: ResourceType
    version: str
    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector
    resource_version: str | None
    deadline: float | None
    alive: Callable[[], bool] = field(default=lambda: True)
    send_initial_events: bool = False
    bookmarks: bool = False


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _guess_kind(plural: str) -> str:
    singular = plural[:-3] + "y" if plural.endswith("ies") else plural.removesuffix("s")
    return singular[:1].upper() + singular[1:]


class FakeKubeServer:
    """A strict in-memory Kubernetes API server on ``127.0.0.1:<ephemeral port>``.

    Lifecycle: ``start()`` / ``stop()`` (or use it as a context manager); ``url`` is the base URL;
    ``kubeconfig_path`` is set once :func:`configure_kubernetes_for` wrote a kubeconfig.

    Test hooks (all thread-safe, all return deep copies):

    * ``objects(plural, namespace=None, group="")`` / ``get_object(plural, name, namespace=None,
      group="")`` -- read state; ``plural`` may be group-qualified (``"notebooks.kubeflow.org"``).
    * ``put_object(obj, plural=None)`` / ``delete_object(...)`` -- change state bypassing
      validation and admission (watchers still see the events).
    * ``set_pod_log(namespace, name, text, container=None)``, ``append_pod_log(...)``: a
      ``follow`` read streams what is appended until the pod is gone or has finished.
    * ``requests`` -- list of :class:`RecordedRequest` (method, path, query); ``clear_requests()``.
    * ``fail_next(method, path_regex, status, reason, message=None, times=1)`` -- inject failures.
    * ``register_resource(...)`` / ``register_validator(group, kind, fn)`` -- extend the API.
    * ``reset()`` -- back to a fresh cluster; ``compact()`` -- forget watch history (410 Gone).
    * ``errors`` -- tracebacks of unexpected server exceptions (a bug in the fake or a request
      it could not handle); the pytest fixture fails the test if any occurred.
    * ``resource_version`` -- the current global resourceVersion, as a string.

    Constructor options: ``k8s_version`` (schema version for kubernetes-validate; default the
    newest it ships, or ``$FAKEKUBE_K8S_VERSION``), ``history_limit`` (watch events kept for
    resumption; older resourceVersions get 410 Gone), ``system_namespaces`` (seed default,
    kube-system, kube-public, kube-node-lease as a real cluster has), ``auto_register_crds``
    (accept any unknown custom group/version/plural as a namespaced resource).

    ``handle(method, path, query, headers, body)`` serves one request without HTTP, which is
    what the HTTP handler calls.
    """

    def __init__(self, *, k8s_version: str | None = None, history_limit: int = 1000,
                 system_namespaces: bool = True, auto_register_crds: bool = True) -> None:
        self.schemas = SchemaValidator.shared(k8s_version)
        self.k8s_version = self.schemas.desired_version
        self.history_limit = history_limit
        self.system_namespaces = system_namespaces
        self.auto_register_crds = auto_register_crds
        self.kubeconfig_path: Path | None = None
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._rv = 0
        self._epoch = 0
        self._stopping = False
        self._active_streams = 0
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._requests: list[RecordedRequest] = []
        self._errors: list[str] = []
        self._init_state()

    # ---- lifecycle ---------------------------------------------------------------------

    def _init_state(self) -> None:
        self._types: dict[tuple[str, str], ResourceType] = {
            rt.key: rt for rt in (*BUILTIN_RESOURCES, *DEFAULT_CUSTOM_RESOURCES)}
        self._data: dict[tuple[str, str], dict[tuple[str, str], JSON]] = {}
        self._history: deque[_Event] = deque()
        self._compacted_rv = self._rv
        self._logs: dict[tuple[str, str, str | None], str] = {}
        self._failures: list[_Failure] = []
        self._validators: dict[tuple[str, str], list[Validator]] = {}
        if self.system_namespaces:
            for name in SYSTEM_NAMESPACES:
                self.put_object({"apiVersion": "v1", "kind": "Namespace",
                                 "metadata": {"name": name}})

    def start(self) -> FakeKubeServer:
        """Bind an ephemeral loopback port and serve in a daemon thread."""
        if self._httpd is not None:
            return self
        self._stopping = False
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="fakekube", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """End open watches cleanly (terminating chunk), then close every connection."""
        httpd = self._httpd
        if httpd is None:
            return
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        httpd.shutdown()
        deadline = time.monotonic() + 2
        with self._cond:
            while self._active_streams and time.monotonic() < deadline:
                self._cond.wait(0.05)
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(2)
        self._httpd = None
        self._thread = None
        if self.kubeconfig_path is not None and self.kubeconfig_path.name.startswith("fakekube-"):
            with contextlib.suppress(OSError):
                self.kubeconfig_path.unlink()

    def __enter__(self) -> FakeKubeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the fake API server is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # ---- test hooks --------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every object, log, registration, validator, injected failure and request.
        resourceVersions keep increasing and open watches end, as after an etcd restore."""
        with self._cond:
            self._epoch += 1
            self._cond.notify_all()
            self._requests.clear()
            self._errors.clear()
            self._init_state()

    def compact(self) -> None:
        """Drop the watch history: watches from any older resourceVersion get 410 Gone."""
        with self._cond:
            self._history.clear()
            self._compacted_rv = self._rv
            self._cond.notify_all()

    @property
    def resource_version(self) -> str:
        with self._lock:
            return str(self._rv)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    @property
    def errors(self) -> list[str]:
        with self._lock:
            return list(self._errors)

    def fail_next(self, method: str, path_regex: str, status: int = 500,
                  reason: str = "InternalError", message: str | None = None,
                  times: int = 1) -> None:
        """Answer the next ``times`` requests matching (method or "*", ``re.search`` on the
        path) with a Failure Status instead of executing them."""
        with self._lock:
            self._failures.append(_Failure(method.upper(), re.compile(path_regex), status, reason,
                                           message or f"injected failure ({reason})", times))

    def register_resource(self, group: str, version: str, plural: str, kind: str, *,
                          namespaced: bool = True, status_subresource: bool = False,
                          name_rule: str = "subdomain") -> ResourceType:
        """Declare a custom resource (e.g. a cluster-scoped one) before it is used."""
        rt = ResourceType(group, version, plural, kind, namespaced=namespaced,
                          status_subresource=status_subresource, name_rule=name_rule)
        with self._lock:
            self._types[rt.key] = rt
        return rt

    def register_validator(self, group: str, kind: str, fn: Validator) -> None:
        """Run ``fn(obj)`` on every create/update of ``group``/``kind`` (after schema checks).
        It rejects with 422 by raising (the message is ``str(exc)``) or by returning a
        non-empty message or list of messages."""
        with self._lock:
            self._validators.setdefault((group, kind), []).append(fn)

    def set_pod_log(self, namespace: str, name: str, text: str,
                    container: str | None = None) -> None:
        with self._cond:
            self._logs[(namespace, name, container)] = text
            self._cond.notify_all()

    def append_pod_log(self, namespace: str, name: str, text: str,
                       container: str | None = None) -> None:
        """More output of a running container: a ``follow`` reader gets it at once."""
        with self._cond:
            key = (namespace, name, container)
            self._logs[key] = self._logs.get(key, "") + text
            self._cond.notify_all()

    def _type_for(self, plural: str, group: str) -> ResourceType:
        if not group and "." in plural:
            plural, group = plural.split(".", 1)
        rt = self._types.get((group, plural))
        if rt is None:
            rt = ResourceType(group, "v1", plural, _guess_kind(plural), kind_guessed=True)
        return rt

    def objects(self, plural: str, namespace: str | None = None, group: str = "") -> list[JSON]:
        """Deep copies of the stored objects, in (namespace, name) order."""
        with self._lock:
            rt = self._type_for(plural, group)
            store = self._data.get(rt.key, {})
            return [copy.deepcopy(store[k]) for k in sorted(store)
                    if namespace is None or k[0] == namespace]

    def get_object(self, plural: str, name: str, namespace: str | None = None,
                   group: str = "") -> JSON | None:
        with self._lock:
            rt = self._type_for(plural, group)
            obj = self._data.get(rt.key, {}).get((namespace or "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def put_object(self, obj: JSON, plural: str | None = None) -> JSON:
        """Store ``obj`` as-is (no validation, no admission), filling in the server-owned
        metadata; creates or overwrites, and notifies watchers."""
        obj = copy.deepcopy(obj)
        group = obj["apiVersion"].rpartition("/")[0]
        with self._cond:
            if plural is None:
                rt = next((t for t in self._types.values()
                           if t.group == group and t.kind == obj["kind"]), None)
                if rt is None:
                    rt = self._type_for(obj["kind"].lower() + "s", group)
            else:
                rt = self._type_for(plural, group)
            if rt.key not in self._types:
                self._types[rt.key] = replace(rt, version=obj["apiVersion"].rpartition("/")[2],
                                              kind=obj["kind"], kind_guessed=False)
            meta = obj.setdefault("metadata", {})
            namespace = meta.get("namespace", "default") if rt.namespaced else ""
            if rt.namespaced:
                meta["namespace"] = namespace
            else:
                meta.pop("namespace", None)
            old = self._data.get(rt.key, {}).get((namespace, meta["name"]))
            meta.setdefault("uid", old["metadata"]["uid"] if old else str(uuid.uuid4()))
            meta.setdefault("creationTimestamp",
                            old["metadata"]["creationTimestamp"] if old else _now())
            if rt.has_generation:
                meta.setdefault("generation", 1)
            _apply_defaults(rt, obj)
            return copy.deepcopy(self._commit(rt, "MODIFIED" if old else "ADDED", obj, old))

    def delete_object(self, plural: str, name: str, namespace: str | None = None,
                      group: str = "") -> JSON | None:
        """Remove an object immediately, ignoring finalizers; watchers see DELETED."""
        with self._cond:
            rt = self._type_for(plural, group)
            old = self._data.get(rt.key, {}).get((namespace or "", name))
            if old is None:
                return None
            return copy.deepcopy(self._commit(rt, "DELETED", copy.deepcopy(old), old))

    # ---- storage core (caller holds the lock) --------------------------------------------

    def _commit(self, rt: ResourceType, kind: str, obj: JSON, old: JSON | None) -> JSON:
        """Stamp a new resourceVersion on ``obj``, store or remove it, record the event."""
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        store = self._data.setdefault(rt.key, {})
        if kind == "DELETED":
            store.pop(key, None)
            if rt.key == ("", "pods"):
                for log_key in [k for k in self._logs if k[:2] == key]:
                    del self._logs[log_key]
        else:
            store[key] = obj
        if self.history_limit and len(self._history) >= self.history_limit:
            self._compacted_rv = self._history.popleft().rv
        self._history.append(_Event(self._rv, rt.key, kind, obj, old))
        self._cond.notify_all()
        return obj

    # ---- HTTP entry point ----------------------------------------------------------------

    def _record(self, method: str, path: str, query: dict[str, str]) -> None:
        with self._lock:
            self._requests.append(RecordedRequest(method, path, dict(query)))

    def _injected(self, method: str, path: str) -> ApiError | None:
        with self._lock:
            for failure in self._failures:
                if failure.method in ("*", method) and failure.path.search(path):
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures.remove(failure)
                    return ApiError(failure.code, failure.reason, failure.message, {})
        return None

    def handle(self, method: str, path: str, query: dict[str, str], headers: Any,
               body: bytes, alive: Callable[[], bool] = lambda: True) -> _Response | _Stream:
        """Serve one request; errors become Status bodies, surprises are kept in ``errors``."""
        self._record(method, path, query)
        try:
            injected = self._injected(method, path)
            if injected is not None:
                raise injected
            response = self._dispatch(method, path, query, headers, body, alive)
            if isinstance(response, _Stream):
                response.chunks = self._guarded(response.chunks, f"{method} {path}")
            return response
        except ApiError as exc:
            return _Response(exc.code, _dumps(exc.status()))
        except Exception:
            text = traceback.format_exc()
            with self._lock:
                self._errors.append(f"{method} {path}\n{text}")
            error = ApiError(500, "InternalError", f"fakekube internal error: {text}")
            return _Response(500, _dumps(error.status()))

    def _guarded(self, chunks: Iterator[bytes], what: str) -> Iterator[bytes]:
        """A stream runs after ``handle`` returned: keep its surprises in ``errors`` too."""
        try:
            yield from chunks
        except GeneratorExit:
            raise
        except Exception:
            with self._lock:
                self._errors.append(f"{what} (stream)\n{traceback.format_exc()}")

    def _dispatch(self, method: str, path: str, query: dict[str, str], headers: Any,
                  body: bytes, alive: Callable[[], bool]) -> _Response | _Stream:
        discovery = self._discovery(method, path)
        if discovery is not None:
            return discovery
        route = self._route(path)
        watch = route.watch_path or query.get("watch", "").lower() in ("true", "1")
        if method == "GET" and route.name is None:
            if watch:
                return self._start_watch(route, query, alive)
            return self._json(200, self._list(route, query))
        if route.all_namespaces and method != "GET":
            raise method_not_allowed()
        if route.subresource not in (None, "status", "log"):
            raise route_not_found()
        if route.subresource == "log":
            if route.rt.key != ("", "pods") or method != "GET":
                raise route_not_found()
            return self._log(route, query)
        dry_run = self._dry_run(query)
        if method == "GET":
            return self._json(200, self._present(route, self._get(route)))
        if method == "POST" and route.name is None:
            with self._cond:
                created = self._create(route, self._parse(body), dry_run)
            return self._json(201, self._present(route, created))
        if method == "PUT" and route.name is not None:
            with self._cond:
                updated = self._update(route, self._parse(body), dry_run, put=True)
            return self._json(200, self._present(route, updated))
        if method == "PATCH" and route.name is not None:
            content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
            with self._cond:
                patched, code = self._patch(route, content_type, self._parse(body), query,
                                            dry_run)
            return self._json(code, self._present(route, patched))
        if method == "DELETE":
            if route.subresource is not None:
                raise method_not_allowed()
            options = self._parse(body) if body.strip() else {}
            if not isinstance(options, dict):
                raise bad_request("DeleteOptions must be an object")
            dry_run = dry_run or options.get("dryRun") == ["All"]
            with self._cond:
                if route.name is None:
                    return self._json(200, self._delete_collection(route, query, dry_run))
                code, result = self._delete(route, options, dry_run)
            return self._json(code, result if result.get("kind") == "Status"
                              else self._present(route, result))
        raise method_not_allowed()

    @staticmethod
    def _json(code: int, obj: Any) -> _Response:
        return _Response(code, _dumps(obj))

    @staticmethod
    def _parse(body: bytes) -> Any:
        try:
            return json.loads(body.decode("utf-8")) if body.strip() else None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise bad_request(f"the body of the request was in an unknown format: {exc}") from None

    @staticmethod
    def _dry_run(query: dict[str, str]) -> bool:
        value = query.get("dryRun")
        if value not in (None, "", "All"):
            raise bad_request(f"Invalid dry run value: {value!r}: supported value is All")
        return value == "All"

    # ---- routing -------------------------------------------------------------------------

    def _lookup_type(self, group: str, version: str, plural: str) -> ResourceType:
        with self._lock:
            rt = self._types.get((group, plural))
            if rt is not None:
                if rt.builtin and rt.version != version:
                    raise route_not_found()
                return rt
            if group in BUILTIN_GROUPS or plural == "namespaces" or not self.auto_register_crds:
                raise route_not_found()
            rt = ResourceType(group, version, plural, _guess_kind(plural), kind_guessed=True)
            self._types[rt.key] = rt
            return rt

    def _route(self, path: str) -> _Route:
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise route_not_found()
        watch_path = bool(rest) and rest[0] == "watch"
        if watch_path:
            rest = rest[1:]
        if not rest:
            raise route_not_found()
        namespaced_path = (rest[0] == "namespaces" and len(rest) >= 3
                           and not (group == "" and len(rest) == 3
                                    and rest[2] in ("status", "finalize")))
        if namespaced_path:
            if len(rest) > 5:
                raise route_not_found()
            rt = self._lookup_type(group, version, rest[2])
            if not rt.namespaced:
                raise route_not_found()
            route = _Route(rt, version, rest[1], *rest[3:5])
        else:
            if len(rest) > 3:
                raise route_not_found()
            rt = self._lookup_type(group, version, rest[0])
            route = _Route(rt, version, None, *rest[1:3])
            if rt.namespaced:
                if route.name is not None:
                    raise route_not_found()
                route.all_namespaces = True
        route.watch_path = watch_path
        if watch_path and route.name is not None:
            raise route_not_found()
        return route

    def _discovery(self, method: str, path: str) -> _Response | None:
        path = path.rstrip("/") or "/"
        if path in ("/healthz", "/livez", "/readyz"):
            return _Response(200, b"ok", "text/plain; charset=utf-8")
        if path == "/version" and method == "GET":
            minor = kv_utils.major_minor(self.k8s_version).split(".")[1]
            return self._json(200, {
                "major": "1", "minor": minor, "gitVersion": f"v{self.k8s_version}-fakekube",
                "gitCommit": "0" * 40, "gitTreeState": "clean", "buildDate": _now(),
                "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"})
        with self._lock:
            types = list(self._types.values())
        if path == "/api" and method == "GET":
            return self._json(200, {"kind": "APIVersions", "versions": ["v1"],
                                    "serverAddressByClientCIDRs": [
                                        {"clientCIDR": "0.0.0.0/0",
                                         "serverAddress": self.url.split("//")[1]}]})
        if path == "/apis" and method == "GET":
            versions: dict[str, list[str]] = {}
            for rt in types:
                if rt.group and rt.version not in versions.setdefault(rt.group, []):
                    versions[rt.group].append(rt.version)
            groups = [{"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}
                                               for v in vs],
                       "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}}
                      for g, vs in sorted(versions.items())]
            return self._json(200, {"kind": "APIGroupList", "apiVersion": "v1",
                                    "groups": groups})
        match = re.fullmatch(r"/api/v1|/apis/([^/]+)/([^/]+)", path)
        if match and method == "GET":
            group, version = (match[1], match[2]) if match[1] else ("", "v1")
            verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update",
                     "watch"]
            resources = []
            for rt in types:
                if rt.group == group and rt.version == version:
                    resources.append({"name": rt.plural, "singularName": rt.kind.lower(),
                                      "namespaced": rt.namespaced, "kind": rt.kind,
                                      "verbs": verbs})
                    if rt.status_subresource:
                        resources.append({"name": f"{rt.plural}/status", "singularName": "",
                                          "namespaced": rt.namespaced, "kind": rt.kind,
                                          "verbs": ["get", "patch", "update"]})
            if not resources:
                raise route_not_found()
            if group == "":
                resources.append({"name": "pods/log", "singularName": "", "namespaced": True,
                                  "kind": "Pod", "verbs": ["get"]})
            return self._json(200, {"kind": "APIResourceList", "apiVersion": "v1",
                                    "groupVersion": f"{group}/{version}" if group else version,
                                    "resources": resources})
        return None

    # ---- presentation ----------------------------------------------------------------------

    @staticmethod
    def _present(route: _Route, obj: JSON, in_list: bool = False) -> JSON:
        """What goes on the wire: requested apiVersion; built-in list items carry no
        apiVersion/kind (as with a real server), custom resource items do."""
        obj = copy.deepcopy(obj)
        rt = route.rt
        if in_list and rt.builtin:
            obj.pop("apiVersion", None)
            obj.pop("kind", None)
        elif not rt.builtin and rt.group:
            obj["apiVersion"] = f"{rt.group}/{route.version}"
        return obj

    @staticmethod
    def _list_api_version(route: _Route) -> str:
        return f"{route.rt.group}/{route.version}" if route.rt.group else "v1"

    # ---- verbs -------------------------------------------------------------------------------

    def _get(self, route: _Route) -> JSON:
        with self._lock:
            obj = self._data.get(route.rt.key, {}).get((route.namespace or "", route.name or ""))
            if obj is None:
                raise not_found(route.rt, route.name or "")
            return obj

    def _matching(self, route: _Route, labels: LabelSelector,
                  fields: FieldSelector) -> list[tuple[tuple[str, str], JSON]]:
        store = self._data.get(route.rt.key, {})
        return [(k, store[k]) for k in sorted(store)
                if (route.namespace is None or k[0] == route.namespace)
                and labels.matches(store[k]["metadata"].get("labels"))
                and fields.matches(store[k])]

    def _list(self, route: _Route, query: dict[str, str]) -> JSON:
        labels = LabelSelector(query.get("labelSelector"))
        fields = FieldSelector(query.get("fieldSelector"), route.rt)
        with self._lock:
            items = self._matching(route, labels, fields)
            rv = str(self._rv)
        meta: JSON = {"resourceVersion": rv}
        token = query.get("continue")
        if token:
            try:
                start = json.loads(base64.urlsafe_b64decode(token.encode()))["start"]
            except (ValueError, KeyError, TypeError):
                raise bad_request("continue key is not valid") from None
            items = [(k, o) for k, o in items if list(k) > start]
        limit = int(query.get("limit") or 0)
        if 0 < limit < len(items):
            remaining = len(items) - limit
            items = items[:limit]
            meta["continue"] = base64.urlsafe_b64encode(
                json.dumps({"rv": rv, "start": list(items[-1][0])}).encode()).decode()
            if not labels.requirements and not fields.terms:
                meta["remainingItemCount"] = remaining
        return {"apiVersion": self._list_api_version(route),
                "kind": f"{route.rt.kind}List", "metadata": meta,
                "items": [self._present(route, o, in_list=True) for _, o in items]}

    def _log(self, route: _Route, query: dict[str, str]) -> _Response | _Stream:
        pod = self._get(route)
        containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        container = query.get("container") or None
        if container is None and len(containers) > 1:
            raise bad_request(f"a container name must be specified for pod {route.name}, "
                              f"choose one of: [{' '.join(containers)}]")
        if container is not None and container not in containers:
            raise bad_request(f"container {container} is not valid for pod {route.name}")
        with self._lock:
            key = (route.namespace or "", route.name or "")
            text = self._logs.get((*key, container), self._logs.get((*key, None), ""))
        sent = len(text)  # what a follow goes on from, whatever part of it the tail shows
        tail = query.get("tailLines")
        if tail:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-int(tail):]) if int(tail) > 0 else ""
        if query.get("follow", "").lower() in ("true", "1"):
            return _Stream(self._follow_log(key, container, text, sent),
                           "text/plain; charset=utf-8")
        return _Response(200, text.encode(), "text/plain; charset=utf-8")

    def _follow_log(self, key: tuple[str, str], container: str | None, first: str,
                    sent: int) -> Iterator[bytes]:
        """``first``, then whatever is appended past ``sent`` characters (the log when the
        request came, also what was appended while ``first`` was on its way), until the pod
        is gone or has finished (phase Succeeded or Failed), as a kubelet ends a follow when
        the container exits."""
        if first:
            yield first.encode()
        rt = self._types[("", "pods")]
        while True:
            with self._cond:
                text = self._logs.get((*key, container), self._logs.get((*key, None), ""))
                pod = self._data.get(rt.key, {}).get(key)
                phase = ((pod or {}).get("status") or {}).get("phase")
                ended = pod is None or phase in ("Succeeded", "Failed") or self._stopping
                if len(text) <= sent and not ended:
                    self._cond.wait(0.1)
                    continue
            if len(text) > sent:
                yield text[sent:].encode()
                sent = len(text)
            elif ended:
                return

    def _check_type_and_version(self, route: _Route, obj: JSON) -> ResourceType:
        """Fill in apiVersion/kind when absent (a real server infers them from the URL) and
        reject a body meant for a different endpoint."""
        rt = route.rt
        expected = f"{rt.group}/{route.version}" if rt.group else rt.version
        api_version = obj.setdefault("apiVersion", expected)
        if api_version != expected:
            raise bad_request(f"the API version in the data ({api_version}) does not match the "
                              f"expected API version ({expected})")
        kind = obj.get("kind")
        if not kind:
            if not rt.builtin:
                raise bad_request("Object 'Kind' is missing in the request body")
            kind = obj["kind"] = rt.kind
        if rt.kind_guessed and not rt.builtin:
            rt = replace(rt, kind=kind, kind_guessed=False)
            self._types[rt.key] = rt
            route.rt = rt
        if kind != rt.kind:
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind "
                              f"({rt.kind}) for {rt.resource}")
        return rt

    def _admit(self, rt: ResourceType, obj: JSON, old: JSON | None) -> None:
        """Everything a real server validates before it stores an object, strictly."""
        meta = obj["metadata"]
        name = meta.get("name") or ""
        causes: list[tuple[str, str, str]] = []
        if old is None:
            if not name:
                causes.append(("FieldValueRequired", "metadata.name",
                               "Required value: name or generateName is required"))
            else:
                causes += [("FieldValueInvalid", "metadata.name", f'Invalid value: "{name}": {m}')
                           for m in name_errors(name, rt.name_rule)]
        for section in ("labels", "annotations"):
            values = meta.get(section)
            if values is None:
                continue
            if not isinstance(values, dict):
                causes.append(("FieldValueInvalid", f"metadata.{section}", "must be an object"))
                continue
            for key, value in values.items():
                causes += [("FieldValueInvalid", f"metadata.{section}", f'Invalid value: "{key}"'
                            f": {m}") for m in qualified_name_errors(key)]
                if section == "labels":
                    causes += [("FieldValueInvalid", "metadata.labels", f"Invalid value: "
                                f"{json.dumps(value)}: {m}") for m in label_value_errors(value)]
                elif not isinstance(value, str):
                    causes.append(("FieldValueInvalid", f"metadata.annotations.{key}",
                                   "must be a string"))
            if section == "annotations" and len(_dumps(values)) > 256 * 1024:
                causes.append(("FieldValueTooLong", "metadata.annotations",
                               "Too long: must have at most 262144 bytes"))
        if old is not None:
            causes += _immutability_errors(rt, old, obj)
        if causes:
            raise invalid(rt, rt.kind, name, causes)
        try:
            if not (rt.builtin and self.schemas.validate(obj)):
                self.schemas.validate_metadata(meta)
        except kubernetes_validate.ValidationError as exc:
            path = ([] if rt.builtin else ["metadata"]) + list(exc.path)
            unknown = re.search(r"\('([^']+)' was unexpected\)", exc.message)
            if exc.validator == "additionalProperties" and unknown:
                path.append(unknown[1])  # point at the unknown field itself
            where = _field_path(path) or "<root>"
            raise invalid(rt, rt.kind, name,
                          [("FieldValueInvalid", where, exc.message)]) from None
        for fn in self._validators.get((rt.group, rt.kind), []):
            try:
                result = fn(copy.deepcopy(obj))
            except Exception as exc:
                raise invalid(rt, rt.kind, name, [("FieldValueInvalid", "", str(exc))]) from None
            messages = [result] if isinstance(result, str) else list(result or [])
            if messages:
                raise invalid(rt, rt.kind, name,
                              [("FieldValueInvalid", "", str(m)) for m in messages])

    def _create(self, route: _Route, body: Any, dry_run: bool) -> JSON:
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format: expected an "
                              "object")
        obj = copy.deepcopy(body)
        rt = self._check_type_and_version(route, obj)
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if rt.namespaced:
            namespace = meta.setdefault("namespace", route.namespace)
            if namespace != route.namespace:
                raise bad_request("the namespace of the provided object does not match the "
                                  "namespace sent on the request")
            namespaces = self._types[("", "namespaces")]
            if ("", route.namespace) not in self._data.get(namespaces.key, {}):
                raise not_found(namespaces, route.namespace or "")
        else:
            meta.pop("namespace", None)
        if meta.get("resourceVersion"):
            raise ApiError(500, "InternalError", "resourceVersion should not be set on objects "
                           "to be created", {})
        if not meta.get("name") and meta.get("generateName"):
            base = str(meta["generateName"])[:58]
            meta["name"] = base + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))
        for server_owned in ("uid", "creationTimestamp", "deletionTimestamp",
                             "deletionGracePeriodSeconds", "generation", "selfLink"):
            meta.pop(server_owned, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        if rt.has_generation:
            meta["generation"] = 1
        if rt.status_subresource:
            obj.pop("status", None)
        if meta.get("name"):
            _apply_defaults(rt, obj)
        self._admit(rt, obj, None)
        key = (meta.get("namespace", ""), meta["name"])
        if key in self._data.get(rt.key, {}):
            raise already_exists(rt, meta["name"])
        if dry_run:
            return obj
        return self._commit(rt, "ADDED", obj, None)

    def _update(self, route: _Route, body: Any, dry_run: bool, *, put: bool,
                old: JSON | None = None) -> JSON:
        """Replace (PUT) or finish a patch: preconditions, server-owned metadata, admission,
        no-op detection, generation, finalizer completion."""
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format: expected an "
                              "object")
        old = old if old is not None else self._get(route)
        rt = route.rt
        new = copy.deepcopy(body)
        rt = self._check_type_and_version(route, new)
        meta = new.get("metadata")
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        old_meta = old["metadata"]
        if meta.get("name", route.name) != route.name:
            raise bad_request(f"the name of the object ({meta.get('name')}) does not match the "
                              f"name on the URL ({route.name})")
        if rt.namespaced and meta.get("namespace", route.namespace) != route.namespace:
            raise bad_request("the namespace of the provided object does not match the "
                              "namespace sent on the request")
        given_rv = meta.get("resourceVersion")
        if given_rv and given_rv != old_meta["resourceVersion"]:
            raise conflict(rt, route.name or "")
        if put and not given_rv and not rt.builtin:
            raise invalid(rt, rt.kind, route.name or "", [
                ("FieldValueInvalid", "metadata.resourceVersion",
                 "Invalid value: 0x0: must be specified for an update")])
        for owned in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "generation", "resourceVersion"):
            if owned in old_meta:
                meta[owned] = old_meta[owned]
            else:
                meta.pop(owned, None)
        if route.subresource == "status":
            new = {**copy.deepcopy(old), "status": new.get("status")}
            if new["status"] is None:
                del new["status"]
            meta = new["metadata"]
        elif rt.status_subresource:
            new.pop("status", None)
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
        _apply_defaults(rt, new)
        if (old_meta.get("deletionTimestamp") and
                set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])):
            raise invalid(rt, rt.kind, route.name or "", [
                ("FieldValueForbidden", "metadata.finalizers",
                 "Forbidden: no new finalizers can be added if the object is being deleted")])
        self._admit(rt, new, old)
        if new == old:
            return old  # a no-op write: no new resourceVersion, no watch event
        if rt.has_generation and _without(new, "metadata", "status") != _without(
                old, "metadata", "status"):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        if dry_run:
            return new
        if old_meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._commit(rt, "DELETED", new, old)
        return self._commit(rt, "MODIFIED", new, old)

    def _patch(self, route: _Route, content_type: str, patch: Any, query: dict[str, str],
               dry_run: bool) -> tuple[JSON, int]:
        rt = route.rt
        if content_type == "application/apply-patch+yaml":
            return self._apply(route, patch, query, dry_run)
        if content_type == "application/strategic-merge-patch+json" and not rt.builtin:
            raise ApiError(415, "UnsupportedMediaType",
                           "strategic merge patch is not supported for custom resources; the body "
                           "of the request was in an unknown format - accepted media types "
                           "include: application/json-patch+json, application/merge-patch+json, "
                           "application/apply-patch+yaml", {})
        old = self._get(route)
        try:
            if content_type == "application/json-patch+json":
                result = apply_json_patch(old, patch)
            elif content_type in ("application/merge-patch+json",
                                  "application/strategic-merge-patch+json"):
                if not isinstance(patch, dict):
                    raise PatchError("a merge patch must be a JSON object", malformed=True)
                result = apply_merge_patch(old, {k: v for k, v in patch.items()
                                                 if not k.startswith("$")})
            else:
                raise ApiError(415, "UnsupportedMediaType",
                               f"the body of the request was in an unknown format - accepted "
                               f"media types include: application/json-patch+json, "
                               f"application/merge-patch+json, application/apply-patch+yaml, "
                               f"application/strategic-merge-patch+json (got {content_type!r})",
                               {})
        except PatchError as exc:
            if exc.malformed:
                raise bad_request(str(exc)) from None
            raise invalid(rt, rt.kind, route.name or "",
                          [("FieldValueInvalid", "", str(exc))]) from None
        if not isinstance(result, dict) or not isinstance(result.get("metadata"), dict):
            raise bad_request("the patched object is not a valid object")
        return self._update(route, result, dry_run, put=False, old=old), 200

    def _apply(self, route: _Route, patch: Any, query: dict[str, str],
               dry_run: bool) -> tuple[JSON, int]:
        """Server-side apply, approximated: create when missing, else a merge patch."""
        if not query.get("fieldManager"):
            raise bad_request("PATCH, application/apply-patch+yaml requires fieldManager to be "
                              "set")
        if not isinstance(patch, dict):
            raise bad_request("the body of the request was in an unknown format")
        existing = self._data.get(route.rt.key, {}).get((route.namespace or "", route.name or ""))
        if existing is None:
            body = copy.deepcopy(patch)
            body.setdefault("metadata", {}).setdefault("name", route.name)
            return self._create(route, body, dry_run), 201
        merged = apply_merge_patch(existing, _without(patch, "status"))
        return self._update(route, merged, dry_run, put=False, old=existing), 200

    def _delete(self, route: _Route, options: JSON, dry_run: bool) -> tuple[int, JSON]:
        """200 with the object or a Success Status (per resource); 202 while finalizers wait."""
        code, obj, gone = self._remove(route, options, dry_run)
        if gone and not route.rt.return_deleted:
            details = _details(route.rt, route.name or "")
            details["uid"] = obj["metadata"]["uid"]
            return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                         "status": "Success", "details": details}
        return code, obj

    def _remove(self, route: _Route, options: JSON, dry_run: bool) -> tuple[int, JSON, bool]:
        """Delete one object: (HTTP code, resulting object, whether it is gone now)."""
        rt = route.rt
        old = self._get(route)
        preconditions = options.get("preconditions") or {}
        for key in ("uid", "resourceVersion"):
            wanted = preconditions.get(key)
            if wanted and wanted != old["metadata"].get(key):
                raise conflict(rt, route.name or "",
                               f"Precondition failed: {key} in precondition: {wanted}, "
                               f"{key} in object meta: {old['metadata'].get(key)}")
        if rt.key == ("", "namespaces") and route.name in PROTECTED_NAMESPACES:
            raise ApiError(403, "Forbidden", f'namespaces "{route.name}" is forbidden: this '
                           "namespace may not be deleted", _details(rt, route.name or ""))
        finalizers = old["metadata"].get("finalizers")
        if dry_run:
            return (202 if finalizers else 200), copy.deepcopy(old), not finalizers
        if rt.key == ("", "namespaces"):
            return 200, self._delete_namespace(rt, old), True
        if finalizers:
            if old["metadata"].get("deletionTimestamp"):
                return 202, old, False
            marked = copy.deepcopy(old)
            marked["metadata"]["deletionTimestamp"] = _now()
            marked["metadata"]["deletionGracePeriodSeconds"] = 0
            return 202, self._commit(rt, "MODIFIED", marked, old), False
        return 200, self._commit(rt, "DELETED", copy.deepcopy(old), old), True

    def _delete_namespace(self, rt: ResourceType, namespace: JSON) -> JSON:
        """Everything inside goes (finalizers notwithstanding), then the namespace itself; the
        answer is the namespace as it looked when termination began, as on a real server."""
        name = namespace["metadata"]["name"]
        for key in list(self._data):
            owner = self._types.get(key)
            if owner is None or not owner.namespaced:
                continue
            for obj_key in [k for k in sorted(self._data[key]) if k[0] == name]:
                obj = self._data[key][obj_key]
                self._commit(owner, "DELETED", copy.deepcopy(obj), obj)
        terminating = copy.deepcopy(namespace)
        terminating["metadata"]["deletionTimestamp"] = _now()
        terminating["status"] = {"phase": "Terminating"}
        answer = copy.deepcopy(terminating)
        self._commit(rt, "DELETED", terminating, namespace)
        answer["metadata"]["resourceVersion"] = terminating["metadata"]["resourceVersion"]
        return answer

    def _delete_collection(self, route: _Route, query: dict[str, str], dry_run: bool) -> JSON:
        labels = LabelSelector(query.get("labelSelector"))
        fields = FieldSelector(query.get("fieldSelector"), route.rt)
        deleted = []
        for key, _ in self._matching(route, labels, fields):
            item = _Route(route.rt, route.version, key[0] or None, key[1])
            deleted.append(self._remove(item, {}, dry_run)[1])
        return {"apiVersion": self._list_api_version(route),
                "kind": f"{route.rt.kind}List", "metadata": {"resourceVersion": str(self._rv)},
                "items": [self._present(route, o, in_list=True) for o in deleted]}

    # ---- watch -------------------------------------------------------------------------------

    def _start_watch(self, route: _Route, query: dict[str, str],
                     alive: Callable[[], bool]) -> _Stream:
        """Validate everything before the 200 goes out; then stream."""
        rv = query.get("resourceVersion") or None
        if rv is not None and rv != "0" and not rv.isdigit():
            raise bad_request(f"invalid resource version: {rv!r}")
        timeout = query.get("timeoutSeconds")
        spec = _WatchSpec(
            rt=route.rt, version=route.version, namespace=route.namespace,
            labels=LabelSelector(query.get("labelSelector")),
            fields=FieldSelector(query.get("fieldSelector"), route.rt),
            resource_version=rv,
            deadline=time.monotonic() + float(timeout) if timeout else None,
            alive=alive,
            send_initial_events=query.get("sendInitialEvents") == "true",
            bookmarks=query.get("allowWatchBookmarks") == "true")
        return _Stream(self._watch_lines(route, spec))

    def _matches(self, spec: _WatchSpec, obj: JSON | None) -> bool:
        if obj is None:
            return False
        meta = obj["metadata"]
        return ((spec.namespace is None or meta.get("namespace") == spec.namespace)
                and spec.labels.matches(meta.get("labels")) and spec.fields.matches(obj))

    def _translate(self, route: _Route, spec: _WatchSpec, event: _Event) -> bytes | None:
        """Filtered-watch semantics: an object entering the selection is ADDED, one leaving it
        is DELETED, exactly as the watch cache reports it."""
        if event.key != spec.rt.key:
            return None
        now = event.type != "DELETED" and self._matches(spec, event.obj)
        before = self._matches(spec, event.old)
        if event.type == "DELETED":
            kind = "DELETED" if before else None
        elif now:
            kind = "MODIFIED" if before else "ADDED"
        else:
            kind = "DELETED" if before else None
        if kind is None:
            return None
        return _dumps({"type": kind, "object": self._present(route, event.obj)}) + b"\n"

    def _watch_lines(self, route: _Route, spec: _WatchSpec) -> Iterator[bytes]:
        gone = None
        with self._cond:
            epoch = self._epoch
            if spec.resource_version in (None, "0") or spec.send_initial_events:
                initial = [_dumps({"type": "ADDED", "object": self._present(route, obj)}) + b"\n"
                           for _, obj in self._matching(_Route(spec.rt, spec.version,
                                                               spec.namespace),
                                                        spec.labels, spec.fields)]
                cursor = self._rv
                if spec.send_initial_events and spec.bookmarks:
                    initial.append(_dumps({"type": "BOOKMARK", "object": {
                        "apiVersion": self._list_api_version(route), "kind": spec.rt.kind,
                        "metadata": {"resourceVersion": str(cursor), "annotations": {
                            "k8s.io/initial-events-end": "true"}}}}) + b"\n")
            else:
                initial = []
                cursor = int(spec.resource_version)
                if cursor < self._compacted_rv:
                    gone = self._compacted_rv
        if gone is not None:
            yield self._gone(cursor, gone)
            return
        yield from initial
        while True:
            with self._cond:
                while True:
                    if self._stopping or epoch != self._epoch or not spec.alive():
                        return
                    remaining = None if spec.deadline is None else spec.deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return
                    if cursor < self._compacted_rv:
                        gone = self._compacted_rv
                        break
                    pending = [e for e in self._history if e.rv > cursor]
                    if pending:
                        break
                    self._cond.wait(0.2 if remaining is None else min(0.2, remaining))
            if gone is not None:
                yield self._gone(cursor, gone)
                return
            for event in pending:
                cursor = event.rv
                line = self._translate(route, spec, event)
                if line is not None:
                    yield line

    @staticmethod
    def _gone(cursor: int, oldest: int) -> bytes:
        status = ApiError(410, "Expired", f"too old resource version: {cursor} ({oldest})")
        return _dumps({"type": "ERROR", "object": status.status()}) + b"\n"


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    """Tracks open connections so ``stop()`` can close idle keep-alive sockets too."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 fake: FakeKubeServer) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def server_bind(self) -> None:
        """HTTPServer's version reverse-resolves the address (``getfqdn``), which can stall for
        seconds on hosts without working DNS; a loopback test server does not need a name."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def _peer_alive(sock: socket.socket) -> bool:
    """False once the client has closed its end (readable with nothing to read)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return not readable or sock.recv(1, socket.MSG_PEEK) != b""
    except (OSError, ValueError):
        return False


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive: Content-Length on every response, chunked for streams."""

    protocol_version = "HTTP/1.1"
    server_version = "fakekube/1.0"
    #: headers and body go out in separate writes; with Nagle on, keep-alive requests would
    #: each stall ~40 ms on the client's delayed ACK.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest output is for test failures, not access logs."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        fake = self.server.fake
        response = fake.handle(method, unquote(url.path), query, self.headers, body,
                               alive=lambda: _peer_alive(self.connection))
        try:
            if isinstance(response, _Stream):
                self._send_stream(response)
            else:
                self.send_response(response.code)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                self.send_header("Cache-Control", "no-cache, private")
                self.end_headers()
                self.wfile.write(response.body)
        except OSError:
            self.close_connection = True

    def _send_stream(self, stream: _Stream) -> None:
        fake = self.server.fake
        with fake._cond:
            fake._active_streams += 1
        try:
            self.send_response(200)
            self.send_header("Content-Type", stream.content_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache, private")
            self.end_headers()
            for chunk in stream.chunks:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True
        finally:
            close = getattr(stream.chunks, "close", None)
            if close is not None:
                close()
            with fake._cond:
                fake._active_streams -= 1
                fake._cond.notify_all()
            if fake._stopping:
                self.close_connection = True


# --------------------------------------------------------------------------------------------
# kubeconfig
# --------------------------------------------------------------------------------------------


def kubeconfig_dict(url: str, namespace: str = "default") -> JSON:
    """A kubeconfig that ``kubernetes.config.load_kube_config`` accepts: no auth, plain HTTP."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fakekube", "cluster": {"server": url}}],
        "users": [{"name": "fakekube", "user": {}}],
        "contexts": [{"name": "fakekube", "context": {"cluster": "fakekube",
                                                      "user": "fakekube",
                                                      "namespace": namespace}}],
        "current-context": "fakekube",
        "preferences": {},
    }


def configure_kubernetes_for(fake: FakeKubeServer, path: str | os.PathLike[str] | None = None
                             ) -> Path:
    """Write a kubeconfig for ``fake`` (JSON, which is valid YAML) and remember it as
    ``fake.kubeconfig_path``; without ``path`` a temporary file is used and removed on stop."""
    if path is None:
        fd, name = tempfile.mkstemp(prefix="fakekube-", suffix=".kubeconfig")
        os.close(fd)
        path = name
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(kubeconfig_dict(fake.url), indent=2))
    fake.kubeconfig_path = target
    return target
