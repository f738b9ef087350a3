"""The lifecycle of one change as a `transitions` machine (SPEC section 3).

The workflow moves through it with `fire(Trigger.X)`; an illegal trigger raises `MachineError`,
which is a bug, never a business outcome. A step that fails for good parks the change in
`awaiting_support`; `resume` returns it to the state it was parked from so the step runs again.
"""

from __future__ import annotations

from enum import StrEnum

from transitions import Machine


class ChangeState(StrEnum):
    REQUESTED = "requested"
    AUTHORIZED = "authorized"
    VALIDATED = "validated"
    QUOTED = "quoted"
    AWAITING_SALES = "awaiting_sales"
    SALES_APPROVED = "sales_approved"
    CHARGED = "charged"
    APPLIED = "applied"
    INVOICED = "invoiced"
    COMPLETED = "completed"
    REJECTED = "rejected"
    AWAITING_SUPPORT = "awaiting_support"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    COMPENSATED = "compensated"


class Trigger(StrEnum):
    AUTHORIZE = "authorize"
    VALIDATE = "validate"
    QUOTE = "quote"
    ROUTE_TO_SALES = "route_to_sales"
    SALES_APPROVE = "sales_approve"
    CHARGE = "charge"
    APPLY = "apply"
    INVOICE = "invoice"
    COMPLETE = "complete"
    REJECT = "reject"
    EXPIRE = "expire"
    PARK = "park"
    RESUME = "resume"
    CANCEL = "cancel"
    COMPENSATE = "compensate"


TERMINAL = frozenset({ChangeState.COMPLETED, ChangeState.REJECTED, ChangeState.CANCELLED,
                      ChangeState.EXPIRED, ChangeState.COMPENSATED})
# Before the subscription is changed, a change can still be called off.
CANCELLABLE = (ChangeState.REQUESTED, ChangeState.AUTHORIZED, ChangeState.VALIDATED,
               ChangeState.QUOTED, ChangeState.AWAITING_SALES, ChangeState.SALES_APPROVED)
# States in which a step is running and may fail for good.
PARKABLE = (*CANCELLABLE, ChangeState.CHARGED, ChangeState.APPLIED, ChangeState.INVOICED)


def _move(trigger: Trigger, source: ChangeState | list[ChangeState], dest: ChangeState,
          **extra: str) -> dict:
    return {"trigger": trigger, "source": source, "dest": dest, **extra}


TRANSITIONS: list[dict] = [
    _move(Trigger.AUTHORIZE, ChangeState.REQUESTED, ChangeState.AUTHORIZED),
    _move(Trigger.VALIDATE, ChangeState.AUTHORIZED, ChangeState.VALIDATED),
    _move(Trigger.QUOTE, ChangeState.VALIDATED, ChangeState.QUOTED),
    _move(Trigger.ROUTE_TO_SALES, ChangeState.QUOTED, ChangeState.AWAITING_SALES),
    _move(Trigger.SALES_APPROVE, ChangeState.AWAITING_SALES, ChangeState.SALES_APPROVED),
    _move(Trigger.CHARGE, ChangeState.QUOTED, ChangeState.CHARGED),
    _move(Trigger.APPLY, [ChangeState.QUOTED, ChangeState.CHARGED, ChangeState.SALES_APPROVED],
          ChangeState.APPLIED),
    _move(Trigger.INVOICE, ChangeState.APPLIED, ChangeState.INVOICED),
    _move(Trigger.COMPLETE, ChangeState.INVOICED, ChangeState.COMPLETED),
    # A quote made again after a wait (the day moved) can find the change no longer allowed.
    _move(Trigger.REJECT, [ChangeState.REQUESTED, ChangeState.AUTHORIZED, ChangeState.VALIDATED,
                           ChangeState.QUOTED, ChangeState.AWAITING_SALES,
                           ChangeState.SALES_APPROVED], ChangeState.REJECTED),
    _move(Trigger.EXPIRE, ChangeState.AWAITING_SALES, ChangeState.EXPIRED),
    _move(Trigger.PARK, list(PARKABLE), ChangeState.AWAITING_SUPPORT,
          before="_remember_parked_from"),
    *[_move(Trigger.RESUME, ChangeState.AWAITING_SUPPORT, state,
            conditions=f"_parked_from_{state.value}") for state in PARKABLE],
    _move(Trigger.CANCEL, list(CANCELLABLE), ChangeState.CANCELLED),
    _move(Trigger.COMPENSATE, ChangeState.CHARGED, ChangeState.COMPENSATED),
]


class ChangeLifecycle:
    """The model the lifecycle machine drives. Restore it at a state with `initial=`."""

    def __init__(self, initial: ChangeState = ChangeState.REQUESTED,
                 parked_from: ChangeState | None = None) -> None:
        self.parked_from = parked_from
        for state in PARKABLE:
            setattr(self, f"_parked_from_{state.value}",
                    lambda state=state: self.parked_from == state)
        self.machine = Machine(
            model=self,
            states=ChangeState,
            transitions=TRANSITIONS,
            initial=initial,
            auto_transitions=False,
            ignore_invalid_triggers=False,
        )

    state: ChangeState  # set by the machine

    def fire(self, trigger: Trigger) -> None:
        """Take the transition named `trigger`; MachineError when it does not fit the state."""
        self.trigger(trigger.value)

    def _remember_parked_from(self) -> None:
        self.parked_from = ChangeState(self.state)

    @property
    def current(self) -> ChangeState:
        return ChangeState(self.state)

    @property
    def is_terminal(self) -> bool:
        return self.current in TERMINAL

    @property
    def is_parked(self) -> bool:
        return self.current is ChangeState.AWAITING_SUPPORT

    @property
    def effective(self) -> ChangeState:
        """The working state: where a parked change stands, or the current state."""
        return self.parked_from if self.is_parked and self.parked_from else self.current

    def cancel_refusal(self) -> str | None:
        """Why a cancel does not fit now, or None when it does (money taken means refund)."""
        if self.is_terminal:
            return f"the change has already ended ({self.current.value})"
        if self.effective in (ChangeState.APPLIED, ChangeState.INVOICED):
            return ("the change is already applied to the subscription and can't be cancelled; "
                    "retry the failed step instead")
        return None
