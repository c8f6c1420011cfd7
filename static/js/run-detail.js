// The run page, live. The run's websocket sends a snapshot (the run and every task row, with
// the run's revision), then each committed change; a change is applied only when its
// revision is above the snapshot's, so nothing is missed and nothing is applied twice.
//
// The graph is the pipeline's (graph-view.js, shared with the pipeline page), each node
// coloured by the state of its task or group instance. A loop is drawn once: its box says
// which iteration it shows and how many failed (its panel counts them by state), and its
// steps show the state of that iteration — the first failed, else the first running,
// else the first — until the user picks another in the loop's or a step's panel, so a
// loop of 1,000 iterations is still one readable box.
import { subscribe } from "./live.js";
import { Graph, cssVar, el, factList, graphElements, mountGraph, portList } from "./graph-view.js";
import { Timeline, duration } from "./run-timeline.js";
import { drawCharts, releaseCharts } from "./visualizations.js";

const STATES = {
  PENDING: ["Pending", "○"], RUNNING: ["Running", "▶"], SUCCEEDED: ["Succeeded", "✓"],
  CACHED: ["Cached", "↺"], SKIPPED: ["Skipped", "↷"], FAILED: ["Failed", "✗"],
  CANCELING: ["Canceling", "⊘"], CANCELED: ["Canceled", "⊘"], PAUSED: ["Paused", "‖"],
  NONE: ["Not run", "·"],
};
const FINISHED = new Set(["SUCCEEDED", "CACHED", "SKIPPED", "FAILED", "CANCELED"]);
// Which iteration a loop shows until the user picks one: the first in the first of these.
const WORTH_SHOWING = ["FAILED", "RUNNING", "CANCELING", "CANCELED"];
const LOG_MAX = 1_000_000; // characters of a log kept in the page (the download has it all)

const describe = (state) => (STATES[state] || [state])[0];
const glyph = (state) => (STATES[state] || ["", "•"])[1];

// ---- the run as the page knows it ----------------------------------------------------

class RunModel {
  constructor(graph) {
    this.graph = graph;
    this.run = null;
    this.history = null;
    this.revision = null; // the snapshot's; null until one arrived
    this.rows = new Map(); // task id -> the task's latest event
    this.chosen = new Map(); // loop spec id -> the iteration the user picked
    this.dirty = true;
    this.touched = new Set(); // task ids changed since the page last looked (takeTouched)
  }

  load(snapshot) {
    this.run = snapshot.run;
    this.history = snapshot.history || null;
    this.revision = snapshot.revision;
    this.rows = new Map(snapshot.tasks.map((task) => [task.task_id, task]));
    this.dirty = true;
    this.touched = new Set(this.rows.keys());
  }

  // Whether events were lost before ``event``: every commit sends one run event with the
  // next revision, so a run event further ahead means some never arrived (the channel
  // layer drops what a page falls too far behind on).
  missed(event) {
    return event.type === "run" && this.run !== null && this.revision !== null
      && event.revision > Math.max(this.run.revision, this.revision) + 1;
  }

  // Whether ``event`` changed anything: events the snapshot already holds are dropped.
  apply(event) {
    if (this.revision === null || event.revision <= this.revision) return false;
    if (event.type === "run") {
      if (this.run && event.revision < this.run.revision) return false;
      this.run = event;
      return true;
    }
    if (event.type === "task") {
      const known = this.rows.get(event.task_id);
      if (known && event.revision < known.revision) return false;
      this.rows.set(event.task_id, event);
      this.dirty = true;
      this.touched.add(event.task_id);
      return true;
    }
    return false;
  }

  // Rows by (spec id, iteration path), and each loop instance's iterations.
  index() {
    if (!this.dirty) return;
    this.byKey = new Map();
    this.iterations = new Map();
    this.paths = new Map();
    for (const row of this.rows.values()) {
      const path = this.pathOf(row);
      this.paths.set(row.task_id, path);
      if (row.kind === "iteration") {
        const key = `${this.loopOf(row)}|${path.join(",")}`;
        if (!this.iterations.has(key)) this.iterations.set(key, []);
        this.iterations.get(key).push(row);
      } else {
        this.byKey.set(`${row.spec_id}|${path.join(",")}`, row);
      }
    }
    for (const list of this.iterations.values()) list.sort((a, b) => a.iteration - b.iteration);
    this.dirty = false;
  }

  // The iteration indices of the loops around a row, outermost first.
  pathOf(row) {
    const path = [];
    let parent = this.rows.get(row.parent);
    for (let depth = 0; parent && depth < 64; depth++) {
      if (parent.kind === "iteration") path.unshift(parent.iteration ?? 0);
      parent = this.rows.get(parent.parent);
    }
    return path;
  }

  loopOf(row) {
    if (this.graph.groups.get(row.spec_id)?.kind === "loop") return row.spec_id;
    return this.rows.get(row.parent)?.spec_id ?? row.spec_id;
  }

  loopsAround(specId) {
    return this.graph.ancestors(specId).filter((id) => this.graph.groups.get(id)?.kind === "loop")
      .reverse();
  }

  // The iteration path a spec node is shown at: each loop around it at its chosen iteration.
  pathFor(specId) {
    this.index();
    const path = [];
    for (const loop of this.loopsAround(specId)) {
      path.push(this.chosenIndex(loop, this.iterationsOf(loop, path)));
    }
    return path;
  }

  iterationsOf(loopId, path = this.pathFor(loopId)) {
    this.index();
    return this.iterations.get(`${loopId}|${path.join(",")}`) || [];
  }

  chosenIndex(loopId, iterations) {
    if (this.chosen.has(loopId)) return this.chosen.get(loopId);
    for (const state of WORTH_SHOWING) {
      const found = iterations.find((row) => row.state === state);
      if (found) return found.iteration;
    }
    return iterations.length ? iterations[0].iteration : 0;
  }

  rowFor(specId) {
    this.index();
    return this.byKey.get(`${specId}|${this.pathFor(specId).join(",")}`) || null;
  }

  // The group instances around a node that could say why it has no row of its own,
  // innermost first: the chosen iteration of a loop, then the loop's own row.
  instancesAround(specId) {
    const rows = [];
    const path = this.pathFor(specId);
    for (const id of this.graph.ancestors(specId)) {
      if (this.graph.groups.get(id)?.kind === "loop") {
        const depth = this.loopsAround(id).length; // where this loop is in the path
        const chosen = this.iterationsOf(id).find((row) => row.iteration === path[depth]);
        if (chosen) rows.push(chosen);
      }
      const own = this.rowFor(id);
      if (own) rows.push(own);
    }
    return rows;
  }

  stateOf(specId) {
    const row = this.rowFor(specId);
    if (row) return row.state;
    if (this.graph.groups.get(specId)?.kind === "loop") {
      const iterations = this.iterationsOf(specId);
      if (iterations.length) return overall(iterations.map((r) => r.state));
    }
    // No row yet: a group that was skipped or canceled took its content with it.
    const around = this.instancesAround(specId)[0];
    if (around && (around.state === "SKIPPED" || around.state === "CANCELED")) {
      return around.state;
    }
    return this.run && FINISHED.has(this.run.state) ? "NONE" : "PENDING";
  }

  counts(states) {
    const counts = new Map();
    for (const state of states) counts.set(state, (counts.get(state) || 0) + 1);
    return counts;
  }

  takeTouched() {
    const touched = [...this.touched].map((id) => this.rows.get(id)).filter(Boolean);
    this.touched = new Set();
    return touched;
  }

  taskRows() {
    this.index();
    return [...this.rows.values()].filter((row) => row.kind === "task");
  }
}

// One state for many (a loop without a row of its own): in progress while any is, else
// the worst end.
function overall(states) {
  const has = (state) => states.includes(state);
  if (has("RUNNING") || has("CANCELING")) return has("CANCELING") ? "CANCELING" : "RUNNING";
  if (has("PENDING")) return states.every((s) => s === "PENDING") ? "PENDING" : "RUNNING";
  for (const state of ["FAILED", "CANCELED"]) if (has(state)) return state;
  if (states.every((s) => s === "SKIPPED")) return "SKIPPED";
  return "SUCCEEDED";
}

function countWords(counts) {
  return [...Object.keys(STATES)].filter((s) => counts.get(s))
    .map((s) => `${counts.get(s)} ${describe(s).toLowerCase()}`).join(", ");
}

// ---- the page -------------------------------------------------------------------------

const pageData = JSON.parse(document.getElementById("run-page-data").textContent);
const graphData = JSON.parse(document.getElementById("pipeline-graph-data").textContent);
const parts = graphElements();
const model = new RunModel(new Graph(graphData));

const encodePath = (nodeId) => nodeId.split("/").map(encodeURIComponent).join("/");
const stepUrl = (taskId) => pageData.step_url.replace(pageData.zero_uuid, taskId);
const logLive = (nodeId) => pageData.log_live.replace(pageData.node_placeholder,
  encodePath(nodeId));

function stateBadge(state) {
  const badge = el("span", describe(state), `run-state s-${state}`);
  badge.dataset.state = state;
  return badge;
}

// ---- labels and colours of the graph ----------------------------------------------------

function loopSummary(group) {
  const iterations = model.iterationsOf(group.id);
  if (!iterations.length) return "";
  const chosen = model.chosenIndex(group.id, iterations);
  const position = iterations.findIndex((row) => row.iteration === chosen) + 1;
  const failed = iterations.filter((row) => row.state === "FAILED").length;
  return ` · iteration ${position} of ${iterations.length}${failed ? `, ${failed} failed` : ""}`;
}

const labels = {
  task: (task) => `${glyph(model.stateOf(task.id))} ${task.name}`,
  group: (group, collapsed) => {
    let label = `${glyph(model.stateOf(group.id))} ${group.label}`;
    if (group.kind === "loop") label += loopSummary(group);
    if (!collapsed) return label;
    const count = model.graph.taskCount.get(group.id) || 0;
    return `${label}\n▸ ${count} task${count === 1 ? "" : "s"}`;
  },
  groupWidth: (group) => `◦ ${group.label}${group.kind === "loop"
    ? " · iteration 10 of 10, 1 failed" : ""}`,
};

function stateStyle() {
  const rules = [];
  for (const state of Object.keys(STATES)) {
    const name = state.toLowerCase();
    const line = cssVar(`--st-${name}`);
    const fill = cssVar(`--st-${name}-soft`);
    rules.push({ selector: `node.task.s-${state}, node.collapsed.s-${state}`,
      style: { "border-color": line, "background-color": fill, "border-width": 2.5 } });
    rules.push({ selector: `node.box.s-${state}`,
      style: { "border-color": line, "background-color": fill, color: line } });
  }
  rules.push(
    { selector: "node.task.s-RUNNING, node.collapsed.s-RUNNING", style: { "border-width": 4 } },
    { selector: "node.task.s-SKIPPED, node.task.s-NONE, node.task.s-PENDING",
      style: { "border-style": "dashed", color: cssVar("--muted") } },
    { selector: "node:selected", style: { "underlay-color": cssVar("--accent"),
      "underlay-opacity": 0.3, "underlay-padding": 6, "underlay-shape": "round-rectangle" } },
  );
  return rules;
}

// ---- the side panel ---------------------------------------------------------------------

let view = null;
const panel = { kind: null, id: null, key: "", fetches: 0, log: null, picked: false };

function iterationPicker(loopId) {
  const iterations = model.iterationsOf(loopId);
  const group = model.graph.groups.get(loopId);
  if (!iterations.length) return el("p", "No iteration has started yet.", "muted");
  const chosen = model.chosenIndex(loopId, iterations);
  const box = el("div", undefined, "iteration-picker");
  const select = el("select");
  select.id = `iteration-${loopId}`;
  select.dataset.focusKey = `select:${loopId}`;
  for (const row of iterations) {
    const option = el("option", `${row.iteration + 1} of ${iterations.length} — ${
      describe(row.state).toLowerCase()}`);
    option.value = String(row.iteration);
    option.selected = row.iteration === chosen;
    select.append(option);
  }
  const label = el("label", `Iteration of ${group?.label || loopId}`);
  label.htmlFor = select.id;
  const pick = (index) => {
    model.chosen.set(loopId, index);
    panel.picked = true; // the picker is closed: the panel may be drawn again
    changed();
  };
  select.addEventListener("change", () => pick(Number(select.value)));
  select.addEventListener("blur", () => changed()); // what was put off while it was open
  const position = iterations.findIndex((row) => row.iteration === chosen);
  // Moves from the iteration shown when clicked (the panel may be older than the last event).
  const move = (step) => {
    const now = model.iterationsOf(loopId);
    const at = now.findIndex((row) => row.iteration === model.chosenIndex(loopId, now));
    const target = now[Math.min(Math.max(at + step, 0), now.length - 1)];
    if (target) pick(target.iteration);
  };
  const previous = el("button", "‹", "btn btn-small");
  previous.type = "button";
  previous.setAttribute("aria-label", "Previous iteration");
  previous.dataset.focusKey = `previous:${loopId}`;
  previous.disabled = position <= 0;
  previous.addEventListener("click", () => move(-1));
  const next = el("button", "›", "btn btn-small");
  next.type = "button";
  next.setAttribute("aria-label", "Next iteration");
  next.dataset.focusKey = `next:${loopId}`;
  next.disabled = position >= iterations.length - 1;
  next.addEventListener("click", () => move(1));
  box.append(label, el("div", undefined, "iteration-row"));
  box.lastChild.append(previous, select, next);
  if (model.chosen.has(loopId)) {
    const follow = el("button", "Follow the run", "btn btn-small btn-ghost");
    follow.type = "button";
    follow.title = "Show the first failed or running iteration, as it changes";
    follow.addEventListener("click", () => {
      model.chosen.delete(loopId);
      changed();
    });
    box.lastChild.append(follow);
  }
  return box;
}

// A panel drawn again keeps the keyboard where it was (on the iteration picker, say).
function showPanelKeepingFocus(title, content) {
  const key = parts.panel.contains(document.activeElement)
    ? document.activeElement.dataset.focusKey : null;
  view.showPanel(title, content);
  if (key) parts.panel.querySelector(`[data-focus-key="${CSS.escape(key)}"]`)?.focus();
}

function groupPanel(group) {
  panel.kind = "group";
  panel.id = group.id;
  stopLog();
  const state = model.stateOf(group.id);
  const content = [el("p")];
  content[0].append(stateBadge(state));
  if (group.kind === "loop") {
    const iterations = model.iterationsOf(group.id);
    const counts = model.counts(iterations.map((row) => row.state));
    content.push(el("p", iterations.length ? `${iterations.length} iteration${
      iterations.length === 1 ? "" : "s"}: ${countWords(counts)}` : "No iteration yet.",
    "run-loop-counts"));
    content.push(iterationPicker(group.id));
  }
  const count = model.graph.taskCount.get(group.id) || 0;
  content.push(factList([...group.facts, ["Tasks", String(count)]]), view.toggleButton(group));
  showPanelKeepingFocus(group.label, content);
}

function taskPanel(task) {
  if (panel.kind !== "task" || panel.id !== task.id) panel.key = "";
  panel.kind = "task";
  panel.id = task.id;
  renderTaskPanel();
}

// The step's panel: the server's fragment for its row (state, inputs, outputs, artifacts,
// command…) and its live log; fetched again only when the row changed.
async function renderTaskPanel() {
  const task = model.graph.tasks.get(panel.id);
  const row = model.rowFor(panel.id);
  const loops = model.loopsAround(panel.id);
  // Fetched again when the row changed, or the iterations its pickers offer did.
  const key = [row ? `${row.task_id}:${row.revision}` : `none:${model.stateOf(panel.id)}`,
    ...loops.map((loop) => model.iterationsOf(loop).length)].join("|");
  if (key === panel.key) return;
  panel.key = key;
  const pickers = loops.map((loop) => iterationPicker(loop));
  if (!row) {
    stopLog();
    const state = model.stateOf(panel.id);
    const line = el("p");
    line.append(stateBadge(state), " ", el("span", state === "NONE"
      ? "This step did not run." : "This step has not started yet.", "muted"));
    const spec = graphData.containers[task.container] || [];
    showPanelKeepingFocus(task.name, [...pickers, line, factList([...task.facts, ...spec]),
      portList("Inputs", task.inputs, true), portList("Outputs", task.outputs, false)]);
    history.replaceState(null, "", `${location.pathname}${location.hash}`);
    return;
  }
  const mine = ++panel.fetches;
  const response = await fetch(stepUrl(row.task_id), { credentials: "same-origin" });
  if (mine !== panel.fetches || panel.kind !== "task" || panel.id !== task.id) {
    return; // another panel (or none) meanwhile
  }
  if (!response.ok) {
    view.showPanel(task.name, [...pickers, el("p", `The step's details could not be loaded (${
      response.status}).`, "run-error")]);
    return;
  }
  const holder = document.createElement("template");
  holder.innerHTML = await response.text();
  const fragment = holder.content.firstElementChild;
  const section = fragment.querySelector("[data-step-log-section]");
  if (section) attachLog(row, section);
  else stopLog();
  releaseCharts(parts.panel);
  showPanelKeepingFocus(row.display_name || task.name, [...pickers, fragment]);
  drawCharts(fragment);
  history.replaceState(null, "", `${location.pathname}?step=${row.task_id}${location.hash}`);
}

// The log follows one attempt of one step; it keeps streaming across panel refreshes.
function attachLog(row, section) {
  const log = panel.log;
  const restart = !log || log.taskId !== row.task_id || log.attempts !== row.attempts
    || (log.ended && !FINISHED.has(row.state) && log.state !== row.state);
  if (row.state === "PENDING" || row.state === "SKIPPED") {
    stopLog();
    section.append(el("p", row.state === "SKIPPED" ? "Skipped: no log."
      : "The log appears here once the step starts.", "muted run-log-note"));
    return;
  }
  if (!restart) {
    log.state = row.state;
    section.append(log.note, log.pre);
    return;
  }
  stopLog();
  const note = el("p", "Connecting to the log…", "muted run-log-note");
  const pre = el("pre", "", "logs run-log-text");
  pre.hidden = true;
  pre.dataset.stepLog = row.node_id;
  section.append(note, pre);
  const state = { taskId: row.task_id, attempts: row.attempts, state: row.state, ended: false,
    note, pre, first: true };
  state.stop = subscribe(logLive(row.node_id), (event) => {
    if (event.type === "log") {
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      const text = (state.first ? "" : pre.textContent) + event.text;
      pre.textContent = text.length > LOG_MAX ? text.slice(-LOG_MAX) : text;
      state.first = false;
      state.cut = state.cut || event.cut || text.length > LOG_MAX;
      pre.hidden = !pre.textContent;
      note.textContent = state.cut ? "The start of this log is cut here: the download has all of it."
        : "";
      note.hidden = !note.textContent;
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    } else if (event.type === "error") {
      note.hidden = false;
      note.textContent = event.message;
    } else if (event.type === "end") {
      state.ended = true;
      state.stop();
      if (!pre.textContent) {
        note.hidden = false;
        note.textContent = "The step wrote nothing.";
      }
      pre.dataset.ended = "true";
    }
  }, { onOpen: () => { state.first = true; } });
  panel.log = state;
}

function stopLog() {
  panel.log?.stop();
  panel.log = null;
}

function refreshPanel() {
  // Not while the user may have an iteration picker open: drawing it again would close it.
  if (!view || parts.panel.hidden) return;
  if (document.activeElement?.tagName === "SELECT" && !panel.picked) return;
  panel.picked = false;
  if (panel.kind === "task") renderTaskPanel();
  else if (panel.kind === "group") groupPanel(model.graph.groups.get(panel.id));
}

// ---- the header, actions, details and the steps table -------------------------------------

function updateHeader() {
  const run = model.run;
  if (!run) return;
  for (const badge of document.querySelectorAll("[data-run-state]")) {
    badge.className = `run-state s-${run.state}`;
    badge.textContent = describe(run.state);
  }
  const error = document.querySelector("[data-run-error]");
  error.textContent = run.error;
  error.hidden = !run.error;
  document.querySelector("[data-run-archived]").hidden = run.storage_state !== "ARCHIVED";
  const storage = document.querySelector("[data-run-storage]");
  storage.textContent = run.storage_state === "ARCHIVED" ? "Archived" : "Available";
  const finished = FINISHED.has(run.state);
  const show = {
    terminate: !finished && run.state !== "CANCELING",
    retry: run.state === "FAILED" || run.state === "CANCELED",
    archive: run.storage_state !== "ARCHIVED",
    unarchive: run.storage_state === "ARCHIVED",
  };
  for (const [action, visible] of Object.entries(show)) {
    const form = document.querySelector(`[data-run-action="${action}"]`);
    if (form) form.hidden = !visible;
  }
  for (const span of document.querySelectorAll("[data-run-duration]")) {
    if (run.started_at) span.dataset.started = run.started_at;
    if (run.finished_at) span.dataset.finished = run.finished_at;
    else delete span.dataset.finished;
  }
  document.querySelector("[data-run-started]").textContent = when(run.started_at);
  document.querySelector("[data-run-finished]").textContent = when(run.finished_at);
  const tasks = model.taskRows();
  const done = tasks.filter((row) => FINISHED.has(row.state)).length;
  const failed = tasks.filter((row) => row.state === "FAILED").length;
  document.querySelector("[data-run-progress]").textContent = `${done} of ${tasks.length} step${
    tasks.length === 1 ? "" : "s"} ended${failed ? `, ${failed} failed` : ""}`;
  tickClock();
}

function when(iso) {
  return iso ? iso.slice(0, 19).replace("T", " ") : "–";
}

// The state history: the snapshot's, then a line for each state a run event brings.
let historyState = null;
function updateHistory(fromSnapshot) {
  const body = document.querySelector("[data-run-history]");
  const line = (entry) => {
    const row = el("tr");
    const time = el("time", when(entry.update_time));
    time.dateTime = entry.update_time || "";
    row.append(el("td"), el("td", describe(entry.state)), el("td", entry.error || ""));
    row.firstChild.append(time);
    return row;
  };
  if (fromSnapshot && model.history) {
    body.replaceChildren(...model.history.map(line));
    historyState = model.run.state;
    return;
  }
  const run = model.run;
  if (!run || run.state === historyState) return;
  historyState = run.state;
  const time = run.state === "RUNNING" && run.started_at ? run.started_at
    : FINISHED.has(run.state) && run.finished_at ? run.finished_at : new Date().toISOString();
  body.append(line({ update_time: time, state: run.state, error: run.error }));
}

// The table of steps under the graph (what readers without the canvas use), kept current:
// only the rows of the tasks that changed are touched.
let stepLines = null;
function updateStepsTable(rows) {
  const table = document.querySelector(".run-steps tbody");
  if (!table) return;
  if (!stepLines) {
    stepLines = new Map([...table.querySelectorAll("tr[data-step]")].map(
      (line) => [line.dataset.step, line]));
  }
  for (const row of rows) {
    if (row.kind !== "task") continue;
    let line = stepLines.get(row.node_id);
    if (!line) {
      line = el("tr");
      line.dataset.step = row.node_id;
      const name = el("th");
      name.scope = "row";
      const link = el("a", row.display_name);
      link.href = `?step=${row.task_id}#graph`;
      name.append(link);
      for (const index of model.paths.get(row.task_id) || []) {
        name.append(" ", el("span", `#${index + 1}`, "muted"));
      }
      line.append(name, el("td"), el("td"), el("td"), el("td"), el("td"));
      table.append(line);
      stepLines.set(row.node_id, line);
      table.parentElement.hidden = false;
      document.querySelector("[data-steps-empty]").hidden = true;
    }
    const cells = line.children;
    cells[1].replaceChildren(stateBadge(row.state));
    cells[2].textContent = row.started_at ? row.started_at.slice(11, 19) : "–";
    cells[3].textContent = row.started_at && row.finished_at
      ? duration((Date.parse(row.finished_at) - Date.parse(row.started_at)) / 1000)
      : row.started_at ? "running" : "–";
    cells[4].textContent = String(row.attempts);
    cells[5].textContent = row.exit_code ?? "–";
  }
}

// ---- timeline ---------------------------------------------------------------------------

let timeline = null;
function updateTimeline() {
  const container = document.querySelector("[data-run-timeline]");
  if (!timeline) {
    timeline = new Timeline(container, { onPick: showStep, describe });
  }
  const steps = model.taskRows().map((row) => {
    const path = model.paths.get(row.task_id) || [];
    const suffix = path.map((i) => ` #${i + 1}`).join("");
    // A step running again (a retry) may still carry its last end: it has no end yet.
    return { task_id: row.task_id, label: `${row.display_name}${suffix}`, state: row.state,
      started_at: row.started_at, finished_at: FINISHED.has(row.state) ? row.finished_at : null };
  });
  timeline.update(steps);
  document.querySelector("[data-timeline-empty]").hidden = !container.hidden;
  if (container.hidden) {
    document.querySelector("[data-timeline-empty]").textContent = "No step has started yet.";
  }
}

// Open a step from anywhere (the timeline, a ?step= link): show its iteration and panel.
function showStep(taskId) {
  const row = model.rows.get(taskId);
  if (!row) return;
  model.index();
  const path = model.paths.get(taskId) || [];
  model.loopsAround(row.spec_id).forEach((loop, i) => {
    if (path[i] !== undefined) model.chosen.set(loop, path[i]);
  });
  showTab("graph");
  const task = model.graph.tasks.get(row.spec_id);
  if (!task) return;
  whenDrawn(() => {
    view.refresh();
    view.select(row.spec_id);
    taskPanel(task);
  });
}

// ---- tabs ----------------------------------------------------------------------------

const tabs = [...document.querySelectorAll("[data-tab]")];
const tabPanels = [...document.querySelectorAll("[data-tab-panel]")];
let current = null;

function showTab(name) {
  if (!tabs.some((tab) => tab.dataset.tab === name)) name = "graph";
  if (name === current) return;
  current = name;
  for (const tab of tabs) {
    const selected = tab.dataset.tab === name;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    tab.classList.toggle("active", selected);
  }
  for (const section of tabPanels) section.hidden = section.dataset.tabPanel !== name;
  if (name === "graph") {
    drawGraph();
    view?.cy?.resize(); // the canvas was hidden: cytoscape must measure it again
  }
  if (name === "timeline" && model.revision !== null) updateTimeline();
  if (name === "outputs") loadOutputs();
}

// ---- the run's outputs -------------------------------------------------------------------

// The "Run output" tab: every visualization of the run, the server's fragment, fetched when
// the tab is shown and again when a step (or the run) has ended since.
const outputs = { holder: document.querySelector("[data-run-outputs-holder]"), key: null,
  loading: false, again: false };

function outputsKey() {
  let ended = 0;
  for (const row of model.rows.values()) if (FINISHED.has(row.state)) ended += 1;
  return `${model.run?.state}|${ended}`;
}

async function loadOutputs() {
  if (!outputs.holder) return;
  const key = outputsKey();
  if (key === outputs.key) return;
  if (outputs.loading) {
    outputs.again = true;
    return;
  }
  outputs.loading = true;
  outputs.key = key;
  try {
    const response = await fetch(outputs.holder.dataset.url, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`${response.status}`);
    const text = await response.text();
    releaseCharts(outputs.holder);
    outputs.holder.innerHTML = text;
    await drawCharts(outputs.holder);
  } catch (error) {
    outputs.key = null;
    outputs.holder.replaceChildren(el("p", `The run's outputs could not be loaded (${error.message}).`, "run-error"));
  } finally {
    outputs.loading = false;
    if (outputs.again) {
      outputs.again = false;
      if (current === "outputs") loadOutputs();
    }
  }
}

function setUpTabs() {
  document.querySelector("[data-run-tabs]").setAttribute("role", "tablist");
  for (const tab of tabs) {
    tab.setAttribute("role", "tab");
    tab.setAttribute("aria-controls", tab.dataset.tab);
    tab.addEventListener("click", (event) => {
      event.preventDefault();
      showTab(tab.dataset.tab);
      history.replaceState(null, "", `${location.pathname}${location.search}#${tab.dataset.tab}`);
    });
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length];
      next.focus();
      next.click();
    });
  }
  for (const section of tabPanels) section.setAttribute("role", "tabpanel");
  window.addEventListener("hashchange", () => showTab(location.hash.slice(1)));
  showTab(location.hash.slice(1));
}

// ---- the graph ---------------------------------------------------------------------------

let drawn = null;
const waiting = [];
function whenDrawn(callback) {
  if (view?.cy && parts.root.dataset.ready === "true") callback();
  else waiting.push(callback);
}

function drawGraph() {
  if (drawn || !parts.root) return;
  view = mountGraph(parts, graphData, {
    graph: model.graph, labels, classesOf: (id) => `s-${model.stateOf(id)}`, extraStyle: stateStyle(),
    onTask: (task) => taskPanel(task),
    onGroup: (group) => groupPanel(group),
    onHidePanel: () => {
      panel.kind = null;
      panel.key = "";
      stopLog();
      history.replaceState(null, "", `${location.pathname}${location.hash}`);
    },
    onRender: () => {
      while (waiting.length) waiting.shift()();
    },
  });
  drawn = view.ready;
}

// ---- live --------------------------------------------------------------------------------

let scheduled = false;
function changed() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    if (view?.cy) view.refresh();
    updateHeader();
    updateHistory(false);
    updateStepsTable(model.takeTouched());
    if (current === "timeline") updateTimeline();
    if (current === "outputs") loadOutputs();
    refreshPanel();
    document.body.dataset.revision = String(model.run?.revision ?? "");
  });
}

function tickClock() {
  const now = Date.now();
  for (const span of document.querySelectorAll("[data-run-duration][data-started]")) {
    const end = span.dataset.finished ? Date.parse(span.dataset.finished) : now;
    span.textContent = duration((end - Date.parse(span.dataset.started)) / 1000);
  }
  for (const cell of document.querySelectorAll("[data-step-duration][data-started]")) {
    cell.textContent = `${duration((now - Date.parse(cell.dataset.started)) / 1000)} so far`;
  }
  if (current === "timeline" && timeline && model.run && !FINISHED.has(model.run.state)) {
    timeline.tick();
  }
}

function start() {
  setUpTabs();
  const wanted = new URLSearchParams(location.search).get("step");
  let first = true;
  subscribe(pageData.live, (event, resync) => {
    if (event.type === "snapshot") {
      model.load(event);
      updateHistory(true);
      changed();
      if (first && wanted) showStep(wanted);
      first = false;
    } else if (model.missed(event)) {
      resync();
    } else if (model.apply(event)) {
      changed();
    }
  });
  setInterval(tickClock, 1000);
}

start();
