"""The time budget of the steps that move money: how long one request to the outside may take, and
each step's worst attempt counted in such requests.

A step's start-to-close timeout is at least its worst attempt, every request taking its whole
limit; its heartbeat timeout exceeds the longest stretch between two heartbeats, which is one
request. Then a retry never starts while the attempt before it could still be inside a request
(a dead worker's attempt is retried after the heartbeat timeout, not the whole budget), and the
ledger's compare-and-set covers what is left (activities/payments.py). The gateway and the
database are configured with these limits; tests/unit/test_step_budget.py counts the requests of
every path of the steps against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

GATEWAY_REQUEST = timedelta(seconds=10)  # one payment-gateway request, connecting included
DATABASE_WAIT = timedelta(seconds=10)  # one transaction, waiting for a lock included
HEARTBEAT_MARGIN = timedelta(seconds=5)


@dataclass(frozen=True)
class Budget:
    gateway_requests: int
    transactions: int

    @property
    def worst_attempt(self) -> timedelta:
        return self.gateway_requests * GATEWAY_REQUEST + self.transactions * DATABASE_WAIT

    @property
    def heartbeat(self) -> timedelta:
        """The heartbeat timeout: one request of either kind, and a margin."""
        return max(GATEWAY_REQUEST, DATABASE_WAIT) + HEARTBEAT_MARGIN


# charge: card attached?, attach, create intent, read it, confirm, read back a refused confirm;
# take the entry (insert, or read and take over: 3), read the card, record the intent, hold it
# before confirming, record the outcome, read the entry when an attempt lost.
CHARGE = Budget(gateway_requests=6, transactions=8)
# refund_charge: read the intent, cancel it (or read back), find an existing refund, refund;
# take the refund entry (3), is the change applied?, void the charge entry (3), hold before
# refunding, record the refund, read the entry when an attempt lost.
REFUND = Budget(gateway_requests=5, transactions=11)
