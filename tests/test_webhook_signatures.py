"""Standard Webhooks signatures, as a CMS's signing library and an attacker would meet them."""

from __future__ import annotations

import base64
import os

import pytest

from notifier.intake.signatures import WebhookRejected, sign_webhook, verify_webhook

NOW = 1_750_000_000
TOLERANCE = 300
BODY = b'{"type": "article.published", "data": {"id": "a-1"}}'


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


SECRET, OTHER_SECRET = new_secret(), new_secret()


def signed_headers(
    body: bytes = BODY, *, secret: str = SECRET, webhook_id: str = "msg_1", ts: int = NOW
) -> dict[str, str]:
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign_webhook(secret, webhook_id, ts, body),
    }


def verify(headers: dict[str, str], body: bytes = BODY, secrets: list[str] | None = None) -> str:
    return verify_webhook(
        headers, body, [SECRET] if secrets is None else secrets, tolerance=TOLERANCE, now=NOW
    )


def rejection(headers: dict[str, str], body: bytes = BODY, **kwargs: list[str]) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as caught:
        verify(headers, body, **kwargs)
    return caught.value


def test_a_correctly_signed_delivery_yields_its_webhook_id() -> None:
    assert verify(signed_headers(webhook_id="msg_2zWa")) == "msg_2zWa"


def test_signatures_match_the_standard_webhooks_reference_example() -> None:
    # The example from the Standard Webhooks specification, so any CMS library interoperates.
    signature = sign_webhook(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_header_names_are_case_insensitive() -> None:
    headers = {name.title(): value for name, value in signed_headers().items()}
    assert verify(headers) == "msg_1"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_each_missing_header_is_401_naming_it(missing: str) -> None:
    headers = signed_headers()
    del headers[missing]
    rejected = rejection(headers)
    assert rejected.status == 401
    assert missing in rejected.detail


@pytest.mark.parametrize("offset", [-TOLERANCE - 1, TOLERANCE + 1], ids=["too-old", "future"])
def test_a_timestamp_outside_the_tolerance_is_401_either_way(offset: int) -> None:
    assert rejection(signed_headers(ts=NOW + offset)).status == 401


@pytest.mark.parametrize("offset", [-TOLERANCE, TOLERANCE])
def test_a_timestamp_at_the_edge_of_the_tolerance_is_accepted(offset: int) -> None:
    assert verify(signed_headers(ts=NOW + offset)) == "msg_1"


@pytest.mark.parametrize(
    "timestamp", ["soon", "1.75e9", "-1750000000", "\u0661\u0667\u0665\u0660" * 3, "9" * 40]
)
def test_a_timestamp_that_is_not_unix_seconds_is_401(timestamp: str) -> None:
    headers = signed_headers() | {"webhook-timestamp": timestamp}
    rejected = rejection(headers)
    assert (rejected.status, rejected.title) == (401, "Invalid webhook timestamp")


def test_a_body_changed_by_one_byte_is_401() -> None:
    tampered = BODY.replace(b"a-1", b"a-2")
    assert rejection(signed_headers(), tampered).title == "Invalid webhook signature"


def test_a_signature_made_for_another_webhook_id_is_401() -> None:
    headers = signed_headers() | {"webhook-id": "msg_other"}
    assert rejection(headers).status == 401


def test_a_wrong_secret_is_401() -> None:
    assert rejection(signed_headers(secret=OTHER_SECRET)).status == 401


@pytest.mark.parametrize("signer", [SECRET, OTHER_SECRET], ids=["old", "new"])
def test_both_secrets_are_accepted_during_a_rotation(signer: str) -> None:
    assert verify(signed_headers(secret=signer), secrets=[SECRET, OTHER_SECRET]) == "msg_1"


def test_an_unknown_signature_version_alone_is_401() -> None:
    valid = signed_headers()["webhook-signature"]
    headers = signed_headers() | {"webhook-signature": valid.replace("v1,", "v1a,")}
    assert rejection(headers).title == "Unsupported webhook signature"


def test_one_valid_signature_among_several_is_enough() -> None:
    valid = signed_headers()["webhook-signature"]
    wrong = signed_headers(secret=OTHER_SECRET)["webhook-signature"]
    headers = signed_headers() | {"webhook-signature": f"v1a,abc {wrong} v1,@@notbase64 {valid}"}
    assert verify(headers) == "msg_1"


def test_several_signatures_none_valid_is_401() -> None:
    wrong = signed_headers(secret=OTHER_SECRET)["webhook-signature"]
    headers = signed_headers() | {"webhook-signature": f"{wrong} v1,{'A' * 44}"}
    assert rejection(headers).title == "Invalid webhook signature"


@pytest.mark.parametrize("webhook_id", ["has space", "x" * 201, "line\nbreak"])
def test_a_webhook_id_that_cannot_be_stored_or_logged_safely_is_401(webhook_id: str) -> None:
    assert rejection(signed_headers(webhook_id=webhook_id)).status == 401


def test_without_any_configured_secret_nothing_is_accepted() -> None:
    rejected = rejection(signed_headers(), secrets=[])
    assert (rejected.status, rejected.title) == (503, "Webhook secrets not configured")


def test_a_secret_that_is_not_base64_is_skipped_not_fatal() -> None:
    assert verify(signed_headers(), secrets=["whsec_not*base64!!", SECRET]) == "msg_1"
