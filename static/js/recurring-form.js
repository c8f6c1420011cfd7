// The recurring run form: show the inputs of the chosen kind of trigger and, while the user
// types, ask the server for the trigger in words and its next 5 times (debounced; an older
// answer never overwrites a newer one). The page renders the same preview, so without
// JavaScript a submit shows it too. The pipeline part is run-form.js's.
const form = document.querySelector("[data-recurring-form]");
const DEBOUNCE_MS = 300;
const TRIGGER_FIELDS = ["trigger_type", "interval_count", "interval_unit", "cron", "start_at",
  "end_at", "time_zone"];

function showTrigger() {
  const kind = form.elements.trigger_type.value;
  for (const part of form.querySelectorAll("[data-show-for-trigger]")) {
    part.hidden = part.dataset.showForTrigger !== kind;
  }
}

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  Object.assign(node, attributes);
  if (text) node.textContent = text;
  return node;
}

// The same markup as templates/pipelines/_recurring_preview.html.
function render(box, preview) {
  const parts = [];
  if (preview.errors) {
    const list = element("ul", { className: "recurring-preview-errors" });
    list.append(...preview.errors.map((message) => element("li", {}, message)));
    parts.push(list);
  } else {
    const words = preview.description;
    parts.push(element("p", { className: "recurring-words" },
      words.charAt(0).toUpperCase() + words.slice(1)));
    if (preview.times.length) {
      const list = element("ol", { className: "recurring-times" });
      list.append(...preview.times.map((time) => {
        const item = element("li");
        item.append(element("time", { dateTime: time.iso }, time.text));
        return item;
      }));
      parts.push(list);
    } else {
      parts.push(element("p", { className: "muted" }, "No time is left: the end has passed."));
    }
  }
  box.replaceChildren(...parts);
}

if (form) {
  const box = form.querySelector("[data-preview]");
  let timer = 0;
  let asked = 0; // the number of the latest question: only its answer is shown

  const preview = async () => {
    const query = new URLSearchParams();
    for (const name of TRIGGER_FIELDS) query.set(name, form.elements[name]?.value ?? "");
    const number = ++asked;
    box.setAttribute("aria-busy", "true");
    let answer;
    try {
      const response = await fetch(`${form.dataset.previewUrl}?${query}`, {
        headers: { Accept: "application/json" },
      });
      answer = await response.json();
    } catch {
      answer = { errors: ["The preview could not be loaded; the times are checked when you save."] };
    }
    if (number !== asked) return;
    box.removeAttribute("aria-busy");
    render(box, answer);
  };

  const changed = (event) => {
    if (!TRIGGER_FIELDS.includes(event.target.name)) return;
    if (event.target.name === "trigger_type") showTrigger();
    clearTimeout(timer);
    timer = setTimeout(preview, DEBOUNCE_MS);
  };
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  showTrigger();
}
