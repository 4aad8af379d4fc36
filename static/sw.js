// Goalpost's service worker. The /sw.js view puts GOALPOST (cache name, files to precache, icons) above this.
// What it does: shows an offline page instead of the browser's error, shows push notifications, and answers
// a notification's Approve / Reject buttons. What it never does: serve a stored inbox or approval page, which
// could show a request as waiting when it was already decided.
/* global GOALPOST */
"use strict";

const OFFLINE_URL = "/offline/";

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(GOALPOST.cacheName)
      .then((cache) => cache.addAll(GOALPOST.precache.map((url) => new Request(url, { cache: "reload", credentials: "omit" }))))
      .then(() => self.skipWaiting())
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name.startsWith("goalpost-") && name !== GOALPOST.cacheName).map((name) => caches.delete(name))))
      .then(() => self.clients.claim())
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    // Network first, and nothing stored: offline, the one page shown is the one that says so.
    event.respondWith(
      fetch(request).catch(async () => (await caches.match(OFFLINE_URL)) || new Response("You are offline: nothing was decided.", { status: 503, headers: { "Content-Type": "text/plain; charset=utf-8" } }))
    );
    return;
  }
  if (url.pathname.startsWith("/static/")) {
    // Versioned files of the offline shell: the stored copy is the same file.
    event.respondWith(caches.match(request).then((stored) => stored || fetch(request)));
  }
  // Anything else (htmx partials, JSON) goes to the network untouched.
});

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (error) {
    data = { body: event.data ? event.data.text() : "" };
  }
  const actions = (data.actions || []).filter((a) => a.action && a.title).map((a) => ({ action: a.action, title: a.title }));
  event.waitUntil(
    self.registration.showNotification(data.title || "Goalpost", {
      body: data.body || "",
      tag: data.tag || undefined,
      renotify: Boolean(data.tag),
      icon: GOALPOST.icon,
      badge: GOALPOST.badge,
      data: { url: data.url || "/", action_url: data.action_url || "", actions: data.actions || [] },
      actions: actions,
    })
  );
});

self.addEventListener("notificationclick", (event) => {
  const notification = event.notification;
  const data = notification.data || {};
  notification.close();
  const chosen = event.action ? (data.actions || []).find((a) => a.action === event.action) : null;
  if (chosen && chosen.token && data.action_url) {
    event.waitUntil(answerFromNotification(notification, data, chosen));
  } else {
    event.waitUntil(openPage(data.url || "/"));
  }
});

const DONE_TITLES = { approve: "Approved", reject: "Rejected" };

async function answerFromNotification(notification, data, chosen) {
  let title;
  let body;
  try {
    const response = await fetch(data.action_url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: chosen.token }),
    });
    const result = await response.json().catch(() => ({}));
    if (response.ok) {
      title = DONE_TITLES[chosen.action] || `${chosen.title}: done`;
      body = result.settled === false ? "Your approval counts; another approver must approve too." : notification.title;
    } else {
      title = "Not decided";
      body = result.message || "Open Goalpost to decide.";
    }
  } catch (error) {
    title = "Not decided: no connection";
    body = "Nothing was decided. Open Goalpost to decide when you are back online.";
  }
  await self.registration.showNotification(title, {
    body,
    tag: notification.tag || undefined,
    icon: GOALPOST.icon,
    badge: GOALPOST.badge,
    data: { url: data.url || "/", actions: [] },
  });
}

async function openPage(url) {
  const target = new URL(url, self.location.origin).href;
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const same = windows.find((client) => client.url === target);
  if (same) return same.focus();
  if (windows.length) {
    try {
      const client = await windows[0].focus();
      return await client.navigate(target);
    } catch (error) {
      // An uncontrolled window cannot be navigated from here: open a new one instead.
    }
  }
  return self.clients.openWindow(target);
}
