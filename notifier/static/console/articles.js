// The console's "Recent articles": what the CMS published, newest first, each with its alert or
// a "Send as breaking" button that opens the composer with the article's text (it sends nothing
// by itself). Headlines come from the CMS, so they are only ever set as text.

import { h, setText, syncChildren } from "../common/dom.js";

const SOURCES = { webhook: "by the CMS", editor: "by an editor", test: "test send" };

/** A publication time as a person reads it: the date when it is not today. */
function published(iso) {
  if (!iso) return "no publication time";
  const when = new Date(iso);
  const today = new Date().toDateString() === when.toDateString();
  return when.toLocaleString(
    [],
    today
      ? { hour: "2-digit", minute: "2-digit" }
      : { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" },
  );
}

function articleItem(onFlag) {
  return (article) => {
    const flag = h("button", { className: "primary", attrs: { type: "button" } }, "Send as breaking");
    const item = h(
      "li",
      { className: "article-item" },
      h(
        "div",
        { className: "article-text" },
        h("div", { className: "headline" }),
        h("div", { className: "small article-meta" }),
      ),
      h(
        "div",
        { className: "article-state" },
        h("span", { className: "badge" }),
        h("span", { className: "small article-alert" }),
        flag,
      ),
    );
    // The latest copy of the article, kept by updateArticleItem, is what the composer gets.
    flag.addEventListener("click", () => onFlag(item.article));
    item.article = article;
    return item;
  };
}

function updateArticleItem(item, article) {
  item.article = article;
  setText(item.querySelector(".headline"), article.headline);
  const topics = article.topics.length ? article.topics.join(", ") : "no topics";
  setText(item.querySelector(".article-meta"), `${published(article.published_at)} · ${topics}`);
  const badge = item.querySelector(".badge");
  const note = item.querySelector(".article-alert");
  const flag = item.querySelector("button");
  const { alert } = article;
  if (alert) {
    badge.className = `badge ${alert.status}`;
    setText(badge, `alert ${alert.status}`);
    setText(note, SOURCES[alert.source] || alert.source);
  } else if (article.unpublished_at) {
    badge.className = "badge unpublished";
    setText(badge, "unpublished");
    setText(note, "off the site: no alert");
  } else {
    badge.className = "badge";
    setText(badge, article.breaking ? "breaking" : "no alert");
    setText(note, "");
  }
  badge.hidden = !alert && !article.unpublished_at;
  note.hidden = !note.textContent;
  flag.hidden = Boolean(alert || article.unpublished_at);
  flag.setAttribute("aria-label", `Send as breaking: ${article.headline}`);
}

/** Render a page of `GET /v1/articles`; `onFlag(article)` opens the composer with it. */
export function renderArticles(list, empty, articles, onFlag) {
  syncChildren(list, articles, (a) => a.id, articleItem(onFlag), updateArticleItem);
  empty.hidden = articles.length > 0;
}
