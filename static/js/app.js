// Every page: the service worker (offline page, notifications), the banner and the decision buttons while the phone
// is offline, and the diff's wrap toggle.
(function () {
  "use strict";

  if ("serviceWorker" in navigator) {
    window.addEventListener("load", function () {
      navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(function (error) {
        console.warn("Goalpost: the service worker was not registered:", error);
      });
    });
  }

  // Offline, a decision could not reach the server: its buttons are disabled (what was typed stays) and the
  // banner says why; back online, the buttons this code disabled come back.
  var DECISION_BUTTONS = ".card-decision button, .decision form button";

  function showConnection() {
    var offline = navigator.onLine === false;
    var banner = document.getElementById("offline-banner");
    if (banner) banner.hidden = !offline;
    document.querySelectorAll(DECISION_BUTTONS).forEach(function (button) {
      if (offline && !button.disabled) {
        button.disabled = true;
        button.setAttribute("data-offline-disabled", "");
        button.setAttribute("aria-describedby", "offline-banner");
      } else if (!offline && button.hasAttribute("data-offline-disabled")) {
        button.disabled = false;
        button.removeAttribute("data-offline-disabled");
        button.removeAttribute("aria-describedby");
      }
    });
  }
  window.addEventListener("online", showConnection);
  window.addEventListener("offline", showConnection);
  document.addEventListener("DOMContentLoaded", showConnection);
  document.addEventListener("htmx:load", showConnection);
  // live.js's catch-up after a reconnect replaces regions and processes them, which fires no htmx:load.
  document.addEventListener("htmx:afterProcessNode", showConnection);

  // The diff's "Wrap long lines" toggle: an attribute on <html>, so hunks htmx swaps in later follow it too, and
  // the choice is kept on this device. Without JavaScript the button stays hidden and long lines scroll.
  var WRAP_KEY = "goalpost.wrapDiff";
  var wrapOn = false;
  try { wrapOn = localStorage.getItem(WRAP_KEY) === "1"; } catch (error) { /* storage off: this page only */ }

  function showWrap() {
    document.documentElement.toggleAttribute("data-wrap-diff", wrapOn);
    document.querySelectorAll("[data-wrap-toggle]").forEach(function (button) {
      button.hidden = false;
      button.setAttribute("aria-pressed", wrapOn ? "true" : "false");
    });
  }
  showWrap();
  document.addEventListener("htmx:load", showWrap);
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-wrap-toggle]") : null;
    if (!button) return;
    wrapOn = !wrapOn;
    try { localStorage.setItem(WRAP_KEY, wrapOn ? "1" : "0"); } catch (error) { /* kept for this page only */ }
    showWrap();
  });

  // A list row's ✕ (goal form): remove the row here and let the form re-lint. Without JavaScript the button
  // posts the form, which re-renders without the row. (Not hx-on: the Content-Security-Policy allows no eval.)
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-remove-row]") : null;
    if (!button || !button.form || typeof htmx === "undefined") return;
    event.preventDefault();
    var form = button.form;
    button.closest("li").remove();
    htmx.trigger(form, "change");
  });
})();
