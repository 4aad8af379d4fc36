// Live pages. The htmx ws extension keeps /ws/ open and reopens it after a drop; this file
// (1) skips fragments this page has no place for, (2) catches the page up on what it missed while the
// socket was closed, and (3) reconnects at once when the phone comes back online or to the foreground.
(function () {
  "use strict";

  // What a fragment can change: re-read from the server after a gap.
  var LIVE_REGIONS = '#inbox-count, #inbox-list, [id^="decision-area-"], [id^="goal-status-"]';
  var SIGNED_OUT = 4401;
  var opens = 0;
  var socket = null;
  var state = "connecting";

  function setState(next) {
    state = next;
    document.documentElement.dataset.live = next;
  }

  htmx.defineExtension("live", {
    // An out-of-band fragment whose target is not on this page (a card while on a goal page) is dropped quietly.
    transformResponse: function (text) {
      var template = document.createElement("template");
      template.innerHTML = text;
      Array.prototype.slice.call(template.content.children).forEach(function (element) {
        var oob = element.getAttribute("hx-swap-oob") || "true";
        var colon = oob.indexOf(":");
        var selector = colon > 0 ? oob.slice(colon + 1) : element.id ? "#" + CSS.escape(element.id) : null;
        if (!selector || !document.querySelector(selector)) element.remove();
      });
      return template.innerHTML;
    }
  });

  function catchUp() {
    var regions = document.querySelectorAll(LIVE_REGIONS);
    if (!regions.length) return;
    fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok && !response.redirected ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        regions.forEach(function (region) {
          var replacement = fresh.getElementById(region.id);
          if (replacement && region.isConnected) {
            region.replaceWith(replacement);
            htmx.process(replacement);
          }
        });
      })
      .catch(function () { /* still offline: the next open tries again */ });
  }

  document.addEventListener("htmx:wsConnecting", function () { setState("connecting"); });
  document.addEventListener("htmx:wsOpen", function (event) {
    socket = event.detail.socketWrapper;
    opens += 1;
    setState("open");
    // A first open soon after the page was rendered missed nothing; any later one may have.
    if (opens > 1 || performance.now() > 3000) catchUp();
  });
  document.addEventListener("htmx:wsClose", function (event) {
    socket = event.detail.socketWrapper;
    setState(event.detail.event && event.detail.event.code === SIGNED_OUT ? "signed-out" : "closed");
  });

  function reconnectNow() {
    if (state === "closed" && socket && navigator.onLine !== false) {
      setState("connecting");
      socket.reconnect();
    }
  }
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") reconnectNow();
  });
})();
