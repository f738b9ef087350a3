"""Payment recovery (SPEC section 11): a declined charge does not go straight to support.

A soft decline (the bank may say yes later) waits for the next attempt of PAYMENT_RETRY_SCHEDULE;
a hard one (lost, stolen, expired card, fraud, the payer's authentication, no card) waits for a new
card without scheduled attempts, until the schedule's span has passed. Either way the change is in
`awaiting_payment`, a new card of its organisation (`card_updated`, sent by the card's update:
subchange/app/payments.py) or support's `retry` tries the charge at once, and a cancel ends the
wait at once (Cancellation.wait). After the first decline the billing contact gets one notice.
When the schedule is exhausted the change parks for support as before.

The charge is tried again through the runner's own loop (workflows/runner.py), priced again as
of that day, under the charge step's exactly-once rules: the ledger allows one intent per change
to take money, whichever attempt or card it is.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from state_machines.lifecycle import Trigger
    from subchange.domain.step_io import AwaitingPayment, Decline, PaymentFailedNotice

from workflows.cancellation import Cancellation, CancelRequested
from workflows.progress import describe_duration
from workflows.runner import StepRunner, execute
from workflows.state import ChangeRun
from workflows.steps import CHARGE, EMAIL_PAYMENT_FAILED, RECORD_AWAITING_PAYMENT
from workflows.versions import PAYMENT_RECOVERY

# The charge step's failures that are declines (its error details say soft or hard).
DECLINES = frozenset({"CardDeclined", "NoPaymentMethod", "CardNeedsAuthentication"})


class PaymentRecovery:
    def __init__(self, state: ChangeRun, runner: StepRunner, cancels: Cancellation) -> None:
        self.state = state
        self.runner = runner
        self.cancels = cancels

    async def after_failure(self, error: FailureError) -> bool:
        """After the charge failed for good: True once it is to be tried again (its next
        attempt came, a new card, support's retry); False when the change waits for support
        instead (not a decline, a run from before payment recovery, the schedule exhausted)."""
        state = self.state
        decline = decline_of(error)
        if decline is None or PAYMENT_RECOVERY not in state.patches:
            return False
        assert state.request is not None and state.quote is not None
        now = workflow.now()
        state.payment_declines += 1
        if state.first_decline_at is None:
            state.first_decline_at = now
        seen = state.card_updates  # a card replaced before the wait was recorded: card_replaced
        plan = await execute(RECORD_AWAITING_PAYMENT, AwaitingPayment(
            org_id=state.request.org_id, product=state.request.product, decline=decline,
            declines=state.payment_declines, since_first=now - state.first_decline_at))
        if plan.exhausted:
            return False
        state.progress.fail(workflow.now(), decline.message)
        if state.payment_declines == 1:  # the billing contact hears of it once
            await self.runner.run(EMAIL_PAYMENT_FAILED, PaymentFailedNotice(
                request=state.request, quote=state.quote, decline_code=decline.code))
        state.progress.current_step = CHARGE.name  # the step it waits to try again
        if plan.card_replaced:
            state.progress.note(workflow.now(), "card_replaced",
                                "the card was replaced: the charge is tried again at once")
            return True
        wait = plan.next_attempt_in if plan.next_attempt_in is not None else plan.support_in
        assert wait is not None
        state.next_payment_attempt = (workflow.now() + plan.next_attempt_in
                                      if plan.next_attempt_in is not None else None)
        state.lifecycle.fire(Trigger.AWAIT_PAYMENT)
        state.progress.wait(workflow.now(), "payment", _waiting_for(plan.next_attempt_in, wait))
        state.publish()
        try:
            await self.cancels.wait(lambda: state.retry_requested or state.card_updates > seen,
                                    timeout=wait, timeout_summary="payment recovery")
            retried = True
            outcome = "retry" if state.retry_requested else "card_replaced"
        except TimeoutError:
            retried = plan.next_attempt_in is not None  # a hard decline's wait ran out
            outcome = "next_attempt" if retried else "no new card"
        except (CancelRequested, asyncio.CancelledError):
            self._resume("cancel")
            raise
        self._resume(outcome)
        return retried

    def _resume(self, outcome: str) -> None:
        state = self.state
        state.progress.done(workflow.now(), outcome)
        state.retry_requested = False
        state.next_payment_attempt = None
        state.lifecycle.fire(Trigger.RESUME_PAYMENT)
        state.publish()


def decline_of(error: FailureError) -> Decline | None:
    """The decline the charge step reported, or None for any other failure."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.__cause__
    if not isinstance(cause, ApplicationError) or cause.type not in DECLINES:
        return None
    details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
    return Decline(code=details.get("decline_code"),
                   decline_class="hard" if details.get("decline_class") == "hard" else "soft",
                   method_id=details.get("method_id"), message=f"{cause.type}: {cause.message}")


def _waiting_for(next_attempt: timedelta | None, wait: timedelta) -> str:
    new_card = "a new card (starter.py load, or POST /v1/orgs/{org_id}/card) tries it at once"
    if next_attempt is not None:
        return (f"payment: the charge is tried again in {describe_duration(next_attempt)}; "
                f"{new_card}; support may retry or cancel")
    return (f"payment: a hard decline is not retried on a schedule; {new_card}; support may "
            f"retry or cancel; support is asked in {describe_duration(wait)}")
