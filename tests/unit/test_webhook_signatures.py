"""What a webhook request carries (subchange/adapters/webhook_sender.py), checked the way a
receiver checks it, with the `standardwebhooks` package: during a rotation both secrets' signatures,
each verifying on its own; a Retry-After read as seconds or as a date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from subchange.adapters.webhook_sender import retry_after, signature
from subchange.store.webhooks import new_secret


def test_during_a_rotation_either_secret_verifies_and_a_third_does_not():
    old, new, other = new_secret(), new_secret(), new_secret()
    now, body = datetime.now(UTC), b'{"type":"change.completed","timestamp":"...","data":{}}'
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": signature([new, old], event_id="evt_1", timestamp=now,
                                              body=body)}
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(body, headers)["type"] == "change.completed"
    assert Webhook(new).verify(body, headers)["type"] == "change.completed"
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)


def test_a_secret_is_32_random_bytes_in_the_whsec_form():
    secrets = {new_secret() for _ in range(20)}
    assert len(secrets) == 20 and all(s.startswith("whsec_") and len(s) == 50 for s in secrets)


@pytest.mark.parametrize(("header", "wait"), [
    ("120", timedelta(seconds=120)), (" 7 ", timedelta(seconds=7)), (None, None), ("soon", None),
    ("Wed, 21 Oct 2026 07:28:30 GMT", timedelta(seconds=30)),
    ("Wed, 21 Oct 2026 07:27:00 GMT", timedelta(0)),  # already past: at once
])
def test_retry_after_is_read_as_seconds_or_a_date(header, wait):
    now = datetime(2026, 10, 21, 7, 28, tzinfo=UTC)
    assert retry_after(header, now=now) == wait
