"""The readers' side in the browser: the opt-in widget, its service worker, a demo page, opens.

A news site pastes ``<script src="https://notifier.example/widget.js" data-topic="israel" async>``
and nothing else, so everything the widget needs is served from here: the script with this
deployment's Firebase web config inlined, its stylesheet, the vendored Firebase SDK, and the
service worker that shows notifications and sends clicks through ``/o/<alert_id>``.

Without real FCM credentials notifier sends to its own FCM emulator, which no browser push
service reaches; the widget is then told to use the emulator's web push stand-in instead of
Firebase (``standIn`` in its config, ``widget/standin.js``). Only this server-side setting decides
it, and with credentials nothing of the stand-in is served or referenced (docs/widget.md).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, Response, render_template, request
from werkzeug.urls import iri_to_uri

from notifier.alerts.opens import record_open
from notifier.core.db import transaction
from notifier.core.settings import Settings
from notifier.http import context
from notifier.http.problems import Problem

bp = Blueprint("widget", __name__)

STATIC = Path(__file__).resolve().parent.parent / "static"
WIDGET = STATIC / "widget"
VENDOR = STATIC / "vendor"
FIREBASE_BUNDLE = "vendor/firebase/firebase-messaging.js"
STAND_IN_MODULE = "widget/standin.js"
STRINGS_FILE = "strings.json"
_LOOPBACK_NAMES = ("127.0.0.1", "localhost")

# Sites embed the unversioned widget URL, so a short cache lets fixes reach readers within minutes
# while the versioned vendor bundle can be cached for a long time.
WIDGET_MAX_AGE = 300
VENDOR_MAX_AGE = 7 * 86_400


@cache
def _source(name: str) -> str:
    return (WIDGET / name).read_text(encoding="utf-8")


@cache
def firebase_version() -> str:
    """The vendored SDK's version (first line of its VERSION file: ``firebase 12.9.0``)."""
    first = (VENDOR / "firebase" / "VERSION").read_text(encoding="utf-8").split("\n", 1)[0]
    return first.removeprefix("firebase").strip()


def uses_stand_in(settings: Settings) -> bool:
    """Whether readers' browsers get pushes from the emulator's stand-in rather than Firebase.

    Exactly when notifier sends to its own FCM emulator: without credentials nothing can reach
    real FCM, so no browser push service would ever deliver what the workers send.
    """
    return settings.fcm_credentials is None and settings.effective_fcm_endpoint is not None


def stand_in_origins(settings: Settings) -> list[str]:
    """The page origins the emulator lets use its stand-in: this API's, and sites allowed by CORS.

    On loopback both spellings of the host are allowed, since a newcomer may type either.
    ``*`` in ``NOTIFIER_CORS_ORIGINS`` is not carried over: any page could then read streams.
    """
    if settings.public_url:
        parts = urlsplit(settings.public_url)
        origins = [f"{parts.scheme}://{parts.netloc}"]
    else:
        hosts = _LOOPBACK_NAMES if settings.host in (*_LOOPBACK_NAMES, "0.0.0.0") else ()
        origins = [f"http://{host}:{settings.port}" for host in hosts or (settings.host,)]
    origins += [o.rstrip("/") for o in settings.cors_origins if o != "*"]
    return list(dict.fromkeys(origins))


def widget_config(settings: Settings) -> dict[str, object]:
    """What the widget needs to know about this deployment; all of it is public by design.

    Firebase web config and the VAPID public key are meant to be shipped to browsers. Without
    them ``firebase`` is ``None`` and the widget says notifications are not available, rather
    than showing a button that cannot work. ``standIn`` (the emulator's address and the module
    that talks to it) is set only when notifier sends to its emulator, and then replaces Firebase.
    """
    if uses_stand_in(settings):
        return {
            "firebase": None,
            "vapidKey": None,
            "standIn": {
                "emulator": (
                    settings.emulator_public_url or settings.effective_fcm_endpoint or ""
                ).rstrip("/"),
                "module": f"{STAND_IN_MODULE}?v={_version(STAND_IN_MODULE)}",
            },
        }
    firebase = {
        "apiKey": settings.web_api_key,
        "projectId": settings.fcm_project_id,
        "messagingSenderId": settings.web_messaging_sender_id,
        "appId": settings.web_app_id,
    }
    ready = settings.vapid_key is not None and all(firebase.values())
    return {
        "firebase": firebase if ready else None,
        "vapidKey": settings.vapid_key,
        "firebaseModule": f"widget/{FIREBASE_BUNDLE}?v={firebase_version()}",
        "standIn": None,
    }


@cache
def _version(name: str) -> str:
    # Changes with the file, so the long cache of a versioned URL never serves a stale module.
    return hashlib.sha256(_source(name.removeprefix("widget/")).encode()).hexdigest()[:12]


def _script_json(value: object) -> str:
    """JSON safe to inline in a script: no ``</script>`` or HTML comment can be formed."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _javascript(body: str, *, cache_control: str) -> Response:
    response = Response(body, mimetype="text/javascript")
    response.headers["Cache-Control"] = cache_control
    response.add_etag()
    response.make_conditional(request)
    return response


@cache
def widget_languages() -> dict[str, dict[str, object]]:
    """The widget's languages, in order, each ``{"dir": "ltr" | "rtl", "texts": {...}}``.

    ``static/widget/strings.json`` is the one list of them: widget.js gets it inlined, /demo
    offers exactly these, and adding a language (texts and direction) is an edit of that file.
    """
    languages: dict[str, dict[str, object]] = json.loads(_source(STRINGS_FILE))
    return languages


def text_direction(language: str) -> str:
    """``rtl`` for a widget language written right to left, else ``ltr``."""
    return "rtl" if widget_languages().get(language, {}).get("dir") == "rtl" else "ltr"


@bp.get("/widget.js")
def widget_script() -> Response:
    config = _script_json(widget_config(context.runtime().settings))
    body = (
        _source("widget.js")
        .replace('"__NOTIFIER_CONFIG__"', config, 1)
        .replace('"__NOTIFIER_LANGUAGES__"', _script_json(widget_languages()), 1)
    )
    return _javascript(body, cache_control=f"public, max-age={WIDGET_MAX_AGE}")


@bp.get("/widget.css")
def widget_stylesheet() -> Response:
    response = Response(_source("widget.css"), mimetype="text/css")
    response.headers["Cache-Control"] = f"public, max-age={WIDGET_MAX_AGE}"
    response.add_etag()
    response.make_conditional(request)
    return response


@bp.get(f"/widget/{FIREBASE_BUNDLE}")
def firebase_bundle() -> Response:
    """The vendored Firebase SDK, importable as a module from any site's page.

    Module scripts are fetched with CORS, so a widget embedded on another origin needs
    ``Access-Control-Allow-Origin`` here; the file is public and takes no credentials.
    """
    body = (STATIC / FIREBASE_BUNDLE).read_text(encoding="utf-8")
    response = _javascript(body, cache_control=f"public, max-age={VENDOR_MAX_AGE}, immutable")
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get(f"/{STAND_IN_MODULE}")
def stand_in_module() -> Response:
    """The widget's side of the emulator's web push stand-in; 404 unless it is in use.

    Importable from any site's page (module scripts are fetched with CORS), like the Firebase
    bundle it replaces locally.
    """
    if not uses_stand_in(context.runtime().settings):
        raise Problem(404, "Not Found", "This deployment uses real web push.")
    body = _source(STAND_IN_MODULE.removeprefix("widget/"))
    response = _javascript(body, cache_control=f"public, max-age={VENDOR_MAX_AGE}, immutable")
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/firebase-messaging-sw.js")
def service_worker() -> Response:
    """The push service worker, with this API's address inlined for counting opens.

    The address is inlined rather than taken from ``self.location`` because a site on another
    origin runs this script through ``importScripts`` from a worker of its own.
    """
    settings = context.runtime().settings
    base = (settings.public_url or request.url_root).rstrip("/")
    body = (
        _source("sw.js")
        .replace('"__NOTIFIER_API__"', _script_json(base), 1)
        # Pushes handed over by the stand-in's pages are accepted only in stand-in mode.
        .replace('"__NOTIFIER_STAND_IN__"', _script_json(uses_stand_in(settings)), 1)
    )
    # Browsers check for a new worker on navigation; no-cache makes that check reach us.
    return _javascript(body, cache_control="no-cache")


def demo_language(requested: str | None) -> str:
    """The widget language ``?lang=`` names (English when absent); 400 for any other value.

    The problem names the supported languages, never the value sent, so nothing from the
    request is written into a page or a problem.
    """
    if requested is None:
        return "en"
    if requested not in widget_languages():
        supported = ", ".join(widget_languages())
        raise Problem(400, "Unsupported language", f"lang must be one of {supported}.")
    return requested


@bp.get("/demo")
def demo() -> str:
    """An article page shaped like a real one, with the widget at its foot (``make run``).

    ``?lang=fr`` (or any other widget language: ``he``, ``ar``, ``fa``...) gives the page that
    language and direction, as a French or Persian edition would, so the widget is seen speaking
    it.
    """
    lang = demo_language(request.args.get("lang"))
    return render_template("demo.html", lang=lang, dir=text_direction(lang))


@bp.get("/o/<alert_id>")
def open_alert(alert_id: str) -> Response:
    """A reader clicked a notification: count the open and go on to the article.

    Redirects only to a URL stored with the alert, never to one taken from the request, so
    this can not be used as an open redirect. ``?to=`` is the URL the notification carried (the
    service worker adds it): a translation's URL lands the reader on that translation, anything
    else on the alert's own URL.
    """
    with transaction(context.runtime().sessions) as session:
        url = record_open(session, alert_id, request.args.get("to"))
    if url is None:
        raise Problem(404, "Not Found", "No such alert.")
    # Every click must reach us to be counted, and the article needs no hint of where it came from.
    return Response(
        status=302,
        headers={
            "Location": iri_to_uri(url),
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )
