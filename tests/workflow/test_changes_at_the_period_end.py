"""Changes that take effect at the end of the billing period (SPEC section 10), through the real
workflow and activities, localstripe and the SMTP server: scheduled (nothing charged, visible by
ChangeStep="scheduled" and ChangeEffectiveAt), then applied when the period ends with a
zero-amount confirmation that names the date, or cancelled, replaced, refused as a second
scheduled change, or rejected when the rules no longer allow it. Time-skipping makes the waits
free, on this module's own server: the weeks it skips move no other test's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dateutil.relativedelta import relativedelta
from sqlmodel import select

from subchange.domain.contracts import CancelRequest, ChangeStatus, RescheduleRequest
from subchange.domain.search_attributes import CHANGE_EFFECTIVE_AT
from subchange.store.tables import OutboxEvent, ScheduledChange
from tests.helpers.documents import DECLINED_ON_CHARGE_CARD, SUPPORT, admin, members, unique_org
from tests.helpers.driver import refused, request_for, wait_for
from tests.helpers.observers import (
    mail_text,
    search_attributes,
    subscription_row,
    succeeded_charges,
)
from tests.helpers.services import own_clock
from workflows.subscription_change import SubscriptionChange

time_skipping_env = own_clock()  # its own clock: it skips days


async def load_desk(driver, org: str, *, plan: str = "professional", agents: int = 1) -> None:
    """A desk of 3 seats with `agents` active agents (the admin and members), billed monthly."""
    await driver.load(org, users=[admin(org), *members(org, agents - 1, products=["desk"])],
                      subscriptions=[{"product": "desk", "plan": plan, "seats": 3}])


async def schedule(driver, org: str, plan: str = "standard", *, replace: bool = False, **named):
    request = request_for(org, "desk", plan=plan, **named).model_copy(
        update={"effective": "period_end", "replace_scheduled": replace})
    handle = await driver.start_request(request)
    return handle, await wait_for(handle, lambda v: v.state == "scheduled" or v.result,
                                  "scheduled")


def slot_of(deps, org: str) -> str | None:
    with deps.sessions() as session:
        slot = session.get(ScheduledChange, subscription_row(deps, org, "desk").id)
        return slot.workflow_id if slot else None


async def past_the_period_end(driver, deps, org: str) -> None:
    end = subscription_row(deps, org, "desk").period_end
    now = await driver.env.get_current_time()
    await driver.env.sleep(datetime.combine(end, datetime.min.time(), UTC) - now
                           + timedelta(hours=1))


async def test_scheduled_then_applied_at_the_period_end_after_an_immediate_change(
        driver, deps, gateway, mailbox):
    org = unique_org("pend")
    await load_desk(driver, org)
    before = subscription_row(deps, org, "desk")
    handle, view = await schedule(driver, org)

    assert view.state == "scheduled" and str(before.period_end) in view.waiting_for
    described = (await handle.describe()).typed_search_attributes
    assert await search_attributes(handle, ("scheduled", "running")) == ("scheduled", "running")
    assert described.get(CHANGE_EFFECTIVE_AT).date() == before.period_end
    with deps.sessions() as session:
        events = session.exec(select(OutboxEvent.type)
                              .where(OutboxEvent.workflow_id == handle.id)).all()
    assert events == ["change.scheduled"]
    assert slot_of(deps, org) == handle.id

    # An immediate change meanwhile runs (the subscription is not held) and leaves it scheduled.
    immediate = await driver.run(org, "desk", seats=5)
    assert immediate.status is ChangeStatus.COMPLETED
    assert (await wait_for(handle, lambda v: True, "still")).state == "scheduled"

    await past_the_period_end(driver, deps, org)
    result = await driver.result(handle)

    assert result.status is ChangeStatus.COMPLETED, result.reason
    assert result.payment.method == "none" and result.invoice.amount == 0
    assert result.quote.effective_date == before.period_end and result.quote.amount_due == 0
    after = subscription_row(deps, org, "desk")
    assert (after.plan, after.seats) == ("standard", 5)  # judged against the immediate change
    assert after.period_start == before.period_end
    assert after.period_end == before.period_end + relativedelta(months=1)
    assert len(succeeded_charges(gateway, after)) == 1  # the immediate change's only
    confirmation = mailbox.with_subject(result.invoice.number)
    assert len(confirmation) == 1
    text = mail_text(confirmation[0])
    assert "Takes effect" in text and "Nothing is charged now" in text
    assert slot_of(deps, org) is None


async def test_cancelled_by_requester_support_or_temporal_changes_nothing(driver, deps, mailbox):
    org = unique_org("pcan")
    await load_desk(driver, org)
    for cancel in ("requester", "support", "temporal"):
        handle, _ = await schedule(driver, org)
        if cancel == "temporal":
            await handle.cancel()
        else:
            by = SUPPORT if cancel == "support" else f"admin@{org}.example"
            ack = await handle.execute_update(SubscriptionChange.cancel,
                                              CancelRequest(by=by, reason="not yet"))
            assert "nothing was charged or changed" in ack.message
        result = await driver.result(handle)
        assert result.status is ChangeStatus.CANCELLED and result.invoice is None
        assert slot_of(deps, org) is None  # the next one schedules without replacing
    sub = subscription_row(deps, org, "desk")
    assert (sub.plan, sub.version) == ("professional", 1)
    assert mailbox.messages(to=f"billing@{org}.example") == []


async def test_one_scheduled_change_per_subscription_unless_replaced(driver, deps):
    org = unique_org("prep")
    await load_desk(driver, org)
    first, _ = await schedule(driver, org)
    assert "ALLOW_RESCHEDULE" in await refused(first, "reschedule", RescheduleRequest(by=SUPPORT))

    second, _ = await schedule(driver, org, plan="free")
    refusal = await driver.result(second)
    assert (refusal.status, refusal.reason_code) == (ChangeStatus.REJECTED, "change_scheduled")
    assert first.id in refusal.reason

    third, view = await schedule(driver, org, plan="free", replace=True)
    assert view.state == "scheduled"
    replaced = await driver.result(first)
    assert replaced.status is ChangeStatus.CANCELLED and third.id in replaced.reason
    assert slot_of(deps, org) == third.id
    await handle_cancel(third)
    assert slot_of(deps, org) is None


async def handle_cancel(handle) -> None:
    await handle.execute_update(SubscriptionChange.cancel, CancelRequest(by=SUPPORT))


async def test_rejected_when_the_rules_no_longer_allow_it_at_the_period_end(driver, deps,
                                                                            mailbox):
    org = unique_org("prej")
    await load_desk(driver, org, plan="standard", agents=2)
    handle, view = await schedule(driver, org, plan="free")
    assert view.state == "scheduled"
    await load_desk(driver, org, plan="standard", agents=5)  # agents activated meanwhile (R7)

    await past_the_period_end(driver, deps, org)
    result = await driver.result(handle)

    assert (result.status, result.reason_code) == (ChangeStatus.REJECTED, "agent_limit")
    assert subscription_row(deps, org, "desk").plan == "standard"
    assert mailbox.messages(to=f"billing@{org}.example") == []
    assert slot_of(deps, org) is None


async def test_fires_once_an_immediate_change_that_holds_the_subscription_lets_go(
        driver, deps, gateway, mailbox):
    """At its period end the subscription is held by an immediate change whose card was
    declined (it waits for payment, holding the subscription): the scheduled change says so and
    tries again (after 1 minute, doubling), then fires as soon as that change is cancelled."""
    org = unique_org("pbusy")
    await load_desk(driver, org)
    handle, _ = await schedule(driver, org)
    await driver.load(org, users=[admin(org)], subscriptions=[{
        "product": "desk", "plan": "professional", "seats": 3, "card": DECLINED_ON_CHARGE_CARD}])
    immediate = await driver.start(org, "desk", seats=4)
    await wait_for(immediate, lambda v: v.state == "awaiting_payment", "awaiting_payment")

    await past_the_period_end(driver, deps, org)
    view = await wait_for(handle, lambda v: "tried again" in (v.waiting_for or ""), "busy")
    assert immediate.id in view.waiting_for

    await handle_cancel(immediate)
    assert (await driver.result(immediate)).status is ChangeStatus.CANCELLED
    await driver.env.sleep(timedelta(hours=1))
    result = await driver.result(handle)

    assert result.status is ChangeStatus.COMPLETED, result.reason
    after = subscription_row(deps, org, "desk")
    assert (after.plan, after.seats) == ("standard", 3)
    assert succeeded_charges(gateway, after) == []
