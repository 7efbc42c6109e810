"""A click on a translated web notification lands where the send pointed that device.

The real planner and batch sender choose each device's text (``fr-CA`` -> ``fr`` -> the alert's
own); the URL each target was given is what the service worker names in the click, and the open
counter must land the reader on it.
"""

from __future__ import annotations

from notifier.http.app import create_app
from tests.send_path.conftest import SendPath
from tests.send_path.fake_sender import FakeSender

OWN = "https://news.example/a"
FRENCH = "https://news.example/fr/a"


def test_each_reader_lands_on_the_url_of_the_text_it_was_sent(send_path: SendPath) -> None:
    for token, locale in [("ca-0001", "fr-CA"), ("fr-0001", "fr"), ("de-0001", "de")]:
        send_path.add_device(token, platform="web", locale=locale)
    translations = {"fr": {"headline": "Séisme", "url": FRENCH}, "fr-CA": {"headline": "Séisme"}}
    alert_id = send_path.new_alert(locale="en", translations=translations)
    sender = FakeSender()
    for batch_id in send_path.plan(alert_id):
        send_path.send(batch_id, sender)
    client = create_app(runtime=send_path.runtime).test_client()

    landed = {}
    for _, batch in sender.requests:
        for target in batch:
            carried = target.text.url if target.text else OWN
            response = client.get(f"/o/{alert_id}", query_string={"to": carried})
            landed[target.token] = response.headers["Location"]

    # fr-CA's own translation has no URL: it links to the alert's, as its notification did.
    assert landed == {"ca-0001": OWN, "fr-0001": FRENCH, "de-0001": OWN}
    assert send_path.alert(alert_id).opens == 3
