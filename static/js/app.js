// Every page: the service worker (offline page, notifications) and the banner that says the phone is offline.
(function () {
  "use strict";

  if ("serviceWorker" in navigator) {
    window.addEventListener("load", function () {
      navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(function (error) {
        console.warn("Goalpost: the service worker was not registered:", error);
      });
    });
  }

  function showConnection() {
    var banner = document.getElementById("offline-banner");
    if (banner) banner.hidden = navigator.onLine !== false;
  }
  window.addEventListener("online", showConnection);
  window.addEventListener("offline", showConnection);
  document.addEventListener("DOMContentLoaded", showConnection);

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
