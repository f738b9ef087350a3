"""An apply that committed although the workflow saw it fail (its last attempt timed out while
the database still committed it) is found before a cancel takes effect: the change is applied,
so the cancel is refused as too late and the change is finished (invoice, claim released)
instead of refunding a charge of an applied change, or saying "nothing was changed".

The stand-in wraps the real apply: it commits, then fails for good, the moment a real timeout
can't be made to land on demand."""

from __future__ import annotations

import asyncio

import pytest
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from activities.dependencies import Dependencies
from activities.subscriptions import SubscriptionActivities
from subchange.domain.contracts import CancelRequest, ChangeStatus, SalesDecision
from subchange.domain.step_io import ApplyInput, ApplyOutput
from tests.helpers.documents import SALES, SUPPORT, unique_org
from tests.helpers.driver import (
    ChangeDriver,
    load_suite,
    wait_for_sales,
    wait_parked,
)
from tests.helpers.observers import claim_of, refunds_of, subscription_row, succeeded_charges
from workflows.subscription_change import SubscriptionChange


@pytest.fixture
async def driver(driver_with_stand_ins, deps: Dependencies) -> ChangeDriver:
    real = SubscriptionActivities(deps)

    @activity.defn(name="apply_change")
    def apply_then_lose_the_answer(change: ApplyInput) -> ApplyOutput:
        real.apply_change(change)
        raise ApplicationError("the attempt timed out while the database committed it",
                               type="AnswerLost", non_retryable=True)

    return await driver_with_stand_ins(apply_change=apply_then_lose_the_answer)


async def cancel_is_too_late(handle) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await asyncio.wait_for(
            handle.execute_update(SubscriptionChange.cancel, CancelRequest(by=SUPPORT)), 30)
    assert "too late: the change was applied" in str(refused.value.cause)


async def test_a_card_payer_keeps_the_change_and_the_charge(driver, deps, gateway, mailbox):
    org = unique_org("unseen")
    await load_suite(driver, org)
    handle = await driver.start(org, seats=35)
    view = await wait_parked(handle)
    assert view.step == "apply_change" and "AnswerLost" in (view.last_error or "")

    await cancel_is_too_late(handle)

    result = await driver.result(handle)
    assert result.status is ChangeStatus.COMPLETED
    assert result.invoice is not None and result.subscription.seats == 35
    [paid] = succeeded_charges(gateway, subscription_row(deps, org, "one"))
    assert refunds_of(gateway, paid.payment_intent) == []
    assert len(mailbox.messages(to=f"billing@{org}.example")) == 1
    assert claim_of(deps, org, "one") is None


async def test_an_offline_payer_is_not_told_nothing_changed(driver, deps, mailbox):
    org = unique_org("unseenoff")
    await load_suite(driver, org, card=None)
    handle = await driver.start(org, seats=35)
    await wait_for_sales(handle)
    await handle.execute_update(SubscriptionChange.sales_decision,
                                SalesDecision(approved=True, by=SALES))
    await wait_parked(handle)

    await cancel_is_too_late(handle)

    result = await driver.result(handle)
    assert result.status is ChangeStatus.COMPLETED
    assert subscription_row(deps, org, "one").seats == 35
    assert len(mailbox.messages(to=f"billing@{org}.example")) == 1
    assert claim_of(deps, org, "one") is None
