"""Kubernetes objects for a namespace, as Kubeflow's profile controller and KFAM make them.

Pure functions of their arguments, so they are tested by comparing dicts.
"""

from __future__ import annotations

import re

RBAC_GROUP = "rbac.authorization.k8s.io"
MANAGED_BY = {"app.kubernetes.io/managed-by": "kfdash"}

# Labels Kubeflow's profile controller puts on every profile namespace, so that
# the rest of a Kubeflow installation (pipelines, katib, serving) treats it as one.
PROFILE_NAMESPACE_LABELS = {
    "app.kubernetes.io/part-of": "kubeflow-profile",
    "katib.kubeflow.org/metrics-collector-injection": "enabled",
    "pipelines.kubeflow.org/enabled": "true",
    "serving.kubeflow.org/inferenceservice": "enabled",
}

OWNER_BINDING = "namespaceAdmin"
# Service accounts the profile controller makes: pods run as default-editor.
SERVICE_ACCOUNTS = {"default-editor": "edit", "default-viewer": "view"}


def make_namespace(name: str, owner_email: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {**PROFILE_NAMESPACE_LABELS, **MANAGED_BY},
            "annotations": {"owner": owner_email},
        },
    }


def binding_name(email: str, role: str) -> str:
    """KFAM's name for a contributor's RoleBinding: ``user-<email>-clusterrole-<role>``."""
    slug = re.sub(r"[^a-z0-9-]", "-", email.lower())
    return f"user-{slug}-clusterrole-{role}"[:253]


def make_user_binding(
    namespace: str, email: str, role: str, cluster_role: str, name: str | None = None
) -> dict:
    """A RoleBinding of ``email`` to the cluster role for ``role``, annotated like KFAM's."""
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": name or binding_name(email, role),
            "namespace": namespace,
            "labels": dict(MANAGED_BY),
            "annotations": {"user": email, "role": role},
        },
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": cluster_role},
        "subjects": [{"apiGroup": RBAC_GROUP, "kind": "User", "name": email}],
    }


def make_service_account(namespace: str, name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
    }


def make_service_account_binding(namespace: str, account: str, cluster_role: str) -> dict:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": account, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": cluster_role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    }


def namespace_objects(name: str, owner_email: str, cluster_roles: dict[str, str]) -> list[dict]:
    """Everything a new namespace holds besides itself: the owner's admin binding and
    the default service accounts with their bindings."""
    objects = [
        make_user_binding(name, owner_email, "admin", cluster_roles["admin"], OWNER_BINDING)
    ]
    for account, role in SERVICE_ACCOUNTS.items():
        objects.append(make_service_account(name, account))
        objects.append(make_service_account_binding(name, account, cluster_roles[role]))
    return objects
