"""The webhook relays a worker makes sure of at start-up: one per endpoint that is not disabled,
started when it is not running (signal-with-start), so an endpoint whose relay was never
started, or whose wake-ups were all lost, is delivered to anyway."""

from __future__ import annotations

import logging

from temporalio.client import Client

from subchange.adapters.relays import wake_relays
from subchange.store import webhooks
from subchange.store.db import SessionFactory

log = logging.getLogger(__name__)


async def start_relays(client: Client, sessions: SessionFactory, *, task_queue: str
                       ) -> list[str]:
    """Start or wake the relay of every endpoint not disabled; their ids."""
    with sessions() as session:
        endpoints = [row.id for row in webhooks.list_endpoints(session=session)
                     if row.status != "disabled"]
    missed = await wake_relays(client, endpoints, task_queue=task_queue)
    if missed:
        log.warning("could not start the webhook relays of %s; each starts with its next "
                    "event", ", ".join(missed))
    if endpoints:
        log.info("webhook relays of %d endpoints running", len(endpoints) - len(missed))
    return endpoints
