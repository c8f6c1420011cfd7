"""A step's memory limit is enforced by the local engine, on a fresh process and on a fork
of the warm Python alike: in a cgroup of the step's own where this host lets the dashboard
make one, else by RLIMIT_AS (forced here by ``memory_cgroups = False``, as on a host
without a writable cgroup). A step over its limit fails alone, saying so; the run page
says how the limit was enforced. The host's own way is tested on every host: where it
cannot make a cgroup, the test sees the fallback it must take and the reason it gives."""

import os
from dataclasses import dataclass

import pytest
import yaml

from dashboard import host_limits
from pipelines.specs import load
from tests.dashboard.test_settings import manage
from tests.pipelines.engine.conftest import tasks_of, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

OUT_OF_MEMORY = "out of memory: the step exceeded its memory limit of 200M ({})"


def step_cgroups() -> list[str]:
    parent = host_limits.find_memory_cgroup()
    if parent is None:
        return []
    return [p.name for p in parent[1].iterdir() if p.name.startswith("kfdash-step-")]


@dataclass(frozen=True)
class Enforcement:
    method: str  # what the failure names: "cgroup v1", "address space"...
    why: str  # why RLIMIT_AS rather than a cgroup ("" with a cgroup)


@pytest.fixture(params=["as the host allows", "cgroups off"])
def enforcement(request, engine, monkeypatch, settings) -> Enforcement:
    """How limits are enforced in the test: as this host allows (a cgroup where it may
    make one: it does on kfdash's CI machines; else RLIMIT_AS, with its reason), or
    RLIMIT_AS because cgroups are turned off."""
    settings.KFDASH_RUN_PARALLELISM = 4  # every step starts before one fails
    if request.param == "cgroups off":
        monkeypatch.setattr(engine, "memory_cgroups", False)
        return Enforcement("address space", "cgroups are turned off")
    probe = host_limits.enforce_memory("64Mi", f"kfdash-probe-{os.getpid()}")
    probe.release()
    return Enforcement(probe.method, probe.why)


@pytest.mark.parametrize("warm", [True, False], ids=["warm fork", "fresh process"])
def test_a_step_over_its_limit_fails_alone_saying_why(start_run, kfp2_package, settings,
                                                       engine, enforcement, warm, login, owner):
    settings.KFDASH_STEP_WARM_PYTHON = warm
    before = step_cgroups()
    run = wait_for(start_run(kfp2_package("memory_limits"), megabytes=1024), timeout=60)
    tasks = tasks_of(run)
    hungry, modest, unlimited, process = (tasks[n] for n in ("hog", "hog-2", "hog-3", "shell"))
    assert hungry.runtime["mode"] == ("warm python" if warm else "process")
    for step in (hungry, process):
        assert step.state == "FAILED", step.error
        assert step.error == OUT_OF_MEMORY.format(enforcement.method), step.error
        assert f"failed: {step.error}" in engine.read_log(step)
    if enforcement.method == "address space":
        assert "MemoryError" in engine.read_log(hungry)
    # The same step within its limit, and a step without one, are unaffected.
    assert modest.state == "SUCCEEDED" and modest.outputs["parameters"] == {"Output": 1}
    assert unlimited.state == "SUCCEEDED" and unlimited.runtime["memory_limit"] is None
    described = modest.runtime["memory_limit"]
    if enforcement.method == "address space":
        assert described == ("RLIMIT_AS 200M per process (address space of the step and of "
                             f"each process it starts, not their total; {enforcement.why})")
    else:
        assert described == f"{enforcement.method}: 200M for the step and what it starts"
    assert run.state == "FAILED"
    assert step_cgroups() == before  # each step's cgroup went with it
    # The step's panel says how its limit was enforced.
    panel = login(owner).get(f"/ns/{run.profile.name}/runs/{run.pk}/steps/{modest.pk}/")
    assert f"<dt>Memory limit</dt><dd>{described}</dd>" in panel.content.decode()


def argo_workflow(memory: str) -> bytes:
    """A KFP v1 (Argo) package of one step that allocates 1 GB under ``memory``."""
    return yaml.safe_dump({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"generateName": "hungry-"},
        "spec": {"entrypoint": "main", "templates": [
            {"name": "hungry", "container": {
                "image": "python:3.11", "command": ["python3", "-c", "x = bytearray(1 << 30)"],
                "resources": {"limits": {"memory": memory}}}},
            {"name": "main", "dag": {"tasks": [{"name": "hungry", "template": "hungry"}]}}]},
    }).encode()


def test_a_kfp1_step_gets_its_containers_limit(engine, enforcement, owner, profile):
    from pipelines.models import Run

    run = Run.start(profile, owner, name="v1", loaded=load(argo_workflow("200M")),
                    parameters={})
    hungry = tasks_of(wait_for(run, timeout=60))["hungry"]
    assert hungry.state == "FAILED"
    assert hungry.error == OUT_OF_MEMORY.format(enforcement.method), hungry.error


def test_the_admins_default_limits_steps_that_set_none(start_run, kfp2_package, settings,
                                                        engine, monkeypatch):
    settings.KFDASH_LOCAL_STEP_MEMORY_LIMIT = "300Mi"
    monkeypatch.setattr(engine, "memory_cgroups", False)
    run = wait_for(start_run(kfp2_package("memory_limits"), megabytes=1), timeout=60)
    tasks = tasks_of(run)
    assert run.state == "SUCCEEDED"
    assert tasks["hog-3"].runtime["memory_limit"].startswith("RLIMIT_AS 300Mi per process")
    assert tasks["hog"].runtime["memory_limit"].startswith("RLIMIT_AS 200M per process")


def test_a_bad_default_stops_start_up(tmp_path):
    result = manage(tmp_path, "check", KFDASH_LOCAL_STEP_MEMORY_LIMIT="2GB")
    assert result.returncode != 0
    assert "KFDASH_LOCAL_STEP_MEMORY_LIMIT: '2GB' is not a Kubernetes quantity" in result.stderr


# --- the description and the verdict (no process) ---------------------------------------------


def test_it_describes_what_it_enforces_and_when_a_tree_ran_out(tmp_path):
    cgroup = host_limits.MemoryCgroup(2, tmp_path)
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n")
    by_cgroup = host_limits.MemoryLimit("1Gi", 1024**3, cgroup)
    assert by_cgroup.describe("the step and what it starts", "") == \
        "cgroup v2: 1Gi for the step and what it starts"
    assert by_cgroup.child_spec() == {"cgroup_procs": str(tmp_path / "cgroup.procs")}
    assert not by_cgroup.exceeded(-9, "")  # killed, but not by the OOM killer
    (tmp_path / "memory.events").write_text("oom 1\noom_kill 1\n")
    assert by_cgroup.exceeded(-9, "") and not by_cgroup.exceeded(0, "")
    assert by_cgroup.out_of_memory("the step") == \
        "out of memory: the step exceeded its memory limit of 1Gi (cgroup v2)"

    by_rlimit = host_limits.enforce_memory("512Mi", "unused", cgroups=False)
    assert by_rlimit.child_spec() == {"rlimit_as": 512 * 1024**2}
    assert by_rlimit.describe("", "the step and of each process it starts") == (
        "RLIMIT_AS 512Mi per process (address space of the step and of each process it "
        "starts, not their total; cgroups are turned off)")
    assert by_rlimit.exceeded(1, "MemoryError") and not by_rlimit.exceeded(1, "ValueError: x")
    assert by_rlimit.out_of_memory("the step") == \
        "out of memory: the step exceeded its memory limit of 512Mi (address space)"

    assert host_limits.enforce_memory("", "x").describe("", "") == \
        "not enforced: no memory limit set"
    unreadable = host_limits.enforce_memory("2GB", "x")
    assert unreadable.describe("", "") == "not enforced: '2GB' is not a Kubernetes quantity"
    assert unreadable.child_spec() == {} and not unreadable.exceeded(-9, "MemoryError")
