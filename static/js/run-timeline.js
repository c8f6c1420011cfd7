// A run's timeline (Gantt): one row per step, a bar from its start to its end (to now while
// it runs) coloured by its state, on one time axis. Plain DOM and CSS: bars are absolutely
// placed in percent of the run's span, so a tick of the clock only moves numbers.

const STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800,
  43200, 86400];
const TICKS = 6; // about this many labelled times on the axis

function seconds(ms) {
  return ms / 1000;
}

// "0:42", "12:05", "1:02:03": elapsed time since the run's first start.
export function clock(totalSeconds) {
  const total = Math.max(0, Math.round(totalSeconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

// "12.3 s", "4 min 5 s", "2 h 3 min": what the page says a step took.
export function duration(totalSeconds) {
  if (totalSeconds < 60) return `${totalSeconds.toFixed(1)} s`;
  const whole = Math.floor(totalSeconds);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  return h ? `${h} h ${m} min` : `${m} min ${whole % 60} s`;
}

export class Timeline {
  // ``onPick(taskId)``: a step's name was clicked. ``describe(state)``: its readable name.
  constructor(container, { onPick, describe }) {
    this.container = container;
    this.onPick = onPick;
    this.describe = describe;
    this.axis = document.createElement("div");
    this.axis.className = "tl-axis";
    this.axis.setAttribute("aria-hidden", "true");
    this.list = document.createElement("ol");
    this.list.className = "tl-rows";
    container.replaceChildren(this.axis, this.list);
    this.rows = new Map(); // task id -> {element, bar, time, data}
    this.order = "";
    this.span = null;
  }

  // ``steps``: [{task_id, label, state, started_at, finished_at}], in any order.
  update(steps) {
    const seen = new Set();
    for (const step of steps) {
      seen.add(step.task_id);
      let row = this.rows.get(step.task_id);
      if (!row) {
        row = this.makeRow(step);
        this.rows.set(step.task_id, row);
      }
      row.data = step;
    }
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) {
        row.element.remove();
        this.rows.delete(id);
      }
    }
    // Started steps by start time, then the ones still waiting in the order they came.
    const sorted = [...this.rows.values()].sort((a, b) => {
      const x = a.data.started_at || "~";
      const y = b.data.started_at || "~";
      return x < y ? -1 : x > y ? 1 : 0;
    });
    const order = sorted.map((row) => row.data.task_id).join(",");
    if (order !== this.order) {
      this.list.replaceChildren(...sorted.map((row) => row.element));
      this.order = order;
    }
    this.tick();
  }

  makeRow(step) {
    const element = document.createElement("li");
    element.className = "tl-row";
    element.dataset.task = step.task_id;
    const name = document.createElement("button");
    name.type = "button";
    name.className = "tl-name";
    name.textContent = step.label;
    name.title = step.label;
    name.addEventListener("click", () => this.onPick(step.task_id));
    const track = document.createElement("div");
    track.className = "tl-track";
    const bar = document.createElement("span");
    bar.className = "tl-bar";
    const time = document.createElement("span");
    time.className = "tl-time";
    track.append(bar, time);
    element.append(name, track);
    return { element, bar, time, data: step };
  }

  // Re-place every bar for the span as of now (running bars grow; the axis stretches).
  tick() {
    const now = Date.now();
    let start = Infinity;
    let end = -Infinity;
    for (const { data } of this.rows.values()) {
      if (!data.started_at) continue;
      start = Math.min(start, Date.parse(data.started_at));
      end = Math.max(end, data.finished_at ? Date.parse(data.finished_at) : now);
    }
    this.container.hidden = start === Infinity;
    if (start === Infinity) return;
    const span = Math.max(end - start, 1000);
    this.drawAxis(span);
    for (const { element, bar, time, data } of this.rows.values()) {
      const state = data.state;
      element.dataset.state = state;
      bar.className = `tl-bar s-${state}`;
      if (!data.started_at) {
        bar.hidden = true;
        time.textContent = this.describe(state).toLowerCase();
        time.style.left = "0";
        continue;
      }
      const from = Date.parse(data.started_at) - start;
      const to = (data.finished_at ? Date.parse(data.finished_at) : now) - start;
      const took = duration(seconds(to - from)) + (data.finished_at ? "" : " so far");
      bar.hidden = false;
      bar.style.left = `${(100 * from) / span}%`;
      bar.style.width = `max(3px, ${(100 * (to - from)) / span}%)`;
      const words = `${data.label}: ${this.describe(state).toLowerCase()}, ${took}`;
      bar.title = words;
      bar.setAttribute("aria-label", words);
      time.textContent = took;
      // The time sits after the bar, or on its end when the bar reaches the right edge.
      const right = (100 * to) / span;
      const inside = right > 80;
      time.classList.toggle("tl-time-inside", inside);
      time.style.left = inside ? "auto" : `calc(${right}% + 6px)`;
      time.style.right = inside ? `calc(${100 - right}% + 4px)` : "auto";
    }
  }

  drawAxis(span) {
    const step = STEPS_S.find((s) => (s * 1000 * TICKS) >= span) || STEPS_S.at(-1);
    const key = `${step}:${Math.floor(span / (step * 1000))}`;
    if (key === this.span) return;
    this.span = key;
    const marks = [];
    for (let t = 0; t * 1000 <= span; t += step) {
      const mark = document.createElement("span");
      mark.className = "tl-tick";
      mark.style.left = `${(100 * t * 1000) / span}%`;
      mark.textContent = clock(t);
      marks.push(mark);
    }
    this.axis.replaceChildren(...marks);
  }
}
