// The manual alert form: topics from the catalogue, live previews, and a submission that can
// never create two alerts. Each submission carries an Idempotency-Key that is kept until the
// alert is created or the form changes, so a double click or a retry after a timeout is answered
// with the same alert instead of a second one reaching every phone.

import { api, ApiError, describeError, newIdempotencyKey, serverNow } from "../common/api.js";
import { h, setText, timeOfDay } from "../common/dom.js";
import { createPreviews } from "./previews.js";

const $ = (id) => document.getElementById(id);

async function loadTopics() {
  const list = $("topic-list");
  try {
    const { topics } = await api("/v1/topics");
    list.replaceChildren(
      ...topics.map((topic) =>
        h(
          "label",
          { className: "topic" },
          h("input", { attrs: { type: "checkbox", name: "topics", value: topic.slug } }),
          ` ${topic.name}`,
        ),
      ),
    );
  } catch (error) {
    list.replaceChildren(
      h("p", { className: "message error" }, `Topics could not be loaded. ${describeError(error)}`),
    );
  }
}

function isWebUrl(value) {
  try {
    return ["http:", "https:"].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}

/** The request body from the form, or a message saying what is missing. */
function readDraft(form) {
  const data = new FormData(form);
  const text = (name) => String(data.get(name) || "").trim();
  const draft = { headline: text("headline"), url: text("url"), topics: data.getAll("topics") };
  if (!draft.headline) return { problem: "Write a headline.", field: "f-headline" };
  if (!isWebUrl(draft.url))
    return { problem: "The article URL must start with https://.", field: "f-url" };
  if (text("image_url") && !isWebUrl(text("image_url")))
    return { problem: "The image URL must start with https://.", field: "f-image" };
  if (!draft.topics.length) return { problem: "Choose at least one topic.", field: "topic-list" };
  if (text("body")) draft.body = text("body");
  if (text("image_url")) draft.image_url = text("image_url");
  if (text("hold_seconds") !== "") draft.hold_seconds = Number(text("hold_seconds"));
  if (text("ttl_minutes") !== "") draft.ttl_seconds = Number(text("ttl_minutes")) * 60;
  return { draft };
}

/** Wire the form once; `onCreated()` refreshes the lists, `onAuthError(e)` signs out on a 401. */
export function setupCompose({ onCreated, onAuthError }) {
  const form = $("compose");
  const button = $("send");
  const message = $("compose-message");
  const preview = createPreviews($("previews"));
  let idempotencyKey = null;
  let submitting = false;

  const tell = (text, kind) => {
    message.className = `message ${kind}`;
    setText(message, text);
  };
  const showPreview = () =>
    preview({
      headline: $("f-headline").value,
      body: $("f-body").value,
      url: $("f-url").value,
      imageUrl: $("f-image").value,
    });

  form.addEventListener("input", () => {
    idempotencyKey = null; // a changed alert is a new alert, with a key of its own
    showPreview();
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submitting) return;
    const { draft, problem, field } = readDraft(form);
    if (problem) {
      tell(problem, "error");
      const target = $(field);
      (target.matches("input, textarea") ? target : target.querySelector("input"))?.focus();
      return;
    }
    submitting = true;
    button.disabled = true;
    idempotencyKey ??= newIdempotencyKey();
    tell("Sending…", "");
    try {
      const alert = await api("/v1/alerts", {
        method: "POST",
        body: draft,
        headers: { "Idempotency-Key": idempotencyKey },
      });
      // Said as a time of day, not "in 0:59", so the message stays true while it stays on screen.
      const held = Date.parse(alert.send_at) - serverNow() > 1000;
      tell(
        held
          ? `Created “${alert.headline}”: it sends at ${timeOfDay(alert.send_at)} unless you cancel it.`
          : `Created “${alert.headline}”: sending now.`,
        "ok",
      );
      form.reset();
      idempotencyKey = null;
      showPreview();
      onCreated();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) onAuthError(error);
      else tell(describeError(error), "error"); // the key is kept: sending again is a safe retry
    } finally {
      submitting = false;
      button.disabled = false;
    }
  });

  loadTopics();
  showPreview();
}
