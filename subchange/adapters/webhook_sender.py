"""POSTing an event to a webhook endpoint, signed as the Standard Webhooks specification says
(the `standardwebhooks` package): `webhook-id` (the event's id, the same on every attempt),
`webhook-timestamp` (this attempt's), `webhook-signature` (`v1,<base64 HMAC-SHA256 of
"id.timestamp.body">`, one per secret that signs: two during a rotation). Redirects are not
followed: an endpoint answers where it is configured."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from standardwebhooks import Webhook

from subchange.domain.limits import WEBHOOK_REQUEST

USER_AGENT = "subchange-webhooks/1"


@dataclass(frozen=True)
class Answer:
    """What the endpoint answered: its status code (None: no answer at all), the wait it asked
    for (Retry-After), and what went wrong, for the delivery's record (None when delivered)."""

    status_code: int | None
    retry_after: timedelta | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def signature(secrets: Sequence[str], *, event_id: str, timestamp: datetime, body: bytes) -> str:
    """The `webhook-signature` header: a signature per secret, space separated."""
    return " ".join(Webhook(secret).sign(event_id, timestamp, body) for secret in secrets)


def retry_after(value: str | None, *, now: datetime) -> timedelta | None:
    """A Retry-After header's wait: seconds, or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - now, timedelta(0))


class WebhookSender:
    def __init__(self, timeout: timedelta = WEBHOOK_REQUEST) -> None:
        self.client = httpx.Client(timeout=timeout.total_seconds(), follow_redirects=False,
                                   headers={"user-agent": USER_AGENT})

    def send(self, *, url: str, event_id: str, body: bytes, secrets: Sequence[str],
             now: datetime) -> Answer:
        headers = {"content-type": "application/json", "webhook-id": event_id,
                   "webhook-timestamp": str(int(now.timestamp())),
                   "webhook-signature": signature(secrets, event_id=event_id, timestamp=now,
                                                  body=body)}
        try:
            response = self.client.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            return Answer(None, error=f"no answer within {self.client.timeout.read} s")
        except httpx.HTTPError as error:
            return Answer(None, error=f"{type(error).__name__}: {error}")
        if 200 <= response.status_code < 300:
            return Answer(response.status_code)
        return Answer(response.status_code,
                      retry_after=retry_after(response.headers.get("retry-after"), now=now),
                      error=f"HTTP {response.status_code} {response.reason_phrase}".strip())

    def close(self) -> None:
        self.client.close()
