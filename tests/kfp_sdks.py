"""The two real kfp SDKs the tests drive: kfp 2 in the test virtualenv, kfp 1.8 in its own.

kfp 1.8 cannot be installed beside kfp 2, so ``make setup-dev`` builds ``.venv-kfp1``
(``requirements-kfp1.txt``) and tests run kfp 1.8 code there with ``run_kfp1``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What kfp 1.8 test scripts start with: two lightweight components and a shell step.
KFP1_COMPONENTS = r'''
from kfp import compiler, dsl
from kfp.components import func_to_container_op


def sum_sq(a: int, b: int) -> int:
    return a * a + b * b


def gen(count: int) -> list:
    return list(range(count))


sum_sq_op = func_to_container_op(sum_sq)
gen_op = func_to_container_op(gen)


def sh(name, script, **kwargs):
    return dsl.ContainerOp(name=name, image="alpine", command=["sh", "-c", script], **kwargs)
'''
KFP1_PYTHON = Path(os.environ.get("KFDASH_KFP1_PYTHON", ROOT / ".venv-kfp1" / "bin" / "python"))


def run_kfp1(code: str, cwd: Path, timeout: float = 120, env: dict | None = None,
             ) -> subprocess.CompletedProcess:
    """Run Python ``code`` with the kfp 1.8 SDK in ``cwd``; fail the test with its output
    if it exits non-zero."""
    if not KFP1_PYTHON.exists():
        pytest.fail(f"{KFP1_PYTHON} is missing: `make setup-dev` builds the kfp 1.8 virtualenv")
    script = Path(cwd) / "_kfp1_script.py"
    script.write_text(textwrap.dedent(code))
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "PYTEST"))}
    full_env.update(env or {})
    done = subprocess.run([str(KFP1_PYTHON), str(script)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=full_env)
    if done.returncode != 0:
        pytest.fail(f"kfp 1.8 script failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def run_kfp2(code: str, cwd: Path, timeout: float = 120, env: dict | None = None,
             ) -> subprocess.CompletedProcess:
    """Run Python ``code`` with the kfp 2 SDK in a fresh interpreter (as a user's script)."""
    script = Path(cwd) / "_kfp2_script.py"
    script.write_text(textwrap.dedent(code))
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "PYTEST"))}
    full_env.update(env or {})
    done = subprocess.run([sys.executable, str(script)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=full_env)
    if done.returncode != 0:
        pytest.fail(f"kfp 2 script failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done
