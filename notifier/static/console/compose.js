// The manual alert form: topics from the catalogue, live previews, and a submission that can
// never create two alerts. Each submission carries an Idempotency-Key that is kept until the
// alert is created or the form changes, so a double click or a retry after a timeout is answered
// with the same alert instead of a second one reaching every phone.
//
// The same form sends a stored article as breaking: opened from "Recent articles", it is filled
// with the article's text and sends to POST /v1/articles/{id}/alert, which links the alert to
// the article (so unpublishing it cancels the alert, and the article gets one alert at most).

import { api, ApiError, describeError, newIdempotencyKey, serverNow } from "../common/api.js";
import { h, setText, timeOfDay } from "../common/dom.js";
import { createPreviews } from "./previews.js";

const $ = (id) => document.getElementById(id);

async function loadTopics() {
  const list = $("topic-list");
  // Rendered once (a failure leaves the message), so a caller can wait for the boxes to exist.
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
  // Sent as null when empty: for an article, leaving them out would mean "take the article's".
  draft.body = text("body") || null;
  draft.image_url = text("image_url") || null;
  if (text("hold_seconds") !== "") draft.hold_seconds = Number(text("hold_seconds"));
  if (text("ttl_minutes") !== "") draft.ttl_seconds = Number(text("ttl_minutes")) * 60;
  return { draft };
}

const MANUAL = { title: "Send a manual alert", button: "Send alert" };
const FROM_ARTICLE = { title: "Send a story as breaking", button: "Send as breaking" };

/**
 * Wire the form once; `onCreated()` refreshes the lists, `onAuthError(e)` signs out on a 401.
 * Returns `startFromArticle(article)`, which fills the form from an article of GET /v1/articles.
 */
export function setupCompose({ onCreated, onAuthError }) {
  const form = $("compose");
  const button = $("send");
  const message = $("compose-message");
  const preview = createPreviews($("previews"));
  let idempotencyKey = null;
  let submitting = false;
  let article = null; // the article being sent as breaking, or null for a manual alert

  const showMode = () => {
    const words = article ? FROM_ARTICLE : MANUAL;
    setText($("compose-title"), words.title);
    setText(button, words.button);
    $("from-article").hidden = !article;
    setText($("from-article-headline"), article ? `“${article.headline}”` : "");
  };

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
    const path = article ? `/v1/articles/${encodeURIComponent(article.id)}/alert` : "/v1/alerts";
    if (!article) {
      // A manual alert has no article to inherit from: empty means "none" by leaving it out.
      if (draft.body === null) delete draft.body;
      if (draft.image_url === null) delete draft.image_url;
    }
    try {
      const alert = await api(path, {
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
      article = null;
      showMode();
      showPreview();
      onCreated();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) onAuthError(error);
      else tell(describeError(error), "error"); // the key is kept: sending again is a safe retry
      // Someone else alerted the article meanwhile: the list shows that alert at once.
      if (article && error instanceof ApiError && error.status === 409) onCreated();
    } finally {
      submitting = false;
      button.disabled = false;
    }
  });

  const clearArticle = () => {
    article = null;
    idempotencyKey = null;
    form.reset();
    tell("", "");
    showMode();
    showPreview();
    $("f-headline").focus();
  };
  $("from-article-clear").addEventListener("click", clearArticle);

  const topicsLoaded = loadTopics();
  showPreview();

  return {
    async startFromArticle(chosen) {
      await topicsLoaded;
      form.reset();
      article = chosen;
      idempotencyKey = null; // another article, another alert
      $("f-headline").value = chosen.headline;
      $("f-body").value = chosen.summary || "";
      $("f-url").value = chosen.url;
      $("f-image").value = chosen.image_url || "";
      for (const box of form.querySelectorAll('input[name="topics"]')) {
        box.checked = chosen.topics.includes(box.value);
      }
      tell("", "");
      showMode();
      showPreview();
      form.scrollIntoView({ block: "nearest" });
      $("f-headline").focus();
    },
  };
}
