"""Real Chromium against a real notifier API: the widget, its service worker, the demo page.

One API (werkzeug in a thread of this process, on SQLite) serves the whole session, so tests can
look in its database directly; each test starts with an empty database and a fresh browser
context (no permissions, storage or service workers carried over). That API is configured as
production (FCM credentials). The reader's loop on the ``make run`` stack uses ``dev`` instead:
``notifier dev`` as a child process, one for the session (tests/browser/devstack.py), and
``reader``, a fresh browser profile on it. Chromium is Debian's ``/usr/bin/chromium``; without it
these tests skip, or fail when NOTIFIER_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page
from sqlalchemy import select
from werkzeug.serving import make_server

from notifier.alerts.service import AlertDraft, create_alert
from notifier.core.db import transaction
from notifier.core.models import Alert, Device
from notifier.emulator.service_account import write_service_account
from notifier.http.app import create_app
from notifier.runtime import Runtime
from notifier.subscriptions import service as subscriptions
from tests.browser.devstack import READER_RATE_LIMITS, DevStack, run_dev_stack
from tests.browser.fakes import FAKE_PUSH_SERVICE, PERMISSION_SPY, FakeFirebase
from tests.browser.reader import subscribe
from tests.browser.site import NewsSite
from tests.conftest import make_settings, truncate_all
from tests.support import free_port

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# An uncompressed P-256 point's shape (0x04 + 64 bytes); the fake push service never checks it.
VAPID_KEY = base64.urlsafe_b64encode(bytes([4, *range(64)])).rstrip(b"=").decode()


@dataclass
class Notifier:
    """The running API, and a look into its database for the tests' assertions."""

    url: str
    runtime: Runtime

    def topics_of(self, token: str) -> list[str] | None:
        """The topics the API holds for ``token``; ``None`` when it does not know the token."""
        with transaction(self.runtime.sessions) as session:
            profile = subscriptions.lookup(session, token)
        return None if profile is None else profile.topics

    def tokens(self) -> list[str]:
        with transaction(self.runtime.sessions) as session:
            return list(session.scalars(select(Device.token).order_by(Device.id)))

    def sent_alert(
        self, *, headline: str, url: str, translations: dict[str, dict[str, str]] | None = None
    ) -> str:
        """An alert as it looks once sent, to be clicked on; returns its id."""
        with transaction(self.runtime.sessions) as session:
            alert = create_alert(
                session,
                AlertDraft(
                    headline=headline,
                    url=url,
                    topics=("israel",),
                    translations=translations or {},
                ),
                default_hold=0,
                default_ttl=3600,
            )
            alert.status, alert.audience, alert.sent = "sent", 1, 1
            return alert.id

    def opens(self, alert_id: str) -> int:
        with transaction(self.runtime.sessions) as session:
            return session.get_one(Alert, alert_id).opens


@pytest.fixture(scope="session")
def news_site() -> Iterator[NewsSite]:
    site = NewsSite()
    yield site
    site.close()


@pytest.fixture(scope="session")
def notifier_api(
    tmp_path_factory: pytest.TempPathFactory, news_site: NewsSite
) -> Iterator[Notifier]:
    port = free_port()
    data = tmp_path_factory.mktemp("browser")
    # Credentials make this a production configuration: the widget takes the real Firebase path
    # (the emulator's web push stand-in has its own suite, tests/browser/test_reader_loop.py).
    credentials = write_service_account(
        data / "service-account.json",
        project_id="notifier-local",
        token_uri="http://127.0.0.1:9/token",
    )
    settings = make_settings(
        data,
        fcm_credentials=str(credentials),
        log_level="WARNING",
        vapid_key=VAPID_KEY,
        web_api_key="AIzaSyTest-browser-key",
        web_app_id="1:1234567890:web:0123456789abcdef",
        web_messaging_sender_id="1234567890",
        rate_limits=READER_RATE_LIMITS,
        cors_origins=news_site.url,
    )
    runtime = Runtime.start(settings)
    server = make_server("127.0.0.1", port, create_app(runtime=runtime), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="notifier-api", daemon=True)
    thread.start()
    yield Notifier(f"http://127.0.0.1:{server.server_port}", runtime)
    server.shutdown()
    runtime.close()


@pytest.fixture
def notifier(notifier_api: Notifier) -> Notifier:
    truncate_all(notifier_api.runtime.engine)
    return notifier_api


@pytest.fixture(scope="session")
def browser(chromium: Browser) -> Browser:
    """The session's shared Chromium (tests/chromium_fixture.py)."""
    return chromium


@pytest.fixture
def firebase(notifier: Notifier) -> FakeFirebase:
    return FakeFirebase(project_id=notifier.runtime.settings.fcm_project_id)


@pytest.fixture
def context(
    browser: Browser, notifier: Notifier, firebase: FakeFirebase
) -> Iterator[BrowserContext]:
    ctx = browser.new_context(
        base_url=notifier.url,
        locale="en-GB",
        timezone_id="Asia/Jerusalem",
        viewport={"width": 820, "height": 900},
    )
    ctx.set_default_timeout(5_000)
    ctx.route("**/*", firebase.route)
    ctx.add_init_script(FAKE_PUSH_SERVICE)
    ctx.add_init_script(PERMISSION_SPY)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def subscribed_token(
    page: Page, context: BrowserContext, notifier: Notifier, firebase: FakeFirebase
) -> str:
    """A reader already subscribed on the demo article (``reader.subscribe``): their one token.

    For tests whose subject is what a subscriber does next, not the subscribing itself.
    """
    subscribe(page, context, notifier.url)
    [token] = firebase.issued
    return token


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """``notifier dev`` as a newcomer starts it, shared by the session's reader-loop tests.

    Tests never empty it: each makes its own readers, tokens and headlines, and looks for those.
    """
    with run_dev_stack(tmp_path_factory.mktemp("reader-loop")) as stack:
        yield stack


@pytest.fixture
def reader(browser: Browser, dev: DevStack) -> Iterator[BrowserContext]:
    """A fresh browser profile on the dev stack: no permission, storage or service worker."""
    ctx = browser.new_context(
        base_url=dev.api, locale="en-GB", viewport={"width": 820, "height": 900}
    )
    ctx.set_default_timeout(10_000)
    ctx.add_init_script(PERMISSION_SPY)
    yield ctx
    ctx.close()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[Page | Locator, str], Path]:
    """Save a PNG under test-artifacts/ (gitignored) for a person to look at."""

    def save(target: Page | Locator, name: str) -> Path:
        test = re.sub(r"[^A-Za-z0-9_]+", "-", request.node.name).strip("-")
        path = ARTIFACTS / "browser" / f"{test}--{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(target, Page):
            target.screenshot(path=str(path), full_page=True)
        else:
            target.screenshot(path=str(path))
        return path

    return save
