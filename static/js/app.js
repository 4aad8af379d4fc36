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
})();
