"""Argo features beyond what kfp 1.8 writes, run by the local engine: script templates,
outputs.result, withSequence, timed suspends, raw input artifacts; and the templates and
input artifacts local mode can never run, refused before any step starts."""

import time
from pathlib import Path

import pytest
import yaml

from pipelines.engines import EngineError, isolation
from pipelines.engines.argo_templates import RESULT_BYTES
from pipelines.models import Artifact, Pipeline, Run
from pipelines.specs import load
from pipelines.views.graph import graph_data
from tests.kfp_sdks import run_kfp1
from tests.pipelines.engine.conftest import retrying, tasks_of, wait_for, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPTS = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: scripts-}
spec:
  entrypoint: main
  arguments: {parameters: [{name: greeting, value: hello}, {name: n, value: "3"}]}
  templates:
  - name: main
    dag:
      tasks:
      - name: greet
        template: greet
        arguments: {parameters: [{name: greeting, value: "{{workflow.parameters.greeting}}"}]}
      - name: listing
        template: listing
        arguments: {parameters: [{name: n, value: "{{workflow.parameters.n}}"}]}
      - name: said
        template: container-says
      - name: each
        template: echo
        withParam: "{{tasks.listing.outputs.result}}"
        arguments: {parameters: [{name: msg, value: "got {{item}}"}]}
      - name: big
        template: echo
        when: "'{{tasks.greet.outputs.result}}' == 'hello world' && {{workflow.parameters.n}} > 2"
        arguments: {parameters: [{name: msg, value: "{{tasks.greet.outputs.result}}"}]}
      - name: small
        template: echo
        when: "{{workflow.parameters.n}} < 2"
        arguments: {parameters: [{name: msg, value: small}]}
      - name: joined
        template: echo
        arguments: {parameters: [
          {name: msg, value: "{{tasks.said.outputs.result}} / {{tasks.each.outputs.result}}"}]}
  - name: greet
    inputs: {parameters: [{name: greeting}]}
    script:
      image: python:3.11
      command: [python]
      env: [{name: WHO, value: "{{inputs.parameters.greeting}} world"}]
      source: |
        import os, sys
        print(os.environ["WHO"])
        print("said on stderr by {{inputs.parameters.greeting}}", file=sys.stderr)
        os.makedirs(os.path.dirname("{{outputs.parameters.size.path}}"), exist_ok=True)
        with open("{{outputs.parameters.size.path}}", "w") as handle:
            handle.write(str(len(os.environ["WHO"])))
    outputs:
      parameters:
      - name: size
        valueFrom: {path: /tmp/outputs/size}
  - name: listing
    inputs: {parameters: [{name: n}]}
    script:
      image: alpine
      command: [sh]
      source: |
        printf '['
        i=1
        while [ $i -le {{inputs.parameters.n}} ]; do
          [ $i -gt 1 ] && printf ','
          printf '"v%s"' $i
          i=$((i + 1))
        done
        echo ']'
  - name: container-says
    container:
      image: alpine
      command: [sh, -c, "echo from the container; echo not the result >&2"]
  - name: echo
    inputs: {parameters: [{name: msg}]}
    container:
      image: alpine
      command: [sh, -c, 'echo "$0"', "{{inputs.parameters.msg}}"]
"""

SEQUENCES = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: sequences-}
spec:
  entrypoint: main
  arguments: {parameters: [{name: n, value: "2"}]}
  templates:
  - name: main
    dag:
      tasks:
      - name: counted
        template: echo
        withSequence: {count: "3", start: "1", format: "%02d"}
        arguments: {parameters: [{name: msg, value: "n{{item}}"}]}
      - name: down
        template: echo
        withSequence: {start: 5, end: 3}
        arguments: {parameters: [{name: msg, value: "{{item}}"}]}
      - name: from-parameter
        template: echo
        withSequence: {count: "{{workflow.parameters.n}}", start: "{{workflow.parameters.n}}"}
        arguments: {parameters: [{name: msg, value: "{{item}}"}]}
      - name: from-output
        template: echo
        withSequence: {end: "{{tasks.three.outputs.result}}"}
        arguments: {parameters: [{name: msg, value: "{{item}}"}]}
      - name: three
        template: three
  - name: echo
    inputs: {parameters: [{name: msg}]}
    container:
      image: alpine
      command: [sh, -c, 'echo "$0"', "{{inputs.parameters.msg}}"]
  - name: three
    script: {image: alpine, command: [sh], source: "echo 3"}
"""

PAUSE_AND_RAW = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: pause-}
spec:
  entrypoint: main
  arguments: {parameters: [{name: wait, value: 1s}]}
  templates:
  - name: main
    dag:
      tasks:
      - name: before
        template: stamp
      - name: pause
        template: pause
        dependencies: [before]
        arguments: {parameters: [{name: wait, value: "{{workflow.parameters.wait}}"}]}
      - name: after
        template: read-raw
        dependencies: [pause]
        arguments:
          parameters: [{name: who, value: raw reader}]
          artifacts: [{name: given, raw: {data: "given by the task"}}]
  - name: stamp
    container: {image: alpine, command: [sh, -c, date +%s.%N]}
  - name: pause
    inputs: {parameters: [{name: wait}]}
    suspend: {duration: "{{inputs.parameters.wait}}"}
  - name: read-raw
    inputs:
      parameters: [{name: who}]
      artifacts:
      - name: note
        path: /tmp/inputs/note
        raw: {data: "hello from {{inputs.parameters.who}}"}
      - {name: given, path: /tmp/inputs/given}
    container:
      image: alpine
      command: [sh, -c, 'test "$(cat /tmp/inputs/note)" = "hello from raw reader"
        && cat /tmp/inputs/given']
"""

CLUSTER_ONLY = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: cluster-only-}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: first, template: echo}
      - {name: approve, template: approve, dependencies: [first]}
      - {name: fetch, template: fetch, dependencies: [approve]}
      - {name: call, template: call, dependencies: [first]}
  - name: echo
    container: {image: alpine, command: [echo, hi]}
  - name: approve
    suspend: {}
  - name: fetch
    inputs:
      artifacts:
      - name: data
        path: /tmp/data
        s3: {endpoint: s3.amazonaws.com, bucket: b, key: k}
    container: {image: alpine, command: [cat, /tmp/data]}
  - name: call
    http: {url: "https://example.com"}
"""

KFP1_REFUSED_AND_RAW = r'''
from kfp import compiler, dsl


@dsl.pipeline(name="volume")
def volume():
    made = dsl.VolumeOp(name="create-volume", resource_name="data", size="1Gi",
                        modes=dsl.VOLUME_MODE_RWO)
    dsl.ContainerOp(name="use", image="alpine", command=["sh", "-c", "echo hi > /data/x"],
                    pvolumes={"/data": made.volume})


@dsl.pipeline(name="raw-v1")
def raw_v1():
    dsl.ContainerOp(name="reader", image="alpine",
                    command=["sh", "-c", 'test "$(cat /tmp/inputs/in)" = "constant text"'],
                    artifact_argument_paths=[dsl.InputArgumentPath("constant text",
                                                                   path="/tmp/inputs/in")])


for name, pipeline in {"volume": volume, "raw_v1": raw_v1}.items():
    compiler.Compiler().compile(pipeline, f"{name}.yaml")
'''


@pytest.fixture(scope="module")
def kfp1_extra(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("engine-kfp1-extra")
    run_kfp1(KFP1_REFUSED_AND_RAW, out)
    return out


def _log_lines(engine, task) -> list[str]:
    return [line for line in engine.read_log(task).splitlines()
            if not line.startswith("----- kfdash")]


@pytest.mark.parametrize("isolation_mode", ["namespace", "rewrite"])
def test_script_templates_run_their_source_and_give_their_stdout_as_result(
        start_run, engine, settings, isolation_mode):
    if isolation_mode == "namespace":
        available, why = isolation.namespaces_available(engine.step_python,
                                                        Path(settings.DATA_DIR) / "engine")
        assert available, f"this host should allow unprivileged namespaces: {why}"
    settings.KFDASH_STEP_ISOLATION = isolation_mode
    run = wait_for(start_run(SCRIPTS.encode()))
    assert run.state == "SUCCEEDED", run.error
    tasks = tasks_of(run)
    greet = tasks["greet"]
    # stdout only, the trailing newline trimmed; the script wrote its declared output path
    assert greet.outputs["result"] == "hello world"
    assert greet.outputs["parameters"] == {"size": "11"}
    # both streams in the log (stdout through the relay, so their order may differ)
    assert {"said on stderr by hello", "hello world"} <= set(
        engine.read_log(greet).replace("hello world", "\nhello world\n").splitlines())
    assert greet.runtime["mode"] == isolation_mode
    assert greet.command[0] == "python" and greet.command[-1].endswith("/script")
    assert tasks["listing"].outputs["result"] == '["v1","v2","v3"]'
    each = sorted((t for t in tasks.values() if t.spec_id == "each/each"),
                  key=lambda t: t.iteration or 0)
    assert [_log_lines(engine, t) for t in each] == [["got v1"], ["got v2"], ["got v3"]]
    assert tasks["big"].state == "SUCCEEDED" and tasks["small"].state == "SKIPPED"
    assert _log_lines(engine, tasks["big"]) == ["hello world"]
    # a container template's result too; a loop's results are collected as a JSON list
    assert tasks["said"].outputs["result"] == "from the container"
    assert tasks["joined"].inputs["parameters"] == {
        "msg": 'from the container / ["got v1","got v2","got v3"]'}


def test_only_steps_whose_result_is_read_run_under_the_relay(start_run, engine):
    run = wait_for(start_run(SCRIPTS.encode()))
    assert run.state == "SUCCEEDED", run.error
    tasks = tasks_of(run)
    assert "result" not in tasks["joined"].outputs  # nothing reads it
    assert (Path(tasks["greet"].runtime["folder"]) / "result").is_file()
    assert not (Path(tasks["joined"].runtime["folder"]) / "result").exists()


def test_a_result_keeps_the_last_256_kb_of_stdout(start_run, engine, settings):
    settings.KFDASH_MAX_LOG_BYTES = 64 * 1024  # the log is capped; the result is not the log
    workflow = yaml.safe_load(SCRIPTS)
    greet = next(t for t in workflow["spec"]["templates"] if t["name"] == "greet")
    greet["script"]["source"] = ("import sys\nsys.stdout.write('x' * 300000 + 'end\\n\\n')\n"
                                 "open('{{outputs.parameters.size.path}}', 'w').write('1')\n")
    run = wait_for(start_run(yaml.safe_dump(workflow).encode()))
    assert run.state == "SUCCEEDED", run.error
    result = tasks_of(run)["greet"].outputs["result"]
    assert len(result) == RESULT_BYTES and result.endswith("xxend\n")


def test_with_sequence_loops_over_formatted_numbers(start_run, engine):
    run = wait_for(start_run(SEQUENCES.encode()))
    assert run.state == "SUCCEEDED", run.error
    tasks = tasks_of(run)

    def messages(loop: str) -> list[str]:
        steps = sorted((t for t in tasks.values() if t.spec_id == f"{loop}/{loop}"),
                       key=lambda t: t.iteration or 0)
        return [t.inputs["parameters"]["msg"] for t in steps]

    assert tasks["counted"].runtime["items"] == ["01", "02", "03"]
    assert messages("counted") == ["n01", "n02", "n03"]
    assert messages("down") == ["5", "4", "3"]
    assert messages("from-parameter") == ["2", "3"]
    assert messages("from-output") == ["0", "1", "2", "3"]
    counted = [t for t in tasks.values() if t.spec_id == "counted/counted"]
    assert sorted(_log_lines(engine, t)[0] for t in counted) == ["n01", "n02", "n03"]


def test_a_with_sequence_that_resolves_to_nonsense_fails_its_loop(start_run, engine):
    run = wait_for(start_run(SEQUENCES.encode(), n="two"))
    assert run.state == "FAILED"
    loop = tasks_of(run)["from-parameter"]
    assert loop.state == "FAILED"
    assert loop.error == "the loop from-parameter: withSequence start should be a whole " \
                         "number, not 'two'"


def test_a_timed_suspend_waits_and_raw_input_artifacts_are_written(start_run, engine):
    run = wait_for(start_run(PAUSE_AND_RAW.encode()))
    assert run.state == "SUCCEEDED", run.error
    tasks = tasks_of(run)
    pause, after = tasks["pause"], tasks["after"]
    assert pause.state == "SUCCEEDED"
    assert pause.runtime["process_seconds"] >= 1.0
    assert after.started_at >= pause.finished_at
    assert "given by the task----- kfdash: succeeded" in engine.read_log(after)


def test_a_suspend_whose_duration_is_not_one_fails_its_step(start_run, engine):
    run = wait_for(start_run(PAUSE_AND_RAW.encode(), wait="soon"))
    assert run.state == "FAILED"
    assert tasks_of(run)["pause"].error == (
        "cannot start: the template 'pause' suspends for 'soon', which is not an Argo "
        "duration")


def test_kfp1_raw_input_artifacts_are_written_before_the_step(start_run, engine, kfp1_extra):
    run = wait_for(start_run((kfp1_extra / "raw_v1.yaml").read_bytes()))
    assert run.state == "SUCCEEDED", run.error


def test_a_kfp1_volume_op_uploads_but_its_run_is_refused_before_any_step_starts(
        engine, kfp1_extra, profile, owner):
    loaded = load((kfp1_extra / "volume.yaml").read_bytes())
    version = retrying(lambda: Pipeline.upload(profile, "volume", loaded, owner))
    assert [task["id"] for task in graph_data(version.spec)["tasks"]] == ["create-volume", "use"]
    run = wait_for(retrying(lambda: Run.start(profile, owner, name="r", version=version)))
    assert run.state == "FAILED"
    assert run.error == ("The template 'create-volume' creates Kubernetes objects (resource); "
                         "local mode cannot run it, kubernetes mode can.")
    assert tasks_of(run) == {}  # nothing started, not even the step that did not need it
    assert [entry["state"] for entry in run.state_history] == ["PENDING", "FAILED"]
    assert not retrying(lambda: Artifact.objects.filter(run=run).exists())


def test_every_template_local_mode_cannot_run_is_named_at_once(start_run, engine, owner):
    run = wait_for(start_run(CLUSTER_ONLY.encode()))
    assert run.state == "FAILED"
    assert run.error == (
        "Local mode cannot run these templates, kubernetes mode can: 'approve' waits until "
        "someone resumes it (suspend without a duration); 'fetch' gets its input artifact "
        "'data' from S3 (s3); 'call' sends an HTTP request from the Argo controller (http).")
    assert tasks_of(run) == {}
    with pytest.raises(EngineError, match=r"^Local mode cannot run these templates"):
        run.retry(owner)
    time.sleep(0.2)
    assert tasks_of(run) == {}


def _with_greet_source(source: str) -> bytes:
    """The greet step with this shell source, and what reads its result."""
    workflow = yaml.safe_load(SCRIPTS)
    templates = workflow["spec"]["templates"]
    main, greet = templates[0], next(t for t in templates if t["name"] == "greet")
    main["dag"]["tasks"] = [task for task in main["dag"]["tasks"]
                            if task["name"] in ("greet", "big")]
    greet["script"].update(command=["sh"], source=source)
    greet.pop("outputs")
    return yaml.safe_dump(workflow).encode()


def test_a_step_whose_result_is_read_ends_with_its_main_process(start_run, engine):
    """What it left running holds its stdout; as in a pod, the step ends anyway."""
    began = time.monotonic()
    run = wait_for(start_run(_with_greet_source("(sleep 60; echo late) &\necho quick\n")))
    assert run.state == "SUCCEEDED", run.error
    assert time.monotonic() - began < 20
    assert tasks_of(run)["greet"].outputs["result"] == "quick"


def test_terminating_a_step_whose_result_is_read(start_run, engine, settings):
    ready = Path(settings.DATA_DIR) / f"ready-{time.monotonic_ns()}"  # a v1 step's /tmp is its own
    run = start_run(_with_greet_source(
        f"trap 'echo stopping; exit 3' TERM\necho started\ntouch {ready}\n"
        "sleep 300 &\nwait\n"))
    wait_until(ready.exists, what="the step starting")
    began = time.monotonic()
    engine.terminate(run)
    wait_for(run)
    assert run.state == "CANCELED"
    assert time.monotonic() - began < 10
    greet = tasks_of(run)["greet"]
    assert greet.state == "CANCELED"
    # the relay kept going while the step stopped: its last words reached the log
    assert "stopping" in engine.read_log(greet)


def test_unrunnable_names_each_template_once_with_every_reason():
    from pipelines.engines.argo_templates import unrunnable

    workflow = yaml.safe_load(CLUSTER_ONLY)
    templates = workflow["spec"]["templates"]
    tasks = templates[0]["dag"]["tasks"]
    templates.extend([
        {"name": "pair", "containerSet": {"containers": [{"name": "a", "image": "alpine"}]}},
        {"name": "plug", "plugin": {"hello": {}}},
        {"name": "transform", "data": {"source": {"artifactPaths": {"s3": {"bucket": "b"}}}}},
        {"name": "volume", "resource": {"action": "create", "manifest": "kind: Secret\n"}},
        {"name": "bare", "container": {"image": "alpine"}},
        {"name": "bare-script", "script": {"image": "python", "source": "print(1)"}},
    ])
    tasks.extend({"name": name, "template": name}
                 for name in ("pair", "plug", "transform", "volume", "bare", "bare-script"))
    tasks.append({"name": "fetch-again", "template": "fetch", "arguments": {"artifacts": [
        {"name": "data", "fromExpression": "tasks.first.outputs.artifacts.x"}]}})
    spec = load(yaml.safe_dump(workflow).encode()).spec
    assert unrunnable(workflow, spec.tasks) == (
        "Local mode cannot run these templates, kubernetes mode can: "
        "'approve' waits until someone resumes it (suspend without a duration); "
        "'fetch' gets its input artifact 'data' from S3 (s3) and gets its input artifact "
        "'data' from an expression (fromExpression); "
        "'call' sends an HTTP request from the Argo controller (http); "
        "'pair' runs several containers in one pod (containerSet); "
        "'plug' runs an Argo executor plugin (plugin); "
        "'transform' transforms artifacts in Argo's data template (data); "
        "'volume' creates Kubernetes objects (resource); "
        "'bare' has no command (local mode cannot read the image's entrypoint); "
        "'bare-script' has no command (local mode cannot read the image's entrypoint).")
    runnable = [task for task in spec.tasks if task.component in ("echo",)]
    assert unrunnable(workflow, runnable) == ""


# -- steps templates ------------------------------------------------------------------------

CLASSIC_STEPS = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: steps-}
spec:
  entrypoint: main
  arguments: {parameters: [{name: meet, value: ""}]}
  templates:
  - name: main
    steps:
    - - name: hello
        template: print
        arguments: {parameters: [{name: msg, value: hello}]}
    - - name: a
        template: meet
        arguments: {parameters: [{name: me, value: a}, {name: other, value: b}]}
      - name: b
        template: meet
        arguments: {parameters: [{name: me, value: b}, {name: other, value: a}]}
    - - name: c
        template: both
        arguments:
          parameters:
          - {name: x, value: "{{steps.a.outputs.parameters.out}}"}
          - {name: y, value: "{{steps.b.outputs.result}}"}
  - name: print
    inputs: {parameters: [{name: msg}]}
    container: {image: alpine, command: [sh, -c, 'echo "$0"', "{{inputs.parameters.msg}}"]}
  - name: meet
    # each waits (10 s at most) for the other to have started: they run in parallel
    inputs: {parameters: [{name: me}, {name: other}]}
    script:
      image: alpine
      command: [sh]
      source: |
        touch "{{workflow.parameters.meet}}/{{inputs.parameters.me}}"
        i=0
        until [ -e "{{workflow.parameters.meet}}/{{inputs.parameters.other}}" ]; do
          i=$((i + 1)); [ $i -gt 200 ] && exit 9
          sleep 0.05
        done
        mkdir -p "$(dirname "{{outputs.parameters.out.path}}")"
        echo "{{inputs.parameters.me}} out" > "{{outputs.parameters.out.path}}"
        echo "{{inputs.parameters.me}} result"
    outputs: {parameters: [{name: out, valueFrom: {path: /tmp/outputs/out}}]}
  - name: both
    inputs: {parameters: [{name: x}, {name: y}]}
    container: {image: alpine, command: [sh, -c, 'echo "$0 / $1"', "{{inputs.parameters.x}}",
                                         "{{inputs.parameters.y}}"]}
"""

COIN = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: coin-}
spec:
  entrypoint: main
  arguments: {parameters: [{name: side, value: heads}]}
  templates:
  - name: main
    inputs: {parameters: [{name: side}]}
    steps:
    - - name: flip
        template: print
        arguments: {parameters: [{name: msg, value: "{{inputs.parameters.side}}"}]}
    - - name: heads
        template: print
        when: "{{steps.flip.outputs.result}} == heads"
        arguments: {parameters: [{name: msg, value: "it was heads"}]}
      - name: tails
        template: print
        when: "{{steps.flip.outputs.result}} == tails"
        arguments: {parameters: [{name: msg, value: "it was tails"}]}
      - name: not-edge
        template: print
        when: "'{{inputs.parameters.side}}' != 'edge'"
        arguments: {parameters: [{name: msg, value: "not on its edge"}]}
    - - name: after
        template: print
        arguments: {parameters: [{name: msg, value: after}]}
  - name: print
    inputs: {parameters: [{name: msg}]}
    container: {image: alpine, command: [sh, -c, 'echo "$0"', "{{inputs.parameters.msg}}"]}
"""

NESTED = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: nested-}
spec:
  entrypoint: main
  arguments: {parameters: [{name: prefix, value: p}]}
  templates:
  - name: main
    dag:
      tasks:
      - name: start
        template: print
        arguments: {parameters: [{name: msg, value: start}]}
      - name: greet-all
        template: greet-all
        dependencies: [start]
        arguments: {parameters: [{name: prefix, value: "{{workflow.parameters.prefix}}"}]}
      - name: report
        template: print
        arguments: {parameters: [{name: msg, value: "{{tasks.greet-all.outputs.parameters.all}}"}]}
  - name: greet-all
    inputs: {parameters: [{name: prefix}]}
    outputs:
      parameters:
      - {name: all, valueFrom: {parameter: "{{steps.collect.outputs.result}}"}}
    steps:
    - - name: start
        template: print
        arguments: {parameters: [{name: msg, value: hi}]}
    - - name: each
        template: print
        withItems: [{name: ann, n: 1}, {name: bob, n: 2}, {name: cy, n: 3}]
        when: "{{item.n}} != 2"
        arguments:
          parameters:
          - name: msg
            value: "{{inputs.parameters.prefix}} {{item.name}} {{steps.start.outputs.result}}"
      - name: pair
        template: pair
        arguments: {parameters: [{name: word, value: "{{steps.start.outputs.result}}"}]}
    - - name: collect
        template: both
        arguments:
          parameters:
          - {name: x, value: "{{steps.each.outputs.result}}"}
          - {name: y, value: "{{steps.pair.outputs.parameters.joined}}"}
  - name: pair
    inputs: {parameters: [{name: word}]}
    outputs:
      parameters:
      - {name: joined, valueFrom: {parameter: "{{tasks.second.outputs.result}}"}}
    dag:
      tasks:
      - name: first
        template: print
        arguments: {parameters: [{name: msg, value: "{{inputs.parameters.word}}-1"}]}
      - name: second
        template: print
        arguments: {parameters: [{name: msg, value: "{{tasks.first.outputs.result}}-2"}]}
  - name: print
    inputs: {parameters: [{name: msg}]}
    container: {image: alpine, command: [sh, -c, 'echo "$0"', "{{inputs.parameters.msg}}"]}
  - name: both
    inputs: {parameters: [{name: x}, {name: y}]}
    container: {image: alpine, command: [sh, -c, 'echo "$0 $1"', "{{inputs.parameters.x}}",
                                         "{{inputs.parameters.y}}"]}
"""

CONTINUE_ON = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: continue-}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: fails
        template: fail
        continueOn: {failed: true}
      - name: fine
        template: print
        arguments: {parameters: [{name: msg, value: fine}]}
      - name: sub
        template: sub
        continueOn: {failed: true}
    - - name: next
        template: print
        arguments: {parameters: [{name: msg, value: "{{workflow.status}}"}]}
  - name: sub
    steps:
    - - {name: boom, template: fail}
    - - name: never
        template: print
        arguments: {parameters: [{name: msg, value: never}]}
  - name: fail
    container: {image: alpine, command: [sh, -c, "echo failing on purpose; exit 3"]}
  - name: print
    inputs: {parameters: [{name: msg}]}
    container: {image: alpine, command: [sh, -c, 'echo "$0"', "{{inputs.parameters.msg}}"]}
"""


def test_classic_steps_run_group_after_group_and_a_group_in_parallel(
        start_run, engine, settings):
    settings.KFDASH_RUN_PARALLELISM = 2
    meet = Path(settings.DATA_DIR) / f"meet-{time.monotonic_ns()}"
    meet.mkdir(parents=True)
    run = wait_for(start_run(CLASSIC_STEPS.encode(), meet=str(meet)))
    assert run.state == "SUCCEEDED", run.error
    tasks = tasks_of(run)
    hello, a, b, c = (tasks[name] for name in ("hello", "a", "b", "c"))
    assert {a.outputs["parameters"]["out"], b.outputs["result"]} == {"a out", "b result"}
    assert c.inputs["parameters"] == {"x": "a out", "y": "b result"}
    assert _log_lines(engine, c) == ["a out / b result"]
    # a and b met (each waited for the other), after hello ended; c after both
    assert min(a.started_at, b.started_at) >= hello.finished_at
    assert c.started_at >= max(a.finished_at, b.finished_at)
    assert sorted(path.name for path in meet.iterdir()) == ["a", "b"]


@pytest.mark.parametrize(("side", "ran", "skipped"), [
    ("heads", {"flip", "heads", "not-edge", "after"}, {"tails"}),
    ("tails", {"flip", "tails", "not-edge", "after"}, {"heads"}),
    ("edge", {"flip", "after"}, {"heads", "tails", "not-edge"}),
])
def test_a_step_runs_when_its_when_holds(start_run, engine, side, ran, skipped):
    run = wait_for(start_run(COIN.encode(), side=side))
    assert run.state == "SUCCEEDED", run.error
    states = {node: task.state for node, task in tasks_of(run).items()}
    assert states == {**dict.fromkeys(ran, "SUCCEEDED"), **dict.fromkeys(skipped, "SKIPPED")}
    assert all(tasks_of(run)[name].error.startswith("its condition is false: ")
               for name in skipped)


def test_nested_steps_and_dags_loop_and_pass_outputs_up(start_run, engine):
    """A DAG calls a steps template, which loops over items (each decided by its when)
    and calls a DAG; names repeat across templates; outputs come back up through both."""
    run = wait_for(start_run(NESTED.encode()))
    assert run.state == "SUCCEEDED", run.error
    tasks = tasks_of(run)
    assert tasks["greet-all/start"].outputs["result"] == "hi"
    # the loop is named inside its template, as a DAG's tasks are ("each" is used twice)
    loop = "greet-all/each"
    assert [tasks[f"{loop}.{i}"].state for i in range(3)] == ["SUCCEEDED", "SKIPPED",
                                                              "SUCCEEDED"]
    assert tasks[f"{loop}.1"].error == "its condition is false: {{item.n}} != 2"
    assert f"{loop}/each.1" not in tasks
    assert [tasks[f"{loop}/each.{i}"].inputs["parameters"]["msg"] for i in (0, 2)] == [
        "p ann hi", "p cy hi"]
    assert tasks["second"].inputs["parameters"] == {"msg": "hi-1-2"}
    # the skipped item has no result; the others are collected
    assert tasks["collect"].inputs["parameters"] == {"x": '["p ann hi","p cy hi"]',
                                                     "y": "hi-1-2"}
    assert tasks["report"].inputs["parameters"] == {"msg": '["p ann hi","p cy hi"] hi-1-2'}
    assert tasks["greet-all"].state == "SUCCEEDED"
    assert tasks["greet-all/start"].started_at >= tasks["start"].finished_at


def test_continue_on_failed_lets_the_next_group_run(start_run, engine):
    run = wait_for(start_run(CONTINUE_ON.encode()))
    assert run.state == "SUCCEEDED", run.error
    states = {node: task.state for node, task in tasks_of(run).items()}
    assert states == {"fails": "FAILED", "fine": "SUCCEEDED", "sub": "FAILED",
                      "boom": "FAILED", "never": "SKIPPED", "next": "SUCCEEDED"}
    # the failures it continued on do not make the workflow fail
    assert tasks_of(run)["next"].inputs["parameters"] == {"msg": "Running"}


def test_without_continue_on_a_failed_step_fails_its_template(start_run, engine):
    workflow = yaml.safe_load(CONTINUE_ON)
    for step in workflow["spec"]["templates"][0]["steps"][0]:
        step.pop("continueOn", None)
    run = wait_for(start_run(yaml.safe_dump(workflow).encode()))
    assert run.state == "FAILED"
    states = {node: task.state for node, task in tasks_of(run).items()}
    # the rest of its group ran on; the next group did not start
    assert states["fine"] == "SUCCEEDED" and states["next"] == "SKIPPED"
    assert states["fails"] == "FAILED"
    assert run.error.startswith("The step ")


def test_the_graph_of_an_uploaded_steps_workflow_shows_its_steps(engine, profile, owner):
    loaded = load(NESTED.encode())
    version = retrying(lambda: Pipeline.upload(profile, "nested steps", loaded, owner))
    shown = graph_data(version.spec)
    after = {task["id"]: task["after"] for task in shown["tasks"]}
    assert after == {"start": [], "greet-all/start": [], "greet-all/each/each": [],
                     "first": [], "second": ["first"], "collect": ["each", "pair"],
                     "report": ["greet-all"]}
    groups = {group["id"]: (group["parent"], group["deps"]) for group in shown["groups"]}
    assert groups == {"greet-all": (None, ["start"]),
                      "greet-all/each": ("greet-all", ["greet-all/start"]),
                      "pair": ("greet-all", ["greet-all/start"])}
    labels = {group["id"]: group["label"] for group in shown["groups"]}
    assert labels["greet-all/each"].startswith("each: for each in [")
