"""The `WebhookRelay` workflow: one per webhook endpoint (id `webhook-endpoint-<endpoint id>`),
delivering that endpoint's events from the outbox one at a time, in outbox order, so the events
of one change arrive in the order they happened (SPEC section 13).

Why a workflow per endpoint: an endpoint that is slow or down holds up only its own relay, never
a change nor another endpoint; its retries (about three days) are durable and show in the Web
UI as the `webhook_deliver` step of that relay, and a worker's death loses nothing.

It is woken by a signal after each commit that owes the endpoint an event, and polls the outbox
every WEBHOOK_POLL_EVERY, so an event whose wake-up was lost is delivered anyway. It ends when
its endpoint is removed or disabled (410 Gone), and continues as new every ROUNDS_PER_RUN
rounds, so its history stays short.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from subchange.domain.limits import DATABASE_WAIT, WEBHOOK_REQUEST
    from subchange.domain.webhooks import (
        RELAY_WORKFLOW,
        WAKE_SIGNAL,
        DeliveryInput,
        DeliveryOutcome,
        PendingDeliveries,
        PendingInput,
        RelayInput,
        RelayOutcome,
    )

ROUNDS_PER_RUN = 100
PENDING, DELIVER = "webhook_pending", "webhook_deliver"  # its steps (activities/webhooks.py)
RELAY_STEPS = (PENDING, DELIVER)
# Reading the outbox: retried until the database answers.
DATABASE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                             maximum_interval=timedelta(minutes=1), maximum_attempts=0)
# Delivering: each failed attempt says when the next one is (WEBHOOK_RETRY_SCHEDULE or the
# endpoint's Retry-After), and the last one ends the step; these intervals apply only to an
# attempt that died without saying (its worker killed).
DELIVERY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), backoff_coefficient=2.0,
                             maximum_interval=timedelta(minutes=10), maximum_attempts=0)


@workflow.defn(name=RELAY_WORKFLOW)
class WebhookRelay:
    def __init__(self) -> None:
        self.woken = False
        # The poll's timer. A wake-up never cancels it (the next wait reuses it while it runs):
        # a cancel racing the timer's firing is a pointless command, and one the time-skipping
        # test server refuses (temporalio/sdk-java#3088).
        self.tick: asyncio.Task[None] | None = None

    @workflow.signal(name=WAKE_SIGNAL)
    def wake(self) -> None:
        """Events were committed for this endpoint: look at the outbox now."""
        self.woken = True

    @workflow.run
    async def run(self, relay: RelayInput) -> RelayOutcome:
        for _ in range(ROUNDS_PER_RUN):
            self.woken = False
            pending = await workflow.execute_activity(
                PENDING, PendingInput(endpoint_id=relay.endpoint_id),
                result_type=PendingDeliveries, start_to_close_timeout=2 * DATABASE_WAIT,
                retry_policy=DATABASE_RETRY, summary="the endpoint's pending events")
            if pending.endpoint_status in ("removed", "disabled"):
                return RelayOutcome(endpoint_id=relay.endpoint_id, ended=pending.endpoint_status)
            for event_id in pending.event_ids:
                delivered = await workflow.execute_activity(
                    DELIVER, DeliveryInput(endpoint_id=relay.endpoint_id, event_id=event_id),
                    result_type=DeliveryOutcome, retry_policy=DELIVERY_RETRY,
                    start_to_close_timeout=WEBHOOK_REQUEST + 3 * DATABASE_WAIT,
                    summary=f"deliver {event_id}")
                if delivered.outcome == "stopped":  # removed or disabled meanwhile
                    break
            if workflow.info().is_continue_as_new_suggested():
                break
            if not pending.event_ids:
                await self._woken_or_polled(pending.poll_every)
        workflow.continue_as_new(relay)

    async def _woken_or_polled(self, poll_every: timedelta) -> None:
        if self.tick is None or self.tick.done():
            self.tick = asyncio.ensure_future(workflow.sleep(poll_every,
                                                             summary="poll the outbox"))
        tick = self.tick
        await workflow.wait_condition(lambda: self.woken or tick.done())
