"""Exactly once when workers die (SPEC ground rule): `worker.py` processes are killed with
SIGKILL while paused right before or after a side effect, a fresh worker finishes the changes,
and the gateway, the database and the mailbox each show every effect once per change."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlmodel import select

from subchange.domain.contracts import ChangeResult, ChangeStatus
from subchange.store.tables import AppliedChange, ChangeRecord, GatewayCall, Invoice
from tests.helpers.documents import org_document
from tests.helpers.driver import request_for, start_change
from tests.helpers.observers import (
    change_rows,
    payment_intents_of,
    subscription_row,
    succeeded_charges,
)
from tests.helpers.processes import PAUSED_LINE, READY_LINE, WorkerProcess

pytestmark = pytest.mark.integration

RESULT_TIMEOUT = 150  # the killed attempt is retried only after its start-to-close timeout


@dataclass(frozen=True)
class Case:
    """One change, killed at `point`: `seats` → `new_seats` on the suite, flexible pricing."""

    point: str
    seats: int
    new_seats: int
    refund: bool = False
    # SMTP has no idempotency: a worker dying between the server's "250 OK" and our commit
    # leaves the send unrecorded, and the retry re-sends the same Message-ID (activities/
    # invoicing.py). There the guarantee is one distinct message, which mail systems dedupe.
    resend_possible: bool = False

    @property
    def charged(self) -> bool:
        return self.new_seats > self.seats


CASES = [
    Case("charge.before_confirm", 10, 14),
    Case("charge.after_confirm", 10, 15),
    Case("apply.after_commit", 20, 16, refund=True),
    Case("email.before_send", 10, 12),
    Case("email.after_send", 10, 13, resend_possible=True),
    # A local step: the worker dies inside its workflow task, which times out; the next worker
    # runs the task again, close_change included, and the change ends once.
    Case("close.after_commit", 10, 17),
]


@pytest.fixture
def env_for(process_env):
    """The environment of a worker on the given task queue."""
    def make(task_queue: str, **extra: str) -> dict[str, str]:
        return process_env("crash", task_queue=task_queue, **extra)

    return make


@pytest.fixture
def workers(tmp_path):
    """Start worker processes; every one is stopped (or was killed) when the test ends."""
    started: list[WorkerProcess] = []

    def start(env: dict[str, str], name: str) -> WorkerProcess:
        process = WorkerProcess(env, tmp_path / f"{name}-{len(started)}.log").start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def load_org(load, org: str, seats: int) -> str:
    admin = f"admin@{org}.example"
    load(org_document(org, users=[{"email": admin, "role": "admin", "products": ["one"]}],
                      subscriptions=[{"product": "one", "plan": "enterprise", "seats": seats,
                                      "pricing_model": "flexible_user"}]))
    return admin


async def wait_in_thread(process: WorkerProcess, text: str) -> str:
    return await asyncio.to_thread(process.wait_for, text)


async def attempts_of(handle, activity_type: str) -> int:
    """The attempt of the step's activity that completed, from the workflow history."""
    scheduled: dict[int, str] = {}
    attempt = 0
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            scheduled[event.event_id] = (
                event.activity_task_scheduled_event_attributes.activity_type.name)
        if event.HasField("activity_task_started_event_attributes"):
            started = event.activity_task_started_event_attributes
            if scheduled.get(started.scheduled_event_id) == activity_type:
                attempt = max(attempt, started.attempt)
    return attempt


async def workflow_tasks_timed_out(handle) -> int:
    return sum([event.HasField("workflow_task_timed_out_event_attributes")
                async for event in handle.fetch_history_events()])


# The two kill tests take about 30 s each; what they kill is a worker process, and the database's
# side of each effect (the ledger, the invoice counter under overlapping attempts) is tested on
# both databases in tests/unit. When both passes run side by side, each runs in one of them.
@pytest.mark.one_pass(on="sqlite")
async def test_changes_survive_a_killed_worker_with_every_effect_once(
        dev_env, env_for, workers, load, deps, gateway, mailbox):
    run = uuid.uuid4().hex[:6]
    queues = {case.point: f"crash-{case.point}-{run}" for case in CASES}
    paused = [workers(env_for(queues[case.point], FAULT_PAUSE_POINTS=case.point,
                              FAULT_PAUSE_SECONDS="300"), case.point) for case in CASES]
    orgs = {case.point: f"crash-{case.point.replace('.', '-').replace('_', '-')}-{run}"
            for case in CASES}
    admins = {case.point: load_org(load, orgs[case.point], case.seats) for case in CASES}
    await asyncio.gather(*(wait_in_thread(p, READY_LINE) for p in paused))

    handles = {}
    for case in CASES:
        request = request_for(orgs[case.point], by=admins[case.point], seats=case.new_seats,
                              refund=case.refund)
        handles[case.point] = await start_change(dev_env.client, queues[case.point], request)
    logs = await asyncio.gather(*(wait_in_thread(p, PAUSED_LINE) for p in paused))
    for case, log in zip(CASES, logs, strict=True):
        assert f"{PAUSED_LINE} {case.point}" in log

    # Each worker is stopped right at its point: the side effect before it has happened.
    with deps.sessions() as session:
        after_confirm = handles["charge.after_confirm"].id
        assert [pi.status for pi in payment_intents_of(gateway, after_confirm)] == ["succeeded"]
        assert session.get(AppliedChange, handles["apply.after_commit"].id) is not None
        invoice = session.exec(select(Invoice).where(
            Invoice.workflow_id == handles["email.before_send"].id)).one()
        assert invoice.email_status == "sending"
        before_confirm = session.get(GatewayCall, (handles["charge.before_confirm"].id, "charge"))
        assert before_confirm is not None and before_confirm.status == "created"
    assert mailbox.messages(to=f"billing@{orgs['email.before_send']}.example") == []
    assert len(mailbox.messages(to=f"billing@{orgs['email.after_send']}.example")) == 1
    with deps.sessions() as session:  # closed, and the worker stopped before it could say so
        assert session.get(ChangeRecord, handles["close.after_commit"].id).result is not None
    for process in paused:
        process.kill()

    for case in CASES:
        workers(env_for(queues[case.point]), f"fresh-{case.point}")
    results: list[ChangeResult] = await asyncio.wait_for(asyncio.gather(
        *(handles[case.point].result() for case in CASES)), RESULT_TIMEOUT)

    step_of = {"charge": "charge", "apply": "apply_change", "email": "email_invoice"}
    for case, result in zip(CASES, results, strict=True):
        workflow_id, org = handles[case.point].id, orgs[case.point]
        assert result.status is ChangeStatus.COMPLETED, (case, result.reason)
        if case.point.startswith("close."):  # a local step: its workflow task was run again
            assert await workflow_tasks_timed_out(handles[case.point]) >= 1
        else:
            assert await attempts_of(handles[case.point], step_of[case.point.split(".")[0]]) >= 2
        assert result.subscription is not None and result.subscription.seats == case.new_seats
        charges = succeeded_charges(gateway, workflow_id=workflow_id)
        if case.charged:
            assert result.payment is not None
            assert [c.payment_intent for c in charges] == [result.payment.intent_id], case
            assert charges[0].amount == int(result.quote.total_due), case
        else:
            assert charges == [] and result.quote.amount_due == Decimal(0)
        sub = subscription_row(deps, org, "one")
        assert sub.seats == case.new_seats, case
        assert sub.version == 2, case  # moved once
        assert change_rows(deps, workflow_id) == {
            "change_record": 1, "applied_change": 1, "invoice": 1,
            "refund_ticket": 1 if case.refund else 0}, case
        emails = mailbox.messages(to=f"billing@{org}.example")
        if case.resend_possible:
            assert emails and len({(m["Message-ID"], m["Subject"]) for m in emails}) == 1, case
            emails = emails[:1]
        assert [m["Subject"].split(":")[0] for m in emails] == [
            f"Qualified invoice {result.invoice.number}" if case.charged else
            f"Subscription change confirmation {result.invoice.number}"], case
        if case.refund:
            assert result.refund_ticket is not None
            assert result.refund_ticket.amount == result.quote.refundable_total > 0


async def test_two_workers_on_one_queue_charge_each_change_once(
        dev_env, env_for, workers, load, deps, gateway, mailbox):
    run = uuid.uuid4().hex[:6]
    queue = f"twin-{run}"
    twins = [workers(env_for(queue), f"twin-{n}") for n in range(2)]
    orgs = [f"twin-{n}-{run}" for n in range(6)]
    admins = [load_org(load, org, 10) for org in orgs]
    await asyncio.gather(*(wait_in_thread(p, READY_LINE) for p in twins))

    handles = [await start_change(dev_env.client, queue, request_for(org, by=admin, seats=11 + n))
               for n, (org, admin) in enumerate(zip(orgs, admins, strict=True))]
    results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)),
                                     RESULT_TIMEOUT)

    for n, (org, handle, result) in enumerate(zip(orgs, handles, results, strict=True)):
        assert result.status is ChangeStatus.COMPLETED, result.reason
        assert [c.payment_intent for c in succeeded_charges(gateway, workflow_id=handle.id)] == [
            result.payment.intent_id]
        assert subscription_row(deps, org, "one").seats == 11 + n
        assert change_rows(deps, handle.id)["applied_change"] == 1
        assert len(mailbox.messages(to=f"billing@{org}.example")) == 1
    assert all(p.process.poll() is None for p in twins), "a worker died"


@pytest.mark.one_pass(on="postgresql")  # production's database (see above)
async def test_invoice_numbers_stay_gap_free_when_a_worker_is_killed_mid_burst(
        dev_env, env_for, workers, load, deps):
    """50 changes at once; the worker is killed while they are being applied, a fresh one
    finishes them: 50 invoices with 50 consecutive numbers, none lost to the killed attempts
    (SPEC section 14: gap-free per issuer and year)."""
    run = uuid.uuid4().hex[:6]
    queue = f"numbers-{run}"
    orgs = [f"num-{n}-{run}" for n in range(50)]
    load({"orgs": [org_document(org, users=[{"email": f"admin@{org}.example", "role": "admin",
                                             "products": ["one"]}],
                                subscriptions=[{"product": "one", "plan": "enterprise",
                                                "seats": 10, "pricing_model": "flexible_user"}]
                                )["orgs"][0] for org in orgs]})
    first = workers(env_for(queue), "numbers-first")
    await wait_in_thread(first, READY_LINE)
    handles = await asyncio.gather(*(start_change(dev_env.client, queue, request_for(org, seats=12))
                                     for org in orgs))

    def invoiced() -> int:
        with deps.sessions() as session:
            return len(session.exec(select(Invoice.number).where(
                Invoice.workflow_id.in_([h.id for h in handles]))).all())

    deadline = asyncio.get_running_loop().time() + RESULT_TIMEOUT
    while invoiced() < 15:  # kill it in the middle of the burst
        assert asyncio.get_running_loop().time() < deadline, "no invoices were issued"
        await asyncio.sleep(0.05)
    first.kill()
    assert invoiced() < 50, "the burst ended before the worker was killed"
    workers(env_for(queue), "numbers-second")
    results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)),
                                     RESULT_TIMEOUT)

    assert all(r.status is ChangeStatus.COMPLETED for r in results), [r.reason for r in results]
    numbers = sorted(r.invoice.number for r in results)
    year, start = numbers[0].split("-")[1], int(numbers[0].rsplit("-", 1)[1])
    assert numbers == [f"INV-{year}-{n:06d}" for n in range(start, start + 50)]
