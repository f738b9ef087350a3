"""Changes at the period end (SPEC section 10): taking the subscription's one slot for a
scheduled change (change.scheduled recorded, the claim freed, in one transaction), and, when the
period ends, claiming the subscription again and judging the change anew (R1, R2, R3, R5, R7)
against the subscription as it is then, priced for the next period."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from temporalio import activity

from activities.claims import SubscriptionClaims
from activities.context import calling_workflow_id
from activities.dependencies import Dependencies
from activities.liveness import heartbeating
from subchange.domain import rules
from subchange.domain.quoting import build_period_end_quote
from subchange.domain.step_io import FireInput, FireOutcome, ScheduleInput, ScheduleOutcome
from subchange.store import scheduled, subscriptions


class SchedulingActivities:
    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps
        self.claims = SubscriptionClaims(deps)

    @activity.defn(name="schedule_change")
    def schedule_change(self, step: ScheduleInput) -> ScheduleOutcome:
        request, workflow_id = step.request, calling_workflow_id()
        with self.deps.sessions() as session:
            subscription_id = subscriptions.subscription_id_of(
                session=session, org_id=request.org_id, product=request.product)
            assert subscription_id is not None  # validated and quoted: it exists
            outcome = scheduled.schedule(
                session=session, subscription_id=subscription_id, workflow_id=workflow_id,
                quote=step.quote, replace=request.replace_scheduled,
                has_ended=lambda holder: self.claims.ended_as(
                    session=session, workflow_id=holder) is not None)
        if outcome.holder is not None:
            return ScheduleOutcome(rejection=rules.change_scheduled(outcome.holder))
        return ScheduleOutcome(replaced=outcome.replaced)

    @activity.defn(name="fire_scheduled_change", no_thread_cancel_exception=True)
    def fire_scheduled_change(self, step: FireInput) -> FireOutcome:
        """The claim first, then the slot: a change replacing this one takes the slot while it
        holds the claim, so once this change holds the claim its slot can't move."""
        request, workflow_id = step.request, calling_workflow_id()
        with heartbeating(), self.deps.sessions() as session:
            ctx = subscriptions.load_context(session=session, org_id=request.org_id,
                                             product=request.product,
                                             requested_by=request.requested_by)
            rejection = rules.authorize_requester(self.deps.catalog, request, ctx)
            if rejection is not None:
                return FireOutcome(rejection=rejection)
            if ctx.subscription is None:
                return FireOutcome(rejection=rules.validate_change(
                    self.deps.catalog, request, ctx, step.scheduled_for)[1])
            rejection = self.claims.claim(session=session, request=request,
                                          subscription_id=ctx.subscription.id,
                                          workflow_id=workflow_id)
            if rejection is not None:
                return FireOutcome(rejection=rejection)
            holder = scheduled.holder_of(session=session, subscription_id=ctx.subscription.id)
            if holder != workflow_id:
                return FireOutcome(replaced_by=holder or "another scheduled change")
        assert ctx.org is not None
        day = step.as_of.astimezone(ZoneInfo(ctx.org.time_zone)).date()
        target, rejection = rules.validate_change(self.deps.catalog, request, ctx, day,
                                                  scheduled_for=step.scheduled_for)
        if rejection is not None:
            return FireOutcome(rejection=rejection)
        assert target is not None
        return FireOutcome(quote=build_period_end_quote(
            catalog=self.deps.catalog, org=ctx.org, sub=ctx.subscription, request=request,
            target=target, change_date=day))
