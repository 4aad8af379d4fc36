// The settings page: turn push notifications on or off for this device (service worker + Push API).
(function () {
  "use strict";

  var panel = document.getElementById("push-panel");
  if (!panel) return;
  var status = document.getElementById("push-status");
  var form = document.getElementById("subscribe-form");
  var nameInput = document.getElementById("device-name");
  var subscribeButton = document.getElementById("subscribe-button");
  var unsubscribeButton = document.getElementById("unsubscribe-button");
  var iosHint = document.getElementById("ios-install-hint");
  var key = panel.dataset.vapidKey;

  var standalone = window.matchMedia("(display-mode: standalone)").matches || navigator.standalone === true;
  // iPadOS presents itself as a Mac: tell it apart by its touch screen.
  var ios = /iPhone|iPad|iPod/.test(navigator.userAgent) || (/Macintosh/.test(navigator.userAgent) && navigator.maxTouchPoints > 1);
  if (iosHint) iosHint.hidden = !(ios && !standalone);

  function say(text) { status.textContent = text; }

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch (error) { return ""; }
  }

  async function post(url, body) {
    var response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body)
    });
    var data = await response.json().catch(function () { return {}; });
    if (!response.ok) throw new Error(data.error || data.message || "the server answered " + response.status);
    return data;
  }

  function refreshDevices() {
    htmx.ajax("GET", location.pathname, { target: "#device-list", swap: "outerHTML" });
  }

  function base64UrlToBytes(text) {
    var raw = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
    return Uint8Array.from(raw, function (c) { return c.charCodeAt(0); });
  }

  function sameKey(subscription) {
    var current = subscription.options && subscription.options.applicationServerKey;
    if (!current) return true;
    var wanted = base64UrlToBytes(key);
    var bytes = new Uint8Array(current);
    return bytes.length === wanted.length && bytes.every(function (b, i) { return b === wanted[i]; });
  }

  function show(subscription) {
    form.hidden = false;
    unsubscribeButton.hidden = !subscription;
    subscribeButton.textContent = subscription ? "Save this device's name" : "Turn on notifications here";
    if (subscription) say("This device gets notifications.");
    else if (Notification.permission === "denied") say("Notifications are blocked for this site: allow them in the browser's site settings, then try again.");
    else say("This device does not get notifications yet.");
  }

  if (!key) return;  // the page already says push is not configured
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    if (ios && !standalone) say("Add Goalpost to the home screen first (see above), then open this page from there.");
    else say("This browser cannot receive notifications" + (window.isSecureContext ? "." : ": open Goalpost over https."));
    return;
  }

  var ready = navigator.serviceWorker.register("/sw.js", { scope: "/" }).then(function () {
    return navigator.serviceWorker.ready;
  });

  ready
    .then(function (registration) { return registration.pushManager.getSubscription(); })
    .then(show)
    .catch(function (error) { say("Notifications are unavailable here: " + error.message); });

  async function subscribe(registration) {
    if (Notification.permission === "default" && (await Notification.requestPermission()) !== "granted") {
      throw new Error("permission was not given");
    }
    var existing = await registration.pushManager.getSubscription();
    if (existing && sameKey(existing)) return existing;
    if (existing) await existing.unsubscribe();  // made for an older server key
    return registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64UrlToBytes(key) });
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    subscribeButton.disabled = true;
    say("Turning notifications on…");
    try {
      var subscription = await subscribe(await ready);
      var body = subscription.toJSON();
      body.device_name = nameInput.value.trim();
      var saved = await post(panel.dataset.subscribeUrl, body);
      show(subscription);
      say("Notifications are on for “" + saved.device_name + "”.");
      refreshDevices();
    } catch (error) {
      say("Could not turn notifications on: " + error.message + ".");
    } finally {
      subscribeButton.disabled = false;
    }
  });

  unsubscribeButton.addEventListener("click", async function () {
    unsubscribeButton.disabled = true;
    try {
      var subscription = await (await ready).pushManager.getSubscription();
      if (subscription) {
        var endpoint = subscription.endpoint;
        await subscription.unsubscribe();
        await post(panel.dataset.unsubscribeUrl, { endpoint: endpoint }).catch(function () { /* removed already */ });
      }
      show(null);
      say("Notifications are off on this device.");
      refreshDevices();
    } catch (error) {
      say("Could not turn notifications off: " + error.message + ".");
    } finally {
      unsubscribeButton.disabled = false;
    }
  });
})();
