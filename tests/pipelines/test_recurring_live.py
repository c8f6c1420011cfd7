"""A recurring run end to end: a real kfdash server (as `make run` starts it) schedules a
2-second period and its local engine runs each slot's run to success; disabled, it stops."""

import itertools
import time

from kfp import compiler, dsl

SETUP = """
from dashboard.models import Profile, User
from pipelines.models import Pipeline, RecurringRun
from pipelines.specs import load
from pipelines.triggers import Trigger
owner = User.objects.create_user("owner@example.com", "pw-owner-0123456789")
profile = Profile.register("team-a", owner)
version = Pipeline.upload(profile, "tick", load(open({path!r}, "rb").read()), owner)
every = RecurringRun.create(profile, owner, name="every 2 s", version=version,
                            trigger=Trigger(interval_seconds=2), parameters={{"n": 7}})
print("ID=" + str(every.pk))
"""

STATE = """
from pipelines.models import RecurringRun
every = RecurringRun.objects.get(pk={pk!r})
{action}
for run in every.runs.order_by("scheduled_at"):
    print("RUN", run.scheduled_at.timestamp(), run.state, run.parameters["n"])
"""


@dsl.component(base_image="python:3.11")
def double(n: int) -> int:
    return 2 * n


@dsl.pipeline(name="tick")
def tick_pipeline(n: int = 1):
    double(n=n)


def runs_of(server, pk: str, action: str = "") -> list[tuple[float, str, int]]:
    out = server.manage("shell", "-c", STATE.format(pk=pk, action=action)).stdout
    return [(float(at), state, int(n)) for _, at, state, n in
            (line.split() for line in out.splitlines() if line.startswith("RUN "))]


def test_a_two_second_period_runs_real_runs_until_disabled(kfdash_server, tmp_path):
    package = tmp_path / "tick.yaml"
    compiler.Compiler().compile(tick_pipeline, str(package))
    server = kfdash_server(KFDASH_SCHEDULER_SECONDS="0.2")
    pk = server.manage("shell", "-c", SETUP.format(path=str(package))).stdout \
        .split("ID=", 1)[1].strip()
    deadline = time.monotonic() + 60
    runs = []
    while time.monotonic() < deadline:
        runs = runs_of(server, pk)
        if sum(state == "SUCCEEDED" for _, state, _ in runs) >= 2:
            break
        time.sleep(0.5)
    succeeded = [run for run in runs if run[1] == "SUCCEEDED"]
    assert len(succeeded) >= 2, (runs, server.log()[-3000:])
    assert all(n == 7 for _, _, n in runs)
    slots = [at for at, _, _ in runs]
    assert all(round(b - a, 3) == 2.0 for a, b in itertools.pairwise(slots)), slots
    runs = runs_of(server, pk, action="every.set_enabled(False)")
    time.sleep(3)
    assert len(runs_of(server, pk)) == len(runs)  # disabled: no new slot
