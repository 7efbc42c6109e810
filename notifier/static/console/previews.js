// Live previews of a draft alert as an Android notification, an iOS banner and a Chrome desktop
// notification, so an editor sees where a long headline gets cut before a million phones do.
//
// The mapping follows what the sender puts in the FCM message: the headline is the notification
// title, the body its text, the image the big picture / attachment; the web notification shows the
// site's origin, which is the article's host here.

import { h, setText } from "../common/dom.js";

// Beyond these lengths the collapsed notification cuts the title (measured on common devices).
const TITLE_LIMITS = { android: 65, ios: 110, web: 70 };

function imageSource(value) {
  try {
    const url = new URL(value);
    return url.protocol === "https:" ? url.href : null; // the page's CSP allows https images only
  } catch {
    return null;
  }
}

function hostOf(value) {
  try {
    return new URL(value).host;
  } catch {
    return "your-site.example";
  }
}

function device(platform, caption, card) {
  return h(
    "figure",
    { className: `preview preview-${platform}`, dataset: { platform } },
    h("figcaption", { className: "preview-caption" }, caption),
    card,
  );
}

function parts() {
  return {
    title: h("div", { className: "n-title" }),
    body: h("div", { className: "n-body" }),
    image: h("img", { className: "n-image", attrs: { alt: "", hidden: true } }),
  };
}

/** Build the three previews inside `container`; returns update({headline, body, url, imageUrl}). */
export function createPreviews(container) {
  const android = parts();
  const ios = parts();
  const web = parts();
  const webOrigin = h("div", { className: "n-origin" });
  const androidHost = h("span", { className: "n-host" });
  const warning = h("p", { className: "preview-warning small", attrs: { "aria-live": "polite" } });
  const imageNote = h("p", {
    className: "preview-warning small",
    attrs: { "aria-live": "polite" },
  });
  // A broken image address is worth saying before the alert goes out to everyone.
  for (const view of [android, ios, web]) {
    view.image.addEventListener("error", () => {
      view.image.hidden = true;
      setText(
        imageNote,
        view.image.getAttribute("src") ? "The image did not load: check its address." : "",
      );
    });
    view.image.addEventListener("load", () => {
      view.image.hidden = false;
      setText(imageNote, "");
    });
  }

  container.replaceChildren(
    device(
      "android",
      "Android",
      h(
        "div",
        { className: "n-card" },
        h(
          "div",
          { className: "n-head" },
          h("span", { className: "n-icon", attrs: { "aria-hidden": "true" } }, "N"),
          h("span", { className: "n-app" }, "News"),
          androidHost,
          h("span", { className: "n-when" }, "· now"),
        ),
        android.title,
        android.body,
        android.image,
      ),
    ),
    device(
      "ios",
      "iOS",
      h(
        "div",
        { className: "n-card" },
        h("span", { className: "n-icon", attrs: { "aria-hidden": "true" } }, "N"),
        h(
          "div",
          { className: "n-text" },
          h(
            "div",
            { className: "n-head" },
            h("span", { className: "n-app" }, "NEWS"),
            h("span", { className: "n-when" }, "now"),
          ),
          ios.title,
          ios.body,
        ),
        ios.image,
      ),
    ),
    device(
      "web",
      "Web (Chrome, desktop)",
      h(
        "div",
        { className: "n-card" },
        h(
          "div",
          { className: "n-head" },
          h("span", { className: "n-app" }, "Google Chrome"),
          h("span", { className: "n-when" }, "now"),
        ),
        h(
          "div",
          { className: "n-main" },
          h("span", { className: "n-icon", attrs: { "aria-hidden": "true" } }, "N"),
          h("div", { className: "n-text" }, web.title, web.body, webOrigin),
        ),
        web.image,
      ),
    ),
    warning,
    imageNote,
  );

  return function update({ headline, body, url, imageUrl }) {
    const title = headline.trim() || "Your headline";
    const image = imageSource(imageUrl);
    for (const view of [android, ios, web]) {
      setText(view.title, title);
      setText(view.body, body.trim());
      view.body.hidden = !body.trim();
      if (!image) {
        view.image.hidden = true;
        view.image.removeAttribute("src");
      } else if (view.image.getAttribute("src") !== image) {
        view.image.hidden = true; // until it loads: a half-typed address shows no broken icon
        view.image.src = image;
      }
    }
    if (!image) setText(imageNote, imageUrl.trim() ? "Only https:// images can be previewed." : "");
    setText(androidHost, `· ${hostOf(url)}`);
    setText(webOrigin, hostOf(url));
    const cut = Object.entries(TITLE_LIMITS)
      .filter(([, limit]) => title.length > limit)
      .map(([platform]) => platform);
    setText(
      warning,
      cut.length
        ? `At ${title.length} characters the headline may be cut on ${cut.join(", ")}.`
        : "",
    );
  };
}
