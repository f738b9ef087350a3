"""Who may act on a change (SPEC section 9): every update names its principal in `by`, checked
against the staff directory (support retries and cancels any change, sales decides sales cases)
or against the change (its requester may cancel it, never decide its own sales case). A refusal
names the principal and the missing right and changes nothing; every verdict of the directory is
in the audit log. Real workflow, activities and database."""

from __future__ import annotations

from subchange.domain.contracts import CancelRequest, ChangeStatus, RetryRequest, SalesDecision
from tests.helpers.documents import (
    GOOD_CARD,
    SALES,
    SUPPORT,
    admin,
    unique_org,
)
from tests.helpers.driver import (
    load_suite,
    refused,
    start_declined_change,
    wait_for_payment,
    wait_for_sales,
)
from tests.helpers.observers import audit_entries, sales_case_row, subscription_row
from workflows.subscription_change import SubscriptionChange

STRANGER = "someone@elsewhere.example"


async def test_retry_needs_a_member_of_support(driver, deps):
    org = unique_org("whoretry")
    handle = await start_declined_change(driver, org)
    await wait_for_payment(handle)

    assert "retry needs `by`" in await refused(handle, "retry", RetryRequest())
    stranger = await refused(handle, "retry", RetryRequest(by=STRANGER))
    assert STRANGER in stranger and "not in the staff directory" in stranger
    assert "role support" in stranger
    sales = await refused(handle, "retry", RetryRequest(by=SALES))
    assert f"{SALES} lacks role support" in sales and "their roles: sales" in sales
    requester = await refused(handle, "retry", RetryRequest(by=f"admin@{org}.example"))
    assert "not in the staff directory" in requester

    view = await wait_for_payment(handle)  # still waiting for payment, nothing retried
    assert sum(1 for s in view.history if s.step == "charge" and s.outcome == "failed") == 1
    denied = [e for e in audit_entries(deps, workflow_id=handle.id) if e.outcome == "denied"]
    assert {e.actor for e in denied} == {STRANGER, SALES, f"admin@{org}.example"}
    assert all(e.action.startswith("retry:") for e in denied)

    await load_suite(driver, org, card=GOOD_CARD)
    await handle.execute_update(SubscriptionChange.retry, RetryRequest(by=SUPPORT))
    assert (await driver.result(handle)).status is ChangeStatus.COMPLETED


async def test_the_requester_may_cancel_their_own_change_and_no_one_else_from_the_org(driver,
                                                                                   deps):
    org = unique_org("whocancel")
    handle = await start_declined_change(driver, org)
    await wait_for_payment(handle)
    colleague = f"other-admin@{org}.example"
    await driver.load(org, users=[admin(org), admin(org, email=colleague)], subscriptions=[])

    refusal = await refused(handle, "cancel", CancelRequest(by=colleague))
    assert colleague in refusal and "or to be its requester" in refusal
    assert (await wait_for_payment(handle)).state == "awaiting_payment"

    ack = await handle.execute_update(SubscriptionChange.cancel,
                                      CancelRequest(by=f"ADMIN@{org}.example", reason="typo"))
    assert "nothing was charged" in ack.message
    result = await driver.result(handle)
    assert (result.status, result.reason_code) == (ChangeStatus.CANCELLED, "cancelled")
    assert subscription_row(deps, org, "one").seats == 30


async def test_sales_decides_and_the_requester_never_decides_their_own_case(driver, deps):
    org = unique_org("whosales")
    await load_suite(driver, org, card=None)
    requester = f"admin@{org}.example"
    handle = await driver.start(org, by=requester, seats=35)
    await wait_for_sales(handle)

    own = await refused(handle, "sales_decision", SalesDecision(approved=True, by=requester))
    assert f"can't decide: {requester} requested this change and can't decide its sales case" in own
    support = await refused(handle, "sales_decision", SalesDecision(approved=True, by=SUPPORT))
    assert f"{SUPPORT} lacks role sales" in support
    stranger = await refused(handle, "sales_decision",
                             SalesDecision(approved=True, by=STRANGER))
    assert "not in the staff directory" in stranger
    assert sales_case_row(deps, handle.id).status == "open"
    assert (await wait_for_sales(handle)).state == "awaiting_sales"

    await handle.execute_update(SubscriptionChange.sales_decision,
                                SalesDecision(approved=True, by=SALES, note="PO 12"))
    result = await driver.result(handle)
    assert result.status is ChangeStatus.COMPLETED
    assert sales_case_row(deps, handle.id).decided_by == SALES


async def test_the_directory_is_read_when_the_update_comes_not_when_the_change_started(
        driver, load, deps):
    """A support member added (or whose role was taken away) while a change waits is judged by
    the directory as it is then."""
    org = unique_org("wholive")
    newcomer = f"newcomer-{org}@vendor.example"
    handle = await start_declined_change(driver, org)
    await wait_for_payment(handle)
    assert "not in the staff directory" in await refused(handle, "cancel",
                                                         CancelRequest(by=newcomer))

    load({"staff": [{"email": newcomer, "roles": ["support", "sales"]}]})
    await handle.execute_update(SubscriptionChange.cancel, CancelRequest(by=newcomer))
    result = await driver.result(handle)
    assert result.status is ChangeStatus.CANCELLED and newcomer in result.reason
    load({"staff": [{"email": newcomer, "roles": []}]})

    other = await start_declined_change(driver, unique_org("wholive2"))
    await wait_for_payment(other)
    assert "their roles: none" in await refused(other, "cancel", CancelRequest(by=newcomer))
