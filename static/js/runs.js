// Run lists (the runs page, an experiment's runs). States and durations change live; runs
// started elsewhere are announced ("2 new runs — Show") rather than inserted, since where
// a new row belongs depends on the list's sort, filters and page. Nothing polls: changes
// arrive over a websocket (RunListConsumer). The checkboxes drive the bulk buttons and
// "Compare" (2 to 10 runs).
import { subscribe } from "./live.js";

const list = document.querySelector("[data-runs-live]");
const labels = JSON.parse(document.getElementById("run-state-labels")?.textContent || "{}");
const TICK_MS = 1000;
const COMPARE_MIN = 2; // as the KFP UI: 2 to 10 runs side by side
const COMPARE_MAX = 10;

// The same words as the server's duration_text: "4.2 s", "3 min 5 s", "2 h 10 min".
function durationText(started, finished) {
  const end = finished ? Date.parse(finished) : Date.now();
  const seconds = Math.max(0, (end - Date.parse(started)) / 1000);
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  const hours = Math.floor(minutes / 60);
  return hours ? `${hours} h ${minutes % 60} min` : `${minutes} min ${Math.floor(seconds) % 60} s`;
}

function showDuration(cell) {
  if (cell.dataset.started) cell.textContent = durationText(cell.dataset.started, cell.dataset.finished);
}

function setState(row, event) {
  const badge = row.querySelector("[data-run-state]");
  badge.className = `runs-state s-${event.state}`;
  badge.dataset.runState = event.state;
  badge.querySelector(".runs-state-label").textContent = labels[event.state] || event.state;
  if (event.error) badge.title = event.error;
  else badge.removeAttribute("title");
  const duration = row.querySelector("[data-cell=duration]");
  for (const [key, value] of [["started", event.started_at], ["finished", event.finished_at]]) {
    if (value) duration.dataset[key] = value;
    else delete duration.dataset[key];
  }
  if (duration.dataset.started) showDuration(duration);
  else duration.textContent = "–";
}

if (list) {
  const namespace = list.dataset.runsLive;
  const since = list.dataset.since;
  const storage = list.dataset.tab === "archived" ? "ARCHIVED" : "AVAILABLE";
  const notice = document.querySelector("[data-runs-notice]");
  const newRuns = new Set();

  const noteNew = (event) => {
    if (event.storage_state !== storage || Date.parse(event.created_at) <= Date.parse(since)) return;
    if (list.dataset.experiment && event.experiment_id !== list.dataset.experiment) return;
    if (list.dataset.recurring && event.recurring_run_id !== list.dataset.recurring) return;
    newRuns.add(event.run_id);
    const count = newRuns.size;
    notice.querySelector("[data-runs-notice-text]").textContent =
      `${count} new run${count === 1 ? "" : "s"} since this page was loaded.`;
    notice.hidden = false;
  };

  const onEvent = (event) => {
    if (event.type !== "run") return;
    const row = list.querySelector(`tr[data-run="${CSS.escape(event.run_id)}"]`);
    if (!row) {
      noteNew(event);
      return;
    }
    if (Number(event.revision) <= Number(row.dataset.revision)) return; // seen already
    row.dataset.revision = event.revision;
    if (event.storage_state !== storage) { // archived or restored elsewhere
      row.remove();
      document.querySelector("[data-runs-bulk]")?.dispatchEvent(new Event("change"));
      return;
    }
    setState(row, event);
  };

  const shown = [...list.querySelectorAll("tr[data-run]")].map((row) => row.dataset.run);
  const query = new URLSearchParams({ since, runs: shown.join(",") });
  subscribe(`/ws/ns/${encodeURIComponent(namespace)}/runs/?${query}`, onEvent);

  setInterval(() => {
    for (const cell of list.querySelectorAll("[data-cell=duration][data-started]:not([data-finished])")) {
      showDuration(cell);
    }
  }, TICK_MS);
}

const bulk = document.querySelector("[data-runs-bulk]");
if (bulk) {
  const all = bulk.querySelector("[data-check-all]");
  const count = bulk.querySelector("[data-checked-count]");
  const boxes = () => [...bulk.querySelectorAll("input[name=runs]")];
  const compare = bulk.querySelector("[data-compare]");
  // The comparison's address names just the runs (?runs=a,b), so it can be shared.
  compare?.addEventListener("click", (event) => {
    event.preventDefault();
    const ids = boxes().filter((box) => box.checked).map((box) => box.value);
    location.assign(`${compare.formAction}?runs=${ids.join(",")}`);
  });
  const sync = () => {
    const checked = boxes().filter((box) => box.checked).length;
    for (const button of bulk.querySelectorAll("[data-needs-checked]")) button.disabled = !checked;
    if (compare) compare.disabled = checked < COMPARE_MIN || checked > COMPARE_MAX;
    if (count) count.textContent = checked ? `${checked} checked` : "";
    if (all) {
      all.checked = checked > 0 && checked === boxes().length;
      all.indeterminate = checked > 0 && checked < boxes().length;
    }
  };
  all?.addEventListener("change", () => {
    for (const box of boxes()) box.checked = all.checked;
    sync();
  });
  bulk.addEventListener("change", sync);
  sync();
}
