"""The widget's languages: one file says which there are, and everything else follows it.

``notifier/static/widget/strings.json`` is the one list (texts and direction per language);
widget.js gets it inlined, /demo offers exactly its languages, and the OpenAPI description's
copy of the list is checked here, as ``tests/test_patterns.py`` checks the locale pattern's.
"""

from __future__ import annotations

import json
import re

import pytest
from flask.testing import FlaskClient

from notifier.http.openapi import load_spec, spec_bytes
from notifier.http.widget import text_direction, widget_languages

PLACEHOLDER = re.compile(r"\{[a-z]+\}")


def texts(language: str) -> dict[str, str]:
    found = widget_languages()[language]["texts"]
    assert isinstance(found, dict)
    return found


@pytest.mark.parametrize("language", list(widget_languages()))
def test_every_language_has_every_text_with_the_same_placeholders(language: str) -> None:
    english, translated = texts("en"), texts(language)

    assert translated.keys() == english.keys()
    for key, text in translated.items():
        assert text.strip(), key
        assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(english[key])), key


def test_persian_hebrew_and_arabic_are_written_right_to_left() -> None:
    directions = {language: text_direction(language) for language in widget_languages()}

    assert directions == {"en": "ltr", "fr": "ltr", "he": "rtl", "ar": "rtl", "fa": "rtl"}


def test_the_openapi_demo_languages_are_the_widgets() -> None:
    spec = load_spec(spec_bytes().decode())
    [lang] = spec["paths"]["/demo"]["get"]["parameters"]

    assert lang["schema"]["enum"] == list(widget_languages())


def test_the_served_widget_carries_every_language(client: FlaskClient) -> None:
    source = client.get("/widget.js").get_data(as_text=True)

    assert "__NOTIFIER_LANGUAGES__" not in source
    for language in widget_languages():
        assert json.dumps(texts(language)["urgentOverrides"]) in source


def test_the_demo_offers_each_language_in_its_direction(client: FlaskClient) -> None:
    for language in widget_languages():
        page = client.get(f"/demo?lang={language}").get_data(as_text=True)
        assert f'<html lang="{language}" dir="{text_direction(language)}">' in page
