"""The exactly-once invariants under random interleavings: a seeded generator builds scenarios of
a change (card payer, declining card, 3-D Secure card, offline payer; an increase or a decrease)
with injected faults (an activity failing once for good, or once retryably, at the charge, the
apply, the refund or the email; a charge that takes the money and then loses the answer; an
apply that commits as a Temporal cancel comes and then loses the answer) and actions sent at
random moments (cancel by support or by the requester, retry, Temporal cancel, a sales decision,
a new card with its wake-up, terminate followed by a new change), some driver started together
with their requester's cancel (update-with-start: the cancel reaches the workflow before `run`
does), then drives every change to an end the way support (or a payer with a new card) would.
After each scenario it checks what a user would notice:

- at most one succeeded payment intent per change;
- money kept only when the change was applied; otherwise every succeeded charge refunded once;
- the subscription advanced exactly when a change was applied, and to its quote;
- exactly one invoice email (one Message-ID) per applied change, a terminated one's too (sent by
  the sweep), none otherwise; at most one notice of a declined payment per change;
- the subscription's claim free once the driver ended (a terminated change's once the next change
  took it over, or after the reconciliation sweep that runs after each batch, which also refunds
  what it took);
- every change ended with a stated result;
- no intent of a change that was not applied is left for the payer to complete (3-D Secure) or
  still processing: a charge of unknown outcome is voided or refunded;
- no sales case left open by a change that ended;
- a requester's cancel sent with the start is accepted and cancels the change.

`INTERLEAVING_SCENARIOS` sets how many (default 80 on SQLite, 60 on PostgreSQL, run 8 at a
time); `INTERLEAVING_SEED` the first seed. A failure prints the scenario to replay it with.
Real workflow and activities on the real Temporal server (the dev server), localstripe, SMTP
and database; the stand-ins only inject the faults, wrapping the real activities.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.dependencies import Dependencies
from activities.invoicing import InvoiceActivities
from activities.payments import PaymentActivities
from activities.subscriptions import SubscriptionActivities
from subchange.app.fixtures import FixtureConflict
from subchange.app.payments import wake_changes_waiting_for_payment
from subchange.domain.contracts import (
    CancelRequest,
    ChangeResult,
    ChangeStatus,
    PaymentRecord,
    RetryRequest,
    SalesDecision,
)
from subchange.domain.search_attributes import initial_search_attributes
from subchange.domain.step_io import (
    ApplyInput,
    ApplyOutput,
    ChargeInput,
    RefundChargeInput,
    RefundChargeOutput,
)
from subchange.domain.sweep import SWEEP_WORKFLOW, SweepInput, SweepResult
from subchange.store import subscriptions
from subchange.store.tables import AppliedChange, Invoice
from tests.helpers.documents import (
    DECLINED_ON_CHARGE_CARD,
    GOOD_CARD,
    SALES,
    SUPPORT,
    THREE_D_SECURE_CARD,
    admin,
    org_document,
    unique_org,
)
from tests.helpers.driver import (
    ChangeDriver,
    request_for,
    status_of,
    wait_for_event,
)
from tests.helpers.observers import (
    claim_of,
    refunds_of,
    sales_case_row,
    subscription_row,
)
from tests.helpers.services import database_kind, dev_server
from workflows.subscription_change import SubscriptionChange

PAYERS = ("card", "declining", "three_d_secure", "offline")
FAULTS = (None, None, "charge_lost_answer", "apply_fails_for_good", "apply_fails_once",
          "apply_commits_as_a_temporal_cancel_comes", "refund_fails_for_good",
          "email_fails_for_good", "email_fails_once")
ACTIONS = ("cancel_support", "cancel_requester", "retry", "temporal_cancel", "approve",
           "reject", "terminate_then_new", "new_card", "nothing")
SUPPORT_MOVES = ("retry", "cancel", "temporal_cancel")  # by turns, from the scenario's own
CARDS = {"card": GOOD_CARD, "declining": DECLINED_ON_CHARGE_CARD,
         "three_d_secure": THREE_D_SECURE_CARD, "offline": None}
BATCH = 8


@dataclasses.dataclass
class Scenario:
    seed: int
    payer: str
    seats: int
    fault: str | None
    actions: list[tuple[float, str]]  # (delay in seconds after the start, action)
    cancel_with_start: bool = False  # the requester's cancel sent together with the start

    @classmethod
    def generate(cls, seed: int) -> Scenario:
        rng = random.Random(seed)
        actions = sorted((round(rng.uniform(0, 0.4), 3), rng.choice(ACTIONS))
                         for _ in range(rng.randint(1, 3)))
        return cls(seed=seed, payer=rng.choice(PAYERS), seats=rng.choice([28, 33, 35, 40]),
                   fault=rng.choice(FAULTS), actions=actions,
                   cancel_with_start=rng.random() < 0.1)


class Faults:
    """Which fault each change gets, and whether it has fired (once per change)."""

    def __init__(self) -> None:
        self.planned: dict[str, str] = {}
        self.fired: set[str] = set()

    def fires(self, name: str) -> bool:
        workflow_id = activity.info().workflow_id
        if self.planned.get(workflow_id) == name and workflow_id not in self.fired:
            self.fired.add(workflow_id)
            return True
        return False


@pytest.fixture(scope="module")
async def real_server() -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal dev server (the real server): the time-skipping test server refuses a
    workflow task that cancels an activity which completed meanwhile (ACTIVITY_UNKNOWN), a race
    this test provokes on purpose and the real server resolves."""
    async with dev_server() as env:
        yield env


@pytest.fixture
async def faulty(real_server, driver_with_stand_ins, deps: Dependencies
                 ) -> tuple[ChangeDriver, Faults]:
    faults = Faults()
    loop = asyncio.get_running_loop()
    payments, applies, emails = (PaymentActivities(deps), SubscriptionActivities(deps),
                                 InvoiceActivities(deps))

    @activity.defn(name="charge", no_thread_cancel_exception=True)
    def charge(arg: ChargeInput) -> PaymentRecord:
        record = payments.charge(arg)
        if faults.fires("charge_lost_answer"):
            raise ApplicationError("the database went away after the gateway confirmed",
                                   type="DatabaseGone", non_retryable=True)
        return record

    @activity.defn(name="apply_change")
    def apply_change(arg: ApplyInput) -> ApplyOutput:
        if faults.fires("apply_commits_as_a_temporal_cancel_comes"):
            # An operator cancels through Temporal while the attempt runs; it commits, but its
            # answer is lost, and the server retries no attempt whose cancellation was requested.
            asyncio.run_coroutine_threadsafe(
                cancel_through_temporal(real_server.client, activity.info().workflow_id),
                loop).result(30)
            applies.apply_change(arg)
            raise ApplicationError("the answer was lost after the commit", type="AnswerLost")
        if faults.fires("apply_fails_for_good"):
            raise ApplicationError("database unreachable", type="DatabaseDown",
                                   non_retryable=True)
        if faults.fires("apply_fails_once"):
            raise ApplicationError("database restarting", type="DatabaseRestarting")
        return applies.apply_change(arg)

    @activity.defn(name="refund_charge")
    def refund_charge(arg: RefundChargeInput) -> RefundChargeOutput:
        if faults.fires("refund_fails_for_good"):
            raise ApplicationError("the gateway is paused", type="GatewayPaused",
                                   non_retryable=True)
        return payments.refund_charge(arg)

    @activity.defn(name="email_invoice", no_thread_cancel_exception=True)
    def email_invoice(number: str):
        if faults.fires("email_fails_for_good"):
            raise ApplicationError("SMTP server unreachable", type="SmtpDown",
                                   non_retryable=True)
        if faults.fires("email_fails_once"):
            raise ApplicationError("SMTP server busy", type="SmtpBusy")
        return emails.email_invoice(number)

    driver = await driver_with_stand_ins(env=real_server, charge=charge,
                                         apply_change=apply_change, refund_charge=refund_charge,
                                         email_invoice=email_invoice)
    return driver, faults


async def cancel_through_temporal(client, workflow_id: str) -> None:
    """Request cancellation, and wait until the workflow asked its running activity to stop."""
    handle = client.get_workflow_handle(workflow_id)
    await handle.cancel()
    await wait_for_event(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED)


def scenario_count() -> int:
    # SQLite's one writer makes its faults (a held write lock) the harshest: more scenarios there.
    default = 80 if database_kind() == "sqlite" else 60
    return int(os.environ.get("INTERLEAVING_SCENARIOS", default))


async def test_random_interleavings_keep_money_subscriptions_and_emails_right(faulty, deps,
                                                                              gateway, mailbox):
    driver, faults = faulty
    first = int(os.environ.get("INTERLEAVING_SEED", "1"))
    scenarios = [Scenario.generate(seed) for seed in range(first, first + scenario_count())]
    for start in range(0, len(scenarios), BATCH):
        batch = scenarios[start:start + BATCH]
        runs = await asyncio.gather(*(run(driver, faults, scenario, deps)
                                      for scenario in batch), return_exceptions=True)
        await sweep(driver)  # settles what the terminated changes left, as the schedule would
        gateway_now = GatewayView.read(gateway)
        broken = []
        for scenario, ran in zip(batch, runs, strict=True):
            try:
                if isinstance(ran, BaseException):
                    raise ran
                check(scenario, *ran, deps, gateway, gateway_now, mailbox)
            except Exception as error:  # noqa: BLE001 - reported with its scenario below
                broken.append((scenario, error))
        assert not broken, "\n".join(f"{scenario} broke an invariant: {error!r}"
                                     for scenario, error in broken)


@dataclasses.dataclass
class GatewayView:
    """The gateway's intents and charges, read once per batch (localstripe lists everything)."""

    intents: dict[str, list[Any]]  # by the workflow id in their metadata
    charges: dict[str, list[Any]]  # by payment intent

    @classmethod
    def read(cls, gateway) -> GatewayView:
        intents: dict[str, list[Any]] = {}
        for intent in gateway.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter():
            workflow_id = (intent.metadata.to_dict() if intent.metadata else {}).get(
                "workflow_id")
            intents.setdefault(workflow_id, []).append(intent)
        charges: dict[str, list[Any]] = {}
        for charge in gateway.v1.charges.list(params={"limit": 100}).auto_paging_iter():
            charges.setdefault(charge.payment_intent, []).append(charge)
        return cls(intents, charges)

    def succeeded_charges(self, workflow_id: str) -> list[Any]:
        return [charge for intent in self.intents.get(workflow_id, [])
                for charge in self.charges.get(intent.id, []) if charge.status == "succeeded"]


# --- one scenario ------------------------------------------------------------------------------

async def run(driver: ChangeDriver, faults: Faults, scenario: Scenario, deps
              ) -> tuple[str, list[WorkflowHandle], dict[str, ChangeResult | None], str | None]:
    org = unique_org(f"mix{scenario.seed}")
    driver.reload(suite(org, CARDS[scenario.payer]))
    requester = f"admin@{org}.example"
    cancelled_with_start = None
    if scenario.cancel_with_start:
        first, cancelled_with_start = await start_with_the_requesters_cancel(driver, faults,
                                                                             scenario, org)
        handles = [first]
    else:
        handles = [await start(driver, faults, scenario, org)]
    started = asyncio.get_running_loop().time()
    for delay, action in scenario.actions:
        await asyncio.sleep(max(0.0, started + delay - asyncio.get_running_loop().time()))
        new = await act(driver, faults, scenario, handles[-1], action, org, requester, deps)
        if new is not None:
            handles.append(new)
    moves = SUPPORT_MOVES[scenario.seed % 3:] + SUPPORT_MOVES[:scenario.seed % 3]
    results = {h.id: await drive_to_an_end(driver, h, org, deps, moves) for h in handles}
    answer = None
    if cancelled_with_start is not None:
        try:
            answer = (await cancelled_with_start.result()).message
        except WorkflowUpdateFailedError as refused:
            answer = f"refused: {refused.cause}"
    steps = {h.id: await steps_taken(h) for h in handles}
    return org, handles, results, answer, steps


async def steps_taken(handle: WorkflowHandle) -> str:
    """What the change did, step by step, for a broken invariant's message."""
    try:
        view = await status_of(handle)
    except (RPCError, WorkflowQueryFailedError) as unanswered:
        return f"(no status: {unanswered})"
    return ", ".join(f"{record.step}:{record.outcome}" for record in view.history)


async def sweep(driver: ChangeDriver) -> SweepResult:
    """The reconciliation sweep (SPEC 11), as its schedule runs it: a terminated change that
    no later change took over is settled: its charge refunded unless applied, its invoice
    emailed if applied, its claim released; each once, whoever else settles it."""
    result = await driver.client.execute_workflow(
        SWEEP_WORKFLOW, SweepInput(), id=f"sweep-{uuid.uuid4().hex[:8]}",
        task_queue=driver.task_queue, result_type=SweepResult)
    assert result.unsettled_count == 0, result.unsettled
    return result


def suite(org: str, card: str | None, seats: int = 30) -> dict[str, Any]:
    return org_document(org, users=[admin(org)], subscriptions=[{
        "product": "one", "plan": "enterprise", "seats": seats, "pricing_model": "flexible_user",
        "card": card, "payment_method": "online" if card else "offline"}])


async def start(driver: ChangeDriver, faults: Faults, scenario: Scenario, org: str
                ) -> WorkflowHandle:
    handle = await driver.start(org, seats=scenario.seats)
    if scenario.fault:
        faults.planned[handle.id] = scenario.fault
    return handle


async def start_with_the_requesters_cancel(driver: ChangeDriver, faults: Faults,
                                           scenario: Scenario, org: str
                                           ) -> tuple[WorkflowHandle, WorkflowUpdateHandle]:
    """The change and its requester's cancel in one request: the cancel reaches the workflow in
    its first task, before `run` has read the request."""
    request = request_for(org, "one", f"admin@{org}.example",
                          {"kind": "seats", "seats": scenario.seats})
    if scenario.fault:
        faults.planned[request.workflow_id] = scenario.fault
    starting = WithStartWorkflowOperation(
        SubscriptionChange.run, request.model_dump(mode="json"), id=request.workflow_id,
        task_queue=driver.task_queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=initial_search_attributes(request))
    cancel = await driver.client.start_update_with_start_workflow(
        SubscriptionChange.cancel, CancelRequest(by=request.requested_by),
        start_workflow_operation=starting, wait_for_stage=WorkflowUpdateStage.ACCEPTED)
    return await starting.workflow_handle(), cancel


async def new_card(driver: ChangeDriver, org: str, deps) -> None:
    """The customer replaces the card (a fixture load, as `starter.py load` does) and the
    organisation's changes waiting for payment are told: racing an attempt, a retry or a
    cancel."""
    try:
        driver.reload(suite(org, GOOD_CARD, subscription_row(deps, org, "one").seats))
    except FixtureConflict:  # a change was applied meanwhile: the card stays as it was
        return
    await wake_changes_waiting_for_payment(driver.client, deps.sessions, org)


async def act(driver: ChangeDriver, faults: Faults, scenario: Scenario, handle: WorkflowHandle,
              action: str, org: str, requester: str, deps) -> WorkflowHandle | None:
    """Send the action; a refusal is an answer too (the invariants judge the outcome)."""
    try:
        if action in ("cancel_support", "cancel_requester"):  # not awaited past acceptance
            await handle.start_update(SubscriptionChange.cancel, CancelRequest(
                by=SUPPORT if action == "cancel_support" else requester),
                wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        elif action == "retry":
            await handle.execute_update(SubscriptionChange.retry, RetryRequest(by=SUPPORT))
        elif action == "temporal_cancel":
            await handle.cancel()
        elif action in ("approve", "reject"):
            await handle.execute_update(SubscriptionChange.sales_decision,
                                        SalesDecision(approved=action == "approve", by=SALES))
        elif action == "new_card" and scenario.payer != "offline":
            await new_card(driver, org, deps)
        elif action == "terminate_then_new":
            await handle.terminate(reason="interleaving test")
            return await start(driver, faults, dataclasses.replace(scenario, fault=None), org)
    except (WorkflowUpdateFailedError, RPCError):
        pass
    return None


async def drive_to_an_end(driver: ChangeDriver, handle: WorkflowHandle, org: str,
                          deps, moves: tuple[str, ...]) -> ChangeResult | None:
    """What support, sales, operators and payers do until the change ends: while it waits for
    support or payment, by turns (in the scenario's order) fix the card and retry (waiting for
    payment, the new card alone tries again), cancel, or cancel through Temporal (the Web UI's
    Request Cancellation); a terminated change has no result (None)."""
    made = 0
    for round_ in range(60):
        described = await handle.describe()
        if described.status is not None and described.status.name == "TERMINATED":
            return None
        view = await status_of(handle)
        if view.result is not None:
            return await driver.result(handle)
        if view.state == "awaiting_payment" and moves[made % len(moves)] == "retry":
            made += 1
            await new_card(driver, org, deps)
        elif view.state in ("awaiting_support", "awaiting_payment"):
            move, made = moves[made % len(moves)], made + 1
            try:
                if move == "retry":
                    if view.step == "charge":  # the card replaced, the terms as they are
                        driver.reload(suite(org, GOOD_CARD,
                                            subscription_row(deps, org, "one").seats))
                    await handle.execute_update(SubscriptionChange.retry,
                                                RetryRequest(by=SUPPORT))
                elif move == "cancel":  # answered once it took effect: a parked refund waits
                    await handle.start_update(SubscriptionChange.cancel, CancelRequest(by=SUPPORT),
                                              wait_for_stage=WorkflowUpdateStage.ACCEPTED)
                else:
                    await handle.cancel()
            except (WorkflowUpdateFailedError, RPCError):
                pass
        elif view.state == "awaiting_sales" and view.waiting_for:
            try:
                await handle.execute_update(SubscriptionChange.sales_decision,
                                            SalesDecision(approved=round_ % 3 != 0, by=SALES))
            except (WorkflowUpdateFailedError, RPCError):
                pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{handle.id} did not end; last status: {await status_of(handle)}")


def check(scenario: Scenario, org: str, handles: list[WorkflowHandle],
          results: dict[str, ChangeResult | None], cancelled_with_start: str | None,
          steps: dict[str, str], deps, gateway, seen: GatewayView, mailbox) -> None:
    with deps.sessions() as session:
        applied = {h.id: session.get(AppliedChange, h.id) for h in handles}
        sent = {h.id: session.exec(
            Invoice.__table__.select().where(Invoice.workflow_id == h.id)).first()
            for h in handles}
        version = subscriptions.version_of(session=session, org_id=org, product="one")
    for handle in handles:
        result = results[handle.id]
        was_applied = applied[handle.id] is not None
        paid = seen.succeeded_charges(handle.id)
        assert len(paid) <= 1, f"{handle.id}: {len(paid)} succeeded charges"
        intents = seen.intents.get(handle.id, [])
        assert sum(1 for pi in intents if pi.status == "succeeded") <= 1
        case = sales_case_row(deps, handle.id)
        if result is not None and case is not None:
            assert case.status != "open", f"{handle.id}: ended {result.status.value}, case open"
        if not was_applied and result is not None:
            assert not [pi.id for pi in intents if pi.status in ("requires_action", "processing")
                        ], (f"{handle.id}: not applied, yet an intent can still charge; ended "
                            f"{result.status.value} ({result.reason}) after {steps[handle.id]}")
        for charge in paid:
            refunds = refunds_of(gateway, charge.payment_intent)
            if was_applied:
                assert refunds == [], f"{handle.id}: applied, yet refunded"
            else:
                assert [r.amount for r in refunds] == [charge.amount], (
                    f"{handle.id}: charged {charge.amount}, not applied, refunds {refunds}")
        mails = [m for m in mailbox.messages(to=f"billing@{org}.example")
                 if sent[handle.id] is not None and sent[handle.id].number in m["Subject"]]
        if was_applied:  # ended or terminated (the sweep emails what a terminated one owed)
            assert result is None or result.status is ChangeStatus.COMPLETED, (handle.id, result)
            assert len({m["Message-ID"] for m in mails}) == 1, f"{handle.id}: {len(mails)} mails"
        notices = [m for m in mailbox.messages(to=f"billing@{org}.example")
                   if m["Message-ID"] == f"<payment-failed.{handle.id}@subchange>"]
        assert len(notices) <= 1, f"{handle.id}: {len(notices)} payment notices"
        if not was_applied:
            assert mails == [], f"{handle.id}: not applied, yet emailed"
            assert result is None or result.status is not ChangeStatus.COMPLETED
        if result is not None:
            assert result.reason or result.status is ChangeStatus.COMPLETED
    if scenario.cancel_with_start and results[handles[0].id] is not None:
        assert cancelled_with_start is not None
        assert cancelled_with_start.startswith("cancelled"), (
            f"{handles[0].id}: the requester's cancel sent with the start: "
            f"{cancelled_with_start}")
        assert results[handles[0].id].status is ChangeStatus.CANCELLED
    applied_count = sum(1 for row in applied.values() if row is not None)
    assert version == 1 + applied_count, f"subscription version {version}, {applied_count} applied"
    row = subscription_row(deps, org, "one")
    if applied_count:
        last = next(row_ for row_ in reversed(list(applied.values())) if row_ is not None)
        assert row.seats == last.after["seats"]
    else:
        assert row.seats == 30
    if all(results[h.id] is not None for h in handles[-1:]):
        assert claim_of(deps, org, "one") is None, (
            f"the claim outlived its driver: {[(h.id, results[h.id]) for h in handles]}")
