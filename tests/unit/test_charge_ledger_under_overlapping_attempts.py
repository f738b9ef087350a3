"""The charge and its refund stay once-only when attempts overlap: a timed-out attempt still running
beside its retry, a cancel arriving while an intent waits to be confirmed, an intent the gateway is
still processing or that needs the payer's 3-D Secure. Each attempt is the real activity on the
real gateway (localstripe) and database, run as Temporal would run a given attempt; a gateway
wrapper holds one attempt at the moment the test needs, which real parts can't be timed to.
The requests of these paths are counted against the steps' time budgets."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import activities.payment_recovery
from activities.admission import AdmissionActivities
from activities.dependencies import Dependencies
from activities.payment_recovery import PaymentRecoveryActivities
from activities.payments import LEDGER_CHARGE, LEDGER_REFUND, PaymentActivities
from activities.subscriptions import SubscriptionActivities
from subchange.adapters.gateway import Gateway, IntentState
from subchange.domain import limits
from subchange.domain.contracts import ChangeRequest, PaymentRecord
from subchange.domain.money import to_minor_units
from subchange.domain.step_io import (
    ApplyInput,
    ChargeInput,
    DatedRequest,
    PaymentFailedNotice,
    RefundChargeInput,
)
from subchange.store import changes, ledger, payment_waits
from tests.helpers.documents import (
    THREE_D_SECURE_CARD,
    admin,
    load_document,
    org_document,
    unique_org,
)
from tests.helpers.observers import (
    change_rows,
    payment_intent,
    payment_intents_of,
    refunds_of,
    subscription_row,
    succeeded_charges,
)
from workflows.steps import CHARGE, REFUND_CHARGE

HOLD_LIMIT = 15  # seconds; a guard against hanging, not a timing assertion


class HeldGateway:
    """The real gateway, except that one method, in one attempt, waits for `release` right
    after (or before) doing the real thing."""

    def __init__(self, real: Gateway, method: str, attempt: int, *, after: bool = True) -> None:
        self.real, self.method, self.attempt, self.after = real, method, attempt, after
        self.reached, self.release = threading.Event(), threading.Event()

    def __getattr__(self, name: str) -> Any:
        real = getattr(self.real, name)
        if name != self.method:
            return real

        def held(*args: Any, **kwargs: Any) -> Any:
            mine = activity.info().attempt == self.attempt
            if mine and not self.after:
                self._hold()
            result = real(*args, **kwargs)
            if mine and self.after:
                self._hold()
            return result
        return held

    def _hold(self) -> None:
        self.reached.set()
        assert self.release.wait(HOLD_LIMIT), "the test never released the held attempt"


@dataclasses.dataclass
class Change:
    workflow_id: str
    charge: ChargeInput

    def refund(self, intent_id: str | None = None) -> RefundChargeInput:
        quote = self.charge.quote
        return RefundChargeInput(intent_id=intent_id, amount=quote.total_due,
                                 currency=quote.currency, reason="cancelled by the test")


@pytest.fixture
def change(deps: Dependencies) -> Callable[..., Change]:
    """A quoted seat increase of a freshly loaded organisation, ready to charge."""
    def make(card: str = "4242424242424242") -> Change:
        org = unique_org("ledger")
        load_document(deps, org_document(org, users=[admin(org)], subscriptions=[
            {"product": "one", "plan": "enterprise", "seats": 30, "pricing_model": "flexible_user",
             "card": card}]))
        request = ChangeRequest.model_validate({
            "request_id": f"req-{uuid.uuid4().hex[:12]}", "org_id": org, "product": "one",
            "requested_by": f"admin@{org}.example", "change": {"kind": "seats", "seats": 35}})
        with deps.sessions() as session:  # as the workflow's first step does
            changes.open_change(session=session, workflow_id=request.workflow_id,
                                request=request)
        env = environment(request.workflow_id, 1)
        outcome = env.run(AdmissionActivities(deps).quote_change,
                          DatedRequest(request=request, change_date=date.today()))
        assert outcome.quote is not None and outcome.quote.amount_due > 0
        return Change(request.workflow_id, ChargeInput(request=request, quote=outcome.quote))
    return make


def environment(workflow_id: str, attempt: int) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=workflow_id, attempt=attempt)
    return env


def run(deps: Dependencies, step: str, workflow_id: str, attempt: int, arg: Any) -> Any:
    """One attempt of a payment step, as a worker runs it."""
    return environment(workflow_id, attempt).run(getattr(PaymentActivities(deps), step), arg)


def failure(call: Callable[[], Any]) -> ApplicationError:
    with pytest.raises(ApplicationError) as raised:
        call()
    return raised.value


@pytest.fixture
def background() -> Iterator[Callable[..., Future]]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield pool.submit


def entry(deps: Dependencies, workflow_id: str, step: str = LEDGER_CHARGE):
    with deps.sessions() as session:
        return ledger.gateway_call(session=session, workflow_id=workflow_id, step=step)


# --- overlapping charge attempts ----------------------------------------------------------------

def test_two_attempts_that_both_create_an_intent_charge_once(deps, change, gateway, background):
    """Attempt 1 timed out after creating its intent but before recording it; attempt 2 runs
    beside it and charges. Attempt 1 then finds the entry taken, cancels its own intent and
    stops: one charge, no second intent that could take money later."""
    todo = change()
    held = HeldGateway(deps.gateway, "create_intent", attempt=1)
    late = background(run, dataclasses.replace(deps, gateway=held), "charge", todo.workflow_id,
                      1, todo.charge)
    assert held.reached.wait(HOLD_LIMIT)

    paid = run(deps, "charge", todo.workflow_id, 2, todo.charge)
    held.release.set()

    stopped = failure(late.result)
    assert stopped.type == "AttemptSuperseded"
    [charge] = succeeded_charges(gateway, workflow_id=todo.workflow_id)
    quote = todo.charge.quote
    assert (charge.payment_intent, charge.amount) == (
        paid.intent_id, to_minor_units(quote.total_due, quote.currency))
    assert entry(deps, todo.workflow_id).external_id == paid.intent_id
    others = [pi for pi in payment_intents_of(gateway, todo.workflow_id) if pi.id != paid.intent_id]
    assert [pi.status for pi in others] == ["canceled"]


def test_an_attempt_overtaken_before_it_confirms_does_not_confirm(deps, change, gateway,
                                                                  background):
    """Attempt 1 recorded its intent and was overtaken before confirming it: attempt 2 confirms
    the same intent, attempt 1 stops, and the change is charged once."""
    todo = change()
    held = HeldGateway(deps.gateway, "intent_state", attempt=1)
    late = background(run, dataclasses.replace(deps, gateway=held), "charge", todo.workflow_id,
                      1, todo.charge)
    assert held.reached.wait(HOLD_LIMIT)

    paid = run(deps, "charge", todo.workflow_id, 2, todo.charge)
    held.release.set()

    assert failure(late.result).type == "AttemptSuperseded"
    [charge] = succeeded_charges(gateway, workflow_id=todo.workflow_id)
    assert charge.payment_intent == paid.intent_id
    assert len(payment_intents_of(gateway, todo.workflow_id)) == 1


# --- a cancel while an intent waits ------------------------------------------------------------

def test_a_cancel_voids_an_unconfirmed_intent_so_a_late_confirm_takes_nothing(
        deps, change, gateway, background):
    """The charge attempt is about to confirm when the change is cancelled: the refund step voids
    the entry and cancels the intent at the gateway, and the late confirm fails there."""
    todo = change()
    held = HeldGateway(deps.gateway, "confirm_intent", attempt=1, after=False)
    late = background(run, dataclasses.replace(deps, gateway=held), "charge", todo.workflow_id,
                      1, todo.charge)
    assert held.reached.wait(HOLD_LIMIT)

    refunded = run(deps, "refund_charge", todo.workflow_id, 1, todo.refund())
    held.release.set()

    assert failure(late.result).type == "ChargeVoided"
    assert (refunded.refund_id, refunded.amount) == (None, 0)
    assert succeeded_charges(gateway, workflow_id=todo.workflow_id) == []
    [intent] = payment_intents_of(gateway, todo.workflow_id)
    assert intent.status == "canceled"
    assert entry(deps, todo.workflow_id).status == "voided"


def test_a_charge_attempt_after_the_cancel_takes_nothing(deps, change, gateway):
    """A charge attempt that starts only after the cancel's compensation ran (a late retry)
    finds the charge void and creates no intent."""
    todo = change()
    run(deps, "refund_charge", todo.workflow_id, 1, todo.refund())

    assert failure(lambda: run(deps, "charge", todo.workflow_id, 1, todo.charge)
                   ).type == "ChargeVoided"
    assert payment_intents_of(gateway, todo.workflow_id) == []


def test_a_cancel_after_the_charge_refunds_what_the_gateway_took(deps, change, gateway):
    todo = change()
    paid = run(deps, "charge", todo.workflow_id, 1, todo.charge)

    refunded = run(deps, "refund_charge", todo.workflow_id, 1, todo.refund())

    [refund] = refunds_of(gateway, paid.intent_id)
    assert refunded.refund_id == refund.id
    assert refunded.amount == paid.amount == todo.charge.quote.total_due
    assert run(deps, "refund_charge", todo.workflow_id, 2, todo.refund()) == refunded
    assert len(refunds_of(gateway, paid.intent_id)) == 1


def test_two_refund_attempts_refund_once(deps, change, gateway, background):
    """Refund attempt 1 timed out after finding no refund yet; attempt 2 refunds; attempt 1 then
    finds the entry taken and stops before refunding again."""
    todo = change()
    paid = run(deps, "charge", todo.workflow_id, 1, todo.charge)
    held = HeldGateway(deps.gateway, "existing_refund", attempt=1)
    late = background(run, dataclasses.replace(deps, gateway=held), "refund_charge",
                      todo.workflow_id, 1, todo.refund(paid.intent_id))
    assert held.reached.wait(HOLD_LIMIT)

    refunded = run(deps, "refund_charge", todo.workflow_id, 2, todo.refund(paid.intent_id))
    held.release.set()

    assert failure(late.result).type == "AttemptSuperseded"
    [refund] = refunds_of(gateway, paid.intent_id)
    assert refund.id == refunded.refund_id
    assert entry(deps, todo.workflow_id, LEDGER_REFUND).external_id == refund.id


# --- an apply that outlives the change's refund -----------------------------------------------

def apply(deps: Dependencies, todo: Change, paid: PaymentRecord, attempt: int = 1):
    """One attempt of the apply step of the change, as a worker runs it."""
    return environment(todo.workflow_id, attempt).run(
        SubscriptionActivities(deps).apply_change,
        ApplyInput(request=todo.charge.request, quote=todo.charge.quote, payment=paid))


def test_an_apply_that_commits_after_the_refund_of_an_ended_change_applies_nothing(
        deps, change, gateway):
    """The change was terminated while its apply attempt ran; the next change for the
    subscription took its claim over and refunded its charge (the takeover's compensation). The
    attempt, still running, must not then apply the change the payer got their money back for."""
    todo = change()
    paid = run(deps, "charge", todo.workflow_id, 1, todo.charge)

    refunded = PaymentActivities(deps).compensate_abandoned(todo.workflow_id, reason="ended")
    assert refunded is not None and len(refunds_of(gateway, paid.intent_id)) == 1

    assert failure(lambda: apply(deps, todo, paid)).type == "ChangeWithdrawn"
    org = todo.charge.request.org_id
    assert (subscription_row(deps, org, "one").seats, subscription_row(deps, org, "one").version
            ) == (30, 1)
    assert change_rows(deps, todo.workflow_id) == {
        "change_record": 1, "applied_change": 0, "invoice": 0, "refund_ticket": 0}


def test_two_compensations_of_an_ended_change_refund_once_and_both_settle(
        deps, change, gateway, monkeypatch):
    """The sweep and a claim takeover compensate the same terminated change at once: the second
    read its charge entry before the first put it aside. The money moves once, and the second
    settles too (before, renaming its refund entry onto the first one's raised IntegrityError,
    and the sweep listed the change as unsettled for ever); the refund the first made is kept."""
    todo = change()
    paid = run(deps, "charge", todo.workflow_id, 1, todo.charge)
    with deps.sessions() as session:
        before = ledger.gateway_call(session=session, workflow_id=todo.workflow_id,
                                     step=LEDGER_CHARGE)
    assert before is not None

    first = PaymentActivities(deps).compensate_abandoned(todo.workflow_id, reason="sweep")
    assert first is not None and first.refund_id is not None

    read, stale = ledger.gateway_call, [before]

    def first_read_stale(*, session, workflow_id: str, step: str):
        # The second compensation's first read of the charge entry: from before the retiring.
        if step == LEDGER_CHARGE and stale:
            return stale.pop()
        return read(session=session, workflow_id=workflow_id, step=step)

    monkeypatch.setattr(ledger, "gateway_call", first_read_stale)
    assert PaymentActivities(deps).compensate_abandoned(todo.workflow_id, reason="takeover"
                                                        ) is None
    monkeypatch.undo()

    assert len(refunds_of(gateway, paid.intent_id)) == 1
    with deps.sessions() as session:
        kept = ledger.gateway_call(session=session, workflow_id=todo.workflow_id,
                                   step=f"{LEDGER_REFUND}.{before.generation}")
        assert kept is not None and kept.external_id == first.refund_id
        assert ledger.gateway_call(session=session, workflow_id=todo.workflow_id,
                                   step=LEDGER_REFUND) is None
        charge = ledger.gateway_call(session=session, workflow_id=todo.workflow_id,
                                     step=LEDGER_CHARGE)
        # Not voided: the same request started again charges afresh.
        assert charge is not None and charge.generation == before.generation + 1
        assert (charge.status, charge.external_id) == ("declined", None)


def test_a_refund_after_the_apply_committed_refunds_nothing(deps, change, gateway):
    """The other order: the apply committed first, so the change keeps its money; the takeover
    refunds nothing and a cancel's refund is refused."""
    todo = change()
    paid = run(deps, "charge", todo.workflow_id, 1, todo.charge)
    applied = apply(deps, todo, paid)

    assert PaymentActivities(deps).compensate_abandoned(todo.workflow_id, reason="ended") is None
    assert failure(lambda: run(deps, "refund_charge", todo.workflow_id, 1, todo.refund())
                   ).type == "ChangeApplied"
    assert refunds_of(gateway, paid.intent_id) == []
    assert applied.subscription.seats == 35
    assert apply(deps, todo, paid, attempt=2) == applied  # a retry finds it applied


def test_a_cancel_of_an_uncharged_change_stops_an_apply_still_running(deps, change):
    """Nothing was charged (an offline payer sales approved): the cancel asks whether the failed
    apply committed after all, and that same step settles the change as withdrawn, so an apply
    attempt still running can't give the subscription away once the change says cancelled."""
    todo = change()
    asked = environment(todo.workflow_id, 1).run(
        SubscriptionActivities(deps).find_applied_change, todo.charge.request)
    assert asked.applied is None

    offline = PaymentRecord(method="offline", amount=todo.charge.quote.total_due,
                            currency=todo.charge.quote.currency, sales_case="SC-000001")
    assert failure(lambda: apply(deps, todo, offline)).type == "ChangeWithdrawn"
    assert subscription_row(deps, todo.charge.request.org_id, "one").seats == 30


@pytest.mark.parametrize("first", ["apply", "withdraw"])
def test_an_apply_and_a_withdrawal_in_flight_together_settle_the_change_once(
        deps, change, background, first):
    """The apply and the compensation settle the change in their own transactions: the one that
    starts second waits for the first to commit, then finds it and refuses."""
    workflow_id = change().workflow_id
    entered, commit = threading.Event(), threading.Event()

    def hold_open(outcome: str) -> str | None:
        with deps.sessions() as session:
            settled = changes.settle(session=session, workflow_id=workflow_id, outcome=outcome)
            entered.set()
            assert commit.wait(HOLD_LIMIT)
            session.commit()
            return settled

    def second() -> bool:
        with deps.sessions() as session:
            if first == "apply":
                return changes.withdraw(session=session, workflow_id=workflow_id)
            return changes.settle(session=session, workflow_id=workflow_id,
                                  outcome=changes.APPLIED) == changes.APPLIED

    held = background(hold_open, changes.APPLIED if first == "apply" else changes.WITHDRAWN)
    assert entered.wait(HOLD_LIMIT)
    late = background(second)
    time.sleep(0.5)  # let it reach its update, where it waits for the first transaction
    commit.set()

    assert held.result() == (changes.APPLIED if first == "apply" else changes.WITHDRAWN)
    assert late.result() is False


# --- outcomes that are not declines ------------------------------------------------------------

class ProcessingOnce:
    """The gateway answering `processing` to the first confirm, as it does for a payment method
    that settles later (localstripe has no such card), then the real thing."""

    def __init__(self, real: Gateway) -> None:
        self.real, self.answered = real, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def confirm_intent(self, intent_id: str) -> IntentState:
        self.answered = True
        return IntentState(id=intent_id, status="processing", charge_id=None,
                           decline_code=None, decline_message=None)


def test_an_intent_still_processing_is_kept_and_read_again_not_declined(deps, change, gateway):
    todo = change()
    processing = ProcessingOnce(deps.gateway)

    first = failure(lambda: run(dataclasses.replace(deps, gateway=processing), "charge",
                                todo.workflow_id, 1, todo.charge))
    assert (first.type, first.non_retryable) == ("ChargeProcessing", False)
    kept = entry(deps, todo.workflow_id)
    assert (kept.status, kept.external_id is not None) == ("pending", True)

    paid = run(deps, "charge", todo.workflow_id, 2, todo.charge)
    assert paid.intent_id == kept.external_id
    assert len(succeeded_charges(gateway, workflow_id=todo.workflow_id)) == 1
    assert len(payment_intents_of(gateway, todo.workflow_id)) == 1


def test_a_card_that_needs_3d_secure_parks_with_its_intent_and_a_cancel_voids_it(
        deps, change, gateway):
    todo = change(card=THREE_D_SECURE_CARD)

    needs = failure(lambda: run(deps, "charge", todo.workflow_id, 1, todo.charge))
    assert (needs.type, needs.non_retryable) == ("CardNeedsAuthentication", True)
    assert "3-D Secure" in needs.message
    assert CHARGE.policy.may_have_moved_money(needs.type)  # so a cancel compensates
    kept = entry(deps, todo.workflow_id)
    assert kept.status == "pending"
    assert payment_intent(gateway, kept.external_id).status == "requires_action"

    refunded = run(deps, "refund_charge", todo.workflow_id, 1, todo.refund())

    assert refunded.refund_id is None
    assert payment_intent(gateway, kept.external_id).status == "canceled"
    assert succeeded_charges(gateway, workflow_id=todo.workflow_id) == []


# --- the time budget ---------------------------------------------------------------------------

@dataclasses.dataclass
class Counts:
    requests: int = 0
    transactions: int = 0


@pytest.fixture
def counted(monkeypatch, engine: sa.Engine) -> Iterator[Counts]:
    """Gateway HTTP requests and database transactions made while the test runs."""
    counts = Counts()
    send = requests.Session.request

    def counting(self, *args, **kwargs):
        counts.requests += 1
        return send(self, *args, **kwargs)

    def begun(_connection) -> None:
        counts.transactions += 1

    monkeypatch.setattr(requests.Session, "request", counting)
    sa.event.listen(engine, "begin", begun)
    yield counts
    sa.event.remove(engine, "begin", begun)


def within(budget: limits.Budget, counts: Counts) -> bool:
    return (counts.requests <= budget.gateway_requests
            and counts.transactions <= budget.transactions)


def test_the_budget_covers_every_request_of_a_charge_and_its_refund(deps, change, counted):
    todo = change()
    counted.requests = counted.transactions = 0
    run(deps, "charge", todo.workflow_id, 1, todo.charge)
    assert within(CHARGE.policy.budget, counted), counted

    counted.requests = counted.transactions = 0
    run(deps, "refund_charge", todo.workflow_id, 1, todo.refund())
    assert within(REFUND_CHARGE.policy.budget, counted), counted


def test_the_budget_covers_an_overtaken_attempt_and_a_voided_intent(deps, change, counted,
                                                                    background):
    todo = change()
    held = HeldGateway(deps.gateway, "create_intent", attempt=1)
    late = background(run, dataclasses.replace(deps, gateway=held), "charge", todo.workflow_id,
                      1, todo.charge)
    assert held.reached.wait(HOLD_LIMIT)
    counted.requests = counted.transactions = 0
    refunded = run(deps, "refund_charge", todo.workflow_id, 1, todo.refund())
    assert within(REFUND_CHARGE.policy.budget, counted), counted
    assert refunded.refund_id is None

    counted.requests = counted.transactions = 0
    held.release.set()
    assert failure(late.result).type == "ChargeVoided"
    assert counted.requests <= 3, counted  # read the entry's holder, cancel its own intent


# --- the one notice of a declined payment ------------------------------------------------------

def test_an_attempt_beside_one_that_sends_the_payment_notice_waits_and_it_goes_once(
        deps, change, mailbox, monkeypatch, background):
    """Two attempts of email_payment_failed overlap (Temporal retried the step after a heartbeat
    timeout while the first still sends): the notice is sent under a lease, as the invoice is,
    so the second waits for it instead of sending a copy, and a third finds it sent."""
    todo = change()
    request = todo.charge.request
    with deps.sessions() as session:
        payment_waits.record_wait(session=session, workflow_id=todo.workflow_id,
                                  org_id=request.org_id, product=request.product, declines=1)
    notice = PaymentFailedNotice(request=request, quote=todo.charge.quote,
                                 decline_code="card_declined")
    inside, release = threading.Event(), threading.Event()
    send = activities.payment_recovery.send_email

    def held_send(message, *, settings):
        inside.set()
        assert release.wait(HOLD_LIMIT), "the test never let the send finish"
        send(message, settings=settings)

    def attempt(n: int) -> None:
        return environment(todo.workflow_id, n).run(
            PaymentRecoveryActivities(deps).email_payment_failed, notice)

    monkeypatch.setattr(activities.payment_recovery, "send_email", held_send)
    first = background(attempt, 1)
    assert inside.wait(HOLD_LIMIT)
    monkeypatch.setattr(activities.payment_recovery, "send_email", send)
    waiting = failure(lambda: attempt(2))
    release.set()
    first.result(timeout=HOLD_LIMIT)

    assert waiting.type == "EmailInProgress" and not waiting.non_retryable
    assert waiting.next_retry_delay is not None and waiting.next_retry_delay > timedelta(0)
    attempt(3)  # sent: nothing goes out again
    billing = f"billing@{request.org_id}.example"
    assert len(mailbox.messages(to=billing)) == 1
    with deps.sessions() as session:
        assert payment_waits.notice_sent(session=session, workflow_id=todo.workflow_id)
