"""Dating and quoting a change: by the organisation's calendar, at one instant for validation and
quote, and again after it waited (for support before its charge is retried, for sales before it
is applied), so nobody pays for days already past."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from subchange.domain.contracts import ChangeRequest, Quote, Rejection
    from subchange.domain.step_io import ChargeInput, DatedRequest

# The workflow's helper modules: loaded once per worker and shared by every run, their
# determinism checked from source (WORKFLOW_HELPERS in subchange/app/wiring.py).
from workflows.runner import StepRunner
from workflows.state import ChangeRun
from workflows.steps import QUOTE_CHANGE, VALIDATE_CHANGE
from workflows.versions import patched

# Workflows that recorded this patch date a change by the organisation's time zone; older
# histories sent the UTC day.
ORG_CALENDAR = "org-calendar-change-date"
# ... and quote a change again before charging it after a park, or applying it after sales.
QUOTE_AGAIN_AFTER_A_WAIT = "quote-again-after-a-wait"
# ... and date a validation or quote retried after it waited for support by the day it runs.
REDATE_AFTER_A_PARK = "redate-after-a-park"


class QuoteNoLongerValid(Exception):
    """Quoted again after a wait, the change is no longer allowed."""

    def __init__(self, rejection: Rejection | None) -> None:
        super().__init__(rejection.reason if rejection else "the change could not be quoted")
        self.rejection = rejection


class Requote:
    def __init__(self, change: ChangeRun, steps: StepRunner) -> None:
        self.change = change
        self.steps = steps

    @staticmethod
    def dated(request: ChangeRequest, today) -> DatedRequest:
        """Dated by the organisation's calendar (the activities read its time zone) at one
        instant, so validation and quote see the same day."""
        return DatedRequest(request=request, change_date=today,
                            as_of=workflow.now() if patched(ORG_CALENDAR) else None)

    async def as_of_now(self, dated: DatedRequest) -> DatedRequest:
        """A validation or quote retried after it waited for support (days, maybe) is judged
        and priced as of the day it runs, and so is every step after it."""
        if not patched(REDATE_AFTER_A_PARK):
            return dated
        now = workflow.now()
        self.change.dated = DatedRequest(request=dated.request, change_date=now.date(), as_of=now)
        return self.change.dated

    async def charge_as_of_now(self, charge: ChargeInput) -> ChargeInput:
        """A charge retried after days parked is for the days left then, not the days of the
        first quote; unless the failed attempt may have taken the money (its intent is read
        again, for the amount it was made for)."""
        if self.steps.money_at_risk:
            return charge
        quote = await self.quote_again(charge.request, charge.quote)
        return charge if quote is charge.quote else ChargeInput(request=charge.request,
                                                                quote=quote)

    async def quote_again(self, request: ChangeRequest, quote: Quote) -> Quote:
        """After a wait (support, sales), the change validated and quoted again as of now; the
        new quote when the organisation's day moved since the first (proration counts from the
        day the change takes effect; a free → paid period starts then), else the first. A change
        no longer allowed raises QuoteNoLongerValid."""
        if not patched(QUOTE_AGAIN_AFTER_A_WAIT):
            return quote
        now = workflow.now()
        dated = DatedRequest(request=request, change_date=now.date(), as_of=now)
        admission = await self.steps.run(VALIDATE_CHANGE, dated, advance=False)
        if not admission.admitted:
            raise QuoteNoLongerValid(admission.rejection)
        quoted = await self.steps.run(QUOTE_CHANGE, dated, advance=False)
        if not quoted.admitted or quoted.quote is None:
            raise QuoteNoLongerValid(quoted.rejection)
        if quoted.quote.change_date == quote.change_date:
            return quote
        self.change.quote = quoted.quote
        return quoted.quote
