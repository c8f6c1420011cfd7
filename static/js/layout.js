// Behaviour every page shares: namespace selector, mobile menu, confirmations, copy buttons.
// Pages work without it; it only saves clicks.

for (const form of document.querySelectorAll("form[data-autosubmit]")) {
  form.querySelector("select")?.addEventListener("change", () => form.requestSubmit());
}

const toggle = document.querySelector("[data-nav-toggle]");
toggle?.addEventListener("click", () => {
  const open = document.body.classList.toggle("nav-open");
  toggle.setAttribute("aria-expanded", String(open));
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
