"""Heartbeats for the steps that have a heartbeat timeout (workflows/steps.py), and the leases
of the mail steps they renew."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from temporalio import activity

from subchange.domain.limits import MAIL_LEASE
from subchange.store.tables import utcnow


@contextmanager
def heartbeating(every: timedelta = timedelta(seconds=2), *,
                 also: Callable[[], object] | None = None) -> Iterator[None]:
    """Heartbeat from a side thread while one bounded call runs that can't heartbeat itself (an
    SMTP session: several commands, each within its own timeout), so the attempt of a worker that
    died in it is still retried after the heartbeat timeout, and a live one is not. `also` runs
    at every beat too (renewing a lease); its failure is logged, the call goes on."""
    stop, context = threading.Event(), contextvars.copy_context()

    def beat() -> None:
        while not stop.wait(every.total_seconds()):
            context.run(activity.heartbeat)
            if also is not None:
                try:
                    also()
                except Exception:  # noqa: BLE001 - the send itself decides the attempt
                    context.run(activity.logger.exception, "renewing the lease failed")

    beater = threading.Thread(target=beat, name="heartbeat", daemon=True)
    beater.start()
    try:
        yield
    finally:
        stop.set()
        beater.join()


def lease_end() -> datetime:
    """When a lease of a mail step (the invoice, the payment notice) taken or renewed now ends:
    it outlives its last renewal by a heartbeat timeout, so a worker that died while sending
    frees it about when Temporal retries the step."""
    return utcnow() + MAIL_LEASE


def until(moment: datetime | None) -> timedelta:
    """How long until `moment` (a lease's end), at least a second: a retry's delay."""
    if moment is None:
        return timedelta(seconds=1)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(moment - utcnow(), timedelta(seconds=1))
