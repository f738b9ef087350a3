"""Every step's attempt stays inside the time budget its timeouts are set from
(subchange.domain.limits, workflows/steps.py): the driver below go through every step of the
pipeline, and each attempt's gateway requests and database transactions are counted as they
happen. A step that grows a request must grow its budget, and with it its timeout, so that a
retry never starts while the attempt before it could still be inside a request."""

from __future__ import annotations

import collections
import dataclasses
import smtplib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
import sqlalchemy as sa
from temporalio import activity

from subchange.domain import limits
from subchange.domain.contracts import CancelRequest, ChangeStatus, SalesDecision
from tests.helpers.documents import THREE_D_SECURE_CARD, admin, members, unique_org
from tests.helpers.driver import load_suite, request_for, wait_for, wait_for_sales, wait_parked
from tests.helpers.observers import subscription_row
from tests.helpers.services import own_clock
from workflows.steps import STEPS
from workflows.subscription_change import SubscriptionChange

time_skipping_env = own_clock()  # its own clock: it skips days


@dataclasses.dataclass
class Counts:
    requests: int = 0
    transactions: int = 0
    mail_commands: int = 0


@pytest.fixture
def per_attempt(monkeypatch, engine: sa.Engine) -> Iterator[dict[tuple[str, str, int], Counts]]:
    """Gateway requests, database transactions and SMTP commands (each reply awaited, the
    greeting included) per (step, workflow id, attempt), counted in the activity's threads."""
    counts: dict[tuple[str, str, int], Counts] = collections.defaultdict(Counts)

    def current() -> Counts | None:
        if not activity.in_activity():
            return None
        info = activity.info()
        return counts[(info.activity_type, info.workflow_id, info.attempt)]

    send = requests.Session.request

    def counting(self, *args, **kwargs):
        if (attempt := current()) is not None:
            attempt.requests += 1
        return send(self, *args, **kwargs)

    def begun(_connection) -> None:
        if (attempt := current()) is not None:
            attempt.transactions += 1

    reply = smtplib.SMTP.getreply

    def replied(self):
        if (attempt := current()) is not None:
            attempt.mail_commands += 1
        return reply(self)

    monkeypatch.setattr(requests.Session, "request", counting)
    monkeypatch.setattr(smtplib.SMTP, "getreply", replied)
    sa.event.listen(engine, "begin", begun)
    yield counts
    sa.event.remove(engine, "begin", begun)


async def test_every_step_keeps_to_its_budget(driver, per_attempt, deps, monkeypatch):
    # A card payer's increase: open, authorize, validate, quote, charge, apply, email, close.
    org = unique_org("budget")
    await load_suite(driver, org)
    done = await driver.run(org, seats=35)
    assert done.status is ChangeStatus.COMPLETED, done.reason
    # A downgrade with a refund request: the refund ticket.
    desk = unique_org("budgetdesk")
    await driver.load(desk, users=[admin(desk), *members(desk, 2, products=["desk"],
                                                           prefix="agent")],
                      subscriptions=[{"product": "desk", "plan": "enterprise", "seats": 5}])
    down = await driver.run(desk, "desk", plan="professional", refund=True)
    assert down.refund_ticket is not None
    # A downgrade at the period end: its slot taken, then, when the period ends, fired.
    later = request_for(desk, "desk", plan="standard").model_copy(
        update={"effective": "period_end"})
    handle = await driver.start_request(later)
    await wait_for(handle, lambda v: v.state == "scheduled", "scheduled")
    end = datetime.combine(subscription_row(deps, desk, "desk").period_end,
                           datetime.min.time(), UTC)
    await driver.env.sleep(end - await driver.env.get_current_time() + timedelta(hours=1))
    assert (await driver.result(handle)).status is ChangeStatus.COMPLETED
    # An offline payer approved by sales: the sales case, opened and closed.
    offline = unique_org("budgetsales")
    await load_suite(driver, offline, card=None)
    handle = await driver.start(offline, seats=35)
    await wait_for_sales(handle)
    await handle.execute_update(SubscriptionChange.sales_decision,
                                SalesDecision(approved=True, by="sales@vendor.example"))
    assert (await driver.result(handle)).status is ChangeStatus.COMPLETED
    # A card that needs 3-D Secure (a hard decline: the billing contact's notice, the wait for
    # a new card), here for a second before support is asked (the park's record), then
    # cancelled: the refund step voids its intent.
    monkeypatch.setattr(deps.settings, "payment_retry_schedule", (timedelta(seconds=1),))
    secure = unique_org("budget3ds")
    await load_suite(driver, secure, card=THREE_D_SECURE_CARD)
    handle = await driver.start(secure, seats=35)
    await wait_parked(handle)
    await handle.execute_update(SubscriptionChange.cancel,
                                CancelRequest(by="support@vendor.example"))
    assert (await driver.result(handle)).status is ChangeStatus.CANCELLED
    # A cancellation through Temporal while sales decide: recorded in the audit log.
    dropped = unique_org("budgettcancel")
    await load_suite(driver, dropped, card=None)
    handle = await driver.start(dropped, seats=35)
    await wait_for_sales(handle)
    await handle.cancel()
    assert (await driver.result(handle)).status is ChangeStatus.CANCELLED

    budgets = {step.name: step.policy.budget for step in STEPS}
    seen = {name for name, _, _ in per_attempt}
    over = {key: counts for key, counts in per_attempt.items()
            if counts.requests > budgets[key[0]].gateway_requests
            or counts.transactions > budgets[key[0]].transactions
            or counts.mail_commands > budgets[key[0]].mail_commands}
    assert over == {}
    assert seen >= set(budgets) - {"find_applied_change"}  # only after a failed apply


@pytest.mark.parametrize("step", STEPS, ids=lambda step: step.name)
def test_each_step_is_timed_from_its_budget(step):
    policy, budget = step.policy, step.policy.budget
    assert policy.start_to_close >= budget.worst_attempt
    if policy.money_safe is not None:  # it moves money: it heartbeats between requests
        assert policy.heartbeat is not None
    if policy.heartbeat is not None:
        assert max(limits.GATEWAY_REQUEST, limits.DATABASE_WAIT) < policy.heartbeat
        assert policy.heartbeat < policy.start_to_close
