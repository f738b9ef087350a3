"""Payment recovery (SPEC section 11): a declined charge waits for its next attempt, a new card
or support (workflows/payment_recovery.py). These activities record the wait, so a new card wakes
the change (subchange/app/payments.py) and backends hear of it (change.awaiting_payment), say
when to try again (PAYMENT_RETRY_SCHEDULE), and send the one notice to the billing contact.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.context import calling_workflow_id
from activities.dependencies import Dependencies
from activities.liveness import heartbeating, lease_end, until
from subchange.adapters.mail import send_email
from subchange.documents.payment_failed_email import (
    payment_notice_message_id,
    render_payment_failed_email,
)
from subchange.domain.step_io import AwaitingPayment, PaymentFailedNotice, PaymentPlan
from subchange.settings import iso_durations
from subchange.store import outbox, payment_waits
from subchange.store.tables import Org, utcnow

# The heartbeat detail of an attempt whose notice the mail server accepted (as the invoice's).
ACCEPTED = "accepted"


class PaymentRecoveryActivities:
    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps

    @activity.defn(name="record_awaiting_payment")
    def record_awaiting_payment(self, waiting: AwaitingPayment) -> PaymentPlan:
        """The change waits for payment: recorded, so a new card of its organisation wakes it,
        with its change.awaiting_payment event (once per decline); when to try again."""
        info = activity.info()
        with self.deps.sessions() as session:
            org = session.get(Org, waiting.org_id)
            own = org.payment_retry_schedule if org is not None else None
            plan = self.plan(waiting, iso_durations(own) if own else None)
            method = payment_waits.record_wait(
                session=session, workflow_id=calling_workflow_id(), org_id=waiting.org_id,
                product=waiting.product, declines=waiting.declines)
        if method is not None and method != waiting.decline.method_id:
            # A new card came while the charge was declined on the old one: try it at once.
            return plan.model_copy(update={"card_replaced": True})
        if plan.exhausted:
            return plan
        key = f"{info.workflow_id}:{info.workflow_run_id}:awaiting_payment:{waiting.declines}"
        now = utcnow()
        with self.deps.sessions() as session:
            outbox.record_once(
                session=session, event_id=f"evt_{hashlib.sha256(key.encode()).hexdigest()[:32]}",
                type="change.awaiting_payment", workflow_id=calling_workflow_id(), data={
                    "state": "awaiting_payment", "step": "charge",
                    "last_error": f"charge: {waiting.decline.message}",
                    "declines": waiting.declines,
                    "decline_code": waiting.decline.code,
                    "decline_class": waiting.decline.decline_class,
                    "next_attempt_at": _at(now, plan.next_attempt_in),
                    "support_at": _at(now, plan.support_in),
                    "waiting_for": plan_description(plan)})
        return plan

    def plan(self, waiting: AwaitingPayment, own: tuple[timedelta, ...] | None = None
             ) -> PaymentPlan:
        """Soft declines: the schedule's next wait (the organisation's own, else
        PAYMENT_RETRY_SCHEDULE), none once it is exhausted. Hard declines: no scheduled
        attempt; a new card (or support) until the schedule's whole span has passed since the
        first decline, then support."""
        schedule = own or self.deps.settings.payment_retry_schedule
        if waiting.decline.decline_class == "hard":
            left = sum(schedule, timedelta()) - waiting.since_first
            return PaymentPlan(support_in=left if left > timedelta(0) else None)
        if waiting.declines <= len(schedule):
            return PaymentPlan(next_attempt_in=schedule[waiting.declines - 1])
        return PaymentPlan()

    @activity.defn(name="email_payment_failed")
    def email_payment_failed(self, notice: PaymentFailedNotice) -> None:
        """The one notice of the change's declined payment to its organisation's billing
        contact, sent under a lease as the invoice is (activities/invoicing.py): of two attempts
        that overlap, one sends and the other waits for its lease to end. A worker that dies
        after the server accepted it and before `sent` is written sends it again, under the
        same Message-ID."""
        info = activity.info()
        workflow_id = calling_workflow_id()
        message_id = payment_notice_message_id(workflow_id)
        holder = f"{info.activity_id}.{info.attempt}.{uuid.uuid4().hex[:16]}"
        with self.deps.sessions() as session:
            if payment_waits.notice_sent(session=session, workflow_id=workflow_id):
                return
            org = session.get(Org, notice.request.org_id)
            assert org is not None
            to, name, locale = org.billing_email, org.name, org.locale
        if not any(isinstance(detail, dict) and detail.get(ACCEPTED) == workflow_id
                   for detail in info.heartbeat_details):
            with self.deps.sessions() as session:
                held_until = payment_waits.take_notice(session=session, workflow_id=workflow_id,
                                                       holder=holder, until=lease_end())
                if held_until is not None:
                    if payment_waits.notice_sent(session=session, workflow_id=workflow_id):
                        return
                    raise ApplicationError(
                        f"the payment notice of {workflow_id} is being sent by another "
                        "attempt; this one waits for its lease to end", type="EmailInProgress",
                        next_retry_delay=until(held_until))
            try:
                with heartbeating(also=lambda: self._renew_notice(workflow_id, holder)):
                    send_email(render_payment_failed_email(notice, org_name=name,
                                                           locale=locale, to=to,
                                                           workflow_id=workflow_id),
                               settings=self.deps.settings)
            except BaseException:
                with self.deps.sessions() as session:  # nothing went out: another may send
                    payment_waits.release_notice(session=session, workflow_id=workflow_id,
                                                 holder=holder)
                raise
            activity.heartbeat({ACCEPTED: workflow_id})
        with self.deps.sessions() as session:
            payment_waits.mark_notice_sent(session=session, workflow_id=workflow_id,
                                           message_id=message_id)
        activity.logger.info("payment failure notice sent for %s", workflow_id)

    def _renew_notice(self, workflow_id: str, holder: str) -> bool:
        with self.deps.sessions() as session:
            return payment_waits.renew_notice(session=session, workflow_id=workflow_id,
                                              holder=holder, until=lease_end())


def _at(now, delay: timedelta | None) -> str | None:
    return None if delay is None else (now + delay).isoformat()


def plan_description(plan: PaymentPlan) -> str:
    if plan.next_attempt_in is not None:
        return "the next attempt of the charge, a new card, or support"
    return "a new card or support"
