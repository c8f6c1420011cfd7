// "Create run": show the fields of the chosen source only, and when the source, pipeline,
// version or file (or a recurring run's "always the latest version") changes, have the
// server show that pipeline's parameters (the form is posted with "refresh": nothing
// starts). Without JavaScript every field shows, and Start after such a change shows the
// new parameters first (RunForm.reviewing).
const form = document.querySelector("[data-run-form]");

function showSource() {
  const source = form.querySelector("input[name=source]:checked")?.value;
  for (const part of form.querySelectorAll("[data-show-for-source]")) {
    part.hidden = part.dataset.showForSource !== source;
  }
}

function refresh() {
  const flag = document.createElement("input");
  flag.type = "hidden";
  flag.name = "refresh";
  flag.value = "1";
  form.append(flag);
  form.requestSubmit();
}

if (form) {
  showSource();
  form.addEventListener("change", (event) => {
    const name = event.target.name;
    if (name === "source") showSource();
    if (["source", "pipeline", "version", "package", "latest"].includes(name)) refresh();
  });
}
