"""Demo data: many realistic runs in one namespace, bulk-inserted as the engines leave
them, for demonstrations and benchmarks (``manage.py seed_demo``, ``bench/runs_list.py``,
``bench/vs_mlflow.py``).

Each run keeps its own copy of a 3-task pipeline (``preprocess``, ``train``,
``evaluate``) compiled in-process with the installed kfp SDK (~5 kB of IR, ~6 kB of
graph), three parameters (``learning_rate``, ``epochs``, ``optimizer``), three tasks,
the three metrics of its evaluate step (``accuracy``, ``loss``, ``f1``), a state with its
history (mostly succeeded, some failed, canceled, skipped; running, pending, canceling
and paused ones only on request), in one of three experiments (Default, tuning,
nightly). Two thirds were started from one of the two versions of a stored pipeline
``train-and-evaluate``, a third from an uploaded package; one in fifty is archived. They
were created five minutes apart, the last one about five minutes ago.

Seeding again adds that many more runs (numbered on from the runs already there, spread
over the same span up to now); the pipeline and the experiments are made once and
reused. Rows go in with ``bulk_create`` in one transaction, then the database's planner
statistics are refreshed (``ANALYZE``); nothing is published live, and no engine is told.
"""

# No "from __future__ import annotations": kfp reads the components' annotations as types.
import random
import tempfile
import time
import uuid
import warnings
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from kfp import compiler, dsl

from dashboard import access
from dashboard.choices import Role
from dashboard.models import Profile, User, normalize_email
from pipelines.choices import FINISHED
from pipelines.models import Experiment, Pipeline, Run, RunMetric, RunTask
from pipelines.models.runs import _history
from pipelines.specs import load

PIPELINE = "train-and-evaluate"
EXPERIMENTS = ("tuning", "nightly")  # beside the namespace's Default experiment
IMAGE = "python:3.11"
SPACING = timedelta(minutes=5)
SEED = 20261130  # the same runs every time for the same namespace and count
# Run states, weighted roughly as a busy namespace has them. Unfinished ones are left out
# unless asked for: a local server's engine picks up every unfinished run at start-up and
# would run them all.
STATES = [("SUCCEEDED", 70), ("FAILED", 12), ("CANCELED", 5), ("RUNNING", 5),
          ("PENDING", 3), ("SKIPPED", 3), ("CANCELING", 1), ("PAUSED", 1)]
STARTED = set(FINISHED) | {"RUNNING", "CANCELING", "PAUSED"}
OPTIMIZERS = ["adam", "sgd", "rmsprop", "adamw"]
TASKS = ("preprocess", "train", "evaluate")  # in the order they run; evaluate logs metrics


# --- the pipeline every run keeps a copy of ------------------------------------------------

@dsl.component(base_image=IMAGE)
def preprocess(rows: int) -> int:
    return rows // 2


@dsl.component(base_image=IMAGE)
def train(rows: int, learning_rate: float, epochs: int, optimizer: str) -> float:
    return learning_rate * epochs * rows


@dsl.component(base_image=IMAGE)
def evaluate(score: float) -> float:
    return score


@dsl.pipeline(name=PIPELINE, description="preprocess, train, evaluate")
def train_pipeline(learning_rate: float = 0.01, epochs: int = 10, optimizer: str = "adam"):
    rows = preprocess(rows=1000)
    model = train(rows=rows.output, learning_rate=learning_rate, epochs=epochs,
                  optimizer=optimizer)
    evaluate(score=model.output)


def package() -> bytes:
    """The pipeline's KFP v2 IR (YAML), as ``kfp dsl compile`` writes it."""
    with tempfile.TemporaryDirectory(prefix="kfdash-demo-") as folder:
        path = Path(folder) / f"{PIPELINE}.yaml"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            compiler.Compiler().compile(train_pipeline, str(path))
        return path.read_bytes()


# --- the namespace -----------------------------------------------------------------------

def namespace_for(name: str, email: str | None = None) -> tuple[Profile, User, list[str]]:
    """The namespace ``name`` and the user who makes its demo runs, with what had to be
    created (e.g. ``["user demo@example.com", "namespace demo"]``).

    A new namespace is registered for ``email`` (default ``{name}@example.com``), creating
    that user (without a usable password) if needed. An existing namespace's runs are
    made by its owner, or by ``email`` if that user may edit there. Raises ValidationError
    when neither works (e.g. the user already owns a namespace, or may not edit this one).
    """
    made = []
    profile = Profile.objects.select_related("owner").filter(name=name).first()
    if profile is not None and not email:
        return profile, profile.owner, made
    email = normalize_email(email or f"{name}@example.com")
    user = User.objects.filter(email=email).first()
    if profile is not None:
        if user is None or not access.can(user, Role.EDIT, profile):
            raise ValidationError(f"{email} may not start runs in the namespace {name}.")
        return profile, user, made
    with transaction.atomic():  # no user left behind if the namespace can't be made
        if user is None:
            user = User.objects.create_user(email)  # no password: set one to log in with it
            made.append(f"user {email}")
        profile = Profile.register(name, user)
    made.append(f"namespace {name}")
    return profile, user, made


# --- the runs ----------------------------------------------------------------------------

@dataclass
class Seeded:
    """What one ``seed_runs`` made, and how long it took."""

    profile: Profile
    experiments: list[Experiment]  # Default, tuning, nightly
    first: int  # the number of the first run made (the runs the namespace had before)
    runs: int
    tasks: int
    metrics: int
    archived: int
    states: Counter  # runs per state
    seconds: float  # all of it, compiling the pipeline included


def seed_runs(profile: Profile, user: User, count: int, *, unfinished: bool = False,
              seed: int = SEED) -> Seeded:
    """Add ``count`` runs to ``profile``, made by ``user`` (see the module's docstring).
    ``unfinished``: some runs are left running, pending, canceling or paused, as in a busy
    namespace (keep them away from a server that executes runs)."""
    began = time.perf_counter()
    loaded = load(package())
    versions = _stored_versions(profile, user, loaded)
    experiments = [Experiment.default_for(profile, user)] + [
        Experiment.objects.filter(profile=profile, name=name).first()
        or Experiment.create(profile, name, user) for name in EXPERIMENTS]
    first = Run.objects.filter(profile=profile).count()
    runs, tasks, metrics = _rows(profile, user, loaded, versions, experiments, first, count,
                                 unfinished, random.Random(seed + first))
    with transaction.atomic():
        Run.objects.bulk_create(runs, batch_size=500)
        RunTask.objects.bulk_create(tasks, batch_size=1000)
        RunMetric.objects.bulk_create(metrics, batch_size=1000)
        for experiment in experiments:
            latest = max((run.created_at for run in runs if run.experiment is experiment),
                         default=None)
            if latest is not None:
                Experiment.objects.filter(
                    Q(last_run_created_at=None) | Q(last_run_created_at__lt=latest),
                    pk=experiment.pk).update(last_run_created_at=latest)
        profile.record(user, "run", f"{user.email} added {count:,} demo runs", PIPELINE)
    with connection.cursor() as cursor:  # the planner's statistics, stale after a bulk load
        cursor.execute("ANALYZE")
    return Seeded(profile=profile, experiments=experiments, first=first, runs=len(runs),
                  tasks=len(tasks), metrics=len(metrics),
                  archived=sum(run.storage_state == "ARCHIVED" for run in runs),
                  states=Counter(run.state for run in runs),
                  seconds=time.perf_counter() - began)


def _stored_versions(profile: Profile, user: User, loaded) -> list:
    """The two versions of the namespace's demo pipeline, uploaded the first time."""
    pipeline = Pipeline.objects.filter(profile=profile, name=PIPELINE).first()
    if pipeline is None:
        version = Pipeline.upload(profile, PIPELINE, loaded, user)
        return [version, version.pipeline.add_version(loaded, user, "v2")]
    return list(pipeline.versions.order_by("created_at", "pk")[:2])


def _rows(profile, user, loaded, versions, experiments, first, count, unfinished, rng):
    """The unsaved Run, RunTask and RunMetric rows of ``count`` runs numbered from
    ``first``."""
    weighted = [(state, weight) for state, weight in STATES
                if unfinished or state in FINISHED]
    states = [state for state, weight in weighted for _ in range(weight)]
    sources = [{"format": v.format, "document": v.document, "platform_spec": v.platform_spec,
                "graph": v.graph, "pipeline_id": v.pipeline_id, "pipeline_version_id": v.pk}
               for v in versions]
    sources.append({"format": loaded.format, "document": loaded.document,
                    "platform_spec": loaded.platform_spec, "graph": loaded.spec.to_dict(),
                    "pipeline_id": None, "pipeline_version_id": None})
    base = timezone.now() - SPACING * count
    runs, tasks, metrics = [], [], []
    for i in range(count):
        n = first + i
        created = base + SPACING * i + timedelta(seconds=rng.randint(0, 59))
        state = rng.choice(states)
        started = created + timedelta(seconds=rng.uniform(1, 20)) if state in STARTED else None
        finished = (started + timedelta(seconds=rng.uniform(30, 3600))
                    if state in FINISHED else None)
        history = [_history("PENDING", created)]
        if started:
            history.append(_history("RUNNING", started))
        error = ""
        if finished:
            if state == "FAILED":
                error = f"The step evaluate failed: exit code {rng.choice([1, 137, 2])}."
            history.append(_history(state, finished, error))
        elif state not in ("PENDING", "RUNNING"):
            history.append(_history(state, started))
        run = Run(
            id=uuid.uuid4(), profile=profile, experiment=experiments[n % len(experiments)],
            name=f"{rng.choice(['train', 'tune', 'nightly'])}-{n:05d}",
            description=f"bulk run number {n}", **sources[n % len(sources)],
            parameters={"learning_rate": round(rng.uniform(0.0001, 0.1), 5),
                        "epochs": rng.choice([5, 10, 20, 50]),
                        "optimizer": rng.choice(OPTIMIZERS)},
            state=state, error=error, state_history=history, revision=len(history),
            storage_state="ARCHIVED" if n % 50 == 7 else "AVAILABLE",
            created_at=created, scheduled_at=created, started_at=started,
            finished_at=finished, created_by=user)
        runs.append(run)
        for k, task_id in enumerate(TASKS):  # the last one ends as the run ends
            task_state = (state if state in FINISHED and k == len(TASKS) - 1
                          else "SUCCEEDED" if finished else "RUNNING" if started else "PENDING")
            tasks.append(RunTask(
                id=uuid.uuid4(), run=run, node_id=task_id, spec_id=task_id,
                display_name=task_id, state=task_state, attempts=1 if started else 0,
                image=IMAGE, created_at=created, started_at=started, finished_at=finished,
                revision=run.revision))
        evaluate_task = tasks[-1]
        accuracy = min(0.999, max(0.3, rng.gauss(0.82, 0.07)))
        for name, value in (("accuracy", accuracy),
                            ("loss", max(0.001, (1 - accuracy) * rng.uniform(0.8, 1.6))),
                            ("f1", max(0.0, accuracy - rng.uniform(0.0, 0.08)))):
            metrics.append(RunMetric(run=run, task=evaluate_task, name=name,
                                     value=round(value, 4)))
    return runs, tasks, metrics
