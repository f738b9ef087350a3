"""Waking the webhook relays (one `WebhookRelay` workflow per endpoint, workflows/webhook_relay.py)
through Temporal: signal-with-start, so a relay that is not running (a new endpoint, one whose
relay ended) starts, and a running one looks at the outbox at once instead of at its next poll.

Best effort: a worker's activity wakes the relays after its transaction commits without waiting
for the answer, so a change's step is never delayed nor failed by it; a wake that is lost (the
worker killed between the commit and the signal, the server unreachable) is made up by the
relay's poll of the outbox (WEBHOOK_POLL_EVERY) and by `worker.py`, which starts the relay of
every endpoint at start-up."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Collection, Iterable
from concurrent.futures import Future

from temporalio.client import Client

from subchange.domain.webhooks import RELAY_WORKFLOW, WAKE_SIGNAL, RelayInput, relay_workflow_id
from subchange.faults import pause_point
from subchange.settings import Settings

log = logging.getLogger(__name__)


async def wake_relay(client: Client, endpoint_id: str, *, task_queue: str) -> None:
    await client.start_workflow(
        RELAY_WORKFLOW, RelayInput(endpoint_id=endpoint_id),
        id=relay_workflow_id(endpoint_id), task_queue=task_queue, start_signal=WAKE_SIGNAL,
        static_summary=f"deliver the events of webhook endpoint {endpoint_id}")


async def wake_relays(client: Client, endpoint_ids: Iterable[str], *, task_queue: str
                      ) -> list[str]:
    """Wake each relay; the endpoints whose relay could not be woken."""
    endpoint_ids = sorted(endpoint_ids)
    outcomes = await asyncio.gather(
        *(wake_relay(client, endpoint_id, task_queue=task_queue) for endpoint_id in endpoint_ids),
        return_exceptions=True)
    return [endpoint_id for endpoint_id, outcome in zip(endpoint_ids, outcomes, strict=True)
            if isinstance(outcome, BaseException)]


class RelayWaker:
    """Wakes relays from any thread (a worker's activities), on the worker's event loop, without
    waiting; never raises."""

    def __init__(self, client: Client, loop: asyncio.AbstractEventLoop, *, task_queue: str,
                 settings: Settings) -> None:
        self.client, self.loop, self.task_queue, self.settings = client, loop, task_queue, settings

    def __call__(self, endpoint_ids: Collection[str]) -> None:
        pause_point(self.settings, "webhook.before_wake")  # the crash tests' moment
        for endpoint_id in sorted(endpoint_ids):
            try:
                future = asyncio.run_coroutine_threadsafe(
                    wake_relay(self.client, endpoint_id, task_queue=self.task_queue), self.loop)
            except RuntimeError:  # the worker's loop has stopped: the relays poll
                return
            future.add_done_callback(functools.partial(_report, endpoint_id=endpoint_id))


def _report(done: Future, endpoint_id: str) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("could not wake the webhook relay of %s (it polls the outbox): %s",
                    endpoint_id, done.exception())
