"""Nothing is left half-settled when a change's workflow is ended from outside (SPEC section 11):
the reconciliation sweep (`ChangeSweep`, the workflow the `subchange-sweep` schedule starts)
settles each change terminated at a step as the pipeline would have: the money of a change
charged but not applied goes back once, an applied change's invoice is emailed once, the claim
on the subscription is freed; audited and counted. Two sweeps at once settle each change once, a
later sweep finds nothing, and a change that still runs is never touched. Real workflows,
activities, localstripe and SMTP sink; the changes are stopped at the moment a step pauses
(subchange/faults.py), as an operator's `temporal workflow terminate` would find them."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections import Counter

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig

from subchange.app.wiring import build_worker
from subchange.domain.sweep import SweepInput, SweepResult
from tests.helpers.documents import unique_org
from tests.helpers.driver import ChangeDriver, load_suite, wait_for_sales
from tests.helpers.observers import (
    audit_entries,
    change_record,
    claim_of,
    refunds_of,
    subscription_row,
    succeeded_charges,
)
from tests.helpers.services import own_clock
from workflows.sweep import ChangeSweep

# Its own clock: it leaves changes waiting for sales, through a client of its own; on the shared
# server a module run after it (test_claim_never_outlives_its_holder.py) timed out in its sleep.
time_skipping_env = own_clock()

PAUSES = "charge.after_confirm,apply.after_commit"


class PauseWatcher(logging.Handler):
    """The changes that reached a pause point (subchange/faults.py logs it in the step's own
    thread), so a test terminates each one at that moment."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[str, str]] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if activity.in_activity():
            self.seen.add((str(record.args[0]), activity.info().workflow_id))  # type: ignore[index]

    async def wait(self, point: str, handle: WorkflowHandle) -> None:
        for _ in range(600):
            if (point, handle.id) in self.seen:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{handle.id} never paused at {point}")


async def sweep(client: Client, task_queue: str) -> SweepResult:
    return await client.execute_workflow(ChangeSweep.run, SweepInput(),
                                         id=f"sweep-{uuid.uuid4().hex[:8]}",
                                         task_queue=task_queue, result_type=SweepResult)


async def test_the_sweep_settles_each_ended_change_once_and_leaves_running_ones(
        time_skipping_env, deps, task_queue, load, gateway, mailbox):
    buffer = MetricBuffer(10_000)
    client = await Client.connect(
        time_skipping_env.client.service_client.config.target_host,
        data_converter=time_skipping_env.client.data_converter,
        runtime=Runtime(telemetry=TelemetryConfig(metrics=buffer)))
    paused = dataclasses.replace(deps, settings=deps.settings.model_copy(
        update={"fault_pause_points": PAUSES, "fault_pause_seconds": 2}))
    watcher, faults = PauseWatcher(), logging.getLogger("subchange.faults")
    faults.addHandler(watcher)
    try:
        async with build_worker(client, paused, task_queue=task_queue,
                                fail_workflows_on_bugs=True):
            driver = ChangeDriver(client, task_queue, time_skipping_env, load)
            orgs = {name: unique_org(f"sweep-{name}")
                    for name in ("before", "charged", "applied", "running")}
            for name in ("charged", "applied"):
                await load_suite(driver, orgs[name])
            for name in ("before", "running"):
                await load_suite(driver, orgs[name], card=None)  # waits for sales
            changes = {name: await driver.start(org, seats=35) for name, org in orgs.items()}
            await watcher.wait("charge.after_confirm", changes["charged"])
            await changes["charged"].terminate(reason="operator cleanup")  # charged, not applied
            await watcher.wait("apply.after_commit", changes["applied"])
            await changes["applied"].terminate(reason="operator cleanup")  # applied, no email
            for name in ("before", "running"):
                await wait_for_sales(changes[name])
            await changes["before"].terminate(reason="operator cleanup")  # nothing charged
            ended = {name: changes[name].id for name in ("before", "charged", "applied")}

            racing = await asyncio.gather(sweep(client, task_queue), sweep(client, task_queue))
            again = await sweep(client, task_queue)
            # The subscription is free: a new change for it runs (it waits for sales, where a
            # held claim would have rejected it), without taking a claim over.
            after = await driver.start(orgs["before"], seats=36)
            await wait_for_sales(after)
    finally:
        faults.removeHandler(watcher)

    settled = [entry for result in racing for entry in result.settled]
    mine = {entry.workflow_id: entry.actions for entry in settled
            if entry.workflow_id in ended.values()}
    assert mine == {ended["before"]: ["claim_released"],
                    ended["charged"]: ["refund", "claim_released"],
                    ended["applied"]: ["invoice_emailed", "claim_released"]}
    assert len([e for e in settled if e.workflow_id in ended.values()]) == 3  # each once
    assert not any(e.workflow_id in ended.values() for e in again.settled)
    assert changes["running"].id not in {e.workflow_id for r in (*racing, again)
                                         for e in r.settled}

    # The gateway: the charged change's money went back once; the applied change kept it.
    [charge] = succeeded_charges(gateway, subscription_row(deps, orgs["charged"], "one"))
    [refund] = refunds_of(gateway, charge.payment_intent)
    assert refund.amount == charge.amount
    [kept] = succeeded_charges(gateway, subscription_row(deps, orgs["applied"], "one"))
    assert refunds_of(gateway, kept.payment_intent) == []
    assert subscription_row(deps, orgs["charged"], "one").seats == 30  # never applied
    assert subscription_row(deps, orgs["applied"], "one").seats == 35

    # The mailbox: the applied change's invoice, once; nothing for the refunded one.
    [invoice] = mailbox.messages(to=f"billing@{orgs['applied']}.example")
    assert "INV-" in invoice["Subject"]
    assert mailbox.messages(to=f"billing@{orgs['charged']}.example") == []

    # The claims and records: freed and closed as terminated; the running change untouched.
    assert claim_of(deps, orgs["charged"], "one") is None
    assert claim_of(deps, orgs["applied"], "one") is None
    assert claim_of(deps, orgs["before"], "one") == after.id
    assert not any(e.action == "take_over_claim" for e in audit_entries(deps, org=orgs["before"]))
    assert {change_record(deps, wf).status for wf in ended.values()} == {"terminated"}
    assert claim_of(deps, orgs["running"], "one") == changes["running"].id
    assert change_record(deps, changes["running"].id).status == "running"
    assert not any(e.actor == "sweep" for e in audit_entries(deps, org=orgs["running"]))

    # The audit log: each action once, by the sweep.
    def by_sweep(name: str) -> Counter:
        return Counter((e.action, e.outcome) for e in audit_entries(deps, workflow_id=ended[name])
                       if e.actor == "sweep")

    assert by_sweep("charged") == {("compensate", "refunded"): 1, ("release_claim", "released"): 1,
                                   ("sweep", "terminated"): 1}
    assert by_sweep("applied") == {("email_invoice", "emailed"): 1,
                                   ("release_claim", "released"): 1, ("sweep", "terminated"): 1}
    assert by_sweep("before") == {("release_claim", "released"): 1, ("sweep", "terminated"): 1}
    [compensated] = [e for e in audit_entries(deps, workflow_id=ended["charged"])
                     if e.action == "compensate"]
    assert refund.id in compensated.detail

    # The metrics: every action the sweeps report counted once, what they could not settle shown.
    updates = buffer.retrieve_updates()
    counted = Counter()
    for update in updates:
        if update.metric.name == "subchange_sweep_settled":
            counted[update.attributes["action"]] += update.value
    assert counted == Counter(action for entry in settled for action in entry.actions)
    assert sum(u.value for u in updates if u.metric.name == "subchange_sweep_found") >= 3
    [*_, unsettled] = [u.value for u in updates if u.metric.name == "subchange_sweep_unsettled"]
    assert unsettled == again.unsettled_count
