// The manual alert form: topics from the catalogue, live previews, and a submission that can
// never create two alerts. Each submission carries an Idempotency-Key that is kept until the
// alert is created or the form changes, so a double click or a retry after a timeout is answered
// with the same alert instead of a second one reaching every phone.
//
// The same form sends a stored article as breaking: opened from "Recent articles", it is filled
// with the article's text and sends to POST /v1/articles/{id}/alert, which links the alert to
// the article (so unpublishing it cancels the alert, and the article gets one alert at most).
//
// An alert may be urgent (it then passes readers' quiet hours and daily cap, so sending one asks
// for a confirmation that says so), carry translations (each typed beside the original, with its
// own previews, right to left for Hebrew, Arabic, Persian and Urdu) and be kept to an edition's
// languages (`locales`).

import { api, ApiError, describeError, newIdempotencyKey, serverNow } from "../common/api.js";
import { h, setText, timeOfDay } from "../common/dom.js";
import { direction, isLocale, languageName, normalTag } from "./locales.js";
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
  draft.urgency = data.get("urgent") ? "urgent" : "normal";
  const locale = text("locale");
  if (locale && !isLocale(locale))
    return { problem: `“${locale}” is not a language tag (like en or fr-CA).`, field: "f-locale" };
  if (locale) draft.locale = locale;
  const translations = readTranslations(form);
  if (translations.problem) return translations;
  if (Object.keys(translations.texts).length) draft.translations = translations.texts;
  const locales = text("locales")
    .split(/[\s,]+/)
    .filter(Boolean);
  const wrong = locales.find((tag) => !isLocale(tag));
  if (wrong)
    return { problem: `“${wrong}” is not a language tag (like fr or he).`, field: "f-locales" };
  if (locales.length) draft.locales = [...new Set(locales)];
  return { draft };
}

/** `{texts}` for the request's `translations`, or the first thing missing in one of them. */
function readTranslations(form) {
  const texts = {};
  for (const block of form.querySelectorAll(".translation")) {
    const tag = block.dataset.tag;
    const field = (name) => block.querySelector(`[data-field="${name}"]`);
    const value = (name) => field(name).value.trim();
    const name = languageName(tag);
    if (!value("headline"))
      return { problem: `Write the ${name} headline, or remove it.`, field: field("headline").id };
    if (value("url") && !isWebUrl(value("url")))
      return { problem: `The ${name} URL must start with https://.`, field: field("url").id };
    texts[tag] = { headline: value("headline") };
    if (value("body")) texts[tag].body = value("body");
    if (value("url")) texts[tag].url = value("url");
  }
  return { texts };
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
  const translations = new Map(); // tag -> {block, previews, update}
  let fieldIds = 0;

  const original = () => ({
    headline: $("f-headline").value,
    body: $("f-body").value,
    url: $("f-url").value,
    imageUrl: $("f-image").value,
  });

  const showPreview = () => {
    const own = original();
    const ownTag = $("f-locale").value.trim();
    $("previews").dir = direction(ownTag);
    if (isLocale(ownTag)) $("previews").lang = ownTag;
    preview(own);
    for (const translation of translations.values()) translation.update(own);
  };

  /** A translation's fields beside the original's text, and its previews under the original's. */
  const addTranslation = (tag) => {
    const dir = direction(tag);
    const name = languageName(tag);
    const input = (field, label, attrs, multiline = false) => {
      const id = `t-${++fieldIds}`;
      const control = h(multiline ? "textarea" : "input", {
        attrs: { id, lang: tag, dir, "data-field": field, ...attrs },
      });
      return [h("label", { attrs: { for: id } }, label), control];
    };
    const echo = { headline: h("div", { className: "headline" }), body: h("div", { className: "small" }) };
    const remove = h("button", { className: "quiet small-button", attrs: { type: "button" } }, "Remove");
    remove.setAttribute("aria-label", `Remove the ${name} translation`);
    const block = h(
      "fieldset",
      { className: "translation", dataset: { tag }, attrs: { lang: tag } },
      h("legend", {}, name),
      h(
        "div",
        { className: "side-by-side" },
        h(
          "div",
          { className: "original-text", attrs: { lang: $("f-locale").value.trim() || null } },
          h("div", { className: "hint" }, "Original"),
          echo.headline,
          echo.body,
        ),
        h(
          "div",
          { className: "translated" },
          ...input("headline", "Headline", { maxlength: 200, required: true }),
          ...input("body", "Body (optional)", { maxlength: 1000, rows: 2 }, true),
          ...input("url", "Article URL (optional: the original's otherwise)", {
            type: "url",
            placeholder: "https://",
            dir: "ltr", // an address reads left to right in every language
          }),
        ),
      ),
      h("div", { className: "actions" }, remove),
    );
    const container = h("div", { className: "previews", attrs: { dir, lang: tag } });
    const section = h(
      "section",
      { className: "translation-preview", dataset: { tag } },
      h("h3", {}, `Preview: ${name}`),
      container,
    );
    const previews = createPreviews(container);
    const field = (name) => block.querySelector(`[data-field="${name}"]`);
    const update = (own) => {
      setText(echo.headline, own.headline.trim() || "(no headline yet)");
      setText(echo.body, own.body.trim());
      previews({
        headline: field("headline").value,
        body: field("body").value,
        url: field("url").value.trim() || own.url,
        imageUrl: own.imageUrl, // one image for every language, as the sender does
      });
    };
    remove.addEventListener("click", () => {
      block.remove();
      section.remove();
      translations.delete(tag);
      idempotencyKey = null;
      $("f-add-lang").focus();
    });
    $("translations").append(block);
    $("translation-previews").append(section);
    translations.set(tag, { block, section, update });
    update(original());
    field("headline").focus();
  };

  const langMessage = (text, kind = "") => {
    $("lang-message").className = `message ${kind}`;
    setText($("lang-message"), text);
  };
  const addTyped = () => {
    const typed = $("f-add-lang").value.trim();
    if (!typed) return;
    if (!isLocale(typed)) {
      langMessage(`“${typed}” is not a language tag (like fr, he or pt-BR).`, "error");
      return;
    }
    const tag = normalTag(typed);
    const own = $("f-locale").value.trim();
    if (own && normalTag(own) === tag) {
      langMessage(`${languageName(tag)} is the language of the text above.`, "error");
      return;
    }
    if ([...translations.keys()].some((t) => t === tag)) {
      langMessage(`There is a ${languageName(tag)} translation already.`, "error");
      return;
    }
    langMessage("");
    $("f-add-lang").value = "";
    idempotencyKey = null;
    addTranslation(tag);
  };
  $("add-lang").addEventListener("click", addTyped);
  $("f-add-lang").addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault(); // adds the language; it does not send the alert
      addTyped();
    }
  });
  const clearTranslations = () => {
    for (const { block, section } of translations.values()) {
      block.remove();
      section.remove();
    }
    translations.clear();
    langMessage("");
  };

  // Urgent asks twice: the second step says what urgent does to readers' own settings.
  const confirmBox = $("urgent-confirm");
  let confirmed = false;
  const closeConfirm = () => {
    confirmBox.hidden = true;
    confirmed = false;
  };
  $("urgent-no").addEventListener("click", () => {
    closeConfirm();
    tell("Not sent.", "");
    $("f-urgent").focus();
  });
  $("urgent-yes").addEventListener("click", () => {
    confirmed = true;
    form.requestSubmit();
  });

  form.addEventListener("input", (event) => {
    idempotencyKey = null; // a changed alert is a new alert, with a key of its own
    if (event.target.id !== "f-add-lang") closeConfirm(); // confirm what is on screen, not before
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
    if (draft.urgency === "urgent" && !confirmed) {
      const audience = draft.locales ? ` in ${draft.locales.map(languageName).join(", ")}` : "";
      setText(
        $("urgent-confirm-text"),
        `“${draft.headline}” will reach every follower of ${draft.topics.join(", ")}${audience}, ` +
          "even during their quiet hours, with sound, and even when they have already had " +
          "their alerts for the day.",
      );
      confirmBox.hidden = false;
      tell("Confirm the urgent alert below, or go back.", "");
      $("urgent-yes").focus();
      return;
    }
    confirmBox.hidden = true;
    confirmed = false;
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
      const what = alert.urgency === "urgent" ? "an urgent alert, " : "";
      tell(
        held
          ? `Created ${what}“${alert.headline}”: it sends at ${timeOfDay(alert.send_at)} unless you cancel it.`
          : `Created ${what}“${alert.headline}”: sending now.`,
        "ok",
      );
      form.reset();
      clearTranslations();
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
    clearTranslations();
    closeConfirm();
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
      clearTranslations();
      closeConfirm();
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
