"""Settings read from the environment: refused when wrong, safe in production."""

import subprocess
import sys

from tests.servers import ROOT, server_env


def manage(tmp_path, *args, **env):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT,
                          env=server_env(tmp_path, **env), capture_output=True, text=True,
                          timeout=60)


def test_it_passes_the_deploy_checklist_with_production_settings(tmp_path):
    result = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING",
                    DEBUG="0", SECRET_KEY="x" * 20 + "a-real-random-secret-key-of-50-chars",
                    ALLOWED_HOSTS="kubeflow.example.com")
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_generates_a_secret_key_once_in_local_mode(tmp_path):
    assert manage(tmp_path, "check").returncode == 0
    key = (tmp_path / "secret_key").read_text()
    assert len(key) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert manage(tmp_path, "check").returncode == 0
    assert (tmp_path / "secret_key").read_text() == key


def test_it_needs_a_secret_key_in_kubernetes_mode(tmp_path):
    result = manage(tmp_path, "check", KFDASH_PLATFORM="kubernetes")
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr
    secret = tmp_path / "key"
    secret.write_text("k" * 60)
    assert manage(tmp_path, "check", KFDASH_PLATFORM="kubernetes",
                  SECRET_KEY_FILE=str(secret)).returncode == 0


def test_it_refuses_bad_values_at_start(tmp_path):
    for env, word in [({"KFDASH_PLATFORM": "mesos"}, "KFDASH_PLATFORM"),
                      ({"KFDASH_AUTH": "ldap"}, "KFDASH_AUTH"),
                      ({"KFDASH_AUTH": "oidc"}, "OIDC_ISSUER"),
                      ({"KFDASH_EXTERNAL_LINKS": "[1]"}, "KFDASH_EXTERNAL_LINKS"),
                      # Argo's names are case-sensitive; a Go duration needs its unit.
                      ({"KFDASH_ARGO_POD_GC_STRATEGY": "onpodcompletion"},
                       "OnPodCompletion, OnPodSuccess, OnWorkflowCompletion, OnWorkflowSuccess"),
                      ({"KFDASH_ARGO_POD_GC_DELAY": "300"}, "KFDASH_ARGO_POD_GC_DELAY"),
                      ({"KFDASH_ARGO_TTL_SECONDS_AFTER_FINISHED": "-1"},
                       "KFDASH_ARGO_TTL_SECONDS_AFTER_FINISHED")]:
        result = manage(tmp_path, "check", **env)
        assert result.returncode != 0 and word in result.stderr, env
