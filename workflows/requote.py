"""Dating and quoting a change: by the organisation's calendar, at one instant for validation and
quote, and again after it waited (for support before its charge is retried, for sales before it
is applied), so nobody pays for days already past."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from subchange.domain.contracts import ChangeRequest, Quote, Rejection
    from subchange.domain.step_io import ChargeInput, DatedRequest

from workflows.runner import StepRunner
from workflows.state import ChangeRun
from workflows.steps import QUOTE_CHANGE, VALIDATE_CHANGE


class QuoteNoLongerValid(Exception):
    """Quoted again after a wait, the change is no longer allowed."""

    def __init__(self, rejection: Rejection | None) -> None:
        super().__init__(rejection.reason if rejection else "the change could not be quoted")
        self.rejection = rejection


class Requote:
    def __init__(self, state: ChangeRun, runner: StepRunner) -> None:
        self.state = state
        self.runner = runner

    @staticmethod
    def dated(request: ChangeRequest) -> DatedRequest:
        """Dated by the organisation's calendar (the activities read its time zone) at one
        instant, so validation and quote see the same day."""
        now = workflow.now()
        return DatedRequest(request=request, change_date=now.date(), as_of=now)

    async def as_of_now(self, dated: DatedRequest) -> DatedRequest:
        """A validation or quote retried after it waited for support (days, maybe) is judged
        and priced as of the day it runs, and so is every step after it."""
        return self.dated(dated.request)

    async def charge_as_of_now(self, charge: ChargeInput) -> ChargeInput:
        """A charge retried after days parked is for the days left then, not the days of the
        first quote; unless the failed attempt may have taken the money (its intent is read
        again, for the amount it was made for)."""
        if self.state.money_at_risk:
            return charge
        quote = await self.quote_again(charge.request, charge.quote)
        return charge if quote is charge.quote else ChargeInput(request=charge.request,
                                                                quote=quote)

    async def quote_again(self, request: ChangeRequest, quote: Quote) -> Quote:
        """After a wait (support, sales), the change validated and quoted again as of now; the
        new quote when the organisation's day moved since the first (proration counts from the
        day the change takes effect; a free → paid period starts then), else the first. A change
        no longer allowed raises QuoteNoLongerValid."""
        dated = self.dated(request)
        admission = await self.runner.run(VALIDATE_CHANGE, dated, advance=False)
        if not admission.admitted:
            raise QuoteNoLongerValid(admission.rejection)
        quoted = await self.runner.run(QUOTE_CHANGE, dated, advance=False)
        if not quoted.admitted or quoted.quote is None:
            raise QuoteNoLongerValid(quoted.rejection)
        if quoted.quote.change_date == quote.change_date:
            return quote
        return quoted.quote
