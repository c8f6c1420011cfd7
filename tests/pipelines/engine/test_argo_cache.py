"""Caching for KFP v2 runs on Argo: which tasks are served from the cache at submit (pure,
on pipelines compiled by the real kfp 2 SDK), how the compiler leaves them out, and whole
runs on the fake API server with ``ArgoSim`` playing Argo and the watcher recording: a
second identical run is served from the first one's steps, caching off or another
parameter value runs everything, and a local-engine success never serves a cluster run."""


import json
import re
import uuid
import warnings
from functools import partial

import pytest
from kfp import compiler, dsl

from pipelines.choices import RunState, SpecFormat, TaskState
from pipelines.engines import caching
from pipelines.engines.argo_cache import (
    CACHE_KEYS_ANNOTATION,
    CACHED_ANNOTATION,
    Decision,
    Hit,
    decide,
    usable,
)
from pipelines.engines.argo_compile import S3Repository, compile_v2_workflow
from pipelines.engines.argo_compile_cache import CACHE_CONFIG_MAP
from pipelines.engines.argo_manifests import validate_workflow
from pipelines.engines.argo_names import EXECUTOR_OUTPUT
from pipelines.engines.executor_protocol import component_parts
from pipelines.models import Artifact, Run, RunMetric, RunTask
from pipelines.specs import load
from pipelines.specs.model import PipelineSpec, Task
from tests.pipelines.argo_sim import Controller
from tests.pipelines.engine.conftest import retrying, tasks_of, wait_for, wait_until

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # engine_pipelines' dsl.Condition
    from tests.pipelines.engine.engine_pipelines import add

REPOSITORY = S3Repository(
    endpoint="minio-service.kubeflow:9000", bucket="mlpipeline", insecure=True,
    access_key_secret=("mlpipeline-minio-artifact", "accesskey"),
    secret_key_secret=("mlpipeline-minio-artifact", "secretkey"))
CACHED_STEPS = {"count-run", "count-run-2", "make-dataset", "read-dataset"}


@dsl.pipeline
def inner(n: int) -> int:
    first = add(a=n)
    return add(a=first.output, b=2).output


@dsl.pipeline(name="sub-dag")
def sub_dag(n: int = 1):
    add(a=inner(n=n).output, b=3)


@pytest.fixture(scope="module")
def sub_dag_package(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("argo-cache") / "sub-dag.yaml"
    compiler.Compiler().compile(sub_dag, str(path))
    return path.read_bytes()


# --- the decision, pure ----------------------------------------------------------------------

def recorded(task: Task) -> dict:
    """Outputs as argo_sync records an Argo step's: parameters as text, artifacts in S3."""
    return {"parameters": {p.name: "7" for p in task.outputs if p.kind == "parameter"},
            "artifacts": {p.name: [{"name": p.name, "type": p.type, "path": "", "metadata": {},
                                    "uri": f"s3://mlpipeline/earlier/{task.id}/{p.name}.tgz"}]
                          for p in task.outputs if p.kind == "artifact"}}


def hits(*task_ids: str):
    """A lookup finding an earlier execution for the tasks named (all when none is)."""
    def lookup(key: str, task: Task) -> Hit | None:
        if task_ids and task.id not in task_ids:
            return None
        return Hit(f"row-{task.id}", recorded(task))

    return lookup


def decided(package: bytes, caching_on: bool | None = None, lookup=None,
            **parameters) -> tuple[Decision, PipelineSpec, dict]:
    loaded = load(package)
    values = {p.name: p.default for p in loaded.spec.parameters if p.has_default}
    decision = decide(loaded.spec, loaded.document, {**values, **parameters},
                      caching_on=caching_on, lookup=lookup or hits())
    return decision, loaded.spec, loaded.document


def identity(document: dict, spec: PipelineSpec, task_id: str) -> dict:
    component, executor = component_parts(document, spec.task(task_id).component)
    return {"component": component, "executor": executor}


def test_it_serves_a_chain_in_dependency_order_with_the_local_engines_keys(kfp2_package):
    decision, spec, document = decided(kfp2_package("chain"), start=1)
    assert set(decision.served) == {"add", "add-2", "add-3"}
    assert decision.outputs["add-2"] == recorded(spec.task("add-2"))
    # echo's f-string and shout's {{$.pipeline_job_name}} are only known in the pod.
    assert set(decision.keys) == {"add", "add-2", "add-3"}
    assert decision.keys["add"] == caching.key(identity(document, spec, "add"),
                                               {"a": 1, "b": 1}, {})
    # add-2 reads add's recorded "7", typed as the local engine types it.
    assert decision.keys["add-2"] == caching.key(identity(document, spec, "add-2"),
                                                 {"a": 7, "b": 10}, {})
    assert json.loads(decision.annotations()[CACHED_ANNOTATION]) == {
        "add": "row-add", "add-2": "row-add-2", "add-3": "row-add-3"}


def test_a_task_reading_a_task_that_runs_is_neither_served_nor_keyed(kfp2_package):
    decision, _, _ = decided(kfp2_package("chain"), lookup=hits("add-2", "add-3"))
    assert decision.served == {}
    assert set(decision.keys) == {"add"}
    decision, _, _ = decided(kfp2_package("chain"), lookup=hits("add", "add-3"))
    assert set(decision.served) == {"add"} and set(decision.keys) == {"add", "add-2"}


def test_tasks_in_loops_and_conditions_are_never_served(kfp2_package):
    decision, spec, _ = decided(kfp2_package("loops"), marker="m")
    # listing only: total collects from a loop, everything else is inside one.
    assert set(decision.served) == set(decision.keys) == {"listing"}
    decision, spec, _ = decided(kfp2_package("branches"))
    top = {task.id for task in spec.tasks if task.parent is None}
    assert set(decision.served) == set(decision.keys) == top
    assert len(top) == 2 and len(spec.tasks) > 4


def test_an_exit_handlers_task_is_never_served_and_a_group_keeps_one_task(kfp2_package):
    decision, spec, _ = decided(kfp2_package("exit_handling"), marker="m")
    report = next(t for t in spec.tasks if t.exit_handler)
    assert report.id not in decision.keys
    # boom alone in its exit-handler group: serving it would leave the group's DAG empty.
    assert decision.served == {} and set(decision.keys) == {"boom"}


def test_when_a_dag_would_be_left_empty_the_last_unread_task_runs(kfp2_package,
                                                                   sub_dag_package):
    decision, _, _ = decided(kfp2_package("cached"), counter="c")
    assert set(decision.keys) == CACHED_STEPS
    assert set(decision.served) == CACHED_STEPS - {"read-dataset"}
    # In a sub-DAG: add-2 is read by the outer add, so it runs, and so does that add.
    decision, spec, _ = decided(sub_dag_package)
    assert {g.id: g.kind for g in spec.groups} == {"inner": "dag"}
    assert set(decision.served) == {"inner/add"}
    assert set(decision.keys) == {"inner/add", "add-2"}


def test_caching_off_for_the_run_or_the_task_serves_nothing_but_keys_are_kept(kfp2_package):
    decision, _, _ = decided(kfp2_package("cached"), caching_on=False, counter="c")
    assert decision.served == {} and set(decision.keys) == {"count-run", "make-dataset"}
    assert set(json.loads(decision.annotations()[CACHE_KEYS_ANNOTATION])) == {
        "count-run", "make-dataset"}
    assert CACHED_ANNOTATION not in decision.annotations()
    decision, _, _ = decided(kfp2_package("failing"))  # number: set_caching_options(False)
    assert set(decision.served) == {"boom", "echo"}
    assert set(decision.keys) == {"boom", "echo", "number"}


def test_a_v1_run_is_not_cached():
    spec = PipelineSpec(format=SpecFormat.ARGO, name="v1", tasks=[Task(id="a", name="a",
                                                                       caching=True)])
    assert decide(spec, {}, {}, caching_on=True, lookup=hits()) == Decision()


def test_only_executions_with_every_output_in_an_object_store_can_serve():
    task = Task(id="t", name="t", outputs=[
        *load_ports(("Output", "parameter")), *load_ports(("data", "artifact"))])
    remote = {"parameters": {"Output": "1"},
              "artifacts": {"data": [{"uri": "s3://mlpipeline/a/data.tgz", "path": ""}]}}
    assert usable(task, RunTask(outputs=remote))
    assert usable(task, RunTask(outputs={**remote, "artifacts": {"data": [
        {"uri": "gs://bucket/data", "path": ""}]}}))
    local = {**remote, "artifacts": {"data": [{"uri": "/var/kfdash/artifacts/a/data",
                                               "path": "team-a/a/data"}]}}
    assert not usable(task, RunTask(outputs=local))
    assert not usable(task, RunTask(outputs={**remote, "parameters": {}}))
    assert not usable(task, RunTask(outputs={**remote, "artifacts": {}}))


def load_ports(*ports: tuple[str, str]):
    from pipelines.specs.model import Port

    return [Port(name=name, kind=kind) for name, kind in ports]


# --- the compiler ----------------------------------------------------------------------------

def compiled(package: bytes, cached: dict, **parameters) -> dict:
    loaded = load(package)
    workflow = compile_v2_workflow(
        loaded.spec, loaded.document, run_id="3f2a9c1e-0b7d-4e2a-9c1e-0b7d4e2a9c1e",
        run_name="r", namespace="team-a", parameters=parameters,
        service_account="default-editor", repository=REPOSITORY, launcher_image="kfdash:t",
        cached=cached)
    validate_workflow(workflow)
    return workflow


def dag_tasks(workflow: dict, template: str = "root") -> dict[str, dict]:
    found = {t["name"]: t for t in workflow["spec"]["templates"]}
    return {t["name"]: t for t in found[template]["dag"]["tasks"]}


def parameters_of(task: dict) -> dict[str, str]:
    return {p["name"]: p["value"] for p in task.get("arguments", {}).get("parameters", [])}


def test_the_compiler_gives_consumers_the_recorded_outputs(kfp2_package):
    data = {"name": "data", "type": "system.Dataset", "path": "", "metadata": {"rows": 4},
            "uri": "s3://mlpipeline/artifacts/team-a/wf/pod/data.tgz"}
    workflow = compiled(kfp2_package("cached"), {
        "count-run": {"parameters": {"Output": "8"}, "artifacts": {}},
        "make-dataset": {"parameters": {}, "artifacts": {"data": [data], "metrics": []}}},
        counter="c")
    root = dag_tasks(workflow)
    assert set(root) == {"count-run-2", "read-dataset"}
    assert "dependencies" not in root["count-run-2"]
    assert parameters_of(root["count-run-2"])["value"] == "8"
    read = root["read-dataset"]
    assert read["dependencies"] == ["count-run-2"]
    location = read["arguments"]["artifacts"][0]
    assert location["name"] == "data" and location["s3"]["bucket"] == "mlpipeline"
    assert location["s3"]["key"] == "artifacts/team-a/wf/pod/data.tgz"
    assert json.loads(parameters_of(read)["kfdash-metadata-data"]) == {
        "data": [{"name": "data", "uri": data["uri"], "metadata": {"rows": 4}}]}
    assert not {"count-run", "make-dataset"} & {t["name"] for t in workflow["spec"]["templates"]}


def test_the_compiler_leaves_cached_tasks_out_of_sub_dags(sub_dag_package):
    workflow = compiled(sub_dag_package, {"inner/add": {"parameters": {"Output": "2"}}})
    root = dag_tasks(workflow)
    inside = dag_tasks(workflow, root["inner"]["template"])
    assert set(inside) == {"add-2"} and "dependencies" not in inside["add-2"]
    assert parameters_of(inside["add-2"])["a"] == "2"


def test_the_compiler_refuses_an_empty_dag_and_unknown_tasks(kfp2_package, sub_dag_package):
    both = {"parameters": {"Output": "2"}}
    with pytest.raises(ValueError, match="holds only importers or cached tasks"):
        compiled(sub_dag_package, {"inner/add": both, "add-2": both})
    served = {name: {"parameters": {"Output": "1"}, "artifacts": {}} for name in CACHED_STEPS}
    with pytest.raises(ValueError, match="Every task of the pipeline is served"):
        compiled(kfp2_package("cached"), served, counter="c")
    with pytest.raises(ValueError, match="no task 'nope'"):
        compiled(kfp2_package("cached"), {"nope": both}, counter="c")
    with pytest.raises(ValueError, match="did not record"):
        compiled(kfp2_package("cached"), {"count-run": {"parameters": {}}}, counter="c")


# --- whole runs: the watcher, ArgoSim -----------------------------------------------------------

def produce(ran: list[str], name: str, inputs: dict) -> dict:
    """What the `cached` pipeline's components would output, from their inputs; ``ran``
    collects the steps Argo ran."""
    ran.append(name)
    component = re.sub(r"-\d+$", "", name)
    if component == "count-run":
        return {"Output": str(int(inputs["value"]) * 2)}
    if component == "make-dataset":
        rows = int(float(inputs["rows"]))  # a list parameter's items may come as 1.0
        pod = uuid.uuid4().hex  # each execution's outputs have URIs of their own
        return {EXECUTOR_OUTPUT: json.dumps({
            "data": [{"name": "data", "uri": f"s3://mlpipeline/{pod}/data.tgz",
                      "metadata": {"rows": rows}}],
            "metrics": [{"name": "metrics", "uri": f"s3://mlpipeline/{pod}/metrics.tgz",
                         "metadata": {"accuracy": 0.75, "rows": rows}}]})}
    if component == "number":
        return {"Output": inputs["value"]}
    if component == "add":
        return {"Output": str(int(inputs["a"]) + int(inputs.get("b", "1")))}
    if component == "read-dataset":  # rows lines, plus rows * 100 from the metadata
        report = json.loads(inputs["kfdash-metadata-data"])
        return {"Output": str(report["data"][0]["metadata"]["rows"] * 101)}
    return {}


def play(cluster, owner, profile, package: bytes, caching: bool | None = None,
         steps: int | None = None, **parameters) -> tuple[Run, dict, list[str], Controller]:
    """A run of ``package`` submitted, Argo playing it (to its end unless ``steps``): the
    run (finished, if played to its end), its Workflow, the steps that ran."""
    run = Run.start(profile, owner, name="cached run", loaded=load(package),
                    parameters={"counter": "c", **parameters}, caching=caching)
    ran: list[str] = []
    controller = Controller(cluster, run.pk, namespace=profile.name,
                            outputs=partial(produce, ran))
    controller.run(steps)
    if steps is None:
        run = wait_for(run)
        assert run.state == RunState.SUCCEEDED, run.error
    return run, controller.workflow, ran, controller


def annotation(workflow: dict, name: str):
    text = workflow["metadata"].get("annotations", {}).get(name)
    return json.loads(text) if text else None


@pytest.mark.django_db(transaction=True)
def test_a_second_identical_run_is_served_from_the_first_ones_steps(
        argo_cluster, owner, profile, kfp2_package):
    package = kfp2_package("cached")
    first, workflow, ran, _ = play(argo_cluster, owner, profile, package)
    assert sorted(ran) == sorted(CACHED_STEPS) and annotation(workflow, CACHED_ANNOTATION) is None
    keys = annotation(workflow, CACHE_KEYS_ANNOTATION)
    assert set(keys) == {"count-run", "make-dataset"}  # the inputs known at submit
    old = tasks_of(first)
    assert old["count-run"].cache_key == keys["count-run"]
    # The others' keys were worked out in the run, for Argo to memoize them by.
    assert re.fullmatch(r"[0-9a-f]{64}", old["count-run-2"].cache_key)
    assert re.fullmatch(r"[0-9a-f]{64}", old["read-dataset"].cache_key)

    second, workflow, ran, controller = play(argo_cluster, owner, profile, package, steps=2)
    # The served tasks' rows come as soon as the Workflow runs.
    wait_until(lambda: {t.node_id for t in tasks_of(second).values()
                        if t.state == TaskState.CACHED} == {
                            "count-run", "count-run-2", "make-dataset"},
               what="the CACHED rows")
    controller.run()
    second = wait_for(second)
    assert second.state == RunState.SUCCEEDED, second.error
    # count-run-2's inputs are known at submit now, and its key is the one the first run
    # worked out in its pod: the same function, the same typed inputs.
    assert ran == ["read-dataset"]
    assert set(dag_tasks(workflow)) == {"read-dataset"}
    assert annotation(workflow, CACHED_ANNOTATION) == {
        "count-run": str(old["count-run"].pk), "count-run-2": str(old["count-run-2"].pk),
        "make-dataset": str(old["make-dataset"].pk)}
    new = tasks_of(second)
    for node_id in ("count-run", "count-run-2", "make-dataset"):
        assert new[node_id].state == TaskState.CACHED
        assert new[node_id].cached_from_id == old[node_id].pk
        assert new[node_id].outputs == old[node_id].outputs
        assert new[node_id].cache_key == old[node_id].cache_key
        assert new[node_id].runtime["cached_from_run"] == str(first.pk)
    # read-dataset read the recorded artifact and its metadata (4 rows → 404).
    assert new["read-dataset"].outputs["parameters"]["Output"] == "404"
    uri = old["make-dataset"].outputs["artifacts"]["data"][0]["uri"]
    assert uri.startswith("s3://mlpipeline/")
    assert retrying(lambda: set(Artifact.objects.filter(
        task=new["make-dataset"]).values_list("name", "uri"))) == retrying(lambda: set(
            Artifact.objects.filter(task=old["make-dataset"]).values_list("name", "uri")))
    assert retrying(lambda: {(m.name, m.value) for m in RunMetric.objects.filter(
        run=second)}) == {("accuracy", 0.75), ("rows", 4.0)}
    assert new["read-dataset"].cache_key != ""

    # Caching off for the run: everything runs (and records its keys).
    third, workflow, ran, _ = play(argo_cluster, owner, profile, package, caching=False)
    assert sorted(ran) == sorted(CACHED_STEPS) and annotation(workflow, CACHED_ANNOTATION) is None
    assert {t.state for t in tasks_of(third).values()} == {TaskState.SUCCEEDED}

    # Another parameter value: nothing matches.
    _, workflow, ran, _ = play(argo_cluster, owner, profile, package, value=5)
    assert sorted(ran) == sorted(CACHED_STEPS) and annotation(workflow, CACHED_ANNOTATION) is None

    # The same again: a chain is served (count-run-2 reads a served task's output), and
    # read-dataset runs so that the Workflow's DAG is not empty.
    fifth, workflow, ran, _ = play(argo_cluster, owner, profile, package)
    assert ran == ["read-dataset"]
    served = tasks_of(fifth)
    assert {n for n, t in served.items() if t.state == TaskState.CACHED} == {
        "count-run", "count-run-2", "make-dataset"}
    assert served["count-run-2"].cached_from_id in (old["count-run-2"].pk,
                                                    new["count-run-2"].pk)


@pytest.fixture
def local_success(engine, start_run, kfp2_package, tmp_path) -> Run:
    """The `cached` pipeline run by the local engine (before kubernetes mode is on)."""
    run = wait_for(start_run(kfp2_package("cached"), counter=str(tmp_path / "count")))
    assert run.state == RunState.SUCCEEDED, run.error
    return run


@pytest.mark.django_db(transaction=True)
def test_a_local_engine_success_never_serves_an_argo_run(
        local_success, argo_cluster, owner, profile, kfp2_package, tmp_path):
    local = tasks_of(local_success)
    run, workflow, ran, _ = play(argo_cluster, owner, profile, kfp2_package("cached"),
                                 counter=str(tmp_path / "count"))
    keys = annotation(workflow, CACHE_KEYS_ANNOTATION)
    # The same keys as the local engine's: it is the candidates' filter that refuses them.
    assert keys == {name: local[name].cache_key for name in ("count-run", "make-dataset")}
    assert annotation(workflow, CACHED_ANNOTATION) is None
    assert sorted(ran) == sorted(CACHED_STEPS)
    assert not any(t.cached_from_id for t in tasks_of(run).values())


def memo_entries(cluster, namespace: str) -> dict:
    found = cluster.get_object("configmaps", CACHE_CONFIG_MAP, namespace)
    assert found["metadata"]["labels"] == {"workflows.argoproj.io/configmap-type": "Cache"}
    return {key: json.loads(entry) for key, entry in found["data"].items()}


@pytest.mark.django_db(transaction=True)
def test_argo_memoizes_the_steps_only_the_run_can_key(argo_cluster, owner, profile,
                                                      kfp2_package):
    """Steps in a loop: their keys come from a key step each, Argo memoizes them in the
    namespace's ConfigMap, and a second run is served from it (no pods), shown Cached."""
    package = kfp2_package("memoized")
    first, workflow, ran, _ = play(argo_cluster, owner, profile, package)
    assert sorted(ran) == ["add", "make-dataset", "make-dataset", "number", "read-dataset",
                           "read-dataset", "shout"]
    templates = {t["name"]: t for t in workflow["spec"]["templates"]}
    memoized = {name for name, t in templates.items() if "memoize" in t}
    assert memoized == {"make-dataset-run", "read-dataset-run"}
    assert templates["make-dataset-run"]["memoize"] == {
        "key": "{{inputs.parameters.kfdash-cache-key}}", "maxAge": "",
        "cache": {"configMap": {"name": "kfdash-cache"}}}
    assert "retryStrategy" in templates["add"] and "memoize" not in templates["add"]
    old = tasks_of(first)
    keys = {node_id: old[node_id].cache_key for node_id in
            ("make-dataset.0", "make-dataset.1", "read-dataset.0", "read-dataset.1")}
    assert all(re.fullmatch(r"[0-9a-f]{64}", key) for key in keys.values())
    assert len(set(keys.values())) == 4
    assert set(memo_entries(argo_cluster, profile.name)) == set(keys.values())

    second, workflow, ran, _ = play(argo_cluster, owner, profile, package)
    # The loop's steps from Argo's cache, number and shout at submit; add retries, which
    # Argo's memoization does not take, so its first run left no key: it runs, and keys.
    assert ran == ["add"]
    new = tasks_of(second)
    for node_id, key in keys.items():
        assert new[node_id].state == TaskState.CACHED, node_id
        assert new[node_id].cache_key == key
        assert new[node_id].cached_from_id == old[node_id].pk
        assert new[node_id].outputs == old[node_id].outputs
    assert new["read-dataset.1"].outputs["parameters"]["Output"] == "202"
    assert retrying(lambda: set(Artifact.objects.filter(
        task=new["make-dataset.0"]).values_list("name", "uri"))) == retrying(lambda: set(
            Artifact.objects.filter(task=old["make-dataset.0"]).values_list("name", "uri")))

    _, _, ran, _ = play(argo_cluster, owner, profile, package, values=[1, 3])
    assert sorted(ran) == ["make-dataset", "read-dataset"]  # 1 from the cache, 3 anew


@pytest.mark.django_db(transaction=True)
def test_a_key_step_that_fails_fails_its_task_saying_why(argo_cluster, owner, profile,
                                                         kfp2_package):
    run = Run.start(profile, owner, name="memo", loaded=load(kfp2_package("memoized")),
                    parameters={"values": [1]})
    Controller(argo_cluster, run.pk, namespace=profile.name,
               fail=lambda name, attempt: name == "cache-key").run()
    run = wait_for(run)
    assert run.state == RunState.FAILED
    failed = tasks_of(run)["make-dataset.0"]
    assert failed.state == TaskState.FAILED
    assert failed.error == ("kfdash could not work out the step's cache key: "
                            "Error (exit code 1)")


@pytest.mark.parametrize("caching", [False])
@pytest.mark.django_db(transaction=True)
def test_nothing_is_memoized_when_caching_is_off(argo_cluster, owner, profile,
                                                 kfp2_package, caching):
    _, workflow, ran, _ = play(argo_cluster, owner, profile, kfp2_package("memoized"),
                               caching=caching)
    assert not any("memoize" in t for t in workflow["spec"]["templates"])
    assert len(ran) == 7
