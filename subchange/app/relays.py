"""Starting and waking webhook relays from outside a worker: what `worker.py` makes sure of at
start-up (the relay of every endpoint that is not disabled, started when it is not running, so
an endpoint whose relay was never started, or whose wake-ups were all lost, is delivered to
anyway), and the wake-ups owed by what a command or an API route commits:

    sessions, woken = noting_wakes(factory)
    with sessions() as session:
        row, secret = webhooks.add_endpoint(session=session, url=url, events=events)
        session.commit()
    await wake_relays(client, woken, task_queue=settings.task_queue)
"""

from __future__ import annotations

import logging

from temporalio.client import Client

from subchange.adapters.relays import wake_relays
from subchange.store import outbox, webhooks
from subchange.store.db import SessionFactory

__all__ = ["noting_wakes", "start_relays", "wake_relays"]

log = logging.getLogger(__name__)


def noting_wakes(factory: SessionFactory) -> tuple[SessionFactory, set[str]]:
    """Sessions whose commits note the endpoints whose relays they owe a wake (an endpoint
    added or removed, an event replayed), and the set they note them in."""
    woken: set[str] = set()
    return outbox.waking(factory, woken.update), woken


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
