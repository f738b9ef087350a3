"""The reconciliation sweep's step (workflows/sweep.py): one page of change records without a
result. Temporal is asked whether each one's workflow still runs; one that ended without closing
its record (terminated, timed out, reset, failed) is settled as the pipeline would have settled it:

- not applied: its charge refunded, or an unconfirmed intent voided (the compensation a claim
  takeover and `starter.py release-claim` run too, through the same ledger, so once);
- applied: its invoice emailed (the invoice step's leased send, so once);
- the claim it still holds on its subscription released;

then the record is closed with how its workflow ended. A record is leased while it is settled, so
two sweeps never settle one change together; each action is audited (actor `sweep`) and counted
in `subchange_sweep_settled{action}`. A change that can't be settled now (the gateway or the mail
server down) is given back and named in the page's `unsettled`, for the next sweep.
"""

from __future__ import annotations

import time
from datetime import UTC, timedelta

from temporalio import activity
from temporalio.exceptions import CancelledError

from activities.dependencies import Dependencies
from activities.invoicing import InvoiceActivities
from activities.payments import LEDGER_CHARGE, PaymentActivities
from subchange.domain.sweep import (
    SWEEP_STEP,
    SettledChange,
    SweepAction,
    SweepPage,
    SweepPageInput,
    UnsettledChange,
)
from subchange.store import (
    audit,
    changes,
    invoices,
    ledger,
    outbox,
    subscriptions,
    webhooks,
)
from subchange.store.tables import ChangeRecord, utcnow

ACTOR = "sweep"
# A record leased by a sweep that died is taken again after this (settling one takes seconds).
SWEEP_LEASE = timedelta(minutes=10)
# A workflow the server no longer knows ended longer ago than its namespace keeps closed ones
# (at least a day). A younger record it doesn't know is another namespace's, or not started yet:
# left alone.
MIN_RETENTION = timedelta(days=1)
ERROR_MAX = 300
# A count or list of visibility (the dashboard's gauges, a page's running changes), well
# within the page's heartbeat timeout.
COUNT_TIMEOUT = 3.0


class SweepActivities:
    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps

    @activity.defn(name=SWEEP_STEP)
    def sweep_changes(self, page: SweepPageInput) -> SweepPage:
        if self.deps.workflows is None:
            raise RuntimeError("the sweep asks Temporal about each change: build its worker "
                               "with subchange.app.wiring.build_worker")
        with self.deps.sessions() as session:
            records = changes.unsettled_records(session=session, after=page.after,
                                                limit=page.limit,
                                                lease_ended=utcnow() - SWEEP_LEASE)
        done = SweepPage(next_after=records[-1].workflow_id if len(records) == page.limit
                         else None)
        found = 0
        running = self._listed_running(records)
        for record in records:
            activity.heartbeat()
            if record.workflow_id in running:
                continue  # most records of a page: changes that wait (sales, payment, a date)
            ended = self._ended(record)
            if ended is None:
                continue
            found += 1
            with self.deps.sessions() as session:
                if not changes.lease_for_sweep(session=session, workflow_id=record.workflow_id,
                                               lease_ended=utcnow() - SWEEP_LEASE):
                    continue  # another sweep settles it, or it was closed meanwhile
            try:
                done.settled.append(self._settle(record, ended, page.sweep_id))
            except CancelledError:
                self._give_back(record.workflow_id)
                raise
            except Exception as failure:  # noqa: BLE001 - one change must not stop the others
                self._give_back(record.workflow_id)
                activity.logger.warning("the sweep could not settle %s (ended %s): %s",
                                        record.workflow_id, ended, failure)
                done.unsettled.append(UnsettledChange(
                    workflow_id=record.workflow_id, ended=ended,
                    error=f"{type(failure).__name__}: {failure}"[:ERROR_MAX]))
        if found:
            activity.metric_meter().create_counter(
                "subchange_sweep_found", "changes found ended without closing their record"
            ).add(found)
        if not page.after:  # once a sweep, on its first page, after what the sweep is for
            self._count_what_waits()
            self._prune_the_outbox()
        return done

    def _prune_the_outbox(self) -> None:
        """Delete the events every endpoint has had for OUTBOX_RETENTION (outbox.prune), so the
        outbox does not grow for ever; like the counts, never at the cost of the sweep."""
        activity.heartbeat()
        try:
            with self.deps.sessions() as session:
                pruned = outbox.prune(session=session,
                                      before=utcnow() - self.deps.settings.outbox_retention)
                session.commit()
        except Exception as error:  # noqa: BLE001 - the outbox waits for the next sweep
            activity.logger.warning("the sweep could not prune the outbox: %s",
                                    type(error).__name__)
            return
        if pruned:
            activity.metric_meter().create_counter(
                "subchange_outbox_pruned", "delivered events deleted from the outbox"
            ).add(pruned)

    def _count_what_waits(self) -> None:
        """Set the gauges of what waits for someone: changes waiting for support or for payment
        (Temporal's visibility, which knows every running change's step), failing webhook
        endpoints (the database). Counted from the source at every sweep, so the numbers
        survive a worker's restart, which counters kept in the worker would not; and stamped
        with `subchange_sweep_counted_at` when every count succeeded, so that with several
        workers a query reads the latest full count (deploy/prometheus/alerts.yml), not one a
        worker kept since its last sweep. A count that fails is logged and left out: the gauges
        are for people, and must never stop the sweep's refunds, emails and releases."""
        meter = activity.metric_meter()
        waiting = meter.create_gauge(
            "subchange_changes_waiting", "running changes waiting, by what for (last sweep)")
        complete = True
        for step, waiting_for in (("awaiting_support", "support"),
                                  ("awaiting_payment", "payment")):
            activity.heartbeat()
            assert self.deps.workflows is not None
            try:
                count = self.deps.workflows.running_changes_at(step, timeout=COUNT_TIMEOUT)
            except Exception as error:  # noqa: BLE001 - a count must not fail the sweep
                # RPCError: a server without visibility counts (the test server) or down;
                # TimeoutError: visibility slower than the page's heartbeat allows.
                activity.logger.warning("the sweep could not count the changes at %s: %s",
                                        step, getattr(error, "message", None) or repr(error))
                complete = False
                continue
            waiting.set(count, {"waiting_for": waiting_for})
        activity.heartbeat()
        try:
            with self.deps.sessions() as session:
                failing = webhooks.failing_count(session=session)
        except Exception as error:  # noqa: BLE001
            activity.logger.warning("the sweep could not count the failing webhook endpoints: "
                                    "%s", type(error).__name__)
            complete = False
        else:
            meter.create_gauge("subchange_webhook_endpoints_failing",
                               "webhook endpoints marked failing (last sweep)").set(failing)
        if complete:
            meter.create_gauge("subchange_sweep_counted_at",
                               "when this worker's sweep last counted, unix seconds", "s").set(
                int(time.time()))

    def _listed_running(self, records: list[ChangeRecord]) -> set[str]:
        """The page's changes that visibility lists as running, in one query, so that only the
        others are described one by one: a page of changes waiting weeks for sales or for their
        period end costs one call, not fifty. Visibility lags: a change that has just ended may
        still be listed, and waits for the next sweep; one not listed is described as before.
        Empty when the server can't list (the time-skipping test server) or is slow."""
        assert self.deps.workflows is not None
        if not records:
            return set()
        try:
            return self.deps.workflows.running_among([r.workflow_id for r in records],
                                                     timeout=COUNT_TIMEOUT)
        except Exception as error:  # noqa: BLE001 - each is then described, as before
            activity.logger.info("the sweep describes each change of its page: visibility "
                                 "did not list them (%s)",
                                 getattr(error, "message", None) or type(error).__name__)
            return set()

    def _ended(self, record: ChangeRecord) -> str | None:
        """How the change's workflow ended, or None while it runs (or is no business of ours)."""
        assert self.deps.workflows is not None
        ended = self.deps.workflows.ended_as(record.workflow_id)
        if ended == "unknown" and not _older_than(record, MIN_RETENTION):
            return None
        return ended

    def _settle(self, record: ChangeRecord, ended: str, sweep_id: str) -> SettledChange:
        workflow_id, settled = record.workflow_id, SettledChange(workflow_id=record.workflow_id,
                                                                 ended=ended)
        audited = _Auditor(self.deps, record, sweep_id)
        if not self._applied(workflow_id):
            with self.deps.sessions() as session:
                charge = ledger.gateway_call(session=session, workflow_id=workflow_id,
                                             step=LEDGER_CHARGE)
            unconfirmed = charge is not None and charge.status in ("created", "pending")
            refund = PaymentActivities(self.deps).compensate_abandoned(
                workflow_id, reason=f"{workflow_id} ended ({ended}) before it was applied")
            if refund is not None:
                settled.refund_id = refund.refund_id
                audited.action("refund", "compensate", "refunded",
                               f"{workflow_id} ended ({ended}) after its charge, before it was "
                               f"applied: refunded {refund.amount} ({refund.refund_id})")
            elif unconfirmed and not self._applied(workflow_id):
                audited.action("void", "compensate", "voided",
                               f"{workflow_id} ended ({ended}) before its charge confirmed: "
                               "the intent is voided, nothing was taken")
        if self._applied(workflow_id):  # applied, or applied by an attempt meanwhile
            with self.deps.sessions() as session:
                invoice = invoices.change_invoice(session=session, workflow_id=workflow_id)
            if invoice.email_status != "sent":
                assert invoice.number is not None
                InvoiceActivities(self.deps).email_invoice(invoice.number)
                audited.action("invoice_emailed", "email_invoice", "emailed",
                               f"invoice {invoice.number} of {workflow_id}, applied before it "
                               f"ended ({ended})")
        with self.deps.sessions() as session:
            held = changes.claims_held_by(session=session, workflow_id=workflow_id)
            for subscription_id in held:
                if changes.release_claim(session=session, subscription_id=subscription_id,
                                         holder=workflow_id):
                    audited.action("claim_released", "release_claim", "released",
                                   f"{workflow_id} held the {record.product} subscription and "
                                   f"had ended ({ended})")
        settled.actions = audited.actions
        with self.deps.sessions() as session:
            if changes.end_sweep(session=session, workflow_id=workflow_id, ended=ended):
                audit.add_audit_entry(
                    session=session, org_id=record.org_id, actor=ACTOR, action="sweep",
                    outcome=ended,
                    detail=f"{workflow_id} ended ({ended}) without closing its record; settled: "
                           f"{', '.join(settled.actions) or 'nothing was left'} ({sweep_id})",
                    workflow_id=workflow_id)
            session.commit()
        activity.logger.info("swept %s (ended %s): %s", workflow_id, ended,
                             ", ".join(settled.actions) or "nothing was left")
        return settled

    def _applied(self, workflow_id: str) -> bool:
        with self.deps.sessions() as session:
            return subscriptions.is_applied(session=session, workflow_id=workflow_id)

    def _give_back(self, workflow_id: str) -> None:
        with self.deps.sessions() as session:
            changes.end_sweep(session=session, workflow_id=workflow_id, ended=None)
            session.commit()


class _Auditor:
    """Each action of the sweep on one change, audited and counted right after it is done (so a
    sweep that dies later loses neither)."""

    def __init__(self, deps: Dependencies, record: ChangeRecord, sweep_id: str) -> None:
        self.deps, self.record, self.sweep_id = deps, record, sweep_id
        self.actions: list[SweepAction] = []

    def action(self, action: SweepAction, audit_action: str, outcome: str, detail: str) -> None:
        with self.deps.sessions() as session:
            audit.record_audit(session=session, org_id=self.record.org_id, actor=ACTOR,
                               action=audit_action, outcome=outcome,
                               detail=f"{detail}; by the sweep {self.sweep_id}",
                               workflow_id=self.record.workflow_id)
        activity.metric_meter().create_counter(
            "subchange_sweep_settled", "what the sweep settled of changes ended without closing"
        ).add(1, {"action": action})
        self.actions.append(action)


def _older_than(record: ChangeRecord, age: timedelta) -> bool:
    updated = record.updated_at
    if updated.tzinfo is None:  # SQLite hands timestamps back naive (they are UTC)
        updated = updated.replace(tzinfo=UTC)
    return utcnow() - updated > age
