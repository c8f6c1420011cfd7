"""Schemathesis against the OpenAPI schema of a live kfdash server: every operation,
authenticated, in the coverage, fuzzing and stateful phases, reproducibly. No answer may
be a 5xx; every status code, content type and body must be as documented; and no
operation may answer without credentials, to a method it does not have, or about an
object just deleted.

The settings are in tests/api_fuzz.toml; the namespace's objects in tests/api_fuzz_data.py.
schemathesis runs as its CLI: its pytest integration (``schemathesis.pytest.from_fixture``,
the one that can wait for a server a fixture starts) sets ``request.node._nodeid``, which
pytest 9.2's nodes no longer have.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.api_fuzz_data import start_fuzz_target

pytestmark = pytest.mark.slow

CONFIG = Path(__file__).parent / "api_fuzz.toml"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory):
    target = start_fuzz_target(tmp_path_factory.mktemp("api-fuzz"))
    yield target
    target.stop()


def test_every_operation_answers_as_documented(fuzz_target, tmp_path):
    shutil.copy(CONFIG, tmp_path / "schemathesis.toml")
    fuzz_target.write_dictionaries(tmp_path)
    env = {**os.environ, "KFDASH_FUZZ_TOKEN": fuzz_target.token, "NO_COLOR": "1",
           "KFDASH_FUZZ_REVOKER_TOKEN": fuzz_target.revoker_token}
    done = subprocess.run(
        [str(SCHEMATHESIS), "--config-file", str(tmp_path / "schemathesis.toml"), "run",
         f"{fuzz_target.url}/api/schema", "--report", "junit",
         "--report-dir", str(tmp_path / "report")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, (
        f"schemathesis found failures (server log: {fuzz_target.server.log_path}):\n"
        f"{done.stdout}\n{done.stderr}")


def test_the_fuzzer_stayed_authenticated(fuzz_target):
    """Every check passes on a 401 too: the token the fuzzer used must still be valid."""
    response = requests.get(f"{fuzz_target.url}/api/v1/whoami", timeout=10,
                            headers={"Authorization": f"Bearer {fuzz_target.token}"})
    assert response.status_code == 200, response.text
