/*!
 * notifier opt-in widget. Embed with one tag where the box should appear:
 *   <script src="https://notifier.example/widget.js" data-topic="israel" async></script>
 * Options (data-*): topic (required), topic-name, target (CSS selector to render into),
 * strings (JSON of texts to replace, for translation), service-worker, service-worker-scope,
 * theme ("auto" follows the reader's dark mode). See docs/widget.md.
 */
(function () {
  "use strict";

  // The server replaces this string with the deployment's public config (notifier/http/widget.py):
  // {firebase: {apiKey, projectId, messagingSenderId, appId} | null, vapidKey, firebaseModule,
  //  standIn: {emulator, module} | null}. standIn is set only when the server sends to its own
  // FCM emulator (no credentials, as under `make run`): the browser then gets pushes from the
  // emulator's web push stand-in instead of Firebase. The server decides; the widget never guesses.
  const CONFIG = "__NOTIFIER_CONFIG__";

  /** English texts; `{topic}` is the topic's name. Translate with data-strings='{"...": "..."}'. */
  const DEFAULT_TEXT = {
    title: "Never miss breaking news on {topic}",
    pitch: "Get a notification when a major story breaks. You can turn it off at any time.",
    subscribe: "Get notifications",
    asking: "Waiting for your permission…",
    settingUp: "Turning on notifications…",
    checking: "Checking your notification settings…",
    subscribedTitle: "You're subscribed",
    subscribedText: "We'll notify you when news on {topic} breaks.",
    subscribedAnnouncement: "You're subscribed to breaking news on {topic}.",
    manage: "Manage topics",
    doneManaging: "Done",
    topicsLegend: "Notify me about",
    topicOn: "Notifications on for {topic}.",
    topicOff: "Notifications off for {topic}.",
    unsubscribe: "Turn off notifications",
    unsubscribed: "Notifications are off. We won't send you any more.",
    dismissed: "No problem. You can turn on notifications whenever you like.",
    deniedTitle: "Notifications are blocked",
    deniedText:
      "To get breaking news alerts, allow notifications for this site in your browser's site " +
      "settings (usually behind the icon beside the address bar), then reload this page.",
    unsupportedTitle: "Notifications aren't available here",
    unconfiguredText: "This site doesn't offer notifications yet.",
    unsupportedText:
      "This browser can't show notifications from this site. On iPhone and iPad, add this " +
      "site to your Home Screen first; elsewhere, an up-to-date browser can.",
    failed: "Something went wrong and nothing was changed. Please try again.",
  };

  const TOKEN_KEY = "notifier:web-push-token";
  // Icons: a bell, and a bell struck through for "blocked" and "not available".
  const BELL =
    "M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6v-5a7 7 0 0 0-5.5-6.84V3.5a1.5 " +
    "1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2z";
  const BELL_OFF =
    "M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6.2V11a7 7 0 0 0-5.5-6.84V3.5a1.5 " +
    "1.5 0 0 0-3 0v.66c-.8.18-1.55.5-2.22.93L19 15.8zM3.4 2.6 2 4l4.1 4.1A7 7 0 0 0 5 11v5l-2 " +
    "2v1h14.9l2.7 2.7 1.4-1.4z";

  function mount(script) {
    const topic = script.dataset.topic;
    if (!topic) {
      console.warn('notifier widget: add data-topic="<topic slug>" to its script tag');
      return;
    }
    const api = new URL(".", script.src);
    const text = Object.assign({}, DEFAULT_TEXT, parseJson(script.dataset.strings));
    const uid = `notifier-optin-${Math.random().toString(36).slice(2, 10)}`;
    const swUrl = new URL(
      script.dataset.serviceWorker ||
        (api.origin === location.origin ? "firebase-messaging-sw.js" : "/firebase-messaging-sw.js"),
      api.origin === location.origin ? api : location.href,
    );
    // A scope of its own, so the push worker never takes over pages from the site's own worker.
    const swScope = new URL(script.dataset.serviceWorkerScope || "notifier-push/", swUrl);

    let topicName = script.dataset.topicName || topic;
    let catalogue = null;
    let mine = new Set();
    let managing = false;
    let pushClient = null;
    let announcing = 0;

    const body = h("div", { class: "notifier-optin__body" });
    const status = h("p", {
      class: "notifier-optin__status",
      role: "status",
      "aria-live": "polite",
    });
    const root = h(
      "section",
      // Hidden until the first state is known, so readers never see an empty or flickering box.
      {
        class: "notifier-optin",
        "aria-labelledby": `${uid}-title`,
        "data-theme": script.dataset.theme,
        hidden: true,
      },
      body,
      status,
    );

    // ---- views: one per state, rebuilt on every change ----------------------------------------

    const fill = (key) => text[key].replaceAll("{topic}", topicName);
    const title = (key, icon = BELL) =>
      h(
        "h2",
        { class: "notifier-optin__title", id: `${uid}-title`, tabindex: "-1" },
        svgIcon(icon),
        fill(key),
      );
    const para = (key) => h("p", { class: "notifier-optin__text" }, fill(key));
    const actions = (...buttons) => h("div", { class: "notifier-optin__actions" }, ...buttons);
    const button = (label, onclick, extra) =>
      h(
        "button",
        Object.assign({ type: "button", class: "notifier-optin__button", onclick }, extra),
        label,
      );
    const secondary = (label, onclick, extra) =>
      button(
        label,
        onclick,
        Object.assign({ class: "notifier-optin__button notifier-optin__button--secondary" }, extra),
      );

    const VIEWS = {
      unsupported: () => [
        title("unsupportedTitle", BELL_OFF),
        para(CONFIG.firebase || CONFIG.standIn ? "unsupportedText" : "unconfiguredText"),
      ],
      checking: () => [title("title"), para("pitch")],
      idle: () => [title("title"), para("pitch"), actions(button(text.subscribe, turnOn))],
      // aria-disabled rather than disabled: the button keeps keyboard focus while we wait.
      asking: () => [
        title("title"),
        para("pitch"),
        actions(button(text.subscribe, null, { "aria-disabled": "true" })),
      ],
      subscribed: () => [
        title("subscribedTitle"),
        para("subscribedText"),
        actions(
          secondary(managing ? text.doneManaging : text.manage, toggleTopics, {
            "aria-expanded": String(managing),
            "aria-controls": `${uid}-topics`,
          }),
          secondary(text.unsubscribe, turnOff),
        ),
        managing ? topicChoices() : null,
      ],
      denied: () => [title("deniedTitle", BELL_OFF), para("deniedText")],
    };

    function topicChoices() {
      return h(
        "fieldset",
        { class: "notifier-optin__topics", id: `${uid}-topics` },
        h("legend", {}, text.topicsLegend),
        ...(catalogue || []).map((t) =>
          h(
            "label",
            { class: "notifier-optin__topic" },
            h("input", {
              type: "checkbox",
              value: t.slug,
              checked: mine.has(t.slug),
              onchange: toggleTopic,
            }),
            t.name,
          ),
        ),
      );
    }

    /** Show a state; if the reader was using the widget, keep their focus inside it. */
    function render(state) {
      const hadFocus = root.contains(document.activeElement);
      root.hidden = false;
      root.dataset.state = state;
      root.setAttribute("aria-busy", String(state === "checking" || state === "asking"));
      body.replaceChildren(...VIEWS[state]().filter(Boolean));
      if (hadFocus) (body.querySelector("button, input") || body.querySelector("h2")).focus();
    }

    /**
     * Tell screen readers what changed. A `quiet` message repeats what the box now shows, so it
     * is announced without being displayed a second time; the others (errors, confirmations of
     * an action that leaves the box as it was) are shown too.
     */
    function announce(message, quiet = false) {
      // Emptied first so that the same message twice is announced twice.
      clearTimeout(announcing);
      status.textContent = "";
      status.classList.toggle("notifier-optin__status--quiet", quiet);
      if (message) announcing = setTimeout(() => (status.textContent = message), 50);
    }

    // ---- the reader's actions --------------------------------------------------------------------

    async function turnOn() {
      if (root.dataset.state === "asking") return;
      const alreadyGranted = Notification.permission === "granted";
      render("asking");
      if (!alreadyGranted) announce(text.asking);
      // The browser's prompt appears here, after the reader's click, and never on page load.
      const permission = await Notification.requestPermission().catch(
        () => Notification.permission,
      );
      if (permission === "denied") {
        render("denied");
        return announce(text.deniedTitle, true);
      }
      if (permission !== "granted") {
        render("idle");
        return announce(text.dismissed);
      }
      announce(text.settingUp);
      try {
        const token = await currentToken();
        const previous = storage.get();
        if (previous && previous !== token)
          await call("PUT", "v1/subscriptions/token", rotation(previous, token));
        await subscribe(token, [topic]);
        storage.set(token);
        mine.add(topic);
        render("subscribed");
        announce(fill("subscribedAnnouncement"), true);
      } catch (error) {
        console.warn("notifier widget: could not subscribe", error);
        render("idle");
        announce(text.failed);
      }
    }

    async function turnOff() {
      const token = storage.get();
      try {
        if (token) await call("DELETE", "v1/subscriptions", { token });
      } catch (error) {
        console.warn("notifier widget: could not unsubscribe", error);
        return announce(text.failed);
      }
      storage.clear();
      mine = new Set();
      managing = false;
      render("idle");
      announce(text.unsubscribed);
      // Also drop the push subscription itself; the server already forgot the token.
      push()
        .then((client) => client.deleteToken())
        .catch((error) => console.warn("notifier widget: could not delete the push token", error));
    }

    async function toggleTopics() {
      if (!managing) {
        try {
          const [profile] = await Promise.all([lookup(storage.get()), loadCatalogue()]);
          mine = new Set(profile ? profile.topics : []);
        } catch (error) {
          console.warn("notifier widget: could not load topics", error);
          return announce(text.failed);
        }
      }
      managing = !managing;
      render(managing || mine.has(topic) ? "subscribed" : "idle");
      if (!managing && !mine.has(topic)) announce(fill("topicOff"));
    }

    async function toggleTopic(event) {
      const box = event.target;
      const name = box.parentElement.textContent;
      const token = storage.get();
      try {
        if (box.checked) await subscribe(token, [box.value]);
        else await call("DELETE", "v1/subscriptions", { token, topics: [box.value] });
        if (box.checked) mine.add(box.value);
        else mine.delete(box.value);
        announce(text[box.checked ? "topicOn" : "topicOff"].replaceAll("{topic}", name));
      } catch (error) {
        console.warn("notifier widget: could not change topics", error);
        box.checked = !box.checked;
        announce(text.failed);
      }
    }

    // ---- on every page view: show where the reader stands, report a rotated token -----------------

    async function start() {
      try {
        await loadCatalogue();
        const known = catalogue.find((t) => t.slug === topic);
        if (!known) {
          console.warn(`notifier widget: no topic "${topic}" in ${new URL("v1/topics", api)}`);
          return root.remove();
        }
        topicName = script.dataset.topicName || known.name;
      } catch (error) {
        console.warn("notifier widget: could not load the topic catalogue", error);
      }
      if (!CONFIG.firebase && !CONFIG.standIn) {
        console.warn("notifier widget: web push is not configured on the server (docs/widget.md)");
      }
      if (!supported()) return render("unsupported");
      const token = storage.get();
      const permission = Notification.permission;
      if (token && permission !== "granted") forget(token);
      if (permission === "denied") return render("denied");
      if (!token || permission !== "granted") return render("idle");
      render("checking");
      announce(text.checking);
      try {
        // Firebase hands out a new token when the browser's push subscription changed; the
        // server must hear about it or the reader silently stops getting alerts.
        const fresh = await currentToken();
        const profile =
          fresh === token
            ? await lookup(token)
            : await call("PUT", "v1/subscriptions/token", rotation(token, fresh));
        if (!profile) storage.clear();
        else storage.set(fresh);
        mine = new Set(profile ? profile.topics : []);
        render(mine.has(topic) ? "subscribed" : "idle");
        announce("");
      } catch (error) {
        console.warn("notifier widget: could not check the subscription", error);
        render("idle");
        announce("");
      }
    }

    // ---- Firebase, the API, the browser ------------------------------------------------------------

    function supported() {
      return Boolean(
        (CONFIG.firebase || CONFIG.standIn) &&
        window.isSecureContext &&
        "serviceWorker" in navigator &&
        // The stand-in hands pushes to the worker itself; it needs no browser push service.
        (CONFIG.standIn || "PushManager" in window) &&
        "Notification" in window,
      );
    }

    /**
     * The push client, `{getToken, deleteToken}`: Firebase messaging in production, the FCM
     * emulator's stand-in locally (CONFIG.standIn). Loaded on first need, so that a page view
     * costs one small script.
     */
    function push() {
      if (!pushClient) {
        pushClient = CONFIG.standIn ? standInClient() : firebaseClient();
        pushClient.catch(() => (pushClient = null));
      }
      return pushClient;
    }

    async function firebaseClient() {
      const sdk = await import(new URL(CONFIG.firebaseModule, api).href);
      const registration = await activeWorker();
      // A named app: the site may run its own default Firebase app on the same page.
      const app = sdk.initializeApp(CONFIG.firebase, "notifier-widget");
      const messaging = sdk.getMessaging(app);
      return {
        getToken: () =>
          sdk.getToken(messaging, {
            vapidKey: CONFIG.vapidKey,
            serviceWorkerRegistration: registration,
          }),
        deleteToken: () => sdk.deleteToken(messaging),
      };
    }

    async function standInClient() {
      const module = await import(new URL(CONFIG.standIn.module, api).href);
      const registration = await activeWorker();
      return module.createStandIn({
        emulator: CONFIG.standIn.emulator,
        registration,
        // The emulator was restarted while this page was open: keep the reader's topics.
        onNewToken: async (oldToken, newToken) => {
          if (storage.get() !== oldToken) return;
          const profile = await call("PUT", "v1/subscriptions/token", rotation(oldToken, newToken));
          if (profile) storage.set(newToken);
        },
      });
    }

    async function currentToken() {
      return (await push()).getToken();
    }

    async function activeWorker() {
      const registration = await navigator.serviceWorker.register(swUrl.href, {
        scope: swScope.href,
      });
      const worker = registration.installing || registration.waiting;
      if (registration.active || !worker) return registration;
      await new Promise((resolve, reject) =>
        worker.addEventListener("statechange", () => {
          if (worker.state === "activated") resolve();
          if (worker.state === "redundant")
            reject(new Error("the push service worker failed to install"));
        }),
      );
      return registration;
    }

    async function loadCatalogue() {
      catalogue = catalogue || (await call("GET", "v1/topics")).topics;
      return catalogue;
    }

    async function subscribe(token, topics) {
      const request = { token, platform: "web", topics };
      try {
        return await call("POST", "v1/subscriptions", Object.assign({}, request, preferences()));
      } catch (error) {
        // A locale or time zone the server does not know must not cost the reader their alerts.
        if (error.status === 422) return call("POST", "v1/subscriptions", request);
        throw error;
      }
    }

    const lookup = (token) => (token ? call("POST", "v1/subscriptions/lookup", { token }) : null);
    const rotation = (oldToken, newToken) => ({ old_token: oldToken, new_token: newToken });

    /** A token this browser can no longer receive on (permission withdrawn): let the server forget it. */
    function forget(token) {
      storage.clear();
      call("DELETE", "v1/subscriptions", { token }).catch(() => {});
      // Locally the emulator should forget the browser too; in production the push service
      // drops the subscription itself when permission is withdrawn.
      if (CONFIG.standIn)
        push()
          .then((client) => client.deleteToken())
          .catch(() => {});
    }

    /** JSON from the API; null for 404; throws (with .status) for anything else that is not OK. */
    async function call(method, path, payload) {
      const response = await fetch(new URL(path, api), {
        method,
        credentials: "omit",
        headers: payload ? { "Content-Type": "application/json" } : {},
        body: payload ? JSON.stringify(payload) : undefined,
      });
      if (response.status === 404) return null;
      if (!response.ok)
        throw Object.assign(new Error(`${method} ${path}: ${response.status}`), {
          status: response.status,
        });
      return response.status === 204 ? {} : response.json();
    }

    loadStylesheet(api);
    place(root, script);
    start();
  }

  // ---- helpers shared by every widget on the page ------------------------------------------------

  const storage = {
    get: () => attempt(() => localStorage.getItem(TOKEN_KEY)),
    set: (token) => attempt(() => localStorage.setItem(TOKEN_KEY, token)),
    clear: () => attempt(() => localStorage.removeItem(TOKEN_KEY)),
  };

  function attempt(fn) {
    try {
      return fn();
    } catch (_error) {
      return null; // storage blocked (private mode, site settings): behave as a first visit
    }
  }

  function preferences() {
    const prefs = {};
    const locale = navigator.language;
    if (/^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$/.test(locale || "") && locale.length <= 35)
      prefs.locale = locale;
    const zone = attempt(() => Intl.DateTimeFormat().resolvedOptions().timeZone);
    if (zone) prefs.timezone = zone;
    return prefs;
  }

  function parseJson(value) {
    return value ? attempt(() => JSON.parse(value)) || {} : {};
  }

  /** The stylesheet goes first in <head>, so every rule of the site's own comes later and wins. */
  function loadStylesheet(api) {
    const href = new URL("widget.css", api).href;
    if (document.querySelector(`link[href="${href}"]`)) return;
    const link = h("link", { rel: "stylesheet", href });
    document.head.prepend(link);
  }

  function place(root, script) {
    const selector = script.dataset.target;
    const into = () => (selector && document.querySelector(selector)) || null;
    if (!selector || into()) return into() ? into().append(root) : script.after(root);
    document.addEventListener("DOMContentLoaded", () =>
      into() ? into().append(root) : script.after(root),
    );
  }

  function svgIcon(d) {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "notifier-optin__icon");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", d);
    svg.append(path);
    return svg;
  }

  /** A DOM element; text children become text nodes, so nothing is ever parsed as HTML. */
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value == null || value === false) continue;
      if (key === "class") el.className = value;
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : value);
    }
    el.append(...children.filter((child) => child != null));
    return el;
  }
  const currentScript = document.currentScript;
  if (currentScript && CONFIG && typeof CONFIG === "object") mount(currentScript);
})();
