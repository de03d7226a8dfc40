// The console's only script: partial refresh, and one submission per form.
// No framework and no build step: the console must work from a LAN with no internet.
"use strict";

// <div data-refresh="/fragment/url" data-every="10">: the server's fragment replaces the content
// every N seconds. A session that expired sends the browser back to the login page.
function refresh(element) {
  const every = Number(element.dataset.every || "15") * 1000;
  const tick = async () => {
    try {
      const response = await fetch(element.dataset.refresh, {
        headers: {"X-Console-Fragment": "1"}, credentials: "same-origin", redirect: "manual",
      });
      if (response.status === 401 || response.type === "opaqueredirect") {
        window.location.reload();
        return;
      }
      if (response.ok) {
        element.innerHTML = await response.text();
        element.dataset.refreshedAt = String(Date.now());
      }
    } catch (error) {
      element.dataset.refreshError = String(error);
    }
    window.setTimeout(tick, every);
  };
  window.setTimeout(tick, every);
}

// A second click while the first submission is on its way sends nothing (the server also keys
// each record form with an idempotency key, so a repeated POST stores one record). Listening on
// the document also covers forms that a refresh put in the page after it loaded.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") {
    return;
  }
  if (form.dataset.submitting === "1") {
    event.preventDefault();
    return;
  }
  form.dataset.submitting = "1";
  for (const button of form.querySelectorAll("button[type=submit]")) {
    button.setAttribute("aria-busy", "true");
  }
});

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-refresh]").forEach(refresh);
});
