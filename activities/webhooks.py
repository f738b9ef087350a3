"""The webhook relay's steps (workflows/webhook_relay.py): an endpoint's pending events in outbox
order, and one attempt to deliver one of them, a single signed POST.

The retry schedule is the delivery's own (WEBHOOK_RETRY_SCHEDULE, SPEC section 13): a failed
attempt is recorded and raised with the wait before the next one (Temporal retries the step
then; a 429 or 503's Retry-After replaces the wait), and the attempt after the last wait that
fails too marks the delivery failed and the endpoint failing (a metric and a log line), and the
relay goes on with the next event. Any 2xx delivers, and a failing endpoint that answers is
active again; 410 Gone disables the endpoint and ends its relay. Nothing here logs a secret or
an endpoint's URL (it may carry a token): endpoints are named by their id.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.dependencies import Dependencies
from subchange.adapters.webhook_sender import Answer, WebhookSender
from subchange.domain.webhooks import (
    DeliveryInput,
    DeliveryOutcome,
    PendingDeliveries,
    PendingInput,
)
from subchange.store import deliveries

# A Retry-After beyond this is taken as this: the schedule spans about three days.
LONGEST_RETRY_AFTER = timedelta(hours=24)


class WebhookActivities:
    def __init__(self, deps: Dependencies, sender: WebhookSender | None = None) -> None:
        self.deps = deps
        self.sender = sender or WebhookSender()

    @activity.defn(name="webhook_pending")
    def pending(self, ask: PendingInput) -> PendingDeliveries:
        with self.deps.sessions() as session:
            status = deliveries.endpoint_status(session=session, endpoint_id=ask.endpoint_id)
            owed = (deliveries.pending(session=session, endpoint_id=ask.endpoint_id,
                                       limit=ask.limit)
                    if status in ("active", "failing") else [])
        return PendingDeliveries(endpoint_status=status or "removed", event_ids=owed,
                                 poll_every=self.deps.settings.webhook_poll_every)

    @activity.defn(name="webhook_deliver")
    def deliver(self, job: DeliveryInput) -> DeliveryOutcome:
        attempt, schedule = activity.info().attempt, self.deps.settings.webhook_retry_schedule
        now = datetime.now(UTC)
        with self.deps.sessions() as session:
            owed = deliveries.attempt(session=session, endpoint_id=job.endpoint_id,
                                      event_id=job.event_id, now=now)
        if owed is None or owed.endpoint_status == "disabled":
            return DeliveryOutcome(outcome="stopped")
        if owed.delivery_status != "pending":  # delivered by an attempt that then died
            return DeliveryOutcome(outcome="skipped")
        if attempt > len(schedule) + 1:  # attempts that died before recording their answer
            answer = Answer(None, error="its attempts ran out without an answer recorded")
        else:
            body = json.dumps(owed.payload, separators=(",", ":"), ensure_ascii=False).encode()
            answer = self.sender.send(url=owed.url, event_id=job.event_id, body=body,
                                      secrets=owed.secrets, now=now)
        if answer.delivered:
            assert answer.status_code is not None
            with self.deps.sessions() as session:
                recovered = deliveries.delivered(session=session, endpoint_id=job.endpoint_id,
                                                 event_id=job.event_id,
                                                 status_code=answer.status_code)
            _count("delivered", owed.event_type)
            if recovered:
                activity.logger.info("webhook endpoint %s answers again: active",
                                     job.endpoint_id)
            return DeliveryOutcome(outcome="delivered")
        if answer.status_code == 410:
            with self.deps.sessions() as session:
                deliveries.gone(session=session, endpoint_id=job.endpoint_id,
                                event_id=job.event_id, status_code=410)
            _count("gone", owed.event_type)
            activity.logger.warning("webhook endpoint %s answered 410 Gone: disabled; what it "
                                    "was still owed is listed by `webhook failed`",
                                    job.endpoint_id)
            return DeliveryOutcome(outcome="stopped")
        error = answer.error or "not delivered"
        if attempt <= len(schedule):
            wait = schedule[attempt - 1]
            if answer.status_code in (429, 503) and answer.retry_after is not None:
                wait = min(max(answer.retry_after, timedelta(seconds=1)), LONGEST_RETRY_AFTER)
            with self.deps.sessions() as session:
                deliveries.retrying(session=session, endpoint_id=job.endpoint_id,
                                    event_id=job.event_id, status_code=answer.status_code,
                                    error=error, next_attempt_at=now + wait)
            raise ApplicationError(f"{job.event_id} not delivered to {job.endpoint_id} "
                                   f"(attempt {attempt}): {error}; next attempt in {wait}",
                                   type="WebhookNotDelivered", next_retry_delay=wait)
        with self.deps.sessions() as session:
            deliveries.exhausted(session=session, endpoint_id=job.endpoint_id,
                                 event_id=job.event_id, status_code=answer.status_code,
                                 error=error)
        _count("failed", owed.event_type)
        activity.logger.warning("webhook %s (%s) not delivered to endpoint %s after %d attempts "
                                "(%s): the endpoint is marked failing; `webhook failed` lists "
                                "it, `webhook replay` sends it again", job.event_id,
                                owed.event_type, job.endpoint_id, attempt, error)
        return DeliveryOutcome(outcome="failed")


def _count(outcome: str, event_type: str) -> None:
    activity.metric_meter().create_counter(
        "subchange_webhook_deliveries", "webhook deliveries that ended, by outcome").add(
        1, {"outcome": outcome, "event_type": event_type})
