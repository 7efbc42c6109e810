// The editors' console: alerts in their hold window (countdown, Cancel, Send now), the CMS's
// recent articles (to send one as breaking), recent alerts with their delivery, and the alert
// form with its previews. Refreshes itself every 2 s. Urgent alerts are marked in both lists;
// a recent alert's "By language" opens its per-language counts (GET /v1/alerts/{id} by_locale,
// fetched only while open, so the 2 s refresh stays two list calls otherwise), and, in a
// deployment of several apps, its per-app counts beside them (by_app, from the same call). Each
// recent alert shows its delivery percentiles (the list's `latency`) once FCM has accepted a device.

import { api, ApiError, describeError, serverNow } from "../common/api.js";
import {
  h,
  setText,
  syncChildren,
  progressBar,
  setProgress,
  count,
  percent,
  clock,
  timeOfDay,
} from "../common/dom.js";
import { hasLatency, percentiles, withinTwoMinutes } from "../common/latency.js";
import { gate, poll } from "../common/session.js";
import { renderArticles } from "./articles.js";
import { setupCompose } from "./compose.js";
import { languageName } from "./locales.js";

const REFRESH_MS = 2000;
const TICK_MS = 250; // the countdown text changes once a second; a finer tick keeps it on time
const CONFIRM_MS = 4000;

const $ = (id) => document.getElementById(id);
let stopPolling = null;
let ticker = null;
let signOut = () => {};

function say(text, kind = "") {
  const line = $("status");
  line.className = `message status-line ${kind}`;
  setText(line, text);
}

async function act(promise, success) {
  try {
    const alert = await promise;
    say(success(alert), "ok");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) signOut(describeError(error));
    else say(describeError(error), "error");
  }
  await refresh();
}

// ---- hold window -----------------------------------------------------------------------------

function holdItem(alert) {
  const cancel = h("button", { className: "danger", attrs: { type: "button" } }, "Cancel");
  const sendNow = h("button", { attrs: { type: "button" } }, "Send now");
  const item = h(
    "li",
    { className: "hold-item" },
    h(
      "div",
      { className: "hold-text" },
      h("span", { className: "urgent-flag", hidden: true }, "urgent"),
      h("div", { className: "headline" }),
      h("div", { className: "small hold-meta" }),
    ),
    h(
      "div",
      { className: "hold-clock" },
      h("span", { className: "countdown", attrs: { role: "timer" } }),
      h("span", { className: "small countdown-label" }, "until it sends"),
    ),
    h("div", { className: "hold-actions" }, cancel, sendNow),
  );
  cancel.addEventListener("click", () => {
    cancel.disabled = sendNow.disabled = true;
    const headline = item.querySelector(".headline").textContent;
    act(
      api(`/v1/alerts/${encodeURIComponent(item.dataset.key)}/cancel`, { method: "POST" }),
      (done) =>
        done.counts.sent > 0
          ? `Cancelled “${headline}”; ${count(done.counts.sent)} devices had already received it.`
          : `Cancelled “${headline}”. Nothing was sent.`,
    );
  });
  // Send now cannot be undone, so it asks for a second click instead of a modal dialog.
  sendNow.addEventListener("click", () => {
    if (sendNow.dataset.armed !== "yes") {
      sendNow.dataset.armed = "yes";
      sendNow.textContent = "Confirm send now";
      setTimeout(() => {
        sendNow.dataset.armed = "";
        sendNow.textContent = "Send now";
      }, CONFIRM_MS);
      return;
    }
    cancel.disabled = sendNow.disabled = true;
    const headline = item.querySelector(".headline").textContent;
    act(
      api(`/v1/alerts/${encodeURIComponent(item.dataset.key)}/send-now`, { method: "POST" }),
      () => `Sending “${headline}” now.`,
    );
  });
  return item;
}

/** "in en + fr, he · only fr": the alert's languages and edition, when it has more than one. */
function languagesNote(alert) {
  const extra = Object.keys(alert.translations || {});
  const parts = [];
  if (extra.length) parts.push(`in ${[alert.locale, ...extra].join(" + ")}`);
  if (alert.locales?.length) parts.push(`only ${alert.locales.join(", ")} readers`);
  return parts.map((part) => ` · ${part}`).join("");
}

/** Urgent alerts stand out in every list: a badge and a class the stylesheet colours. */
function markUrgency(node, alert) {
  const urgent = alert.urgency === "urgent";
  node.classList.toggle("urgent", urgent);
  node.querySelector(".urgent-flag").hidden = !urgent;
}

function updateHoldItem(item, alert) {
  markUrgency(item, alert);
  setText(item.querySelector(".headline"), alert.headline);
  setText(
    item.querySelector(".hold-meta"),
    `${alert.topics.join(", ")}${languagesNote(alert)} · sends at ${timeOfDay(alert.send_at)}`,
  );
  item.dataset.sendAt = String(Date.parse(alert.send_at));
  item
    .querySelector(".countdown")
    .setAttribute("aria-label", `Sends at ${timeOfDay(alert.send_at)}`);
}

function tickCountdowns() {
  for (const item of $("hold-list").children) {
    const remaining = (Number(item.dataset.sendAt) - serverNow()) / 1000;
    setText(item.querySelector(".countdown"), remaining > 0 ? clock(remaining) : "0:00");
    setText(
      item.querySelector(".countdown-label"),
      remaining > 0 ? "until it sends" : "due: sending…",
    );
    item.classList.toggle("due", remaining <= 0);
  }
}

function renderHold(alerts) {
  const waiting = [...alerts].sort((a, b) => Date.parse(a.send_at) - Date.parse(b.send_at));
  syncChildren($("hold-list"), waiting, (a) => a.id, holdItem, updateHoldItem);
  $("hold-empty").hidden = waiting.length > 0;
  tickCountdowns();
}

// ---- recent alerts ---------------------------------------------------------------------------

function recentRow(alert) {
  // Mid fan-out an editor can still stop the rest: batches not yet handed to FCM are cancelled.
  const stop = h("button", { className: "danger small-button", attrs: { type: "button" } }, "Stop");
  stop.hidden = true;
  const languages = h(
    "details",
    { className: "by-locale" },
    h("summary", { className: "small" }, "By language"),
    h("div", { className: "by-locale-body small" }),
  );
  const row = h(
    "tr",
    {},
    h(
      "td",
      {},
      h("span", { className: "urgent-flag", hidden: true }, "urgent"),
      h("div", { className: "headline" }),
      h("div", { className: "small meta" }),
    ),
    h("td", {}, h("span", { className: "badge" }), h("div", {}, stop)),
    h(
      "td",
      { className: "progress-col" },
      progressBar(`Delivery of ${alert.headline}`),
      h("div", { className: "small counts" }),
      h("div", { className: "small latency", hidden: true }),
      languages,
    ),
    h(
      "td",
      { className: "num" },
      h("div", { className: "opens" }),
      h("div", { className: "small open-rate" }),
    ),
  );
  stop.addEventListener("click", () => {
    stop.disabled = true;
    const headline = row.querySelector(".headline").textContent;
    act(
      api(`/v1/alerts/${encodeURIComponent(row.dataset.key)}/cancel`, { method: "POST" }),
      () => `Stopped “${headline}”. Devices already handed to FCM still get it; no more are sent.`,
    );
  });
  languages.addEventListener("toggle", () => {
    if (languages.open) loadByLocale(row);
  });
  return row;
}

const LANGUAGE_COLUMNS = [
  ["sent", "Sent"],
  ["silent", "Silent"],
  ["suppressed", "Held back"],
  ["failed", "Failed"],
  ["pruned", "Pruned"],
  ["cancelled", "Cancelled"],
  ["pending", "Pending"],
];

/** Fetch and show one alert's per-language counts (only while its "By language" is open). */
async function loadByLocale(row) {
  const body = row.querySelector(".by-locale-body");
  try {
    const alert = await api(`/v1/alerts/${encodeURIComponent(row.dataset.key)}`);
    const languages = Object.entries(alert.by_locale || {});
    if (!languages.length) {
      body.replaceChildren(h("p", { className: "empty" }, "No device has been reached yet."));
      return;
    }
    // Sent always; the other outcomes only when some language has one, so the table fits the row.
    const columns = LANGUAGE_COLUMNS.filter(
      ([key]) => key === "sent" || languages.some(([, c]) => c[key] > 0),
    );
    body.replaceChildren(
      h(
        "table",
        { className: "by-locale-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { attrs: { scope: "col" } }, "Language"),
            h("th", { className: "num", attrs: { scope: "col" } }, "Devices"),
            ...columns.map(([, label]) =>
              h("th", { className: "num", attrs: { scope: "col" } }, label),
            ),
          ),
        ),
        h(
          "tbody",
          {},
          ...languages.map(([language, c]) =>
            h(
              "tr",
              { dataset: { language } },
              h("th", { attrs: { scope: "row" } }, languageName(language)),
              h("td", { className: "num" }, count(c.audience)),
              ...columns.map(([key]) =>
                h("td", { className: "num", dataset: { count: key } }, count(c[key] || 0)),
              ),
            ),
          ),
        ),
      ),
    );
    const apps = Object.entries(alert.by_app || {});
    if (apps.length > 1) body.append(byAppTable(apps));
  } catch (error) {
    if (error instanceof ApiError && error.isAuth) signOut(describeError(error));
    else body.replaceChildren(h("p", { className: "message error" }, describeError(error)));
  }
}

/** One alert's counts per app (each its own Firebase project): one app's failures stand out. */
function byAppTable(apps) {
  const columns = LANGUAGE_COLUMNS.filter(
    ([key]) => key === "sent" || apps.some(([, c]) => c[key] > 0),
  );
  return h(
    "table",
    { className: "by-app-table" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { attrs: { scope: "col" } }, "App"),
        h("th", { className: "num", attrs: { scope: "col" } }, "Devices"),
        ...columns.map(([, label]) => h("th", { className: "num", attrs: { scope: "col" } }, label)),
      ),
    ),
    h(
      "tbody",
      {},
      ...apps.map(([app, c]) =>
        h(
          "tr",
          { dataset: { app } },
          h("th", { attrs: { scope: "row" } }, app),
          h("td", { className: "num" }, count(c.audience)),
          ...columns.map(([key]) =>
            h("td", { className: "num", dataset: { count: key } }, count(c[key] || 0)),
          ),
        ),
      ),
    ),
  );
}

function updateRecentRow(row, alert) {
  const c = alert.counts;
  const done = c.sent + c.failed + c.pruned + (c.suppressed || 0);
  markUrgency(row, alert);
  setText(row.querySelector(".headline"), alert.headline);
  setText(
    row.querySelector(".meta"),
    `${alert.topics.join(", ")}${languagesNote(alert)} · ${alert.source} · ${timeOfDay(alert.timings.created)}`,
  );
  if (row.querySelector(".by-locale").open) loadByLocale(row);
  const badge = row.querySelector(".badge");
  badge.className = `badge ${alert.status}`;
  setText(badge, alert.status);
  const stop = row.querySelector("button");
  stop.hidden = alert.status !== "sending";
  stop.setAttribute("aria-label", `Stop sending ${alert.headline}`);
  setProgress(row.querySelector("progress"), done, c.audience);
  const parts = [`${count(c.sent)} sent`, `${count(c.failed)} failed`, `${count(c.pruned)} pruned`];
  if (c.silent) parts.push(`${count(c.silent)} of them silently (quiet hours)`);
  if (c.cancelled) parts.push(`${count(c.cancelled)} cancelled`);
  if (c.suppressed) parts.push(`${count(c.suppressed)} held back by readers' settings`);
  if (c.pending) parts.push(`${count(c.pending)} pending`);
  setText(
    row.querySelector(".counts"),
    c.audience ? `${parts.join(" · ")} of ${count(c.audience)}` : notStarted(alert.status),
  );
  const latency = row.querySelector(".latency");
  latency.hidden = !hasLatency(alert.latency);
  if (hasLatency(alert.latency)) {
    // Each figure unbroken: the column is narrow, and "p90" alone on a line says nothing.
    const parts = [`Delivered in ${percentiles(alert.latency)}`, withinTwoMinutes(alert.latency)];
    const text = parts.join(" · ");
    if (latency.textContent !== text) {
      latency.replaceChildren(
        ...parts
          .flatMap((part) => part.split(" · "))
          .flatMap((part, i) => [i ? " · " : "", h("span", { className: "figure" }, part)]),
      );
    }
    latency.title = "From the end of the hold window to FCM accepting each device";
  }
  setText(row.querySelector(".opens"), count(alert.opens));
  setText(row.querySelector(".open-rate"), alert.open_rate ? percent(alert.open_rate, 1) : "");
}

/** What an alert with no audience recorded yet is doing (the planner has not counted devices). */
function notStarted(status) {
  if (status === "scheduled") return "Not sent yet: in its hold window or about to go.";
  if (status === "sending") return "Finding the audience…";
  if (status === "sent") return "No device follows these topics.";
  if (status === "cancelled" || status === "expired")
    return "Stopped before any device was reached.";
  return "No device received it.";
}

function renderRecent(alerts) {
  syncChildren($("recent-rows"), alerts, (a) => a.id, recentRow, updateRecentRow);
  $("recent-empty").hidden = alerts.length > 0;
}

// ---- recent articles -------------------------------------------------------------------------

let composer = null;

/** The articles panel: its own call, so a key that may not list articles loses only this panel. */
async function refreshArticles() {
  const message = $("articles-message");
  try {
    const { articles } = await api("/v1/articles?limit=20");
    renderArticles($("article-list"), $("articles-empty"), articles, (article) =>
      composer.startFromArticle(article),
    );
    message.hidden = true;
  } catch (error) {
    if (error instanceof ApiError && error.status === 403) {
      // An ops key may watch alerts but not flag stories; say so instead of signing out.
      $("article-list").replaceChildren();
      $("articles-empty").hidden = true;
      message.className = "empty";
      setText(message, "Articles are listed for editor keys only.");
      message.hidden = false;
      return;
    }
    throw error;
  }
}

// ---- the loop --------------------------------------------------------------------------------

async function refresh() {
  try {
    const [held, recent] = await Promise.all([
      api("/v1/alerts?status=scheduled&limit=50"),
      api("/v1/alerts?limit=20"),
      refreshArticles(),
    ]);
    renderHold(held.alerts);
    renderRecent(recent.alerts);
    setText($("updated"), `Updated ${new Date().toLocaleTimeString()}`);
    if ($("status").classList.contains("stale")) say("");
  } catch (error) {
    if (error instanceof ApiError && error.isAuth) {
      signOut(describeError(error));
      return;
    }
    say(describeError(error), "error stale");
  }
}

signOut = gate({
  // An ops key may look (listing alerts needs editor or ops); Cancel and Send then answer 403.
  check: () => api("/v1/alerts?limit=1"),
  start: () => {
    stopPolling = poll(refresh, REFRESH_MS);
    ticker = setInterval(tickCountdowns, TICK_MS);
  },
  stop: () => {
    if (stopPolling) stopPolling();
    clearInterval(ticker);
  },
});

composer = setupCompose({
  onCreated: refresh,
  onAuthError: (error) => signOut(describeError(error)),
});
