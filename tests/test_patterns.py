"""The locale and slug patterns are defined once; the copies outside Python are checked on them.

``notifier/core/patterns.py`` is imported by every Python check. The OpenAPI description (read by
API clients and fuzzers) and the reader widget (running in browsers) cannot import it, so their
copies are extracted here and must equal it, and accept and refuse the same samples.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from pydantic import TypeAdapter, ValidationError

from notifier.core.patterns import LOCALE_MAX_LENGTH, LOCALE_PATTERN, TOPIC_SLUG_PATTERN
from notifier.http import openapi
from notifier.intake import events
from notifier.subscriptions import requests, topics

WIDGET = Path(__file__).resolve().parent.parent / "notifier" / "static" / "widget" / "widget.js"
CONSOLE_LOCALES = WIDGET.parent.parent / "console" / "locales.js"

LOCALES = {
    "he": True,
    "en-GB": True,
    "pt_BR": True,
    "zh-Hant-TW": True,
    "es-419": True,
    "ast": True,
    "en-abcdefgh-abcdefgh-abcdefgh-abcde": True,  # 35 characters, the most allowed
    "en-abcdefgh-abcdefgh-abcdefgh-abcdef": False,  # 36
    "e": False,
    "english": False,
    "en-": False,
    "en GB": False,
    "en-GB-toolongpart": False,
    "": False,
    "<script>": False,
}
SLUGS = {
    "israel": True,
    "world-cup-2026": True,
    "9": True,
    "a" * 64: True,
    "a" * 65: False,
    "-israel": False,
    "Israel": False,
    "has space": False,
    "under_score": False,
    "": False,
}


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(openapi.spec_bytes())["components"]["schemas"]
    return loaded


def widget_locale_check() -> tuple[str, int]:
    """The regex literal and the length bound widget.js checks ``navigator.language`` with."""
    source = WIDGET.read_text(encoding="utf-8")
    found = re.search(r"/(\^[^/\n]*\$)/\.test\(locale\b.*?locale\.length <= (\d+)", source)
    assert found, "widget.js no longer checks the locale with a regex literal; update this test"
    return found.group(1), int(found.group(2))


def console_locale_check() -> tuple[str, int]:
    """The regex literal and the length bound the console checks a translation's tag with."""
    source = CONSOLE_LOCALES.read_text(encoding="utf-8")
    found = re.search(r"/(\^[^/\n]*\$)/\.test\(tag\b.*?tag\.length <= (\d+)", source)
    assert found, "console/locales.js no longer checks tags with a regex literal; update this test"
    return found.group(1), int(found.group(2))


def accepts(adapter: TypeAdapter[Any], value: str) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


def test_the_openapi_locale_and_slug_are_the_python_ones(schemas: dict[str, Any]) -> None:
    assert schemas["Locale"]["pattern"] == LOCALE_PATTERN
    assert schemas["Locale"]["maxLength"] == LOCALE_MAX_LENGTH
    assert schemas["Slug"]["pattern"] == TOPIC_SLUG_PATTERN


def test_the_widget_checks_the_locale_with_the_python_pattern() -> None:
    assert widget_locale_check() == (LOCALE_PATTERN, LOCALE_MAX_LENGTH)


def test_the_console_checks_language_tags_with_the_python_pattern() -> None:
    assert console_locale_check() == (LOCALE_PATTERN, LOCALE_MAX_LENGTH)


@pytest.mark.parametrize(("value", "valid"), LOCALES.items())
def test_every_locale_check_agrees(schemas: dict[str, Any], value: str, valid: bool) -> None:
    spec = Draft202012Validator(schemas["Locale"])
    assert accepts(TypeAdapter(requests.Locale), value) is valid
    assert accepts(TypeAdapter(events.Locale), value) is valid
    assert spec.is_valid(value) is valid


@pytest.mark.parametrize(("value", "valid"), SLUGS.items())
def test_every_slug_check_agrees(schemas: dict[str, Any], value: str, valid: bool) -> None:
    spec = Draft202012Validator(schemas["Slug"])
    assert accepts(TypeAdapter(requests.Slug), value) is valid
    assert accepts(TypeAdapter(events.Slug), value) is valid
    assert (topics.SLUG.match(value) is not None) is valid  # the catalogue file's check
    assert spec.is_valid(value) is valid


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js runs the pages' own checks")
@pytest.mark.parametrize(
    "check", [widget_locale_check, console_locale_check], ids=["widget", "console"]
)
def test_the_widget_check_behaves_the_same_in_javascript(
    check: Callable[[], tuple[str, int]],
) -> None:
    """ECMAScript, not Python, decides what the widget and console send: run each under Node."""
    pattern, max_length = check()
    script = (
        f"const samples = {json.dumps(list(LOCALES))};"
        f"const check = (l) => /{pattern}/.test(l || '') && l.length <= {max_length};"
        "process.stdout.write(JSON.stringify(samples.map(check)));"
    )
    node = shutil.which("node")
    assert node is not None
    run = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == list(LOCALES.values())
