// Two small SVG charts for per-minute series, drawn by hand so the dashboard loads nothing from
// outside and works behind a strict CSP: stacked bars (throughput) and a line with gaps (error
// rate, undefined in a minute with no traffic). Every mark carries a <title> as its tooltip and
// its value in data-value, and the whole chart has a text summary for screen readers.

import { svg } from "../common/dom.js";

const WIDTH = 640;
const HEIGHT = 190;
const PAD = { top: 12, right: 12, bottom: 22, left: 46 };
const PLOT_W = WIDTH - PAD.left - PAD.right;
const PLOT_H = HEIGHT - PAD.top - PAD.bottom;
const MIN_COUNT_AXIS = 10;

/** A "nice" axis maximum (1, 2 or 5 times a power of ten) at or above `value`. */
function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * power).find((m) => m >= value);
}

function minuteLabel(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function frame(summary, yMax, format, minutes) {
  const root = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "img",
    "aria-label": summary,
    class: "chart-svg",
  });
  root.append(svg("title", {}, summary));
  for (const fraction of [0, 0.5, 1]) {
    const y = PAD.top + PLOT_H * (1 - fraction);
    root.append(
      svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y, y2: y, class: "grid" }),
      svg(
        "text",
        { x: PAD.left - 6, y: y + 4, class: "axis", "text-anchor": "end" },
        format(yMax * fraction),
      ),
    );
  }
  if (minutes.length) {
    const ticks = [
      [0, "start"],
      [Math.floor((minutes.length - 1) / 2), "middle"],
      [minutes.length - 1, "end"],
    ];
    for (const [i, anchor] of ticks) {
      const x = PAD.left + ((i + 0.5) / minutes.length) * PLOT_W;
      root.append(
        svg(
          "text",
          { x, y: HEIGHT - 6, class: "axis", "text-anchor": anchor },
          minuteLabel(minutes[i]),
        ),
      );
    }
  }
  return root;
}

/**
 * Stacked bars, one per minute. `rows`: [{minute, ...values}]; `series`: [{key, label}] drawn
 * bottom-up with class `bar-${key}`. Replaces `container`'s content.
 */
export function stackedBars(container, rows, series, { summary, unit }) {
  const totals = rows.map((row) => series.reduce((sum, s) => sum + (row[s.key] || 0), 0));
  const yMax = niceMax(Math.max(MIN_COUNT_AXIS, ...totals)); // an idle hour still gets whole ticks
  const root = frame(
    summary,
    yMax,
    (v) => Math.round(v).toLocaleString(),
    rows.map((r) => r.minute),
  );
  const slot = PLOT_W / Math.max(1, rows.length);
  rows.forEach((row, i) => {
    let base = 0;
    for (const s of series) {
      const value = row[s.key] || 0;
      if (!value) continue;
      const height = (value / yMax) * PLOT_H;
      const y = PAD.top + PLOT_H - base - height;
      root.append(
        svg(
          "rect",
          {
            x: PAD.left + i * slot + 1,
            y,
            width: Math.max(1, slot - 2),
            height,
            class: `bar bar-${s.key}`,
            "data-value": value,
            "data-minute": row.minute,
          },
          svg(
            "title",
            {},
            `${minuteLabel(row.minute)}: ${value.toLocaleString()} ${s.label} ${unit}`,
          ),
        ),
      );
      base += height;
    }
  });
  container.replaceChildren(root);
}

/** A line through `rows` ({minute, value: number|null}); null breaks the line. y from 0 to 1. */
export function rateLine(container, rows, { summary }) {
  const values = rows.map((r) => r.value).filter((v) => v !== null);
  const yMax = Math.min(1, niceMax(Math.max(0.05, ...values)));
  const pct = (v) => `${Math.round(v * 1000) / 10}%`;
  const root = frame(
    summary,
    yMax,
    pct,
    rows.map((r) => r.minute),
  );
  const slot = PLOT_W / Math.max(1, rows.length);
  const at = (i, v) => [PAD.left + (i + 0.5) * slot, PAD.top + PLOT_H * (1 - v / yMax)];
  let path = "";
  rows.forEach((row, i) => {
    if (row.value === null) return;
    const [x, y] = at(i, row.value);
    const previous = i > 0 ? rows[i - 1].value : null;
    path += `${previous === null ? "M" : "L"}${x.toFixed(1)},${y.toFixed(1)} `;
    root.append(
      svg(
        "circle",
        {
          cx: x,
          cy: y,
          r: 2.5,
          class: "point",
          "data-value": row.value,
          "data-minute": row.minute,
        },
        svg(
          "title",
          {},
          `${minuteLabel(row.minute)}: ${pct(row.value)} of ${row.total.toLocaleString()} outcomes`,
        ),
      ),
    );
  });
  if (path)
    root.insertBefore(svg("path", { d: path.trim(), class: "line" }), root.querySelector("circle"));
  container.replaceChildren(root);
}

const STRIP_W = 160;
const STRIP_H = 16;
const TWO_MINUTES = 120;

/**
 * One alert's delivery times as a strip: a bar from p50 to p99, a tick at p90 and a dashed mark
 * at two minutes, on a scale from 0 to two minutes (or to p99 when it is later), so the alerts
 * that missed the two minutes stand out down the column. Replaces `container`'s content.
 */
export function latencyStrip(container, latency, summary) {
  const scale = Math.max(TWO_MINUTES, latency.p99_s);
  const x = (seconds) => 2 + (seconds / scale) * (STRIP_W - 4);
  const mid = STRIP_H / 2;
  const root = svg("svg", {
    viewBox: `0 0 ${STRIP_W} ${STRIP_H}`,
    width: STRIP_W,
    height: STRIP_H,
    role: "img",
    "aria-label": summary,
    class: "strip-svg",
  });
  root.append(
    svg("title", {}, summary),
    svg("line", { x1: x(0), x2: x(scale), y1: mid, y2: mid, class: "strip-track" }),
    svg("rect", {
      x: x(latency.p50_s),
      y: mid - 4,
      width: Math.max(2, x(latency.p99_s) - x(latency.p50_s)),
      height: 8,
      rx: 2,
      class: `strip-range${latency.p99_s > TWO_MINUTES ? " late" : ""}`,
      "data-from": latency.p50_s,
      "data-to": latency.p99_s,
    }),
    svg("line", {
      x1: x(latency.p90_s),
      x2: x(latency.p90_s),
      y1: 1,
      y2: STRIP_H - 1,
      class: "strip-p90",
      "data-value": latency.p90_s,
    }),
    svg("line", {
      x1: x(TWO_MINUTES),
      x2: x(TWO_MINUTES),
      y1: 0,
      y2: STRIP_H,
      class: "strip-limit",
    }),
  );
  container.replaceChildren(root);
}
