"""Pipelines from inside a notebook: ``kfp.Client()`` with no arguments reaches kfdash
as the notebook's creator.

Like Kubeflow, which mounts a service-account token and sets
``KF_PIPELINES_ENDPOINT``, kfdash gives each notebook a personal API token of its
creator, written where kfp 2 reads one (``~/.config/kfp/context.json``, HOME
being the workspace), and revokes it when the notebook is deleted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.conf import settings

from dashboard.models import ApiToken

CONTEXT_PATH = Path(".config") / "kfp" / "context.json"


def token_name(notebook) -> str:
    return f"notebook {notebook.profile.name}/{notebook.name}"


def grant(notebook, home: Path) -> dict[str, str]:
    """Issue (or reuse) the notebook's token, write kfp's context file under ``home``,
    and return the environment variables the server needs."""
    secret = _read_context(home).get("client_authentication_header_value", "")
    secret = secret.removeprefix("Bearer ")
    token_id = notebook.runtime.get("api_token")
    still_valid = token_id and ApiToken.objects.active().filter(
        pk=token_id, digest=ApiToken.digest_of(secret)).exists()
    if not still_valid:
        secret = None
    if secret is None:
        revoke(notebook)
        token, secret = ApiToken.issue(notebook.created_by, token_name(notebook))
        notebook.runtime = {**notebook.runtime, "api_token": token.pk}
        notebook.save(update_fields=["runtime"])
    _write_context(home, {
        "namespace": notebook.profile.name,
        "client_authentication_header_name": "Authorization",
        "client_authentication_header_value": f"Bearer {secret}",
    })
    return {"KF_PIPELINES_ENDPOINT": settings.KFDASH_INTERNAL_URL,
            "KFDASH_NAMESPACE": notebook.profile.name}


def revoke(notebook) -> None:
    token_id = notebook.runtime.get("api_token")
    if token_id:
        for token in ApiToken.objects.filter(pk=token_id):
            token.revoke()


def _read_context(home: Path) -> dict:
    try:
        return json.loads((home / CONTEXT_PATH).read_text())
    except (OSError, ValueError):
        return {}


def _write_context(home: Path, context: dict) -> None:
    path = home / CONTEXT_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(context, handle, indent=2)
