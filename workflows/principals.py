"""Who may send the updates (SPEC section 9). The validator refuses at once what the update alone
decides (no `by`; a requester deciding their own sales case), so it leaves no trace in the
history; the handler then asks the staff directory (the authorize_principal activity) before it
acts, and checks the change's state again, which may have moved on while the directory answered.
A requester's cancel of their own change needs no directory."""

from __future__ import annotations

from types import MappingProxyType

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from subchange.domain.principals import (
        Action,
        missing_principal,
        needs_directory,
        principal_refusal,
        same_person,
    )
    from subchange.domain.step_io import PrincipalCheck

from workflows.state import ChangeRun
from workflows.steps import AUTHORIZE_PRINCIPAL

VERBS = MappingProxyType({Action.RETRY: "retry", Action.CANCEL: "cancel",
                          Action.SALES_DECISION: "decide", Action.RESCHEDULE: "reschedule"})


def refused(message: str) -> ApplicationError:
    """An update's refusal because of the change's state, as the client sees it."""
    return ApplicationError(message, type="UpdateRefused")


def principal_refused(message: str) -> ApplicationError:
    """An update's refusal because of who sent it (SPEC section 9): the HTTP API answers 403."""
    return ApplicationError(message, type="PrincipalRefused")


class PrincipalRefused(Exception):
    """The principal may not do this; the message names them and the missing right."""


class Principals:
    def __init__(self, state: ChangeRun) -> None:
        self.state = state

    @property
    def requester(self) -> str | None:
        return self.state.request.requested_by if self.state.request else None

    def immediate_refusal(self, action: Action, by: str | None) -> str | None:
        """What the validator refuses without asking anyone."""
        if by is None or not by.strip():
            return missing_principal(action)
        if action is Action.SALES_DECISION and same_person(by, self.requester):
            return principal_refusal(action, by, self.requester, None)
        return None

    async def authorize(self, action: Action, by: str | None) -> bool:
        """The staff directory's verdict on `by` (SPEC section 9), refusing the update when it
        says no; True when it was asked."""
        try:
            return await self.check(action, by)
        except PrincipalRefused as refusal:
            raise principal_refused(f"can't {VERBS[action]}: {refusal}") from None

    async def check(self, action: Action, by: str | None) -> bool:
        """Raise PrincipalRefused unless `by` may do `action`; True when the staff directory was
        asked (time passed: the caller checks the change's state again)."""
        if (refusal := self.immediate_refusal(action, by)) is not None:
            raise PrincipalRefused(refusal)
        assert by is not None
        if not needs_directory(action, by, self.requester):
            return False
        request = self.state.request
        check = PrincipalCheck(action=action.value, by=by, requester=self.requester,
                               org_id=request.org_id if request else "",
                               update_id=(workflow.current_update_info() or _NO_UPDATE).id[:40])
        policy = AUTHORIZE_PRINCIPAL.policy
        try:
            verdict = await workflow.execute_activity(
                AUTHORIZE_PRINCIPAL.name, check, result_type=AUTHORIZE_PRINCIPAL.result_type,
                start_to_close_timeout=policy.start_to_close, retry_policy=policy.retry,
                summary=AUTHORIZE_PRINCIPAL.summary(check))
        except ActivityError:
            raise PrincipalRefused(f"could not check whether {by} may {action.value}: the staff "
                                   "directory did not answer; send it again") from None
        if verdict.refusal is not None:
            raise PrincipalRefused(verdict.refusal)
        return True


class _NoUpdate:
    id = "none"


_NO_UPDATE = _NoUpdate()
