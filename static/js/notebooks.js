// Notebook pages: statuses and spawn progress arrive over a websocket; nothing polls.
import { subscribe } from "./live.js";

const root = document.querySelector("[data-live-notebooks]");
const LABELS = { waiting: "Starting", running: "Running", stopped: "Stopped",
  terminating: "Stopping", error: "Error" };

function update(row, event) {
  const status = row.querySelector("[data-status]");
  if (status) {
    status.className = `nb-status nb-${event.status}`;
    status.dataset.status = event.status;
    status.querySelector(".nb-status-label").textContent = event.status_label
      || LABELS[event.status] || event.status;
  }
  const message = row.querySelector(".nb-message");
  if (message) message.textContent = event.message || "";
  const connect = row.querySelector("[data-connect]");
  if (connect) connect.hidden = event.status !== "running";
  const stopped = event.status === "stopped" || event.status === "error";
  const stop = row.querySelector("[data-stop]");
  const start = row.querySelector("[data-start]");
  if (stop && start && event.status !== "terminating") {
    stop.hidden = stopped;
    start.hidden = !stopped;
  }
}

function showProgress(row, steps) {
  const log = row.querySelector("[data-progress]");
  if (!log || !steps) return;
  log.replaceChildren(...steps.map((step) => {
    const item = document.createElement("li");
    item.textContent = step;
    return item;
  }));
}

if (root) {
  const namespace = root.dataset.liveNotebooks;
  subscribe(`/ws/ns/${encodeURIComponent(namespace)}/notebooks/`, (event) => {
    const row = document.querySelector(`[data-notebook="${CSS.escape(event.name)}"]`);
    if (event.type === "deleted") {
      if (row?.tagName === "TR") row.remove();
      else if (row) location.assign(`/ns/${encodeURIComponent(namespace)}/notebooks/`);
      return;
    }
    if (event.type === "notebook") {
      if (row) {
        update(row, event);
        showProgress(row, event.progress);
      }
      else if (root.tagName === "TABLE") location.reload(); // a notebook made elsewhere
    }
  });
}

// The details page's log: the recent lines again on (re)connect, then new output.
const log = document.querySelector("[data-live-log]");
if (log && root) {
  const namespace = root.dataset.liveNotebooks;
  const name = log.closest("main").querySelector("[data-notebook]").dataset.notebook;
  let first = true;
  subscribe(`/ws/ns/${encodeURIComponent(namespace)}/notebooks/${encodeURIComponent(name)}/logs/`,
    (event) => {
      if (event.type !== "log") return;
      const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      if (first) log.textContent = event.text;
      else log.textContent += event.text;
      first = false;
      log.hidden = !log.textContent;
      document.querySelector("[data-log-empty]").hidden = !log.hidden;
      if (atBottom) log.scrollTop = log.scrollHeight;
    }, { onOpen: () => { first = true; } });
}

// The new-notebook form: the image list offers the chosen server type's images only
// (without JavaScript it shows them all, grouped by type, and the server checks).
const form = document.querySelector("[data-notebook-form]");
if (form) {
  const type = form.querySelector("#id_server_type");
  const image = form.querySelector("#id_image");
  const showImagesOf = () => {
    let selectedHidden = false;
    for (const group of image.querySelectorAll("optgroup[data-server-type]")) {
      const hidden = group.dataset.serverType !== type.value;
      group.hidden = hidden;
      group.disabled = hidden;
      if (hidden && group.contains(image.selectedOptions[0])) selectedHidden = true;
    }
    const first = image.querySelector(
      `optgroup[data-server-type="${CSS.escape(type.value)}"] option`);
    if (selectedHidden && first) first.selected = true;
  };
  if (type && image) {
    type.addEventListener("change", showImagesOf);
    showImagesOf();
  }
}
