// The pages' only way to the API: Bearer key from sessionStorage, JSON in, problem+json errors out.
//
// The key lives in sessionStorage, not localStorage or a cookie: it is gone when the tab closes,
// it is never sent by the browser on its own (so no CSRF), and it never appears in a URL.

const KEY_STORAGE = "notifier.apiKey";

export function storedKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function storeKey(key) {
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
}

/** An API answer other than 2xx, carrying the problem+json title and detail when there is one. */
export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail || title || `HTTP ${status}`);
    this.status = status;
    this.title = title;
    this.detail = detail;
  }

  /** The key is missing, wrong, revoked (401) or lacks the role (403): sign in again. */
  get isAuth() {
    return this.status === 401 || this.status === 403;
  }
}

// Milliseconds to add to the browser's clock to get the server's. Countdowns are computed against
// the server's send_at, so an editor's laptop running a minute fast must not show a wrong time.
let serverOffsetMs = 0;

export function serverNow() {
  return Date.now() + serverOffsetMs;
}

function learnServerClock(response, sentAt) {
  const header = response.headers.get("Date");
  if (!header) return;
  // The header is truncated to the second: the server's clock was half a second past it on average.
  const server = Date.parse(header) + 500;
  if (Number.isNaN(server)) return;
  const offset = server - (sentAt + Date.now()) / 2;
  // The Date header has one-second resolution: only a larger skew is worth correcting.
  serverOffsetMs = Math.abs(offset) > 1500 ? offset : 0;
}

/**
 * Call the API. `body` is sent as JSON; `headers` are added (e.g. Idempotency-Key).
 * Resolves to the parsed JSON body; rejects with ApiError (or TypeError when offline).
 */
export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const key = storedKey();
  const init = { method, headers: { Accept: "application/json", ...headers }, cache: "no-store" };
  if (key) init.headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const sentAt = Date.now();
  const response = await fetch(path, init);
  learnServerClock(response, sentAt);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, data && data.title, data && data.detail);
  }
  return data;
}

/** A message for a person, from whatever a call threw. */
export function describeError(error) {
  if (error instanceof ApiError) {
    if (error.status === 401) return `Not signed in: ${error.detail || "the API key was refused"}`;
    if (error.status === 403)
      return `The key's role does not allow this. ${error.detail || ""}`.trim();
    return error.detail ? `${error.title || "Error"}: ${error.detail}` : error.message;
  }
  return "The API did not answer. Check the connection; retrying.";
}

/** A fresh Idempotency-Key; randomUUID needs a secure context, getRandomValues does not. */
export function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
