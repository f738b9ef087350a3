"""A cancel accepted while `apply_change` runs is refused once the apply wins ("too late"), and
then it is gone: a step that fails later parks and waits for support like any other (it does not
rerun on its own), and a new cancel is judged afresh (refused: the change is applied).

Stand-ins wrap the real activities: apply waits until the test has sent its cancel, and the
invoice email fails for good once (an SMTP outage), moments the real parts can't be timed to."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

import pytest
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.exceptions import ApplicationError

from activities.invoicing import InvoiceActivities
from activities.subscriptions import SubscriptionActivities
from subchange.domain.contracts import CancelRequest, ChangeStatus, InvoiceRecord, RetryRequest
from subchange.domain.step_io import ApplyInput, ApplyOutput
from tests.helpers.documents import SUPPORT, unique_org
from tests.helpers.driver import load_suite, refused, wait_for
from tests.helpers.observers import subscription_row, succeeded_charges
from workflows.subscription_change import SubscriptionChange


@dataclass
class Moments:
    cancel_sent: threading.Event = field(default_factory=threading.Event)
    emails_tried: list[str] = field(default_factory=list)


async def test_a_refused_late_cancel_leaves_later_failures_to_support(
        driver_with_stand_ins, deps, gateway, mailbox):
    moments = Moments()
    apply, email = SubscriptionActivities(deps), InvoiceActivities(deps)

    @activity.defn(name="apply_change")
    def apply_after_the_cancel(change: ApplyInput) -> ApplyOutput:
        assert moments.cancel_sent.wait(timeout=15), "the test never sent its cancel"
        return apply.apply_change(change)

    @activity.defn(name="email_invoice")
    def email_failing_once(invoice_number: str) -> InvoiceRecord:
        moments.emails_tried.append(invoice_number)
        if len(moments.emails_tried) == 1:
            raise ApplicationError("SMTP server unreachable", type="SmtpDown",
                                   non_retryable=True)
        return email.email_invoice(invoice_number)

    driver = await driver_with_stand_ins(apply_change=apply_after_the_cancel,
                                         email_invoice=email_failing_once)
    org = unique_org("late")
    await load_suite(driver, org)
    handle = await driver.start(org, seats=35)
    await wait_for(handle, lambda v: v.step == "apply_change", "apply_change")
    # The requester's cancel: taken at once (support's would first wait for the staff directory,
    # which could answer only after the apply).
    cancel = await handle.start_update(SubscriptionChange.cancel,
                                       CancelRequest(by=f"admin@{org}.example"),
                                       wait_for_stage=WorkflowUpdateStage.ACCEPTED)
    moments.cancel_sent.set()

    with pytest.raises(WorkflowUpdateFailedError) as late:
        await cancel.result()
    assert "too late: the change was applied" in str(late.value.cause)

    view = await wait_for(handle, lambda v: v.waiting_for is not None or v.result is not None,
                          "a wait or an end")
    assert (view.state, view.step) == ("awaiting_support", "email_invoice")
    await asyncio.sleep(1)  # a parked step that reran on its own would have done so by now
    assert len(moments.emails_tried) == 1
    assert (await handle.query(SubscriptionChange.status)).state == "awaiting_support"
    assert "already applied" in await refused(handle, "cancel", CancelRequest(by=SUPPORT))

    await handle.execute_update(SubscriptionChange.retry, RetryRequest(by=SUPPORT))
    result = await driver.result(handle)
    assert result.status is ChangeStatus.COMPLETED
    assert len(moments.emails_tried) == 2
    assert len(mailbox.messages(to=f"billing@{org}.example")) == 1
    assert len(succeeded_charges(gateway, subscription_row(deps, org, "one"))) == 1
    assert subscription_row(deps, org, "one").seats == 35
