"""A small Argo controller for tests: it moves a submitted Workflow's ``status`` through
the nodes Argo's controller would make, one change at a time.

No Argo can run here (no cluster), and the fake API server stores Workflows without acting
on them, so this plays the controller: DAG templates (``dependencies``, ``depends``,
``when``), loops (``withItems``, ``withParam``, ``withSequence``: a ``TaskGroup`` node and
one child per item, named ``task(i:item)``), container and script templates (a ``Pod``
node going Pending → Running → Succeeded/Failed, inside a ``Retry`` node with children
``task(n)`` when the template has a ``retryStrategy``), output parameters (from the test's
``outputs`` function), artifacts (an S3 key each), loop outputs aggregated as JSON lists,
node ids and names as Argo forms them. It resumes from whatever status the Workflow has
(nodes that succeeded are kept), which is how Argo continues after a retry; ``terminate``
does what ``spec.shutdown: Terminate`` makes Argo do.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

WORKFLOWS = "workflows.argoproj.io"
INPUT_PARAMETER = re.compile(r"\{\{inputs\.parameters\.([^{}]+)\}\}")
LAUNCHER_KEY = "--cache-key-of"  # a step that works out a cache key (argo_compile_cache)
MEMOIZED_RUN = "run"  # argo_compile_cache.RUN_TASK
EXECUTOR_OUTPUT = "kfdash-executor-output"  # argo_names.EXECUTOR_OUTPUT
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
FINAL = ("Succeeded", "Failed", "Error", "Skipped", "Omitted")


def fnv32a(text: str) -> int:
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


class ArgoSim:
    def __init__(self, workflow: dict,
                 outputs: Callable[[str, dict], dict] | None = None,
                 fail: Callable[[str, int], bool] | None = None,
                 memo: Memo | None = None):
        """``outputs(task display name, input parameters)`` gives a step's output
        parameters; ``fail(task display name, attempt)`` says whether that attempt fails;
        ``memo``: where memoized steps' outputs are kept (a fresh store by default)."""
        self.workflow = copy.deepcopy(workflow)
        self.name = workflow["metadata"]["name"]
        self.namespace = workflow["metadata"].get("namespace", "")
        spec = self.workflow["spec"]
        self.templates = {t["name"]: t for t in spec["templates"]}
        self.parameters = {p["name"]: str(p.get("value", ""))
                           for p in (spec.get("arguments") or {}).get("parameters") or []}
        self.outputs = outputs or (lambda name, inputs: {})
        self.memo = memo if memo is not None else Memo()
        self.fail = fail or (lambda name, attempt: False)
        status = self.workflow.setdefault("status", {})
        self.nodes: dict[str, dict] = status.setdefault("nodes", {})
        self.clock = datetime(2026, 1, 1, tzinfo=UTC)
        self.steps = self._run()

    # --- driving -------------------------------------------------------------------------

    def step(self) -> dict | None:
        """One more change; the Workflow as it is now, or None when it has ended."""
        try:
            next(self.steps)
        except StopIteration:
            return None
        return copy.deepcopy(self.workflow)

    def run_all(self) -> dict:
        while self.step() is not None:
            pass
        return copy.deepcopy(self.workflow)

    def terminate(self) -> dict:
        """What Argo does once ``spec.shutdown: Terminate`` is set."""
        message = "Stopped with strategy 'Terminate'"
        for node in self.nodes.values():
            if node["phase"] not in FINAL:
                node.update(phase="Failed", message=message, finishedAt=self._now())
        self.workflow["spec"]["shutdown"] = "Terminate"
        self.workflow["status"].update(phase="Failed", message=message,
                                       finishedAt=self._now())
        self.steps = iter(())
        return copy.deepcopy(self.workflow)

    # --- the controller --------------------------------------------------------------------

    def _now(self) -> str:
        self.clock += timedelta(seconds=1)
        return self.clock.strftime("%Y-%m-%dT%H:%M:%SZ")

    def _node(self, name: str, display: str, kind: str, template: str, parent: dict | None,
              ) -> tuple[dict, bool]:
        """The node called ``name`` (made Running when new); True when it ran already."""
        node_id = self.name if name == self.name else f"{self.name}-{fnv32a(name)}"
        node = self.nodes.get(node_id)
        if node is not None and node["phase"] in ("Succeeded", "Skipped"):
            return node, True
        if node is None:
            node = {"id": node_id, "name": name, "displayName": display, "type": kind,
                    "templateName": template, "phase": "Running" if kind != "Pod" else
                    "Pending", "startedAt": self._now()}
            self.nodes[node_id] = node
        if parent is not None and node_id not in parent.setdefault("children", []):
            parent["children"].append(node_id)
        return node, False

    def _end(self, node: dict, phase: str, message: str = "") -> None:
        node["phase"] = phase
        node["finishedAt"] = self._now()
        if message:
            node["message"] = message

    def _run(self) -> Iterator[None]:
        status = self.workflow["status"]
        status.setdefault("startedAt", self._now())
        status["phase"] = "Running"
        entry = self.templates[self.workflow["spec"]["entrypoint"]]
        root, done = self._node(self.name, self.name, "DAG", entry["name"], None)
        yield
        if not done:
            yield from self._template(entry, root, {})
        phase = root["phase"] if root["phase"] in ("Succeeded", "Failed") else "Error"
        on_exit = self.workflow["spec"].get("onExit")
        if on_exit:  # Argo's exit handler: a node of its own, after the entrypoint's
            self.parameters["__status"] = phase
            name = f"{self.name}.onExit"
            template = self.templates[on_exit]
            node, ran = self._node(name, name, self._kind(template), on_exit, None)
            if not ran:
                yield
                yield from self._attempts(template, node, {})
        status["phase"] = phase
        status["finishedAt"] = self._now()
        yield

    def _template(self, template: dict, node: dict, inputs: dict) -> Iterator[None]:
        for declared in (template.get("inputs") or {}).get("parameters") or []:
            name = declared["name"]
            if name not in inputs and node["name"] == self.name and name in self.parameters:
                inputs[name] = self.parameters[name]  # the entrypoint's: the arguments
            elif name not in inputs and "value" in declared:
                inputs[name] = self._fill(str(declared["value"]), {"inputs": inputs})
        node["inputs"] = {"parameters": [{"name": k, "value": v} for k, v in inputs.items()]}
        if "dag" in template:
            yield from self._dag(template, node, inputs)
        else:
            yield from self._pod(template, node, inputs)

    def _dag(self, template: dict, node: dict, inputs: dict) -> Iterator[None]:
        done: dict[str, dict] = {}
        pending = list(template["dag"]["tasks"])
        failed = False
        while pending:
            ready = [t for t in pending if all(d in done for d in self._after(t))]
            if not ready:
                break
            for task in ready:
                pending.remove(task)
                if failed and "depends" not in task:
                    continue  # Argo starts nothing more once a DAG task failed
                if "depends" in task and not self._depends(task["depends"], done):
                    child, _ = self._node(f"{node['name']}.{task['name']}", task["name"],
                                          "Skipped", task["template"], node)
                    self._end(child, "Omitted", "omitted: depends condition not met")
                    done[task["name"]] = child
                    yield
                    continue
                scope = {"inputs": inputs, "tasks": done}
                child = yield from self._task(task, node, scope)
                done[task["name"]] = child
                if child["phase"] in ("Failed", "Error") and not \
                        (task.get("continueOn") or {}).get("failed"):
                    failed = True
        phase = "Failed" if failed else "Succeeded"
        outputs = (template.get("outputs") or {}).get("parameters") or []
        scope = {"inputs": inputs, "tasks": done}
        node["outputs"] = {"parameters": [
            {"name": p["name"], "value": self._fill(p["valueFrom"]["parameter"], scope)
             if "parameter" in p["valueFrom"] else _expression(p["valueFrom"]["expression"],
                                                               done)}
            for p in outputs if not failed and (
                {"parameter", "expression"} & set(p.get("valueFrom") or {}))]}
        self._end(node, phase)
        yield

    def _after(self, task: dict) -> list[str]:
        if "depends" in task:
            return re.findall(r"([A-Za-z0-9-]+)\.[A-Za-z]+", task["depends"])
        return task.get("dependencies") or []

    def _depends(self, expression: str, done: dict) -> bool:
        def result(match):
            node = done[match.group(1)]
            phase = {"Error": "Errored"}.get(node["phase"], node["phase"])
            return str(phase == match.group(2))

        text = re.sub(r"([A-Za-z0-9-]+)\.([A-Za-z]+)", result, expression)
        return bool(eval(text.replace("||", " or ").replace("&&", " and "), {}))

    def _task(self, task: dict, parent: dict, scope: dict) -> Iterator[None]:
        template = self.templates[task["template"]]
        name = f"{parent['name']}.{task['name']}"
        items = self._items(task, scope)
        if "when" in task and items is None and not self._when(task["when"], scope):
            node, _ = self._node(name, task["name"], "Skipped", template["name"], parent)
            self._end(node, "Skipped", f"when '{self._fill(task['when'], scope)}' "
                                       "evaluated false")
            yield
            return node
        if items is None:
            node, ran = self._node(name, task["name"], self._kind(template), template["name"],
                                   parent)
            if not ran:
                yield
                yield from self._attempts(template, node, self._arguments(task, scope))
            return node
        group, ran = self._node(name, task["name"], "TaskGroup", template["name"], parent)
        if ran:
            return group
        yield
        children = []
        for index, item in enumerate(items):
            label = item if isinstance(item, str) else json.dumps(item)
            child, ran = self._node(f"{name}({index}:{label})", f"{task['name']}({index}:"
                                    f"{label})", self._kind(template), template["name"], group)
            children.append(child)
            if not ran:
                yield
                yield from self._attempts(template, child,
                                          self._arguments(task, {**scope, "item": item}))
        failed = any(c["phase"] in ("Failed", "Error") for c in children)
        aggregated: dict[str, list] = {}
        for child in children:
            for p in (child.get("outputs") or {}).get("parameters") or []:
                aggregated.setdefault(p["name"], []).append(_json_or_text(p["value"]))
        group["outputs"] = {"parameters": [{"name": k, "value": json.dumps(v)}
                                           for k, v in aggregated.items()]}
        self._end(group, "Failed" if failed else "Succeeded")
        yield
        return group

    def _kind(self, template: dict) -> str:
        if "dag" in template:
            return "DAG"
        return "Retry" if template.get("retryStrategy") else "Pod"

    def _attempts(self, template: dict, node: dict, inputs: dict) -> Iterator[None]:
        if node["type"] != "Retry":
            yield from self._template(template, node, inputs)
            return
        limit = int(template["retryStrategy"].get("limit", 0))
        for attempt in range(limit + 1):
            pod, _ = self._node(f"{node['name']}({attempt})", f"{node['displayName']}"
                                f"({attempt})", "Pod", template["name"], node)
            yield
            yield from self._template(template, pod, inputs)
            if pod["phase"] == "Succeeded":
                break
        node["outputs"] = copy.deepcopy(pod.get("outputs") or {})
        self._end(node, pod["phase"], pod.get("message", ""))
        yield

    def _pod(self, template: dict, node: dict, inputs: dict) -> Iterator[None]:
        memoize = template.get("memoize")
        if memoize is not None:  # Argo looks the key up before it makes a pod
            key = self._fill(memoize["key"], {"inputs": inputs})
            cache = memoize["cache"]["configMap"]["name"]
            if not re.fullmatch(r"[a-zA-Z0-9][-a-zA-Z0-9]*", key):
                self._end(node, "Error", f"invalid cache key: {key}")
                yield
                return
            kept = self.memo.load(cache, key)
            node["memoizationStatus"] = {"hit": kept is not None, "key": key,
                                         "cacheName": cache}
            if kept is not None:
                node["outputs"] = copy.deepcopy(kept)
                self._end(node, "Succeeded")
                yield
                return
        yield from self._run_pod(template, node, inputs)
        if memoize is not None and node["phase"] == "Succeeded":
            self.memo.save(cache, key, node["id"], node.get("outputs") or {})

    def _run_pod(self, template: dict, node: dict, inputs: dict) -> Iterator[None]:
        node["phase"] = "Running"
        yield
        display = self._display(node)
        attempt = sum(1 for n in self.nodes.values() if n["type"] == "Pod"
                      and self._display(n) == display) - 1
        if self.fail(display, attempt):
            node["outputs"] = {"exitCode": "1"}
            self._end(node, "Failed", "Error (exit code 1)")
            yield
            return
        args = (template.get("container") or {}).get("args") or []
        values = launcher_key(template, inputs) if LAUNCHER_KEY in args else \
            self.outputs(display, inputs)
        declared = template.get("outputs") or {}
        pod = pod_name(self.name, node)
        if "--output-artifact" in args and EXECUTOR_OUTPUT not in values:
            values[EXECUTOR_OUTPUT] = self._report(args, pod)
        node["outputs"] = {
            "exitCode": "0",
            "parameters": [{"name": p["name"], "value": str(values.get(
                p["name"], (p.get("valueFrom") or {}).get("default", "")))}
                for p in declared.get("parameters") or []],
            "artifacts": [{"name": a["name"], "s3": {"key": (a.get("s3") or {}).get(
                "key", f"{self.name}/{pod}/{a['name']}.tgz").replace("{{pod.name}}", pod)
                .replace("{{workflow.name}}", self.name)
                .replace("{{workflow.namespace}}", self.namespace)}}
                for a in declared.get("artifacts") or []],
        }
        self._end(node, "Succeeded")
        yield

    def _report(self, args: list[str], pod: str) -> str:
        """What the launcher reports when the test says nothing of a step's outputs: each
        output artifact at the URI it was given, with no metadata."""
        report = {}
        for index, arg in enumerate(args):
            if arg == "--output-artifact":
                name, uri = args[index + 1], args[index + 4]
                uri = uri.replace("{{pod.name}}", pod).replace("{{workflow.name}}", self.name) \
                    .replace("{{workflow.namespace}}", self.namespace)
                report[name] = [{"name": name, "uri": uri, "metadata": {}}]
        return json.dumps(report)

    def _display(self, node: dict) -> str:
        """The task a pod runs for: a memoized step's pod is the ``run`` task of its
        wrapper, which bears the step's name."""
        display = node["displayName"].split("(", 1)[0]
        if display == MEMOIZED_RUN:
            parent = next((n for n in self.nodes.values()
                           if n["name"] == node["name"].rsplit(".", 1)[0]), None)
            if parent is not None:
                return parent["displayName"].split("(", 1)[0]
        return display

    # --- placeholders --------------------------------------------------------------------

    def _arguments(self, task: dict, scope: dict) -> dict:
        return {p["name"]: self._fill(str(p.get("value", "")), scope)
                for p in (task.get("arguments") or {}).get("parameters") or []}

    def _items(self, task: dict, scope: dict) -> list | None:
        if "withItems" in task:
            return task["withItems"]
        if "withParam" in task:
            return json.loads(self._fill(task["withParam"], scope))
        if "withSequence" in task:
            sequence = task["withSequence"]
            count = int(self._fill(str(sequence.get("count", "0")), scope))
            return [str(i) for i in range(count)]
        return None

    def _when(self, expression: str, scope: dict) -> bool:
        text = self._fill(expression, scope)
        text = text.replace("&&", " and ").replace("||", " or ").replace("!", " not ")
        text = text.replace(" not =", "!=")
        return bool(eval(text, {"true": True, "false": False}))

    def _fill(self, text: str, scope: dict) -> str:
        def value(match):
            path = match.group(1)
            if path.startswith("workflow.parameters."):
                return self.parameters[path.split(".", 2)[2]]
            if path == "workflow.name":
                return self.name
            if path == "workflow.status":
                return self.parameters.get("__status", "Running")
            if path.startswith("inputs.parameters."):
                return scope["inputs"][path.split(".", 2)[2]]
            if path == "item" or path.startswith("item."):
                item = scope["item"]
                if path == "item":
                    return item if isinstance(item, str) else json.dumps(item)
                field = item[path.split(".", 1)[1]]
                return field if isinstance(field, str) else json.dumps(field)
            if path.startswith("tasks.") and path.endswith(".status"):
                return scope["tasks"][path.split(".")[1]]["phase"]
            if path.startswith("tasks."):
                _, task, _, kind, name = path.split(".", 4)
                node = scope["tasks"][task]
                for p in (node.get("outputs") or {}).get(kind) or []:
                    if p["name"] == name:
                        return p.get("value", "")
            return match.group(0)

        return PLACEHOLDER.sub(value, text)


TERNARY = re.compile(r"tasks\['([^']+)'\]\.status == 'Succeeded' \? (tasks\[[^?]*?) "
                     r": \((.*)\)")
OUTPUT = re.compile(r"tasks\['([^']+)'\]\.outputs\.parameters\['([^']+)'\]")


def _expression(text: str, done: dict) -> str:
    """The expressions Argo evaluates in an output's ``valueFrom.expression`` that kfdash
    writes (dsl.OneOf): ``tasks['a'].status == 'Succeeded' ? <output of a> : (<rest>)``."""
    match = TERNARY.fullmatch(text)
    if match:
        if done[match.group(1)]["phase"] == "Succeeded":
            return _expression(match.group(2), done)
        return _expression(match.group(3), done)
    task, name = OUTPUT.fullmatch(text).groups()
    return next(p["value"] for p in done[task]["outputs"]["parameters"] if p["name"] == name)


def pod_name(workflow_name: str, node: dict) -> str:
    prefix = f"{workflow_name}-{node['templateName']}"[:242]
    return f"{prefix}-{fnv32a(node['name'])}"


def _json_or_text(value: str):
    try:
        return json.loads(value)
    except ValueError:
        return value


class Controller:
    """Plays Argo for one run: its Workflow's status moves one change at a time, each
    written to the fake API server (which the watcher follows); a pod (with a log) is
    made for every step that starts."""

    def __init__(self, fake, run_id, namespace: str = "team-a", **sim_options):
        """``sim_options``: ArgoSim's ``outputs`` and ``fail``."""
        self.fake = fake
        self.namespace = namespace
        self.workflow = wait_for_workflow(fake, run_id, namespace)
        sim_options.setdefault("memo", ConfigMapMemo(fake, namespace))
        self.sim = ArgoSim(self.workflow, **sim_options)
        self.pods: set[str] = set()

    @property
    def name(self) -> str:
        return self.workflow["metadata"]["name"]

    def step(self) -> bool:
        current = self.fake.get_object(WORKFLOWS, self.name, self.namespace)
        if current is not None and current["spec"].get("shutdown"):
            self.push(self.sim.terminate())
            return False
        now = self.sim.step()
        if now is None:
            return False
        self.push(now)
        return True

    def run(self, steps: int | None = None) -> None:
        count = 0
        while (steps is None or count < steps) and self.step():
            count += 1

    def push(self, workflow: dict) -> None:
        current = self.fake.get_object(WORKFLOWS, self.name, self.namespace)
        current["status"] = workflow["status"]
        self.fake.put_object(current)
        for node in workflow["status"]["nodes"].values():
            if node["type"] == "Pod" and node["phase"] != "Pending" and not (
                    node.get("memoizationStatus") or {}).get("hit"):
                self.pod(node)

    def pod(self, node: dict) -> None:
        """The step's pod: made when it starts (with a line of log), its phase kept as the
        node's once it ends (which ends a follow of its log)."""
        name = pod_name(self.name, node)
        if name in self.pods:
            if node["phase"] in ("Succeeded", "Failed", "Error"):
                pod = self.fake.get_object("pods", name, self.namespace)
                if pod is not None and (pod.get("status") or {}).get("phase") not in (
                        "Succeeded", "Failed"):
                    pod["status"] = {"phase": "Failed" if node["phase"] == "Error"
                                     else node["phase"]}
                    self.fake.put_object(pod, "pods")
            return
        self.pods.add(name)
        self.fake.put_object({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": self.namespace,
                         "labels": {"workflows.argoproj.io/workflow": self.name}},
            "spec": {"containers": [{"name": "wait", "image": "argoexec"},
                                    {"name": "main", "image": "python:3.11"}]},
        }, "pods")
        self.fake.set_pod_log(self.namespace, name, f"log of {node['displayName']}\n",
                              container="main")


class Memo:
    """Argo's memoization cache: outputs kept by cache name and key."""

    def __init__(self):
        self.entries: dict[tuple[str, str], dict] = {}

    def load(self, cache: str, key: str) -> dict | None:
        return copy.deepcopy(self.entries.get((cache, key)))

    def save(self, cache: str, key: str, node_id: str, outputs: dict) -> None:
        self.entries[(cache, key)] = copy.deepcopy(outputs)


class ConfigMapMemo(Memo):
    """Argo's memoization cache as Argo keeps it: a ConfigMap per cache in the Workflow's
    namespace (labelled as a cache), one JSON entry per key, on the fake API server."""

    def __init__(self, fake, namespace: str):
        super().__init__()
        self.fake, self.namespace = fake, namespace

    def load(self, cache: str, key: str) -> dict | None:
        found = self.fake.get_object("configmaps", cache, self.namespace)
        entry = ((found or {}).get("data") or {}).get(key)
        return json.loads(entry)["outputs"] if entry else None

    def save(self, cache: str, key: str, node_id: str, outputs: dict) -> None:
        found = self.fake.get_object("configmaps", cache, self.namespace) or {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": cache, "namespace": self.namespace, "labels": {
                "workflows.argoproj.io/configmap-type": "Cache"}}}
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        found.setdefault("data", {})[key] = json.dumps({
            "nodeID": node_id, "outputs": outputs, "creationTimestamp": now,
            "lastHitTimestamp": now})
        self.fake.put_object(found, "configmaps")


def launcher_key(template: dict, inputs: dict) -> dict:
    """What a key step's pod writes: kfdash's launcher run on its arguments as Argo fills
    them in (``--cache-key-of``), for real."""
    import tempfile

    from pipelines.engines import kfdash_launcher

    args = [INPUT_PARAMETER.sub(lambda m: inputs[m.group(1)], arg)
            for arg in template["container"]["args"]]
    with tempfile.TemporaryDirectory() as root:
        key = kfdash_launcher.write_cache_key(kfdash_launcher.parse_args(args), root)
    return {kfdash_launcher.CACHE_KEY: key}


def wait_for_workflow(fake, run_id, namespace: str = "team-a", timeout: float = 10.0) -> dict:
    """The Workflow kfdash submitted for the run ``run_id``."""
    deadline = time.monotonic() + timeout
    while True:
        found = [w for w in fake.objects(WORKFLOWS, namespace)
                 if w["metadata"]["labels"].get("kfdash.io/run-id") == str(run_id)]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"no Workflow for the run {run_id}"
        time.sleep(0.02)
