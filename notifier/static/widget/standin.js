/*!
 * notifier's local web push stand-in: what the Firebase SDK and the browser's push service do in
 * production, done by notifier's FCM emulator on one machine (`make run`).
 *
 * Served (and referenced by the widget) only when the server sends to its emulator; see
 * docs/widget.md. The browser registers with the emulator and gets a token (a random secret that
 * only this browser and the emulator know); one page of the site at a time holds a stream open for
 * it (POST, so the token never appears in a URL), and every push that arrives is handed to the
 * widget's service worker, which shows it exactly as it shows a real push. Hence the limit: pushes
 * are delivered while a page of the site is open (the emulator keeps a few until one is).
 */

const TOKEN_KEY = "notifier:stand-in-token";
// One stream per browser: the tab holding this lock streams, the others wait to take over.
const STREAM_LOCK = "notifier:stand-in-stream";
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 30_000;

/**
 * The stand-in for `emulator` (the emulator's base URL), delivering to the service worker of
 * `registration`. Returns what the widget needs of a push client: `getToken` and `deleteToken`.
 * `onNewToken(oldToken, newToken)` is called when the emulator forgot this browser (it was
 * restarted) and a new token replaced the old one while a page was open, as a push service's
 * `pushsubscriptionchange` would.
 */
export function createStandIn({ emulator, registration, onNewToken }) {
  let listening = null;

  function post(name, body, signal) {
    return fetch(new URL(`emulator/webpush/${name}`, emulator.replace(/\/?$/, "/")), {
      method: "POST",
      credentials: "omit",
      cache: "no-store",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      signal,
    });
  }

  /** This browser's token: the one it had if the emulator still knows it, else a new one. */
  async function getToken() {
    const previous = storage.get();
    const response = await post("register", previous ? { token: previous } : {});
    if (!response.ok) throw new Error(`web push stand-in: register answered ${response.status}`);
    const { token } = await response.json();
    if (token !== previous) stop();
    storage.set(token);
    listen();
    return token;
  }

  /** Stop receiving and make the emulator forget the token. */
  async function deleteToken() {
    stop();
    const token = storage.get();
    storage.clear();
    if (token) await post("unregister", { token });
    return true;
  }

  function listen() {
    if (listening) return;
    const controller = new AbortController();
    listening = controller;
    const run = () => streamUntilStopped(controller.signal);
    const done = navigator.locks
      ? navigator.locks.request(STREAM_LOCK, { signal: controller.signal }, run)
      : run();
    done
      .catch(() => {}) // aborted while waiting for the lock: nothing to clean up
      .finally(() => {
        if (listening === controller) listening = null;
      });
  }

  function stop() {
    if (listening) listening.abort();
    listening = null;
  }

  async function streamUntilStopped(signal) {
    let wait = RETRY_MIN_MS;
    while (!signal.aborted) {
      const token = storage.get();
      if (!token) return;
      try {
        const response = await post("stream", { token }, signal);
        if (response.status === 404) {
          // The emulator restarted and forgot this browser: register again and let the widget
          // move the subscription to the new token, then stream for that one.
          const fresh = await post("register", {}, signal);
          if (!fresh.ok) throw new Error(`register: ${fresh.status}`);
          const { token: renewed } = await fresh.json();
          storage.set(renewed);
          if (onNewToken) await onNewToken(token, renewed);
          continue;
        }
        if (!response.ok || !response.body) throw new Error(`stream: ${response.status}`);
        wait = RETRY_MIN_MS;
        await readEvents(response.body, handOver);
      } catch (error) {
        if (signal.aborted) return;
        console.warn("notifier widget: web push stand-in stream interrupted", error);
      }
      await sleep(wait, signal);
      wait = Math.min(wait * 2, RETRY_MAX_MS);
    }
  }

  /** The service worker shows it, as it shows a push from the browser's push service. */
  function handOver(event) {
    const worker = registration.active || registration.waiting || registration.installing;
    if (worker) worker.postMessage({ type: "notifier:stand-in-push", id: event.id, push: event.push });
  }

  return { getToken, deleteToken };
}

/** Calls `onPush` with each `event: push` of a Server-Sent Events body, until it ends. */
async function readEvents(body, onPush) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replaceAll("\r\n", "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let type = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) type = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (type !== "push" || !data.length) continue;
      try {
        onPush(JSON.parse(data.join("\n")));
      } catch (error) {
        console.warn("notifier widget: unreadable push from the stand-in", error);
      }
    }
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });
}

const storage = {
  get: () => attempt(() => localStorage.getItem(TOKEN_KEY)),
  set: (token) => attempt(() => localStorage.setItem(TOKEN_KEY, token)),
  clear: () => attempt(() => localStorage.removeItem(TOKEN_KEY)),
};

function attempt(fn) {
  try {
    return fn();
  } catch (_error) {
    return null;
  }
}
