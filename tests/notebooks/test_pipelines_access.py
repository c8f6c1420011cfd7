"""kfp.Client() inside a notebook: a per-notebook token of its creator, in kfp's context file."""

import json

from rest_framework.test import APIClient

from dashboard.models import ApiToken
from notebooks import pipelines_access
from notebooks.models import Notebook


def test_it_writes_kfps_context_with_a_working_token(profile, member, tmp_path, settings):
    notebook = Notebook.objects.create(profile=profile, name="nb", image="x", created_by=member)
    env = pipelines_access.grant(notebook, tmp_path)
    assert env["KF_PIPELINES_ENDPOINT"] == settings.KFDASH_INTERNAL_URL
    context_file = tmp_path / ".config/kfp/context.json"
    assert context_file.stat().st_mode & 0o077 == 0
    context = json.loads(context_file.read_text())
    assert context["namespace"] == "team-a"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=context["client_authentication_header_value"])
    assert client.get("/api/v1/whoami").json()["email"] == "member@example.com"


def test_it_reuses_the_token_across_restarts_and_revokes_it(profile, member, tmp_path):
    notebook = Notebook.objects.create(profile=profile, name="nb", image="x", created_by=member)
    pipelines_access.grant(notebook, tmp_path)
    pipelines_access.grant(notebook, tmp_path)
    assert ApiToken.objects.active().count() == 1
    (tmp_path / ".config/kfp/context.json").write_text("{}")  # the user broke it
    pipelines_access.grant(notebook, tmp_path)
    assert ApiToken.objects.active().count() == 1 and ApiToken.objects.count() == 2
    pipelines_access.revoke(notebook)
    assert ApiToken.objects.active().count() == 0


def test_it_revokes_the_token_when_the_notebook_goes(profile, member, tmp_path):
    notebook = Notebook.objects.create(profile=profile, name="nb", image="x", created_by=member)
    pipelines_access.grant(notebook, tmp_path)
    notebook.remove(delete_volumes=False)
    assert ApiToken.objects.active().count() == 0
