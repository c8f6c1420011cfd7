"""The Kubernetes objects of a namespace, as Kubeflow's profile controller and KFAM make them."""

from dashboard.namespaces import manifests

ROLES = {"admin": "kubeflow-admin", "edit": "kubeflow-edit", "view": "kubeflow-view"}


def test_it_labels_namespaces_like_kubeflow_profiles():
    assert manifests.make_namespace("team-a", "ana@example.com") == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "team-a",
            "labels": {
                "app.kubernetes.io/part-of": "kubeflow-profile",
                "katib.kubeflow.org/metrics-collector-injection": "enabled",
                "pipelines.kubeflow.org/enabled": "true",
                "serving.kubeflow.org/inferenceservice": "enabled",
                "app.kubernetes.io/managed-by": "kfdash",
            },
            "annotations": {"owner": "ana@example.com"},
        },
    }


def test_it_names_and_annotates_bindings_like_kfam():
    binding = manifests.make_user_binding("team-a", "Bob.B@Example.com".lower(), "edit",
                                          "kubeflow-edit")
    assert binding == {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": "user-bob-b-example-com-clusterrole-edit",
            "namespace": "team-a",
            "labels": {"app.kubernetes.io/managed-by": "kfdash"},
            "annotations": {"user": "bob.b@example.com", "role": "edit"},
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "kubeflow-edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                      "name": "bob.b@example.com"}],
    }


def test_it_gives_a_new_namespace_an_owner_binding_and_service_accounts():
    objects = manifests.namespace_objects("team-a", "ana@example.com", ROLES)
    summary = [(o["kind"], o["metadata"]["name"], o.get("roleRef", {}).get("name"))
               for o in objects]
    assert summary == [
        ("RoleBinding", "namespaceAdmin", "kubeflow-admin"),
        ("ServiceAccount", "default-editor", None),
        ("RoleBinding", "default-editor", "kubeflow-edit"),
        ("ServiceAccount", "default-viewer", None),
        ("RoleBinding", "default-viewer", "kubeflow-view"),
    ]
    assert objects[0]["metadata"]["annotations"] == {"user": "ana@example.com", "role": "admin"}
    assert objects[2]["subjects"] == [
        {"kind": "ServiceAccount", "name": "default-editor", "namespace": "team-a"}]
