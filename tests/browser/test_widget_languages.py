"""The widget in the reader's language, and the manage view's quiet hours and daily cap.

The language comes from the widget's ``data-locale`` or the page's ``<html lang>`` (``/demo?lang=``
sets the latter); Hebrew and Arabic lay the box out right to left. Settings are saved through the
real API and read back from its database and, after a reload, from the widget itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, Route, expect

from notifier.core.db import transaction
from notifier.subscriptions import service as subscriptions
from notifier.subscriptions.service import DeviceProfile
from tests.browser.conftest import Notifier
from tests.browser.fakes import FakeFirebase
from tests.browser.reader import allow_and_click, eventually, status, subscribe, widget

Screenshot = Callable[[Page | Locator, str], Path]

HEBREW_TITLE = "אל תפספסו חדשות מתפרצות על Israel"
ARABIC_TITLE = "لا تفوّتك الأخبار العاجلة عن Israel"
FRENCH_TITLE = "Ne manquez aucune information importante sur Israel"
PERSIAN_TITLE = "هیچ خبر فوری‌ای درباره Israel را از دست ندهید"
HEBREW_SUBSCRIBE = "קבלת התראות"
URGENT = "Let urgent alerts through quiet hours and past my cap"
# Persian words joined by a zero-width non-joiner (U+200C), which ruff takes for a mix of
# scripts; these are the widget's real texts.
PERSIAN_SUBSCRIBE = "دریافت اعلان‌ها"  # noqa: RUF001
PERSIAN_MANAGE = "مدیریت موضوع‌ها"  # noqa: RUF001


def profile_of(notifier: Notifier, token: str) -> DeviceProfile:
    with transaction(notifier.runtime.sessions) as session:
        found = subscriptions.lookup(session, token)
    assert found is not None
    return found


def expect_mirrored_offer(page: Page, *, title: str, button: str, lang: str) -> Locator:
    """The widget's offer in ``lang``, right to left; returns its box.

    The box and the page say ``rtl``, and the layout follows: the button starts at the box's
    right-hand edge, not its left.
    """
    box = page.get_by_role("region", name=title)
    offer = box.get_by_role("button", name=button)
    expect(offer).to_be_visible()
    expect(box).to_have_attribute("dir", "rtl")
    expect(box).to_have_attribute("lang", lang)
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    outer, inner = box.bounding_box(), offer.bounding_box()
    assert outer is not None and inner is not None
    right_gap = outer["x"] + outer["width"] - (inner["x"] + inner["width"])
    assert right_gap < inner["x"] - outer["x"]
    return box


def page_with_widget(page: Page, notifier: Notifier, *, html_lang: str, attributes: str) -> None:
    """A site's own page on the API's origin, embedding the widget with the given attributes."""
    url = f"{notifier.url}/test-site/article"

    def serve(route: Route) -> None:
        route.fulfill(
            content_type="text/html",
            body=(
                f'<!doctype html><html lang="{html_lang}"><head><meta charset="utf-8">'
                "<title>Site</title></head><body><main><h1>Story</h1>"
                f'<script src="/widget.js" data-topic="israel" {attributes} async></script>'
                "</main></body></html>"
            ),
        )

    page.route(url, serve)
    page.goto(url)


def test_a_hebrew_page_shows_the_widget_in_hebrew_right_to_left(
    page: Page, screenshot: Screenshot
) -> None:
    page.goto("/demo?lang=he")

    box = expect_mirrored_offer(page, title=HEBREW_TITLE, button=HEBREW_SUBSCRIBE, lang="he")
    screenshot(page, "hebrew-demo")
    screenshot(box, "hebrew-offer")


def test_an_arabic_page_shows_the_widget_in_arabic_right_to_left(
    page: Page, screenshot: Screenshot
) -> None:
    page.goto("/demo?lang=ar")

    box = page.get_by_role("region", name=ARABIC_TITLE)
    expect(box.get_by_role("button", name="تلقّي الإشعارات")).to_be_visible()
    expect(box).to_have_attribute("dir", "rtl")
    screenshot(box, "arabic-offer")


def test_a_persian_page_shows_the_widget_in_persian_right_to_left(
    page: Page, screenshot: Screenshot
) -> None:
    page.goto("/demo?lang=fa")

    box = expect_mirrored_offer(page, title=PERSIAN_TITLE, button=PERSIAN_SUBSCRIBE, lang="fa")
    screenshot(page, "persian-demo")
    screenshot(box, "persian-offer")


def test_the_persian_manage_view_offers_every_setting_in_persian(
    page: Page,
    context: BrowserContext,
    notifier: Notifier,
    firebase: FakeFirebase,
    screenshot: Screenshot,
) -> None:
    allow_and_click(page, context, notifier.url, path="/demo?lang=fa", button=PERSIAN_SUBSCRIBE)
    form = open_settings(page, manage=PERSIAN_MANAGE)
    expect(form).to_have_css("direction", "rtl")

    form.get_by_role("checkbox", name="ساعات سکوت", exact=True).check()
    form.get_by_role(
        "checkbox", name="هشدارهای فوری در ساعات سکوت و پس از رسیدن به سقف روزانه‌ام هم برسند"
    ).uncheck()
    form.get_by_label("حداکثر هشدار در روز").fill("3")
    screenshot(widget(page), "persian-manage")
    form.get_by_role("button", name="ذخیره تنظیمات").click()

    expect(status(page)).to_have_text("تنظیمات شما ذخیره شد.")
    [token] = firebase.issued
    profile = profile_of(notifier, token)
    assert (profile.locale, profile.max_per_day, profile.urgent_overrides) == ("fa", 3, False)
    assert profile.quiet_hours is not None


def test_a_french_page_shows_the_widget_in_french_left_to_right(page: Page) -> None:
    page.goto("/demo?lang=fr")

    box = page.get_by_role("region", name=FRENCH_TITLE)
    expect(box.get_by_role("button", name="Recevoir les notifications")).to_be_visible()
    expect(box).to_have_attribute("dir", "ltr")


def test_an_unsupported_demo_language_is_a_problem_that_does_not_echo_it(page: Page) -> None:
    response = page.request.get('/demo?lang="><script>x</script>')

    assert response.status == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "<script>x" not in response.text()
    assert response.json()["detail"] == "lang must be one of en, fr, he, ar, fa."


def test_data_locale_wins_over_the_page_and_falls_back_by_language(
    page: Page, notifier: Notifier
) -> None:
    page_with_widget(page, notifier, html_lang="he", attributes='data-locale="fr-CA"')

    box = page.get_by_role("region", name=FRENCH_TITLE)
    expect(box).to_have_attribute("lang", "fr")
    expect(box).to_have_attribute("dir", "ltr")


def test_a_language_without_texts_falls_back_to_english(page: Page, notifier: Notifier) -> None:
    page_with_widget(page, notifier, html_lang="de-AT", attributes="")

    box = page.get_by_role("region", name="Never miss breaking news on Israel")
    expect(box).to_have_attribute("dir", "ltr")


def test_data_strings_still_override_a_translated_text(page: Page, notifier: Notifier) -> None:
    page_with_widget(
        page,
        notifier,
        html_lang="fr",
        attributes='data-strings=\'{"subscribe": "Alertez-moi"}\'',
    )

    box = page.get_by_role("region", name=FRENCH_TITLE)
    expect(box.get_by_role("button", name="Alertez-moi")).to_be_visible()
    expect(box).to_contain_text("Recevez une notification")


def test_subscribing_sends_the_widgets_locale_and_the_browsers_time_zone(
    page: Page, context: BrowserContext, notifier: Notifier, firebase: FakeFirebase
) -> None:
    context.grant_permissions(["notifications"], origin=notifier.url)
    page_with_widget(page, notifier, html_lang="en", attributes='data-locale="fr-CA"')

    page.get_by_role("button", name="Recevoir les notifications").click()

    expect(status(page)).to_have_text("Vous recevrez les alertes info sur Israel.")
    [token] = firebase.issued
    profile = profile_of(notifier, token)
    assert (profile.locale, profile.timezone) == ("fr-CA", "Asia/Jerusalem")
    assert profile.topics == ["israel"]


def test_a_hebrew_reader_is_subscribed_with_the_hebrew_locale(
    page: Page, context: BrowserContext, notifier: Notifier, firebase: FakeFirebase
) -> None:
    allow_and_click(page, context, notifier.url, path="/demo?lang=he", button=HEBREW_SUBSCRIBE)

    expect(page.get_by_role("heading", name="נרשמתם להתראות")).to_be_visible()
    [token] = firebase.issued
    assert profile_of(notifier, token).locale == "he"


def open_settings(page: Page, manage: str = "Manage topics") -> Locator:
    page.get_by_role("button", name=manage).click()
    form = widget(page).locator("form")
    expect(form).to_be_visible()
    return form


def test_quiet_hours_and_a_daily_cap_are_saved_and_shown_after_a_reload(
    page: Page, notifier: Notifier, subscribed_token: str, screenshot: Screenshot
) -> None:
    form = open_settings(page)

    form.get_by_role("checkbox", name="Quiet hours", exact=True).check()
    form.get_by_label("From").fill("23:00")
    form.get_by_label("Until").fill("06:30")
    form.get_by_role("radio", name="Don't send").check()
    form.get_by_label("Most alerts per day").fill("5")
    form.get_by_role("button", name="Save settings").click()

    expect(status(page)).to_have_text("Your settings are saved.")
    screenshot(widget(page), "settings-saved")
    profile = profile_of(notifier, subscribed_token)
    assert profile.quiet_hours == {"start": "23:00", "end": "06:30", "mode": "skip"}
    assert profile.max_per_day == 5
    assert profile.timezone == "Asia/Jerusalem"
    assert profile.topics == ["israel"]

    page.reload()
    form = open_settings(page)
    expect(form.get_by_role("checkbox", name="Quiet hours", exact=True)).to_be_checked()
    expect(form.get_by_label("From")).to_have_value("23:00")
    expect(form.get_by_label("Until")).to_have_value("06:30")
    expect(form.get_by_role("radio", name="Don't send")).to_be_checked()
    expect(form.get_by_label("Most alerts per day")).to_have_value("5")


def test_clearing_the_settings_turns_quiet_hours_off_and_removes_the_cap(
    page: Page, notifier: Notifier, subscribed_token: str
) -> None:
    form = open_settings(page)
    form.get_by_role("checkbox", name="Quiet hours", exact=True).check()
    form.get_by_label("Most alerts per day").fill("3")
    form.get_by_role("button", name="Save settings").click()
    expect(status(page)).to_have_text("Your settings are saved.")
    assert profile_of(notifier, subscribed_token).quiet_hours == {
        "start": "22:00",
        "end": "07:00",
        "mode": "silent",
    }

    form.get_by_role("checkbox", name="Quiet hours", exact=True).uncheck()
    expect(form.get_by_label("From")).to_be_disabled()
    form.get_by_label("Most alerts per day").fill("")
    form.get_by_role("button", name="Save settings").click()

    # The status already says "saved" from the first save; wait for the database instead.
    eventually(page, lambda: profile_of(notifier, subscribed_token).max_per_day is None)
    cleared = profile_of(notifier, subscribed_token)
    assert (cleared.quiet_hours, cleared.max_per_day) == (None, None)
    expect(status(page)).to_have_text("Your settings are saved.")


def test_a_cap_out_of_range_shows_an_error_and_saves_nothing(
    page: Page, notifier: Notifier, subscribed_token: str, screenshot: Screenshot
) -> None:
    form = open_settings(page)
    cap = form.get_by_label("Most alerts per day")

    for bad in ("0", "1000", "2.5"):
        cap.fill(bad)
        form.get_by_role("button", name="Save settings").click()
        expect(form.get_by_text("Enter a whole number from 1 to 100")).to_be_visible()
        expect(cap).to_have_attribute("aria-invalid", "true")
        expect(cap).to_be_focused()
    screenshot(widget(page), "cap-invalid")
    assert profile_of(notifier, subscribed_token).max_per_day is None

    cap.fill("100")
    form.get_by_role("button", name="Save settings").click()
    expect(status(page)).to_have_text("Your settings are saved.")
    expect(form.get_by_text("Enter a whole number from 1 to 100")).to_be_hidden()
    expect(cap).not_to_have_attribute("aria-invalid", "true")
    assert profile_of(notifier, subscribed_token).max_per_day == 100


def test_a_rejected_save_shows_an_error_and_keeps_the_box_working(
    page: Page, notifier: Notifier, subscribed_token: str
) -> None:
    form = open_settings(page)
    # A time zone the server's zone database does not know: the API answers 422.
    page.evaluate(
        """() => {
          const real = Intl.DateTimeFormat.prototype.resolvedOptions;
          Intl.DateTimeFormat.prototype.resolvedOptions = function () {
            return Object.assign(real.call(this), { timeZone: "Mars/Olympus_Mons" });
          };
        }"""
    )
    form.get_by_role("checkbox", name="Quiet hours", exact=True).check()
    form.get_by_role("button", name="Save settings").click()

    expect(form.get_by_text("Something went wrong and nothing was changed.")).to_be_visible()
    assert profile_of(notifier, subscribed_token).quiet_hours is None
    page.get_by_role("button", name="Done").click()
    expect(page.get_by_role("heading", name="You're subscribed")).to_be_visible()


def test_the_manage_view_is_in_hebrew_and_right_to_left(
    page: Page,
    context: BrowserContext,
    notifier: Notifier,
    firebase: FakeFirebase,
    screenshot: Screenshot,
) -> None:
    allow_and_click(page, context, notifier.url, path="/demo?lang=he", button=HEBREW_SUBSCRIBE)
    form = open_settings(page, manage="ניהול נושאים")

    form.get_by_role("checkbox", name="שעות שקטות", exact=True).check()
    form.get_by_label("מספר התראות מרבי ביום").fill("1000")
    form.get_by_role("button", name="שמירת ההגדרות").click()
    expect(form.get_by_text("הזינו מספר שלם בין 1 ל־100")).to_be_visible()
    form.get_by_label("מספר התראות מרבי ביום").fill("4")
    form.get_by_role("button", name="שמירת ההגדרות").click()

    expect(status(page)).to_have_text("ההגדרות נשמרו.")
    [token] = firebase.issued
    assert profile_of(notifier, token).max_per_day == 4
    screenshot(widget(page), "hebrew-manage")


def test_the_settings_are_reachable_and_saved_by_keyboard(
    page: Page, notifier: Notifier, subscribed_token: str
) -> None:
    page.get_by_role("button", name="Manage topics").focus()
    page.keyboard.press("Enter")
    cap = widget(page).get_by_label("Most alerts per day")
    for _ in range(30):
        page.keyboard.press("Tab")
        if cap.evaluate("input => input === document.activeElement"):
            break
    expect(cap).to_be_focused()
    page.keyboard.type("7")
    page.keyboard.press("Enter")

    expect(status(page)).to_have_text("Your settings are saved.")
    assert profile_of(notifier, subscribed_token).max_per_day == 7


def test_the_urgent_toggle_is_saved_and_read_back_by_lookup(
    page: Page, notifier: Notifier, subscribed_token: str, screenshot: Screenshot
) -> None:
    form = open_settings(page)
    toggle = form.get_by_role("checkbox", name=URGENT)
    expect(toggle).to_be_checked()  # the default: urgent alerts come through

    toggle.uncheck()
    form.get_by_role("button", name="Save settings").click()

    expect(status(page)).to_have_text("Your settings are saved.")
    screenshot(widget(page), "manage-urgent-off")
    looked_up = page.request.post(
        f"{notifier.url}/v1/subscriptions/lookup", data={"token": subscribed_token}
    )
    assert looked_up.json()["urgent_overrides"] is False
    page.reload()
    form = open_settings(page)
    expect(form.get_by_role("checkbox", name=URGENT)).not_to_be_checked()

    form.get_by_role("checkbox", name=URGENT).check()
    form.get_by_role("button", name="Save settings").click()

    expect(status(page)).to_have_text("Your settings are saved.")
    assert profile_of(notifier, subscribed_token).urgent_overrides is True


def test_with_a_site_wide_cap_an_empty_cap_field_names_it_rather_than_no_limit(
    page: Page,
    context: BrowserContext,
    notifier: Notifier,
    firebase: FakeFirebase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """NOTIFIER_DEFAULT_MAX_PER_DAY=5: lookup's effective_max_per_day tells the form."""
    site_wide = notifier.runtime.settings.model_copy(update={"default_max_per_day": 5})
    monkeypatch.setattr(notifier.runtime, "settings", site_wide)
    subscribe(page, context, notifier.url)

    form = open_settings(page)

    cap = form.get_by_label("Most alerts per day")
    expect(cap).to_have_value("")
    expect(cap).to_have_attribute("placeholder", "5")
    expect(form).to_contain_text("Leave empty for this site's limit of 5 a day.")
    expect(form).not_to_contain_text("Leave empty for no limit.")
