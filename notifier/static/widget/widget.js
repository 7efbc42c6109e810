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

  /**
   * The widget's languages and texts, inlined by the server from static/widget/strings.json,
   * the one list of them (/demo and the server's checks read the same file):
   * {en: {dir: "ltr", texts: {...}}, he: {dir: "rtl", texts: {...}}, ...}. In the texts `{topic}`
   * is the topic's name, `{zone}` the reader's time zone, `{cap}` the site's daily cap. English
   * is complete and the fallback for any text a language lacks; data-strings replaces any of them.
   */
  const LANGUAGES = "__NOTIFIER_LANGUAGES__";

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
    // The page's language, as the site states it; the reader's own language only when it does not.
    const requested = [script.dataset.locale, document.documentElement.lang].find(validLocale);
    const language = textLanguage(requested);
    const text = Object.assign(
      {},
      LANGUAGES.en.texts,
      LANGUAGES[language].texts,
      parseJson(script.dataset.strings),
    );
    const locale = requested || (validLocale(navigator.language) ? navigator.language : null);
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
    // The reader's stored settings (lookup), shown and edited in the manage view.
    let settings = null;

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
        lang: language,
        dir: LANGUAGES[language].dir === "rtl" ? "rtl" : "ltr",
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
        managing ? settingsForm() : null,
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

    /**
     * Quiet hours, a daily cap and whether urgent alerts pass both, saved together. The form
     * checks what it can (a cap of 1-100, a whole window) before sending, and the server's answer
     * decides the rest; an error is shown beside the form and announced, and the form stays as
     * the reader left it.
     */
    function settingsForm() {
      const quiet = (settings && settings.quiet_hours) || null;
      const cap = settings && settings.max_per_day != null ? String(settings.max_per_day) : "";
      // The site's own cap applies while the reader sets none (lookup's effective_max_per_day).
      const siteCap =
        settings && settings.max_per_day == null && settings.effective_max_per_day != null
          ? String(settings.effective_max_per_day)
          : null;
      const urgent = !settings || settings.urgent_overrides !== false;
      const id = (name) => `${uid}-${name}`;
      const field = (label, input, ...after) =>
        h(
          "div",
          { class: "notifier-optin__field" },
          h("label", { for: input.id }, label),
          input,
          ...after,
        );
      const timeInput = (name, value) =>
        h("input", { type: "time", id: id(name), name, value, required: true });
      const modeChoice = (value, label) =>
        h(
          "label",
          { class: "notifier-optin__choice" },
          h("input", {
            type: "radio",
            name: "mode",
            value,
            checked: ((quiet && quiet.mode) || "silent") === value,
          }),
          label,
        );
      const enabled = h("input", {
        type: "checkbox",
        id: id("quiet"),
        name: "quiet",
        checked: Boolean(quiet),
        onchange: () => (window_.disabled = !enabled.checked),
      });
      const window_ = h(
        "fieldset",
        { class: "notifier-optin__window", disabled: !quiet },
        h("legend", { class: "notifier-optin__hidden-legend" }, text.quietHours),
        field(text.quietStart, timeInput("start", quiet ? quiet.start : "22:00")),
        field(text.quietEnd, timeInput("end", quiet ? quiet.end : "07:00")),
        h(
          "fieldset",
          { class: "notifier-optin__modes" },
          h("legend", {}, text.quietMode),
          modeChoice("silent", text.quietSilent),
          modeChoice("skip", text.quietSkip),
        ),
        h(
          "p",
          { class: "notifier-optin__hint" },
          text.quietHint.replaceAll("{zone}", timeZone() || "UTC"),
        ),
      );
      const error = h("p", { class: "notifier-optin__error", id: id("error"), hidden: true });
      return h(
        "form",
        { class: "notifier-optin__settings", novalidate: true, onsubmit: saveSettings },
        h(
          "fieldset",
          {},
          h("legend", {}, text.settingsLegend),
          h(
            "label",
            { class: "notifier-optin__choice" },
            enabled,
            text.quietHours,
          ),
          window_,
          field(
            text.dailyCap,
            h("input", {
              type: "number",
              id: id("cap"),
              name: "cap",
              min: "1",
              max: "100",
              step: "1",
              inputmode: "numeric",
              value: cap,
              placeholder: siteCap,
              "aria-describedby": `${id("cap-hint")} ${id("error")}`,
            }),
            h(
              "p",
              { class: "notifier-optin__hint", id: id("cap-hint") },
              siteCap ? text.dailyCapDefaultHint.replaceAll("{cap}", siteCap) : text.dailyCapHint,
            ),
          ),
          h(
            "label",
            { class: "notifier-optin__choice" },
            h("input", { type: "checkbox", id: id("urgent"), name: "urgent", checked: urgent }),
            text.urgentOverrides,
          ),
          error,
          actions(button(text.save, null, { type: "submit" })),
        ),
      );
    }

    /** What the form asks for, as the API takes it; an error key when a value cannot be sent. */
    function readSettings(form) {
      const values = form.elements;
      const capText = values.cap.value.trim();
      const cap = Number(capText);
      if (capText && !(Number.isInteger(cap) && cap >= 1 && cap <= 100))
        return { error: "capInvalid", field: values.cap };
      if (values.cap.validity.badInput) return { error: "capInvalid", field: values.cap };
      let quiet = null;
      if (values.quiet.checked) {
        if (!values.start.value || !values.end.value)
          return { error: "timeInvalid", field: values.start.value ? values.end : values.start };
        quiet = {
          start: values.start.value.slice(0, 5),
          end: values.end.value.slice(0, 5),
          mode: values.mode.value || "silent",
        };
      }
      return {
        quiet_hours: quiet,
        max_per_day: capText ? cap : null,
        urgent_overrides: values.urgent.checked,
      };
    }

    async function saveSettings(event) {
      event.preventDefault();
      const form = event.currentTarget;
      const error = form.querySelector(".notifier-optin__error");
      for (const input of form.querySelectorAll("[aria-invalid]"))
        input.removeAttribute("aria-invalid");
      const show = (key, field) => {
        error.textContent = text[key];
        error.hidden = false;
        if (field) {
          field.setAttribute("aria-invalid", "true");
          field.focus();
        }
        announce(text[key], true);
      };
      const wanted = readSettings(form);
      if (wanted.error) return show(wanted.error, wanted.field);
      try {
        const profile = await call("POST", "v1/subscriptions", {
          token: storage.get(),
          platform: "web",
          topics: mine.size ? [...mine] : [topic],
          timezone: timeZone(),
          quiet_hours: wanted.quiet_hours,
          max_per_day: wanted.max_per_day,
          urgent_overrides: wanted.urgent_overrides,
        });
        settings = Object.assign({}, settings, wanted, profile && profile.platform ? profile : {});
      } catch (err) {
        console.warn("notifier widget: could not save the settings", err);
        return show("failed");
      }
      error.hidden = true;
      error.textContent = "";
      announce(text.saved);
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
          settings = profile;
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
        const prefs = {};
        if (locale) prefs.locale = locale;
        if (timeZone()) prefs.timezone = timeZone();
        return await call("POST", "v1/subscriptions", Object.assign({}, request, prefs));
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

  /** The locale shape the API accepts (notifier/core/patterns.py; tests/test_patterns.py checks this copy). */
  function validLocale(locale) {
    return /^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$/.test(locale || "") && locale.length <= 35;
  }

  /** The widget's language for a locale, dropping subtags until one matches: fr-CA -> fr -> en. */
  function textLanguage(locale) {
    const parts = (locale || "").toLowerCase().split(/[-_]/);
    for (let n = parts.length; n > 0; n--) {
      const candidate = parts.slice(0, n).join("-");
      if (Object.hasOwn(LANGUAGES, candidate)) return candidate;
    }
    return "en";
  }

  /** The browser's IANA time zone: quiet hours are kept in the reader's own clock. */
  function timeZone() {
    return attempt(() => Intl.DateTimeFormat().resolvedOptions().timeZone) || null;
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
