/*
 * notifier's push service worker: shows breaking-news alerts sent through FCM and counts clicks.
 *
 * Served at /firebase-messaging-sw.js. A site on another origin hosts a one-line worker of its
 * own, `importScripts("https://<notifier>/firebase-messaging-sw.js")`, because a browser only
 * runs service workers from the page's own origin; the API address below is inlined by the
 * server for that reason (self.location would be the site's).
 *
 * Plain push handling instead of the Firebase SW SDK: the payload FCM delivers to web push is
 * small and documented, and handling it here keeps the notification (tag, image, click target)
 * entirely under our control. No install/activate handlers: a site importing this into its own
 * worker keeps that worker's update behaviour, and the widget's own registration controls no
 * pages (it has a scope of its own), so a new version activates without waiting anyway.
 */
"use strict";

const NOTIFIER_API = "__NOTIFIER_API__";
// True only when notifier sends to its own FCM emulator (no credentials): pushes then arrive from
// the emulator's web push stand-in through a page of the site (widget/standin.js), not from the
// browser's push service. Inlined by the server; always false in production.
const STAND_IN = "__NOTIFIER_STAND_IN__";

/**
 * The alert in an FCM web push payload, or null for a push that is not one of ours.
 * FCM delivers `{notification: {title, body, image, tag}, data: {...}, fcmOptions: {link}}`.
 */
function readAlert(data) {
  let payload;
  try {
    payload = data ? data.json() : null;
  } catch (_error) {
    return null;
  }
  if (!payload || typeof payload !== "object") return null;
  const notification = payload.notification || {};
  const extra = payload.data || {};
  const title = notification.title;
  if (typeof title !== "string" || !title) return null;
  const alertId = extra.alert_id || notification.tag || "";
  return {
    title,
    body: notification.body || "",
    image: notification.image || undefined,
    icon: notification.icon || undefined,
    // The alert id: a second delivery of the same alert replaces the first instead of stacking.
    tag: notification.tag || alertId || undefined,
    alertId,
    url: extra.url || (payload.fcmOptions && payload.fcmOptions.link) || "",
  };
}

function showAlert(alert) {
  return self.registration.showNotification(alert.title, {
    body: alert.body,
    image: alert.image,
    icon: alert.icon,
    tag: alert.tag,
    // A duplicate that replaces the shown notification should not buzz the reader again.
    renotify: false,
    data: { alertId: alert.alertId, url: alert.url },
  });
}

self.addEventListener("push", (event) => {
  const alert = readAlert(event.data);
  if (!alert) return;
  event.waitUntil(showAlert(alert));
});

if (STAND_IN === true) {
  // Messages already shown, by the emulator's message name: two tabs of the site may both hand
  // over the same push (one normally streams, but a tab taking over can overlap for a moment).
  const handedOver = new Set();
  self.addEventListener("message", (event) => {
    const message = event.data;
    if (!message || message.type !== "notifier:stand-in-push" || typeof message.id !== "string")
      return;
    // Only pages of this worker's own origin can reach it; say so explicitly all the same.
    if (event.origin && event.origin !== self.location.origin) return;
    if (handedOver.has(message.id)) return;
    handedOver.add(message.id);
    const alert = readAlert({ json: () => message.push });
    if (alert) event.waitUntil(showAlert(alert));
  });
}

/**
 * Where a click goes: through /o/<alert> so the open is counted, else straight to the article.
 * `to` names the URL this notification carried (a translation's, in the reader's language); the
 * server lands the reader there only when it is one of the alert's own URLs.
 */
function clickTarget(data) {
  if (data && data.alertId) {
    const open = `${NOTIFIER_API}/o/${encodeURIComponent(data.alertId)}`;
    return data.url ? `${open}?to=${encodeURIComponent(data.url)}` : open;
  }
  const url = data && data.url ? new URL(data.url, self.location.href) : null;
  return url && (url.protocol === "https:" || url.protocol === "http:") ? url.href : null;
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = clickTarget(event.notification.data);
  if (target) event.waitUntil(self.clients.openWindow(target));
});
