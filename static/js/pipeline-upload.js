// Upload form: show only the fields the chosen radios need. Without it every field shows
// and the server ignores the ones that do not apply.
const form = document.querySelector("[data-upload-form]");

function sync() {
  const target = form.querySelector("input[name=target]:checked")?.value;
  const origin = form.querySelector("input[name=origin]:checked")?.value;
  for (const part of form.querySelectorAll("[data-show-for-target]")) {
    part.hidden = part.dataset.showForTarget !== target;
  }
  for (const part of form.querySelectorAll("[data-show-for-origin]")) {
    part.hidden = part.dataset.showForOrigin !== origin;
  }
}

if (form) {
  form.addEventListener("change", sync);
  sync();
}
