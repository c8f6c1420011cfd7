"""The notebooks API (``/api/v1/namespaces/{ns}/notebooks``), for scripts and CI."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard import access
from dashboard.choices import Role
from notebooks.api import serializers as s
from notebooks.config import spawner_config
from notebooks.forms import NotebookForm
from notebooks.models import Notebook


def form_data(request_data: dict, defaults: dict) -> dict:
    """The page form's POST data for an API request: defaults, then what was sent."""
    data = {k: v for k, v in defaults.items() if v is not None}
    data.update({k: v for k, v in request_data.items() if k != "data_volumes"})
    data["shm"] = "on" if data.get("shm") else ""
    rows = request_data.get("data_volumes", [])
    data.update({"vol-TOTAL_FORMS": str(len(rows)), "vol-INITIAL_FORMS": "0"})
    for i, row in enumerate(rows):
        data.update({f"vol-{i}-{k}": v for k, v in row.items()})
    return data


def form_errors(form: NotebookForm) -> dict:
    errors = {k: [str(e) for e in v] for k, v in form.errors.items()}
    for i, row in enumerate(form.volumes):
        for field, messages in row.errors.items():
            errors[f"data_volumes[{i}].{field}"] = [str(m) for m in messages]
    return errors


def _notebooks(profile):
    return profile.notebooks.select_related("workspace", "created_by", "profile") \
        .prefetch_related("data_mounts__volume")


class NotebookListView(APIView):
    @extend_schema(responses=s.NotebookSerializer(many=True))
    def get(self, request, namespace):
        profile = access.get_namespace(request.user, namespace)
        return Response(s.NotebookSerializer(_notebooks(profile), many=True).data)

    @extend_schema(request=s.NotebookRequest, responses={201: s.NotebookSerializer})
    def post(self, request, namespace):
        """Create a notebook and start it (validated exactly as the page's form)."""
        profile = access.get_namespace(request.user, namespace, Role.EDIT)
        request_body = s.NotebookRequest(data=request.data)
        request_body.is_valid(raise_exception=True)
        config = spawner_config()
        blank = NotebookForm(profile=profile, config=config)
        form = NotebookForm(form_data(request_body.validated_data, blank.defaults()),
                            profile=profile, config=config)
        if not form.is_valid():
            raise ValidationError(form_errors(form))
        notebook = Notebook.create(profile, request.user, form.cleaned_data, config)
        notebook.request_start(request.user)
        return Response(s.NotebookSerializer(notebook).data, status=status.HTTP_201_CREATED)


class NotebookDetailView(APIView):
    @extend_schema(responses=s.NotebookSerializer)
    def get(self, request, namespace, name):
        profile = access.get_namespace(request.user, namespace)
        return Response(s.NotebookSerializer(get_object_or_404(_notebooks(profile),
                                                               name=name)).data)

    @extend_schema(responses={202: None})
    def delete(self, request, namespace, name):
        """Stop and delete; ``?delete_volumes=true`` also deletes its workspace volume."""
        profile = access.get_namespace(request.user, namespace, Role.EDIT)
        notebook = get_object_or_404(profile.notebooks, name=name)
        notebook.request_delete(request.user,
                                request.query_params.get("delete_volumes") in ("1", "true"))
        return Response(status=status.HTTP_202_ACCEPTED)


class NotebookActionView(APIView):
    action: str = ""

    @extend_schema(request=None, responses={202: s.NotebookSerializer})
    def post(self, request, namespace, name):
        profile = access.get_namespace(request.user, namespace, Role.EDIT)
        notebook = get_object_or_404(_notebooks(profile), name=name)
        if self.action == "start":
            notebook.request_start(request.user)
        else:
            notebook.request_stop(request.user)
        return Response(s.NotebookSerializer(notebook).data, status=status.HTTP_202_ACCEPTED)


class VolumeListView(APIView):
    @extend_schema(responses=s.VolumeSerializer(many=True))
    def get(self, request, namespace):
        profile = access.get_namespace(request.user, namespace)
        volumes = profile.volumes.prefetch_related("workspace_of", "data_mounts__notebook")
        return Response(s.VolumeSerializer(volumes, many=True).data)


class VolumeDetailView(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, namespace, volume):
        profile = access.get_namespace(request.user, namespace, Role.EDIT)
        get_object_or_404(profile.volumes, name=volume).remove(request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
