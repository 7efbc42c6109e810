// Language tags in the console: the check the server makes (a copy of LOCALE_PATTERN and
// LOCALE_MAX_LENGTH in notifier/core/patterns.py; tests/test_patterns.py runs this very regex
// under Node against the Python one), the language a tag falls back to, and which languages are
// written right to left, so the previews show a Hebrew or Arabic alert as a phone would.

// Scripts written right to left among the languages a newsroom is likely to publish in.
const RTL_LANGUAGES = new Set(["he", "iw", "ar", "fa", "ur", "yi", "ps", "sd", "ug", "dv"]);

/** Whether the server accepts `tag` as a locale (the same pattern and length bound). */
export function isLocale(tag) {
  return /^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$/.test(tag || "") && tag.length <= 35;
}

/** The language a tag matches devices by, as the planner does: `fr-CA` and `fr_BE` are `fr`. */
export function languageOf(tag) {
  return String(tag).split(/[-_]/)[0].toLowerCase();
}

/** One spelling per tag, so `FR-ca` and `fr_CA` are recognised as the same translation. */
export function normalTag(tag) {
  const [language, ...rest] = String(tag).trim().split(/[-_]/);
  return [language.toLowerCase(), ...rest].join("-");
}

/** "rtl" for Hebrew, Arabic, Persian, Urdu (and a few more), "ltr" otherwise. */
export function direction(tag) {
  return RTL_LANGUAGES.has(languageOf(tag)) ? "rtl" : "ltr";
}

let names = null;
/** "French (fr)": the language's English name when the browser knows it, and the tag. */
export function languageName(tag) {
  try {
    names ??= new Intl.DisplayNames(["en"], { type: "language" });
    const name = names.of(tag);
    return name && name !== tag ? `${name} (${tag})` : tag;
  } catch {
    return tag;
  }
}
