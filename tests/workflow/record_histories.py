"""Record the workflow histories that tests/workflow/test_committed_histories_replay.py
replays: those of the release being made (pyproject.toml's version), or a scenario added to it:

    .venv/bin/python -m tests.workflow.record_histories                  # every scenario
    .venv/bin/python -m tests.workflow.record_histories support_cancel   # some of them
    .venv/bin/python -m tests.workflow.record_histories --out DIR        # elsewhere

Each scenario runs as the workflow tests run: the real workflow and activities in a worker of
this process, on the time-skipping test server, with a fresh database (SQLite, or PostgreSQL
with TEST_DATABASE=postgresql), localstripe and the SMTP sink, all started here and stopped
afterwards (the declined card and the stale subscription the scenarios provoke are logged as
failed activities on the way). Each history is written to
tests/workflow/histories/v<version>/<scenario>.json. Then run the replay test on the new files and
commit them with the workflow change; read that test's docstring first (never re-record to make a
failing replay pass). The recorded events differ from run to run only in how workflow tasks
are batched.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
import tempfile
import tomllib
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from temporalio import activity
from temporalio.client import WorkflowHandle

from activities.dependencies import Dependencies
from activities.subscriptions import SubscriptionActivities
from subchange.app.payments import wake_changes_waiting_for_payment
from subchange.domain.contracts import (
    CancelRequest,
    ChangeResult,
    ChangeStatus,
    RetryRequest,
    SalesDecision,
)
from subchange.domain.step_io import ApplyInput, ApplyOutput
from tests.helpers.documents import (
    GOOD_CARD,
    SALES,
    STAFF_DIRECTORY,
    SUPPORT,
    admin,
    load_document,
    org_document,
    unique_org,
)
from tests.helpers.driver import (
    ChangeDriver,
    load_desk,
    load_suite,
    request_for,
    start_declined_change,
    wait_for,
    wait_for_payment,
    wait_for_sales,
    wait_parked,
    worker_with_stand_ins,
)
from tests.helpers.services import (
    fresh_database,
    localstripe,
    migrated_engine,
    smtp_sink,
    suite_dependencies,
    suite_settings,
    time_skipping_server,
)
from workflows.subscription_change import SubscriptionChange

HISTORIES = Path(__file__).parent / "histories"
ROOT = Path(__file__).resolve().parents[2]
RELEASE = "v" + tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


async def _completed_charge(driver: ChangeDriver) -> WorkflowHandle:
    org = unique_org("replay-charge")
    await load_suite(driver, org)
    handle = await driver.start(org, seats=35)
    assert (await driver.settle(handle)).status is ChangeStatus.COMPLETED
    return handle


async def _sales_approved(driver: ChangeDriver) -> WorkflowHandle:
    org = unique_org("replay-sales")
    await load_suite(driver, org, card=None)
    handle = await driver.start(org, seats=28)
    await wait_for_sales(handle)
    await handle.execute_update(SubscriptionChange.sales_decision,
                                SalesDecision(approved=True, by=SALES))
    assert (await driver.result(handle)).status is ChangeStatus.COMPLETED
    return handle


async def _support_cancel(driver: ChangeDriver) -> WorkflowHandle:
    org = unique_org("replay-cancel")
    handle = await start_declined_change(driver, org)
    await wait_for_payment(handle)
    await handle.execute_update(SubscriptionChange.cancel, CancelRequest(by=SUPPORT))
    assert (await driver.result(handle)).status is ChangeStatus.CANCELLED
    return handle


async def _compensated_refund(driver: ChangeDriver) -> WorkflowHandle:
    org = unique_org("replay-refund")
    await load_suite(driver, org)
    handle = await driver.start(org, seats=35)
    await wait_for(handle, lambda v: v.state == "awaiting_support" and v.step == "apply_change",
                   "a failed apply")
    await handle.execute_update(SubscriptionChange.cancel, CancelRequest(by=SUPPORT))
    result = await driver.result(handle)
    assert result.status is ChangeStatus.CANCELLED and result.payment.refund_id
    return handle


def _apply_after_another_channel(deps: Dependencies) -> dict[str, Callable]:
    """compensated_refund: the subscription driver between the charge and the apply (a fixture
    load at that moment), so the apply fails for good after the money moved."""
    real = SubscriptionActivities(deps)

    @activity.defn(name="apply_change")
    def apply_change(change: ApplyInput) -> ApplyOutput:
        org = change.request.org_id
        load_document(deps, org_document(org, users=[admin(org)], subscriptions=[{
            "product": "one", "plan": "enterprise", "seats": 31,
            "pricing_model": "flexible_user"}]))
        return real.apply_change(change)

    return {"apply_change": apply_change}


async def _repeated_request(driver: ChangeDriver) -> WorkflowHandle:
    org = unique_org("replay-again")
    await load_suite(driver, org)
    request = request_for(org, "one", f"admin@{org}.example", {"kind": "seats", "seats": 33})
    await driver.settle(await driver.start_request(request))
    handle = await driver.start_request(request)  # a second run of the same workflow id
    assert (await driver.settle(handle)).status is ChangeStatus.COMPLETED
    return handle


async def _rejected(driver: ChangeDriver) -> WorkflowHandle:
    org = unique_org("replay-rejected")
    await load_suite(driver, org)
    handle = await driver.start(org, seats=0)
    assert (await driver.settle(handle)).reason_code == "seat_bounds"
    return handle


async def _invalid_input(driver: ChangeDriver) -> WorkflowHandle:
    handle = await driver.client.start_workflow(
        "SubscriptionChange", "not a request", id=f"change-replay-{uuid.uuid4().hex[:8]}",
        task_queue=driver.task_queue, result_type=ChangeResult)
    assert (await driver.result(handle)).reason_code == "invalid_request"
    return handle


async def _sales_expired(driver: ChangeDriver) -> WorkflowHandle:
    org = unique_org("replay-expired")
    await load_suite(driver, org, card=None)
    handle = await driver.start(org, seats=35)
    await wait_for_sales(handle)
    await driver.env.sleep(timedelta(days=15))
    assert (await driver.result(handle)).status is ChangeStatus.EXPIRED
    return handle


async def _parked_retry_completed(driver: ChangeDriver) -> WorkflowHandle:
    org = unique_org("replay-retry")
    handle = await start_declined_change(driver, org)
    await wait_for_payment(handle)
    await load_suite(driver, org, card=GOOD_CARD)
    await handle.execute_update(SubscriptionChange.retry, RetryRequest(by=SUPPORT))
    assert (await driver.result(handle)).status is ChangeStatus.COMPLETED
    return handle


async def _refund_ticket(driver: ChangeDriver) -> WorkflowHandle:
    org = unique_org("replay-ticket")
    await load_suite(driver, org)
    handle = await driver.start(org, "one", f"admin@{org}.example",
                                 {"kind": "seats", "seats": 20}, refund=True)
    result = await driver.settle(handle)
    assert result.status is ChangeStatus.COMPLETED and result.refund_ticket is not None
    return handle


async def _temporal_cancel_while_parked(driver: ChangeDriver) -> WorkflowHandle:
    org = unique_org("replay-tcancel")
    handle = await start_declined_change(driver, org)
    await wait_for_payment(handle)
    await handle.cancel()
    assert (await driver.result(handle)).status is ChangeStatus.CANCELLED
    return handle


async def _claim_taken_over(driver: ChangeDriver) -> WorkflowHandle:
    org = unique_org("replay-takeover")
    await load_suite(driver, org, card=None)
    first = await driver.start(org, seats=35)
    await wait_for_sales(first)
    await first.terminate(reason="operator cleanup")
    second = await driver.start(org, seats=36)
    await wait_for_sales(second)
    await second.execute_update(SubscriptionChange.sales_decision,
                                SalesDecision(approved=True, by=SALES))
    assert (await driver.result(second)).status is ChangeStatus.COMPLETED
    return second


async def _carried_to_renewal(driver: ChangeDriver) -> WorkflowHandle:
    """One agent more on a USD desk's last day: 0.47, below the gateway's minimum charge."""
    org = unique_org("replay-carried")
    await load_desk(driver, org, (await driver.env.get_current_time()).date(), days_left=1)
    handle = await driver.start(org, "desk", seats=4)
    result = await driver.settle(handle)
    assert result.payment is not None and result.payment.method == "carried", result
    return handle


async def _new_card_after_a_decline(driver: ChangeDriver, deps: Dependencies
                                    ) -> WorkflowHandle:
    """Payment recovery (SPEC 11): declined, waiting for payment; a new card wakes it."""
    org = unique_org("replay-newcard")
    handle = await start_declined_change(driver, org)
    await wait_for_payment(handle)
    await load_suite(driver, org, card=GOOD_CARD)
    assert await wake_changes_waiting_for_payment(driver.client, deps.sessions, org)
    assert (await driver.result(handle)).status is ChangeStatus.COMPLETED
    return handle


async def _payment_schedule_exhausted(driver: ChangeDriver) -> WorkflowHandle:
    """Declined on every attempt of the schedule, then parked for support, who cancel."""
    org = unique_org("replay-exhausted")
    handle = await start_declined_change(driver, org)
    await wait_for_payment(handle)
    await driver.env.sleep(timedelta(days=7, hours=1))
    await wait_parked(handle)
    await handle.execute_update(SubscriptionChange.cancel, CancelRequest(by=SUPPORT))
    assert (await driver.result(handle)).status is ChangeStatus.CANCELLED
    return handle


async def _scheduled_fired(driver: ChangeDriver) -> WorkflowHandle:
    """A desk downgrade at the period end (SPEC 10): scheduled, then fired when it came."""
    org = unique_org("replay-scheduled")
    today = (await driver.env.get_current_time()).date()
    await load_desk(driver, org, today, days_left=3)
    request = request_for(org, "desk", plan="free").model_copy(
        update={"effective": "period_end"})
    handle = await driver.start_request(request)
    await wait_for(handle, lambda v: v.state == "scheduled", "scheduled")
    await driver.env.sleep(timedelta(days=4))
    assert (await driver.result(handle)).status is ChangeStatus.COMPLETED
    return handle


async def _scheduled_replaced(driver: ChangeDriver) -> WorkflowHandle:
    """A scheduled change replaced by a second one (replace_scheduled): the first ends
    cancelled; the second is cancelled by its requester."""
    org = unique_org("replay-replaced")
    today = (await driver.env.get_current_time()).date()
    await load_desk(driver, org, today, days_left=10)
    first = await driver.start_request(request_for(org, "desk", plan="free").model_copy(
        update={"effective": "period_end"}))
    await wait_for(first, lambda v: v.state == "scheduled", "scheduled")
    second = await driver.start_request(request_for(org, "desk", seats=4).model_copy(
        update={"effective": "period_end", "replace_scheduled": True}))
    assert (await driver.result(first)).status is ChangeStatus.CANCELLED
    await wait_for(second, lambda v: v.state == "scheduled", "scheduled")
    await second.execute_update(SubscriptionChange.cancel,
                                CancelRequest(by=f"admin@{org}.example"))
    assert (await driver.result(second)).status is ChangeStatus.CANCELLED
    return first


RECORDERS = {"completed_charge": _completed_charge, "carried_to_renewal": _carried_to_renewal,
             "sales_approved": _sales_approved,
             "support_cancel": _support_cancel, "compensated_refund": _compensated_refund,
             "repeated_request": _repeated_request, "rejected": _rejected,
             "invalid_input": _invalid_input, "sales_expired": _sales_expired,
             "parked_retry_completed": _parked_retry_completed, "refund_ticket": _refund_ticket,
             "temporal_cancel_while_parked": _temporal_cancel_while_parked,
             "claim_taken_over": _claim_taken_over,
             "new_card_after_a_decline": _new_card_after_a_decline,
             "payment_schedule_exhausted": _payment_schedule_exhausted,
             "scheduled_fired": _scheduled_fired, "scheduled_replaced": _scheduled_replaced}
# Recorders that read the database themselves (they are given the dependencies too).
WITH_DEPS = {"new_card_after_a_decline"}


async def record(scenarios: list[str], out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="subchange-histories-") as scratch:
        root = Path(scratch)
        with (fresh_database(root, "subchange_histories") as database_url,
              migrated_engine(database_url) as engine, localstripe() as localstripe_url,
              smtp_sink(root) as smtp):
            deps = suite_dependencies(suite_settings(
                database_url=database_url, localstripe_url=localstripe_url,
                smtp_port=smtp.port), engine)
            load_document(deps, STAFF_DIRECTORY)
            async with time_skipping_server() as env:
                for scenario in scenarios:
                    stand_ins = STAND_INS[scenario](deps) if scenario in STAND_INS else {}
                    async with worker_with_stand_ins(env, deps, f"tq-{uuid.uuid4().hex[:10]}",
                                                     **stand_ins) as worker:
                        driver = ChangeDriver(env.client, worker.task_queue, env,
                                               functools.partial(load_document, deps))
                        recorder = RECORDERS[scenario]
                        handle = await (recorder(driver, deps) if scenario in WITH_DEPS
                                        else recorder(driver))
                        history = await handle.fetch_history()
                    out.mkdir(parents=True, exist_ok=True)
                    (out / f"{scenario}.json").write_text(history.to_json())
                    print(f"recorded {scenario}: {out / f'{scenario}.json'}", file=sys.stderr)


# Scenarios that need a moment the real parts can't be timed to: stand-ins wrapping real activities.
STAND_INS: dict[str, Callable[[Dependencies], dict[str, Callable]]] = {
    "compensated_refund": _apply_after_another_channel}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.workflow.record_histories",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help=f"what to record (default: all of {', '.join(RECORDERS)})")
    parser.add_argument("--out", type=Path, default=HISTORIES / RELEASE,
                        help="where to write <scenario>.json (default: %(default)s)")
    args = parser.parse_args(argv)
    if unknown := [name for name in args.scenarios if name not in RECORDERS]:
        parser.error(f"no such scenario: {', '.join(unknown)} (there are {', '.join(RECORDERS)})")
    asyncio.run(record(args.scenarios or list(RECORDERS), args.out))


if __name__ == "__main__":
    main()
