"""The time budget of the steps: how long one request to the outside may take, and each step's
worst attempt counted in such requests (the budgets are in workflows/steps.py).

A step's start-to-close timeout is at least its worst attempt, every request taking its whole
limit; its heartbeat timeout exceeds the longest stretch between two heartbeats, which is one
request. Then a retry never starts while the attempt before it could still be inside a request
(a dead worker's attempt is retried after the heartbeat timeout, not the whole budget), and the
ledger's compare-and-set covers what is left (activities/payments.py). The gateway, the database
and the mail server are configured with these limits;
tests/workflow/test_steps_keep_to_their_budget.py counts every attempt's requests against its
step's budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

GATEWAY_REQUEST = timedelta(seconds=10)  # one payment-gateway request, connecting included
DATABASE_WAIT = timedelta(seconds=10)  # one transaction, waiting for a lock included
MAIL_COMMAND = timedelta(seconds=10)  # one SMTP command (connect, EHLO, ..., DATA, QUIT)
WEBHOOK_REQUEST = timedelta(seconds=10)  # one POST of an event to an endpoint, connecting included
HEARTBEAT_MARGIN = timedelta(seconds=5)
# The invoice email's lease outlives its last renewal by a heartbeat timeout.
MAIL_LEASE = max(GATEWAY_REQUEST, DATABASE_WAIT, MAIL_COMMAND) + HEARTBEAT_MARGIN


@dataclass(frozen=True)
class Budget:
    """A step's worst attempt, in requests of each kind."""

    gateway_requests: int = 0
    transactions: int = 0
    mail_commands: int = 0

    @property
    def worst_attempt(self) -> timedelta:
        return (self.gateway_requests * GATEWAY_REQUEST + self.transactions * DATABASE_WAIT
                + self.mail_commands * MAIL_COMMAND)

    @property
    def heartbeat(self) -> timedelta:
        """The heartbeat timeout: one request of any kind, and a margin."""
        return max(GATEWAY_REQUEST, DATABASE_WAIT, MAIL_COMMAND) + HEARTBEAT_MARGIN
