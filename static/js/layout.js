// Behaviour every page shares: namespace selector, mobile menu, confirmations, copy buttons,
// shown-once secrets.
// Pages work without it; it only saves clicks.

for (const form of document.querySelectorAll("form[data-autosubmit]")) {
  form.querySelector("select")?.addEventListener("change", () => form.requestSubmit());
}

const toggle = document.querySelector("[data-nav-toggle]");
function setNavOpen(open) {
  document.body.classList.toggle("nav-open", open);
  toggle?.setAttribute("aria-expanded", String(open));
}
toggle?.addEventListener("click", () => setNavOpen(!document.body.classList.contains("nav-open")));
// On phones the open menu closes with Escape or a tap outside it.
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && document.body.classList.contains("nav-open")) {
    setNavOpen(false);
    toggle?.focus();
  }
});
document.addEventListener("click", (event) => {
  if (document.body.classList.contains("nav-open")
      && !event.target.closest("#sidenav, [data-nav-toggle]")) setNavOpen(false);
});

for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}

for (const button of document.querySelectorAll("[data-copy]")) {
  button.addEventListener("click", async () => {
    const input = document.querySelector(button.dataset.copy);
    input.select();
    try {
      await navigator.clipboard.writeText(input.value);
      button.textContent = "Copied";
    } catch {
      document.execCommand("copy");
    }
  });
}

// A page that shows a secret once (a new API token) is the answer to a POST: make the
// history entry a plain GET, so reloading it neither re-posts (another token) nor shows
// the secret again.
if (document.querySelector("[data-shown-once]")) {
  history.replaceState(null, "", location.href);
}
