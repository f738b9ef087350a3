"""One change at a time per subscription, but a claim never outlives the change that holds it:
after `temporal workflow terminate` (or a run timeout set by a backend) the next change for the
subscription takes the claim over, and the audit log says so, and refunds what the ended change
charged without being applied. A holder that still runs keeps it."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.subscriptions import SubscriptionActivities
from subchange.domain.contracts import ChangeResult, ChangeStatus, SalesDecision
from subchange.domain.step_io import ApplyInput, ApplyOutput
from tests.helpers.documents import SALES, unique_org
from tests.helpers.driver import (
    load_suite,
    request_for,
    wait_for_sales,
    wait_parked,
)
from tests.helpers.observers import (
    audit_entries,
    claim_of,
    refunds_of,
    subscription_row,
    succeeded_charges,
)
from workflows.subscription_change import SubscriptionChange


async def test_a_terminated_change_leaves_the_subscription_to_the_next(driver, deps):
    org = unique_org("terminated")
    await load_suite(driver, org, card=None)  # offline payer: the change waits for sales
    first = await driver.start(org, seats=35)
    await wait_for_sales(first)
    assert claim_of(deps, org, "one") == first.id
    await first.terminate(reason="operator cleanup")

    second = await driver.start(org, seats=36)
    await wait_for_sales(second)
    assert claim_of(deps, org, "one") == second.id
    [takeover] = [e for e in audit_entries(deps, org=org) if e.action == "take_over_claim"]
    assert first.id in takeover.detail and "terminated" in takeover.detail
    assert takeover.workflow_id == second.id

    await second.execute_update(SubscriptionChange.sales_decision,
                                SalesDecision(approved=True, by=SALES))
    result = await driver.result(second)
    assert result.status is ChangeStatus.COMPLETED
    assert subscription_row(deps, org, "one").seats == 36
    assert claim_of(deps, org, "one") is None


async def test_a_timed_out_change_leaves_the_subscription_to_the_next(driver, deps, gateway):
    org = unique_org("timedout")
    await load_suite(driver, org, card=None)
    request = request_for(org, seats=35)
    first = await driver.client.start_workflow(
        SubscriptionChange.run, request.model_dump(mode="json"), id=request.workflow_id,
        task_queue=driver.task_queue, result_type=ChangeResult,
        run_timeout=timedelta(hours=1))
    await wait_for_sales(first)
    await driver.env.sleep(timedelta(hours=2))  # the backend's run timeout ends it

    await load_suite(driver, org)  # now paying by card
    result = await driver.run(org, seats=36)

    assert result.status is ChangeStatus.COMPLETED, result.reason
    assert len(succeeded_charges(gateway, subscription_row(deps, org, "one"))) == 1
    assert any(e.action == "take_over_claim" and "timed_out" in e.detail
               for e in audit_entries(deps, org=org))


async def test_a_holder_that_still_runs_keeps_the_claim(driver, deps):
    org = unique_org("holder")
    await load_suite(driver, org, card=None)
    first = await driver.start(org, seats=35)
    await wait_for_sales(first)

    second = await driver.run(org, seats=36)

    assert (second.status, second.reason_code) == (ChangeStatus.REJECTED, "change_in_progress")
    assert claim_of(deps, org, "one") == first.id
    assert not any(e.action == "take_over_claim" for e in audit_entries(deps, org=org))


async def test_the_next_change_refunds_what_a_terminated_change_charged_without_applying(
        driver_with_stand_ins, deps, gateway):
    """Terminate skips the workflow's own compensation: a change that took the money and was
    terminated before its apply would keep it. The change that takes its subscription over
    refunds it (audited `compensate`), then goes on with its own charge."""
    real = SubscriptionActivities(deps)

    @activity.defn(name="apply_change")
    def apply_failing_for_the_first(change: ApplyInput) -> ApplyOutput:
        if change.request.change.seats == 35:  # the first change: the database is down
            raise ApplicationError("database unreachable", type="DatabaseDown",
                                   non_retryable=True)
        return real.apply_change(change)

    driver = await driver_with_stand_ins(apply_change=apply_failing_for_the_first)
    org = unique_org("termpaid")
    await load_suite(driver, org)
    first = await driver.start(org, seats=35)
    assert (await wait_parked(first)).step == "apply_change"
    [paid] = succeeded_charges(gateway, workflow_id=first.id)
    await first.terminate(reason="operator cleanup")

    result = await driver.run(org, seats=36)

    assert result.status is ChangeStatus.COMPLETED, result.reason
    [refund] = refunds_of(gateway, paid.payment_intent)
    assert refund.amount == paid.amount
    [compensated] = [e for e in audit_entries(deps, org=org) if e.action == "compensate"]
    assert compensated.workflow_id == first.id and refund.id in compensated.detail
    assert len(succeeded_charges(gateway, workflow_id=result.workflow_id)) == 1
    assert subscription_row(deps, org, "one").seats == 36
