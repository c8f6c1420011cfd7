"""Kubernetes mode: a namespace is a Namespace with RoleBindings, as in Kubeflow."""

from __future__ import annotations

import contextlib

from django.conf import settings

from dashboard import kube
from dashboard.namespaces import manifests
from dashboard.namespaces.base import BackendError, NamespaceBackend


def _api_error(action: str, exc) -> BackendError:
    status = getattr(exc, "status", 0) or 0
    retryable = status == 0 or status >= 500 or status == 429
    return BackendError(f"Kubernetes refused to {action}: {kube.error_message(exc)}", retryable)


class KubernetesNamespaceBackend(NamespaceBackend):
    name = "kubernetes"

    def _apis(self):
        from kubernetes import client

        api = kube.api_client()
        return client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)

    def create_namespace(self, profile) -> None:
        from kubernetes.client.exceptions import ApiException

        core, rbac = self._apis()
        name, owner = profile.name, profile.owner.email
        try:
            core.create_namespace(manifests.make_namespace(name, owner))
        except ApiException as exc:
            if exc.status != 409:
                raise _api_error(f"create the namespace {name}", exc) from exc
            self._check_adoptable(core, name, owner)
        try:
            for obj in manifests.namespace_objects(name, owner, settings.KFDASH_CLUSTER_ROLES):
                self._create(core, rbac, obj)
        except ApiException as exc:
            self._delete_quietly(core, name)
            raise _api_error(f"set up the namespace {name}", exc) from exc

    def _check_adoptable(self, core, name: str, owner: str) -> None:
        """A namespace that already exists is taken over only if it is the same owner's
        Kubeflow profile namespace (say, after the database was restored)."""
        existing = core.read_namespace(name)
        annotations = existing.metadata.annotations or {}
        labels = existing.metadata.labels or {}
        if annotations.get("owner") != owner or labels.get("app.kubernetes.io/part-of") != (
            "kubeflow-profile"
        ):
            raise BackendError(f"The namespace {name} already exists in the cluster.")

    @staticmethod
    def _create(core, rbac, obj: dict) -> None:
        from kubernetes.client.exceptions import ApiException

        namespace = obj["metadata"]["namespace"]
        create = {
            "ServiceAccount": core.create_namespaced_service_account,
            "RoleBinding": rbac.create_namespaced_role_binding,
        }[obj["kind"]]
        try:
            create(namespace, obj)
        except ApiException as exc:
            if exc.status != 409:  # already there from an earlier, interrupted attempt
                raise

    @staticmethod
    def _delete_quietly(core, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        with contextlib.suppress(ApiException):
            core.delete_namespace(name)

    def delete_namespace(self, profile) -> None:
        from kubernetes.client.exceptions import ApiException

        core, _ = self._apis()
        try:
            core.delete_namespace(profile.name)
        except ApiException as exc:
            if exc.status != 404:
                raise _api_error(f"delete the namespace {profile.name}", exc) from exc

    def _user_bindings(self, rbac, namespace: str, email: str) -> list:
        """The contributor RoleBindings of ``email`` (KFAM marks them with annotations)."""
        bindings = rbac.list_namespaced_role_binding(namespace).items
        return [
            b for b in bindings
            if (b.metadata.annotations or {}).get("user") == email
            and b.metadata.name != manifests.OWNER_BINDING
        ]

    def grant(self, profile, email, role) -> None:
        from kubernetes.client.exceptions import ApiException

        _, rbac = self._apis()
        role = str(role.value if hasattr(role, "value") else role)
        wanted = manifests.make_user_binding(
            profile.name, email, role, settings.KFDASH_CLUSTER_ROLES[role]
        )
        try:
            have = self._user_bindings(rbac, profile.name, email)
            if not any(b.metadata.name == wanted["metadata"]["name"] for b in have):
                rbac.create_namespaced_role_binding(profile.name, wanted)
            for binding in have:
                if binding.metadata.name != wanted["metadata"]["name"]:
                    rbac.delete_namespaced_role_binding(binding.metadata.name, profile.name)
        except ApiException as exc:
            raise _api_error(f"give {email} the {role} role in {profile.name}", exc) from exc

    def revoke(self, profile, email) -> None:
        from kubernetes.client.exceptions import ApiException

        _, rbac = self._apis()
        try:
            for binding in self._user_bindings(rbac, profile.name, email):
                try:
                    rbac.delete_namespaced_role_binding(binding.metadata.name, profile.name)
                except ApiException as exc:
                    if exc.status != 404:
                        raise
        except ApiException as exc:
            raise _api_error(f"remove {email} from {profile.name}", exc) from exc
