"""``notifier send-test-event``: post a signed ``article.published`` event, as a CMS would."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid

import click

from notifier.cli.common import dev_webhook_secret, fail, get_settings


@click.command("send-test-event", help="Post a signed breaking-article event to the API.")
@click.option("--api", "api_url", default=None, help="API base URL (default: this NOTIFIER_PORT)")
@click.option("--headline", default="Breaking: test alert from notifier", show_default=True)
@click.option("--topic", "topics", multiple=True, default=["breaking"], show_default=True)
@click.option("--url", "article_url", default=None, help="article URL (default: the demo page)")
@click.option("--article-id", default=None, help="default: a fresh id, so every call alerts")
@click.option("--not-breaking", is_flag=True, help="send an article that should not alert")
def send_test_event(
    api_url: str | None,
    headline: str,
    topics: tuple[str, ...],
    article_url: str | None,
    article_id: str | None,
    not_breaking: bool,
) -> None:
    from notifier.intake.signatures import sign_webhook

    settings = get_settings()
    base = (api_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    secret = (
        settings.webhook_secrets[0]
        if settings.webhook_secrets
        else dev_webhook_secret(settings.data_dir)
    )
    article_id = article_id or f"test-{uuid.uuid4().hex[:12]}"
    body = json.dumps(
        {
            "type": "article.published",
            "data": {
                "id": article_id,
                "url": article_url or f"{base}/demo",
                "headline": headline,
                "topics": list(topics),
                "breaking": not not_breaking,
            },
        }
    ).encode()
    webhook_id = f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time())
    if not base.startswith(("http://", "https://")):
        fail("--api must be an http(s) URL")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        f"{base}/v1/events",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_webhook(secret, webhook_id, timestamp, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            click.echo(f"{response.status} {response.read().decode()}")
    except urllib.error.HTTPError as exc:
        fail(f"{exc.code} {exc.read().decode(errors='replace')}")
    except urllib.error.URLError as exc:
        fail(f"cannot reach {base}: {exc.reason}")
