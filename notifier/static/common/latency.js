// An alert's delivery percentiles (the API's `latency`) in words, for the console and the
// dashboard: the same figures read the same way on both pages.

import { percent } from "./dom.js";

/** "0.04 s", "3.4 s", "45 s", "2 min 05 s": a delivery time, precise where it matters. */
export function duration(seconds) {
  if (seconds < 1) return `${seconds.toFixed(2)} s`;
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 120) return `${Math.round(seconds)} s`;
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, "0")} s`;
}

/** Whether FCM has accepted a device yet (the figures are null before). */
export function hasLatency(latency) {
  return Boolean(latency) && latency.p50_s !== null;
}

/** "p50 1.2 s · p90 3.4 s · p99 5.0 s": from the alert being due to FCM accepting a device. */
export function percentiles(latency) {
  return `p50 ${duration(latency.p50_s)} · p90 ${duration(latency.p90_s)} · p99 ${duration(latency.p99_s)}`;
}

/** "98.5% within 2 min": the share newsrooms publish. */
export function withinTwoMinutes(latency) {
  const share = latency.within_120s;
  return `${percent(share, share === 1 || share === 0 ? 0 : 1)} within 2 min`;
}
