// The sign-in gate both pages share: a key typed once, checked against the API, kept for the tab.
//
// The page shell provides #signin (with #signin-form, #api-key, #signin-message), #app (hidden
// until signed in) and #signout. `check` is one API call that needs the page's role, so a wrong
// role is told at sign-in rather than on the first button press.

import { ApiError, describeError, forgetKey, storedKey, storeKey } from "./api.js";

const $ = (id) => document.getElementById(id);

/**
 * Run `start()` once a key passes `check()`. Returns `signOut(message)`, which a page calls when
 * a later request is refused (key revoked meanwhile), showing `message` on the sign-in form.
 */
export function gate({ check, start, stop }) {
  const form = $("signin-form");
  const input = $("api-key");
  const message = $("signin-message");
  let running = false;

  function showSignIn(text) {
    if (running) stop();
    running = false;
    $("app").hidden = true;
    $("signout").hidden = true;
    $("signin").hidden = false;
    message.textContent = text || "";
    input.value = "";
    input.focus();
  }

  async function tryKey() {
    try {
      await check();
    } catch (error) {
      if (error instanceof ApiError && error.isAuth) forgetKey();
      showSignIn(describeError(error));
      return;
    }
    $("signin").hidden = true;
    $("app").hidden = false;
    $("signout").hidden = false;
    message.textContent = "";
    running = true;
    start();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    storeKey(key);
    message.textContent = "Checking the key…";
    tryKey();
  });

  $("signout").addEventListener("click", () => {
    forgetKey();
    showSignIn("Signed out.");
  });

  if (storedKey()) tryKey();
  else showSignIn("");

  return function signOut(text) {
    forgetKey();
    showSignIn(text);
  };
}

/**
 * Call `tick()` now and then every `everyMs` after it settles (never two at once, so a slow API
 * is not buried under overlapping polls). Returns a function that stops the loop.
 */
export function poll(tick, everyMs) {
  let timer = null;
  let stopped = false;
  async function loop() {
    try {
      await tick();
    } finally {
      if (!stopped) timer = setTimeout(loop, everyMs);
    }
  }
  loop();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
