// The DAG drawing shared by the pipeline page and the run page. Cytoscape draws it, ELK (in
// a web worker, so a 500-task layout never freezes the page) places it: tasks as nodes,
// dependencies as edges, conditions / loops / exit handlers / sub-pipelines as labelled
// boxes that collapse into one node. The server sends the graph as JSON (json_script) with
// every text already readable (pipelines/views/graph.py).
//
// A page mounts it with ``mountGraph`` and says what differs: the labels, extra classes
// per node (the run page colours nodes by state), and what a click on a task or a group
// shows in the side panel. ``refresh()`` restyles nodes without laying the graph out again,
// so live changes cost no layout.
import cytoscape from "../vendor/cytoscape.esm.min.js";

// More visible nodes than this and groups start collapsed, innermost first.
const VISIBLE_LIMIT = 120;
const TASK_H = 40;
const COLLAPSED_H = 54;
const GROUP_PAD = { top: 34, side: 16, bottom: 16 };
const GROUP_LABEL_MAX = 380; // a longer group label is cut with "…" (the panel has it all)
const CHAR_W = 7.4;
const MIN_READABLE_ZOOM = 0.45; // below this, labels are too small: start at START_ZOOM
const START_ZOOM = 0.6;
const DOUBLE_TAP_MS = 400;
const ROW_MAX = 12; // px per character of a 13px label, near enough for sizing boxes

export function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function textWidth(text, min, max) {
  return Math.max(min, Math.min(max, Math.round(text.length * CHAR_W + 32)));
}

export class Graph {
  constructor(data) {
    this.tasks = new Map(data.tasks.map((t) => [t.id, t]));
    this.groups = new Map(data.groups.map((g) => [g.id, g]));
    this.containers = data.containers || [];
    this.children = new Map();
    for (const item of [...data.groups, ...data.tasks]) {
      const key = item.parent ?? "";
      if (!this.children.has(key)) this.children.set(key, []);
      this.children.get(key).push(item.id);
    }
    this.taskCount = new Map(); // tasks inside each group, at any depth
    for (const task of data.tasks) {
      for (let g = task.parent; g; g = this.groups.get(g)?.parent) {
        this.taskCount.set(g, (this.taskCount.get(g) || 0) + 1);
      }
    }
    this.collapsed = new Set();
  }

  depth(id) {
    let depth = 0;
    for (let p = this.parentOf(id); p; p = this.groups.get(p)?.parent) depth += 1;
    return depth;
  }

  parentOf(id) {
    return (this.tasks.get(id) || this.groups.get(id))?.parent ?? null;
  }

  // The enclosing groups of ``id``, innermost first.
  ancestors(id) {
    const ids = [];
    for (let p = this.parentOf(id); p; p = this.groups.get(p)?.parent) ids.push(p);
    return ids;
  }

  // The node that stands for ``id`` on screen: its outermost collapsed group, or itself.
  shownAs(id) {
    let shown = id;
    for (const p of this.ancestors(id)) {
      if (this.collapsed.has(p)) shown = p;
    }
    return shown;
  }

  isVisible(id) {
    return this.shownAs(id) === id;
  }

  visibleCount() {
    let count = 0;
    for (const id of [...this.tasks.keys(), ...this.groups.keys()]) {
      if (this.isVisible(id)) count += 1;
    }
    return count;
  }

  collapseToFit(limit) {
    const innermostFirst = [...this.groups.keys()].sort((a, b) => this.depth(b) - this.depth(a));
    for (const id of innermostFirst) {
      if (this.visibleCount() <= limit) break;
      if (this.isVisible(id)) this.collapsed.add(id);
    }
  }

  isAncestor(ancestor, id) {
    return this.ancestors(id).includes(ancestor);
  }

  // What is on screen: nodes (with their visible parent) and de-duplicated edges.
  visible(labels) {
    const nodes = [];
    for (const group of this.groups.values()) {
      if (!this.isVisible(group.id)) continue;
      const collapsed = this.collapsed.has(group.id);
      nodes.push({ id: group.id, parent: group.parent, kind: "group", group, collapsed,
        label: labels.group(group, collapsed) });
    }
    for (const task of this.tasks.values()) {
      if (this.isVisible(task.id)) {
        nodes.push({ id: task.id, parent: task.parent, kind: "task", task,
          label: labels.task(task) });
      }
    }
    const edges = new Map();
    for (const item of [...this.tasks.values(), ...this.groups.values()]) {
      const target = this.shownAs(item.id);
      for (const dep of item.deps || []) {
        if (!this.tasks.has(dep) && !this.groups.has(dep)) continue;
        const from = this.shownAs(dep);
        if (from === target || this.isAncestor(from, target) || this.isAncestor(target, from)) {
          continue;
        }
        const id = `${from}->${target}`;
        const exit = Boolean(item.exit_handler);
        if (!edges.has(id)) edges.set(id, { id, source: from, target, exit });
      }
    }
    return { nodes, edges: [...edges.values()] };
  }
}

// The labels the pipeline page shows; the run page adds states and iteration counts.
export function plainLabels(graph) {
  return {
    task: (task) => task.name,
    group: (group, collapsed) => {
      if (!collapsed) return group.label;
      const count = graph.taskCount.get(group.id) || 0;
      return `${group.label}\n▸ ${count} task${count === 1 ? "" : "s"}`;
    },
    // What the layout sizes a group's box for (its label may grow later without a layout).
    groupWidth: (group) => group.label,
  };
}

function nodeSize(node, labels) {
  if (node.kind === "task") return { width: textWidth(node.label, 110, 230), height: TASK_H };
  if (node.collapsed) {
    return { width: textWidth(labels.groupWidth(node.group), 150, 300), height: COLLAPSED_H };
  }
  return null; // an open group: ELK sizes it around its children
}

// ELK wants nested children, and each edge in the lowest group holding both of its ends.
function elkGraph(graph, view, labels) {
  const byId = new Map();
  const top = { id: "root", children: [], edges: [], layoutOptions: {
    "elk.algorithm": "layered",
    "elk.direction": "DOWN",
    "elk.hierarchyHandling": "INCLUDE_CHILDREN",
    "elk.layered.spacing.nodeNodeBetweenLayers": "36",
    "elk.spacing.nodeNode": "22",
    "elk.layered.spacing.edgeNodeBetweenLayers": "18",
    "elk.layered.nodePlacement.strategy": "NETWORK_SIMPLEX",
    "elk.layered.considerModelOrder.strategy": "NODES_AND_EDGES",
    "elk.edgeRouting": "ORTHOGONAL",
  } };
  for (const node of view.nodes) {
    const size = nodeSize(node, labels);
    const elkNode = { id: node.id, children: [], edges: [], ...(size || {}) };
    if (!size) {
      // Wide enough for its label. ELK (0.12, layered DOWN with INCLUDE_CHILDREN) applies
      // a group's minimum size transposed, so the pair is given as (height, width).
      const minWidth = textWidth(labels.groupWidth(node.group), 120, GROUP_LABEL_MAX);
      elkNode.layoutOptions = {
        "elk.padding": `[top=${GROUP_PAD.top},left=${GROUP_PAD.side},bottom=${GROUP_PAD.bottom},right=${GROUP_PAD.side}]`,
        "elk.nodeSize.constraints": "MINIMUM_SIZE",
        "elk.nodeSize.minimum": `(60, ${minWidth})`,
      };
    }
    byId.set(node.id, elkNode);
  }
  for (const node of view.nodes) {
    const parent = node.parent && byId.get(node.parent);
    (parent || top).children.push(byId.get(node.id));
  }
  // Steps with no edge at all (a loop body of 60 independent steps) would stand in one
  // row miles wide: stack them ROW_MAX to a row with edges only the layout sees.
  const linked = new Set(view.edges.flatMap((e) => [e.source, e.target]));
  for (const container of [top, ...byId.values()]) {
    const loose = container.children.filter((c) => !linked.has(c.id) && !c.children.length);
    for (let i = ROW_MAX; i < loose.length; i++) {
      container.edges.push({ id: `layout:${i}:${container.id}`,
        sources: [loose[i - ROW_MAX].id], targets: [loose[i].id] });
    }
  }
  for (const edge of view.edges) {
    const above = new Set(graph.ancestors(edge.source));
    const common = graph.ancestors(edge.target).find((id) => above.has(id));
    (common ? byId.get(common) : top).edges.push(
      { id: edge.id, sources: [edge.source], targets: [edge.target] });
  }
  return top;
}

// ELK positions are relative to the parent and name the top-left corner. A group made
// wider than its content for its label gets its content centred (ELK leaves it on the left).
function absoluteBoxes(elkRoot) {
  const boxes = new Map();
  const walk = (node, dx, dy) => {
    const children = node.children || [];
    let shift = 0;
    if (node !== elkRoot && children.length) {
      const right = Math.max(...children.map((c) => c.x + c.width)) + GROUP_PAD.side;
      shift = Math.max(0, (node.width - right) / 2);
    }
    for (const child of children) {
      const x = dx + child.x + shift;
      const y = dy + child.y;
      boxes.set(child.id, { x, y, width: child.width, height: child.height });
      walk(child, x, y);
    }
  };
  walk(elkRoot, 0, 0);
  return boxes;
}

function style(extraRules) {
  const c = {
    surface: cssVar("--surface"), surface2: cssVar("--surface-2"), text: cssVar("--text"),
    muted: cssVar("--muted"), border: cssVar("--border"), accent: cssVar("--accent"),
    accentSoft: cssVar("--accent-soft"), warn: cssVar("--warn"), warnSoft: cssVar("--warn-soft"),
    ok: cssVar("--ok"), okSoft: cssVar("--ok-soft"),
  };
  const font = cssVar("--font");
  const kinds = {
    condition: [c.warn, c.warnSoft, "dashed"],
    loop: [c.accent, c.accentSoft, "solid"],
    exit_handler: [c.ok, c.okSoft, "dotted"],
    dag: [c.muted, c.surface2, "solid"],
  };
  const rules = [
    { selector: "node", style: {
      "font-family": font, "z-index-compare": "manual", "min-zoomed-font-size": 6,
      width: "data(width)", height: "data(height)", shape: "round-rectangle",
    } },
    { selector: "node.task", style: {
      label: "data(label)", "font-size": 13, color: c.text, "background-color": c.surface,
      "border-width": 1.5, "border-color": c.muted, "text-valign": "center",
      "text-wrap": "ellipsis", "text-max-width": "data(textWidth)", "z-index": 100,
    } },
    { selector: "node.task.exit", style: { "border-style": "dashed" } },
    { selector: "node.box", style: {
      label: "data(label)", "font-size": 12, "font-weight": 600, "text-valign": "top",
      "text-margin-y": "data(labelDrop)", "text-wrap": "ellipsis",
      "text-max-width": "data(textWidth)", "border-width": 1.5, "background-opacity": 0.55,
      "z-index": "data(z)",
    } },
    { selector: "node.collapsed", style: {
      label: "data(label)", "font-size": 12, "font-weight": 600, "text-valign": "center",
      "text-wrap": "wrap", "text-max-width": "data(textWidth)", "border-width": 3,
      "border-style": "double", "z-index": 100,
    } },
    { selector: "edge", style: {
      width: 1.5, "line-color": c.muted, "target-arrow-color": c.muted,
      "target-arrow-shape": "triangle", "arrow-scale": 0.9, "curve-style": "taxi",
      "taxi-direction": "downward", "taxi-turn": "50%", "taxi-turn-min-distance": 8,
      "z-index-compare": "manual", "z-index": 50, opacity: 0.8,
    } },
    { selector: "edge.exit", style: { "line-style": "dashed" } },
  ];
  for (const [kind, [line, fill, dash]] of Object.entries(kinds)) {
    rules.push({ selector: `node.box.${kind}, node.collapsed.${kind}`,
      style: { "border-color": line, "background-color": fill, color: line,
        "border-style": dash } });
    rules.push({ selector: `node.collapsed.${kind}`, style: { "border-style": "double" } });
  }
  rules.push(
    { selector: "node.task:selected, node.collapsed:selected", style: {
      "border-color": c.accent, "border-width": 3, "background-color": c.accentSoft,
    } },
    { selector: "node.box:selected", style: { "border-width": 3 } },
  );
  // A page's own rules come last, so they win (the run page's state colours).
  rules.push(...extraRules);
  return rules;
}

function elements(graph, view, boxes, classesOf) {
  const out = [];
  for (const node of view.nodes) {
    const box = boxes.get(node.id);
    if (!box) continue;
    const position = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
    const data = { id: node.id, label: node.label, width: box.width, height: box.height,
      textWidth: Math.max(40, box.width - 20) };
    let classes = node.kind;
    if (node.kind === "task") {
      if (node.task.exit_handler) classes += " exit";
    } else {
      classes = `${node.collapsed ? "collapsed" : "box"} ${node.group.kind}`;
      data.labelDrop = GROUP_PAD.top / 2 + 7; // from above the box into its top padding
      data.z = graph.depth(node.id) + 1;
    }
    data.base = classes;
    data.classes = `${classes} ${classesOf(node.id)}`;
    out.push({ group: "nodes", data, position, classes: data.classes });
  }
  for (const edge of view.edges) {
    out.push({ group: "edges", data: { id: edge.id, source: edge.source, target: edge.target },
      classes: edge.exit ? "exit" : "" });
  }
  return out;
}

// ---- side panel parts ----------------------------------------------------------------

export function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

export function factList(facts) {
  const dl = el("dl", undefined, "facts panel-facts");
  for (const [label, value] of facts) {
    dl.append(el("dt", label));
    const dd = el("dd");
    if (value instanceof Node) dd.append(value);
    else if (value.includes("\n") || value.length > 60) dd.append(el("pre", value, "panel-pre"));
    else dd.textContent = value;
    dl.append(dd);
  }
  return dl;
}

export function portList(title, ports, showSource) {
  const section = el("section", undefined, "panel-ports");
  section.append(el("h4", `${title} (${ports.length})`));
  if (!ports.length) {
    section.append(el("p", "none", "muted"));
    return section;
  }
  const list = el("ul", undefined, "plain-list");
  for (const port of ports) {
    const item = el("li");
    item.append(el("code", port.name), " ", el("span", port.type, "badge"));
    if (showSource && port.source) item.append(el("div", `← ${port.source}`, "muted port-source"));
    list.append(item);
  }
  section.append(list);
  return section;
}

// ---- putting it together -------------------------------------------------------------

// Draws ``data`` in ``elements.root`` (with its ``panel``, ``tools``, ``status``, ``hint``
// and no-JavaScript ``table``). Options: ``graph`` (a Graph of ``data`` the page already
// made), ``labels`` (see plainLabels), ``classesOf(id)``
// (extra classes of a node), ``extraStyle`` (cytoscape rules), ``onTask(task, view)`` and
// ``onGroup(group, view)`` (fill the panel), ``onHidePanel()``. Returns the view, whose
// ``ready`` promise settles once the graph is drawn (false when it could not be).
export function mountGraph(elements_, data, options = {}) {
  const { root, panel, tools, status, hint, table } = elements_;
  const graph = options.graph || new Graph(data);
  const labels = options.labels || plainLabels(graph);
  const classesOf = options.classesOf || (() => "");
  const panelTitle = panel.querySelector("[data-panel-title]");
  const panelBody = panel.querySelector("[data-panel-body]");
  const view = { graph, cy: null, ready: null, render: null, refresh: () => {} };

  // The panel takes (or gives back) some of the canvas's width: a graph that was all in
  // view stays all in view.
  const resized = (change) => {
    const cy = view.cy;
    const whole = cy && cy.nodes().length && allInView(cy, root);
    change();
    cy?.resize();
    if (whole) fitReadably(cy);
  };
  view.showPanel = (title, parts) => {
    panelTitle.textContent = title;
    panelBody.replaceChildren(...parts);
    if (panel.hidden) {
      resized(() => {
        panel.hidden = false;
        root.parentElement.classList.add("with-panel");
      });
    }
  };
  view.hidePanel = () => {
    view.cy?.elements().unselect();
    if (!panel.hidden) {
      resized(() => {
        panel.hidden = true;
        root.parentElement.classList.remove("with-panel");
      });
    }
    options.onHidePanel?.();
  };
  view.toggle = (id) => {
    if (graph.collapsed.has(id)) graph.collapsed.delete(id);
    else graph.collapsed.add(id);
    view.hidePanel();
    view.render(id);
  };
  // A group panel's collapse/expand button, for the pages' onGroup.
  view.toggleButton = (group) => {
    const button = el("button", graph.collapsed.has(group.id) ? "Expand group"
      : "Collapse group", "btn btn-small");
    button.type = "button";
    button.addEventListener("click", () => view.toggle(group.id));
    return button;
  };
  panel.querySelector("[data-panel-close]").addEventListener("click", (event) => {
    event.preventDefault(); // without JavaScript it may be a link that closes the panel
    view.hidePanel();
  });
  if (!data.tasks.length) {
    view.ready = Promise.resolve(false);
    return view;
  }
  view.ready = draw(view, { root, panel, tools, status, hint, table }, labels, classesOf,
    options);
  return view;
}

async function draw(view, parts, labels, classesOf, options) {
  const { root, tools, status, hint, table } = parts;
  const { graph } = view;
  graph.collapseToFit(VISIBLE_LIMIT);
  const elk = new window.ELK({ workerUrl: root.dataset.elkWorker });

  status.hidden = false;
  status.textContent = `Laying out ${graph.tasks.size} tasks…`;
  root.hidden = false;
  const big = graph.tasks.size > 200;
  const cy = cytoscape({
    container: root, style: style(options.extraStyle || []), minZoom: 0.05, maxZoom: 2.5,
    autoungrabify: true, boxSelectionEnabled: false,
    textureOnViewport: big, hideEdgesOnViewport: big,
  });
  view.cy = cy;
  window.pipelineGraph = cy; // for the browser tests and the curious

  let generation = 0;
  view.render = async (focus) => {
    const mine = ++generation;
    root.dataset.ready = "false";
    const shown = graph.visible(labels);
    const laid = await elk.layout(elkGraph(graph, shown, labels));
    if (mine !== generation) return; // a newer render started meanwhile
    const boxes = absoluteBoxes(laid);
    cy.batch(() => {
      cy.elements().remove();
      cy.add(elements(graph, shown, boxes, classesOf));
    });
    view.refresh(); // labels and classes may have changed while ELK worked
    place(focus && cy.getElementById(focus));
    root.dataset.nodes = String(cy.nodes().length);
    root.dataset.ready = "true";
    options.onRender?.();
  };

  // New labels and classes on the nodes drawn, without a layout (live state changes).
  view.refresh = () => {
    cy.batch(() => {
      for (const node of cy.nodes()) {
        const id = node.id();
        const task = graph.tasks.get(id);
        const label = task ? labels.task(task)
          : labels.group(graph.groups.get(id), graph.collapsed.has(id));
        if (node.data("label") !== label) node.data("label", label);
        const classes = `${node.data("base")} ${classesOf(id)}`;
        if (node.data("classes") !== classes) {
          node.data("classes", classes);
          node.classes(classes);
        }
      }
    });
  };

  view.select = (id) => {
    const node = cy.getElementById(graph.shownAs(id));
    if (!node.nonempty()) return;
    cy.elements().unselect();
    node.select();
    const at = node.renderedPosition();
    if (at.x < 0 || at.x > root.clientWidth || at.y < 0 || at.y > root.clientHeight) {
      cy.animate({ center: { eles: node }, duration: 150 });
    }
  };

  // Show the whole graph when it fits at a readable size (never blown up past 100%);
  // otherwise keep the group just toggled in view, or start at the top of the graph.
  function place(focus) {
    const all = cy.elements().boundingBox();
    const fits = Math.min((root.clientWidth - 48) / all.w, (root.clientHeight - 48) / all.h);
    if (fits >= MIN_READABLE_ZOOM || cy.nodes().length <= 40) {
      fitReadably(cy);
    } else if (focus && focus.nonempty()) {
      cy.zoom(Math.max(cy.zoom(), START_ZOOM));
      cy.center(focus);
    } else {
      cy.zoom(START_ZOOM);
      cy.pan({ x: root.clientWidth / 2 - ((all.x1 + all.x2) / 2) * START_ZOOM,
        y: 16 - all.y1 * START_ZOOM });
    }
  }

  let lastTap = { id: "", at: 0 };
  function isDoubleTap(id) {
    const now = Date.now();
    const double = lastTap.id === id && now - lastTap.at < DOUBLE_TAP_MS;
    lastTap = double ? { id: "", at: 0 } : { id, at: now };
    return double;
  }

  const onTask = options.onTask || defaultTaskPanel;
  const onGroup = options.onGroup || defaultGroupPanel;
  cy.on("tap", "node", (event) => {
    const id = event.target.id();
    if (graph.tasks.has(id)) {
      onTask(graph.tasks.get(id), view);
    } else if (isDoubleTap(id)) {
      view.toggle(id); // a double click on a group (cytoscape's dbltap also fires across nodes)
      return;
    } else {
      onGroup(graph.groups.get(id), view);
    }
    cy.resize(); // the panel took some of the canvas's width
    const at = event.target.renderedPosition();
    if (at.x < 0 || at.x > root.clientWidth || at.y < 0 || at.y > root.clientHeight) {
      cy.animate({ center: { eles: event.target }, duration: 150 });
    }
  });
  cy.on("tap", (event) => {
    if (event.target === cy) view.hidePanel();
  });

  const actions = {
    fit: () => cy.animate({ fit: { padding: 24 }, duration: 200 }),
    "zoom-in": () => cy.animate({ zoom: { level: cy.zoom() * 1.3,
      renderedPosition: { x: root.clientWidth / 2, y: root.clientHeight / 2 } }, duration: 120 }),
    "zoom-out": () => cy.animate({ zoom: { level: cy.zoom() / 1.3,
      renderedPosition: { x: root.clientWidth / 2, y: root.clientHeight / 2 } }, duration: 120 }),
    "expand-all": () => { graph.collapsed.clear(); view.hidePanel(); view.render(); },
    "collapse-all": () => {
      for (const group of graph.groups.values()) if (!group.parent) graph.collapsed.add(group.id);
      view.hidePanel();
      view.render();
    },
  };
  for (const button of tools.querySelectorAll("[data-graph-action]")) {
    button.addEventListener("click", () => actions[button.dataset.graphAction]());
  }

  try {
    await view.render();
  } catch (error) {
    status.textContent = `The graph could not be drawn (${error.message || error}); the table below lists the tasks.`;
    root.hidden = true;
    return false;
  }
  status.hidden = true;
  tools.hidden = false;
  hint.hidden = false;
  table.open = false; // the graph says it all now; the table stays one click away
  return true;
}

function fitReadably(cy) {
  cy.fit(undefined, 24);
  if (cy.zoom() > 1) {
    cy.zoom(1);
    cy.center();
  }
}

function allInView(cy, root) {
  const box = cy.elements().renderedBoundingBox();
  return box.x1 >= -1 && box.y1 >= -1 && box.x2 <= root.clientWidth + 1
    && box.y2 <= root.clientHeight + 1;
}

// The pipeline page's panels: what a task is made of, and a group's facts.
function defaultTaskPanel(task, view) {
  const facts = [...task.facts];
  const container = view.graph.containers[task.container];
  if (container) facts.splice(1, 0, ...container);
  const parts = [factList(facts), portList("Inputs", task.inputs, true),
    portList("Outputs", task.outputs, false)];
  if (task.group_label) parts.unshift(el("p", `in ${task.group_label}`, "muted"));
  view.showPanel(task.name, parts);
}

function defaultGroupPanel(group, view) {
  const count = view.graph.taskCount.get(group.id) || 0;
  view.showPanel(group.label, [factList([...group.facts, ["Tasks", String(count)]]),
    view.toggleButton(group)]);
}

// Finds the graph's parts in the page by their data attributes.
export function graphElements(scope = document) {
  return {
    root: scope.querySelector("[data-pipeline-graph]"),
    panel: scope.querySelector("[data-graph-panel]"),
    tools: scope.querySelector("[data-graph-tools]"),
    status: scope.querySelector("[data-graph-status]"),
    hint: scope.querySelector("[data-graph-hint]"),
    table: scope.querySelector("[data-task-table]"),
  };
}
