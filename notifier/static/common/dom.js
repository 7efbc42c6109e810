// Building the pages' DOM without ever parsing HTML: every piece of data becomes a text node,
// so a headline such as "<script>…" is shown as those characters and never parsed as markup.

/**
 * Create an element. `props`: className, text, hidden, and `attrs` / `dataset` objects. Children
 * are nodes or strings (strings become text nodes). Attributes starting with "on" are refused so
 * that data can never become an event handler.
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  applyProps(node, props);
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** The same as h() for SVG elements (charts). */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  applyProps(node, { attrs });
  for (const child of children.flat()) {
    if (child) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function applyProps(node, { className, text, hidden, attrs = {}, dataset = {} }) {
  if (className) node.setAttribute("class", className);
  if (text !== undefined) node.textContent = String(text);
  if (hidden) node.hidden = true;
  for (const [name, value] of Object.entries(attrs)) {
    if (/^on/i.test(name)) throw new Error(`refusing event attribute ${name}`);
    if (value !== null && value !== undefined && value !== false) {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  Object.assign(node.dataset, dataset);
}

/** Set an element's text only when it changed (keeps screen readers and selection calm). */
export function setText(node, value) {
  const text = String(value);
  if (node.textContent !== text) node.textContent = text;
}

/**
 * Make `container`'s children match `items`, one child per key, reusing existing children so
 * that a refresh every two seconds does not steal focus from the button an editor is about to
 * press. `create(item)` returns a new element; `update(element, item)` refreshes one.
 */
export function syncChildren(container, items, keyOf, create, update) {
  const existing = new Map();
  for (const child of container.children) existing.set(child.dataset.key, child);
  const wanted = items.map((item) => {
    const key = String(keyOf(item));
    let node = existing.get(key);
    if (!node) {
      node = create(item);
      node.dataset.key = key;
    }
    existing.delete(key);
    update(node, item);
    return node;
  });
  for (const stale of existing.values()) stale.remove();
  wanted.forEach((node, index) => {
    // Move only what is out of place: moving a node would drop the focus inside it.
    if (container.children[index] !== node)
      container.insertBefore(node, container.children[index] || null);
  });
}

/** A <progress> with a text alternative, kept in step by setProgress(). */
export function progressBar(label) {
  return h("progress", { className: "bar", attrs: { max: 1, value: 0, "aria-label": label } });
}

export function setProgress(bar, done, total) {
  const fraction = total > 0 ? Math.min(1, done / total) : 0;
  bar.value = fraction;
  const text =
    total > 0
      ? `${Math.round(fraction * 100)}% (${count(done)} of ${count(total)})`
      : "no audience yet";
  bar.setAttribute("aria-valuetext", text);
  bar.title = text;
}

const numbers = new Intl.NumberFormat();

export function count(n) {
  return numbers.format(n ?? 0);
}

export function percent(fraction, digits = 0) {
  return `${(fraction * 100).toFixed(digits)}%`;
}

/** "0:09", "4:05", "1:02:03": a countdown, never negative. */
export function clock(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${ss}` : `${minutes}:${ss}`;
}

/** "just now", "12 s", "4 min", "3 h": how long ago, for ages and "last run". */
export function age(seconds) {
  if (seconds === null || seconds === undefined) return "never";
  if (seconds < 1) return "just now";
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}

/** A server timestamp as the reader's local time of day. */
export function timeOfDay(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleTimeString([], {
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}
