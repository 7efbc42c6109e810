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

self.addEventListener("push", (event) => {
  const alert = readAlert(event.data);
  if (!alert) return;
  event.waitUntil(
    self.registration.showNotification(alert.title, {
      body: alert.body,
      image: alert.image,
      icon: alert.icon,
      tag: alert.tag,
      // A duplicate that replaces the shown notification should not buzz the reader again.
      renotify: false,
      data: { alertId: alert.alertId, url: alert.url },
    }),
  );
});

/** Where a click goes: through /o/<alert> so the open is counted, else straight to the article. */
function clickTarget(data) {
  if (data && data.alertId) return `${NOTIFIER_API}/o/${encodeURIComponent(data.alertId)}`;
  const url = data && data.url ? new URL(data.url, self.location.href) : null;
  return url && (url.protocol === "https:" || url.protocol === "http:") ? url.href : null;
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = clickTarget(event.notification.data);
  if (target) event.waitUntil(self.clients.openWindow(target));
});
