// The ops dashboard: what the pipeline is doing now (queues, workers, alerts in flight, sweeper),
// over the last hour (throughput, error rate) and what finished last (recent alerts, their opens
// and delivery percentiles). Polls GET /v1/ops/queues and /v1/ops/throughput every 2 s and says
// when its numbers are stale.

import { api, ApiError, describeError } from "../common/api.js";
import {
  h,
  setText,
  syncChildren,
  progressBar,
  setProgress,
  count,
  percent,
  age,
} from "../common/dom.js";
import { hasLatency, percentiles, withinTwoMinutes } from "../common/latency.js";
import { gate, poll } from "../common/session.js";
import { latencyStrip, rateLine, stackedBars } from "./charts.js";

const REFRESH_MS = 2000;
// Work waiting longer than this means workers are short or stuck; the sweeper runs every few
// seconds by default, so a minute without a run means beat is down (reliability fault 9).
const PENDING_WARN_SECONDS = 30;
const SWEEPER_STALE_SECONDS = 60;
const QUEUE_WARN_SECONDS = 30;

const $ = (id) => document.getElementById(id);
let stopPolling = null;
let signOut = () => {};

function warn(id, on) {
  $(id).classList.toggle("warn", Boolean(on));
}

function renderHealth(view) {
  const pending = view.oldest_pending_age_seconds;
  setText($("oldest-pending"), pending > 0 ? age(pending) : "none");
  setText(
    $("oldest-pending-note"),
    pending > PENDING_WARN_SECONDS
      ? "Work is waiting: are workers running?"
      : "Due work is being picked up.",
  );
  warn("tile-pending", pending > PENDING_WARN_SECONDS);

  const sweeper = view.sweeper;
  const stale = sweeper.age_seconds === null || sweeper.age_seconds > SWEEPER_STALE_SECONDS;
  setText($("sweeper-age"), sweeper.last_run ? `${age(sweeper.age_seconds)} ago` : "never ran");
  setText(
    $("sweeper-note"),
    stale
      ? "Stale: is `notifier beat` running?"
      : `Last run ${new Date(sweeper.last_run).toLocaleTimeString()}`,
  );
  warn("tile-sweeper", stale);

  const broker = view.broker;
  setText($("broker-state"), broker.error ? "not answering" : "answering");
  const unacked = broker.unacked === null ? "" : ` · ${count(broker.unacked)} unacked`;
  setText(
    $("broker-note"),
    broker.error ? `${broker.transport}: ${broker.error}` : `${broker.transport}${unacked}`,
  );
  warn("tile-broker", broker.error);

  const statuses = Object.entries(view.alerts_by_status).sort(([a], [b]) => a.localeCompare(b));
  $("statuses").replaceChildren(
    ...(statuses.length
      ? statuses.map(([status, n]) =>
          h("span", { className: `badge ${status}` }, `${status} ${count(n)}`),
        )
      : [h("span", { className: "empty" }, "no alerts yet")]),
  );
}

function renderCharts(minutes) {
  const total = (m) => m.sent + m.failed + m.pruned;
  const last = minutes[minutes.length - 1] || { sent: 0 };
  const peak = Math.max(0, ...minutes.map((m) => m.sent));
  stackedBars(
    $("throughput-chart"),
    minutes,
    [
      { key: "sent", label: "sent" },
      { key: "pruned", label: "pruned" },
      { key: "failed", label: "failed" },
    ],
    {
      summary: `Sent per minute over the last hour: peak ${count(peak)}, this minute ${count(last.sent)}.`,
      unit: "this minute",
    },
  );
  const rates = minutes.map((m) => ({
    minute: m.minute,
    total: total(m),
    value: total(m) ? (m.failed + m.pruned) / total(m) : null,
  }));
  const all = minutes.reduce((sum, m) => sum + total(m), 0);
  const bad = minutes.reduce((sum, m) => sum + m.failed + m.pruned, 0);
  rateLine($("error-chart"), rates, {
    summary: all
      ? `Error rate over the last hour: ${percent(bad / all, 1)} of ${count(all)} outcomes.`
      : "No sends in the last hour.",
  });
}

function flightRow(alert) {
  return h(
    "tr",
    {},
    h("td", {}, h("div", { className: "headline" }), h("div", { className: "small meta" })),
    h(
      "td",
      { className: "progress-col" },
      progressBar(`Progress of ${alert.headline}`),
      h("div", { className: "small done" }),
    ),
    h("td", { className: "num rate" }),
    h("td", { className: "num failed" }),
    h("td", { className: "num pruned" }),
    h("td", { className: "num suppressed" }),
    h("td", { className: "num pending" }),
  );
}

function updateFlightRow(row, alert) {
  const done = alert.sent + alert.failed + alert.pruned + (alert.suppressed || 0);
  setText(row.querySelector(".headline"), alert.headline);
  const started = (Date.now() - Date.parse(alert.send_at)) / 1000;
  setText(
    row.querySelector(".meta"),
    `${alert.planned ? "planned" : "planning…"} · due ${age(started)} ago`,
  );
  setProgress(row.querySelector("progress"), done, alert.audience);
  setText(
    row.querySelector(".done"),
    `${count(done)} of ${count(alert.audience)} (${percent(alert.progress)})`,
  );
  // The API reports 0 until it can tell a rate (no batch recorded yet): say "unknown", not "stalled".
  setText(
    row.querySelector(".rate"),
    alert.rate_per_second > 0 ? `${count(alert.rate_per_second)}/s` : "—",
  );
  setText(row.querySelector(".failed"), count(alert.failed));
  setText(row.querySelector(".pruned"), count(alert.pruned));
  setText(row.querySelector(".suppressed"), count(alert.suppressed || 0));
  setText(row.querySelector(".pending"), count(alert.pending));
}

function recentRow(alert) {
  return h(
    "tr",
    {},
    h(
      "td",
      {},
      h("div", { className: "headline" }),
      h("div", { className: "small meta" }, h("span", { className: "badge" }), " ", h("span")),
    ),
    h("td", { className: "num n-audience" }),
    h("td", { className: "num n-sent" }),
    h("td", { className: "num n-failed" }),
    h("td", { className: "num n-pruned" }),
    h(
      "td",
      { className: "num n-latency" },
      h("div", { className: "latency-text" }),
      h("div", { className: "latency-strip" }),
    ),
    h("td", { className: "num n-within" }),
    h("td", { className: "num n-opens" }),
    h("td", { className: "num n-open-rate" }),
  );
}

// Count cells are "n-<field>": a bare "sent" would also match the status badge's class.
function updateRecentRow(row, alert) {
  setText(row.querySelector(".headline"), alert.headline);
  const badge = row.querySelector(".badge");
  badge.className = `badge ${alert.status}`;
  setText(badge, alert.status);
  const finished = (Date.now() - Date.parse(alert.finished_at)) / 1000;
  // In a deployment of several apps: the audience per app ("en 3 · fr 2").
  const apps = Object.entries(alert.audience_by_app || {});
  const perApp = apps.length > 1 ? ` · ${apps.map(([app, n]) => `${app} ${count(n)}`).join(" · ")}` : "";
  setText(row.querySelector(".meta span:last-child"), `finished ${age(finished)} ago${perApp}`);
  for (const key of ["audience", "sent", "failed", "pruned", "opens"]) {
    setText(row.querySelector(`.n-${key}`), count(alert[key]));
  }
  // From the end of the hold window to FCM's accept; "—" when no device was accepted.
  const latency = alert.latency;
  const known = hasLatency(latency);
  setText(row.querySelector(".latency-text"), known ? percentiles(latency) : "—");
  const strip = row.querySelector(".latency-strip");
  const drawn = known ? JSON.stringify(latency) : "";
  if (strip.dataset.drawn !== drawn) {
    strip.dataset.drawn = drawn;
    if (known) {
      const summary = `Delivery time ${percentiles(latency)}; ${withinTwoMinutes(latency)}`;
      latencyStrip(strip, latency, summary);
    } else strip.replaceChildren();
  }
  setText(row.querySelector(".n-within"), known ? percent(latency.within_120s, 1) : "—");
  row.querySelector(".n-within").classList.toggle("warn-text", known && latency.within_120s < 0.9);
  // No rate before anything was sent: "—" rather than a misleading 0%.
  setText(
    row.querySelector(".n-open-rate"),
    alert.open_rate === null ? "—" : percent(alert.open_rate, 1),
  );
}

function renderQueues(view) {
  const queueRow = () =>
    h(
      "tr",
      {},
      h("th", { attrs: { scope: "row" } }),
      h("td", { className: "num depth" }),
      h("td", { className: "num oldest" }),
    );
  syncChildren(
    $("queue-rows"),
    view.queues,
    (q) => q.name,
    queueRow,
    (row, q) => {
      setText(row.querySelector("th"), q.name);
      setText(row.querySelector(".depth"), q.depth === null ? "unknown" : count(q.depth));
      setText(
        row.querySelector(".oldest"),
        // Messages waiting whose age the broker cannot tell (RabbitMQ) read "unknown", not "—".
        !q.depth ? "—" : q.oldest_age_seconds === null ? "unknown" : age(q.oldest_age_seconds),
      );
      row.classList.toggle("warn", q.depth > 0 && q.oldest_age_seconds > QUEUE_WARN_SECONDS);
    },
  );

  $("workers").replaceChildren(
    ...view.workers.map((worker) =>
      h(
        "li",
        {},
        h("div", { className: "worker-name" }, worker.name),
        worker.active.length
          ? h(
              "ul",
              { className: "tasks" },
              ...worker.active.map((task) =>
                h("li", { className: "small" }, `${task.task} ${JSON.stringify(task.args)}`),
              ),
            )
          : h("div", { className: "small" }, "idle"),
      ),
    ),
  );
  // The embedded (filesystem) broker has no broadcast channel, so no worker can ever answer there.
  const embedded = view.broker.transport === "filesystem";
  setText(
    $("workers-empty"),
    embedded
      ? "The embedded broker cannot list its workers."
      : "No worker answered: is `notifier worker` running?",
  );
  $("workers-empty").classList.toggle("warn-text", !embedded);
  $("workers-empty").hidden = view.workers.length > 0;
}

async function refresh() {
  try {
    const [view, throughput] = await Promise.all([
      api("/v1/ops/queues"),
      api("/v1/ops/throughput?minutes=60"),
    ]);
    renderHealth(view);
    renderCharts(throughput.minutes);
    syncChildren($("flight-rows"), view.alerts_in_flight, (a) => a.id, flightRow, updateFlightRow);
    $("flight-empty").hidden = view.alerts_in_flight.length > 0;
    syncChildren($("recent-rows"), view.recent_alerts, (a) => a.id, recentRow, updateRecentRow);
    $("recent-empty").hidden = view.recent_alerts.length > 0;
    renderQueues(view);
    setText($("updated"), `Updated ${new Date(view.generated_at).toLocaleTimeString()}`);
    $("updated").classList.remove("stale");
    if ($("status").textContent) setText($("status"), "");
  } catch (error) {
    if (error instanceof ApiError && error.isAuth) {
      signOut(describeError(error));
      return;
    }
    $("updated").classList.add("stale");
    $("status").className = "message status-line error";
    setText(
      $("status"),
      `${describeError(error)} The numbers below are from the last successful update.`,
    );
  }
}

signOut = gate({
  check: () => api("/v1/ops/queues"),
  start: () => {
    stopPolling = poll(refresh, REFRESH_MS);
  },
  stop: () => stopPolling && stopPolling(),
});
