"""Who may act: the updates' principal checked against the staff directory, and the verdict
recorded in the audit log once per update; a cancellation through Temporal, which the server's
own authorization let through, recorded with the identity the server reports."""

from __future__ import annotations

from temporalio import activity

from activities.context import calling_workflow_id
from activities.dependencies import Dependencies
from subchange.domain.principals import Action, principal_refusal, reschedule_refusal
from subchange.domain.step_io import PrincipalCheck, PrincipalVerdict, TemporalCancelRecord
from subchange.store import audit, staff


class PrincipalActivities:
    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps

    @activity.defn(name="authorize_principal")
    def authorize_principal(self, check: PrincipalCheck) -> PrincipalVerdict:
        action = Action(check.action)
        with self.deps.sessions() as session:
            roles = staff.roles_of(session=session, email=check.by)
            refusal = principal_refusal(action, check.by, check.requester, roles)
            if refusal is None and action is Action.RESCHEDULE:
                refusal = reschedule_refusal(self.deps.settings.allow_reschedule)
            audit.record_audit(
                session=session, org_id=check.org_id, actor=check.by[:254],
                action=f"{action.value}:{check.update_id}"[:64],
                outcome="denied" if refusal else "authorized", detail=refusal or "",
                workflow_id=calling_workflow_id())
        return PrincipalVerdict(refusal=refusal)

    @activity.defn(name="record_temporal_cancel")
    def record_temporal_cancel(self, cancel: TemporalCancelRecord) -> None:
        workflow_id = calling_workflow_id()
        workflows = self.deps.workflows
        identity = workflows.cancel_requested_by(workflow_id) if workflows else None
        with self.deps.sessions() as session:
            audit.record_audit(
                session=session, org_id=cancel.org_id,
                actor=f"temporal:{identity or 'unknown'}"[:254], action="temporal_cancel",
                outcome=cancel.outcome, detail=cancel.reason, workflow_id=workflow_id)
