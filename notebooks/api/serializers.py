"""API shapes of notebook servers and volumes."""

from __future__ import annotations

from rest_framework import serializers

from notebooks.models import Notebook, Volume


class MountSerializer(serializers.Serializer):
    volume = serializers.CharField(source="volume.name")
    mount_path = serializers.CharField()


class NotebookSerializer(serializers.ModelSerializer):
    workspace = serializers.CharField(source="workspace.name", default=None)
    data_volumes = MountSerializer(source="data_mounts", many=True)
    url = serializers.CharField(source="base_url")
    created_by = serializers.EmailField(source="created_by.email", default=None)

    class Meta:
        model = Notebook
        fields = ["name", "server_type", "image", "image_pull_policy", "cpu", "cpu_limit",
                  "memory", "memory_limit", "gpu_count", "gpu_vendor", "workspace",
                  "data_volumes", "configurations", "shm", "affinity", "tolerations",
                  "stopped", "status", "status_message", "url", "created_by", "created_at",
                  "last_activity"]


class DataVolumeRequest(serializers.Serializer):
    mode = serializers.ChoiceField(choices=["new", "existing"], default="new")
    name = serializers.CharField(required=False, allow_blank=True)
    size = serializers.CharField(required=False, allow_blank=True)
    existing = serializers.CharField(required=False, allow_blank=True)
    mount_path = serializers.CharField()


class NotebookRequest(serializers.Serializer):
    """What a client sends to create a notebook; checked by the same form as the page."""

    name = serializers.CharField()
    server_type = serializers.CharField(required=False)
    image = serializers.CharField(required=False)
    custom_image = serializers.CharField(required=False)
    image_pull_policy = serializers.CharField(required=False)
    cpu = serializers.CharField(required=False)
    cpu_limit = serializers.CharField(required=False)
    memory = serializers.CharField(required=False)
    memory_limit = serializers.CharField(required=False)
    gpu_count = serializers.IntegerField(required=False)
    gpu_vendor = serializers.CharField(required=False)
    workspace_mode = serializers.ChoiceField(choices=["new", "existing", "none"], required=False)
    workspace_name = serializers.CharField(required=False)
    workspace_size = serializers.CharField(required=False)
    workspace_existing = serializers.CharField(required=False)
    data_volumes = DataVolumeRequest(many=True, required=False)
    configurations = serializers.ListField(child=serializers.CharField(), required=False)
    shm = serializers.BooleanField(required=False)
    affinity = serializers.CharField(required=False)
    tolerations = serializers.CharField(required=False)


class VolumeSerializer(serializers.ModelSerializer):
    used_by = serializers.ListField(source="users", child=serializers.CharField())

    class Meta:
        model = Volume
        fields = ["name", "size", "used_by", "created_at"]
