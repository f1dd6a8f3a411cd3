// The console's only script, served by the service itself (the CSP allows nothing else).
// Pages work without it; it asks before a destructive button is sent and selects a secret
// when it gets the focus, so it can be copied at once.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) {
    return;
  }
  if (!window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

document.addEventListener("focusin", (event) => {
  const field = event.target;
  if (field instanceof HTMLInputElement && "selectOnFocus" in field.dataset) {
    field.select();
  }
});
