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
    AWAITING_PAYMENT = "awaiting_payment"  # the card was declined: a retry, a new card or support
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    COMPENSATED = "compensated"
    # SPEC section 10: a change at the period end waits, quoted, for it (scheduled), then is
    # judged and priced again when it comes (due) before it is applied.
    SCHEDULED = "scheduled"
    DUE = "due"


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
    AWAIT_PAYMENT = "await_payment"
    RESUME_PAYMENT = "resume_payment"
    CANCEL = "cancel"
    COMPENSATE = "compensate"
    SCHEDULE = "schedule"
    FALL_DUE = "fall_due"  # (not "fire": that name is the model's own method)


TERMINAL = frozenset({ChangeState.COMPLETED, ChangeState.REJECTED, ChangeState.CANCELLED,
                      ChangeState.EXPIRED, ChangeState.COMPENSATED})
# Before the subscription is changed, a change can still be called off.
CANCELLABLE = (ChangeState.REQUESTED, ChangeState.AUTHORIZED, ChangeState.VALIDATED,
               ChangeState.QUOTED, ChangeState.AWAITING_SALES, ChangeState.SALES_APPROVED,
               ChangeState.SCHEDULED, ChangeState.DUE)
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
    # Payment recovery (SPEC section 11): a declined charge waits for its next attempt, a new
    # card or support; the wait ends with the charge tried again, or with a cancel, from QUOTED.
    _move(Trigger.AWAIT_PAYMENT, ChangeState.QUOTED, ChangeState.AWAITING_PAYMENT),
    _move(Trigger.RESUME_PAYMENT, ChangeState.AWAITING_PAYMENT, ChangeState.QUOTED),
    # A change at the period end (SPEC section 10): scheduled once quoted, due when its period
    # end came and it was judged again, then applied; or rejected when judged again.
    _move(Trigger.SCHEDULE, ChangeState.QUOTED, ChangeState.SCHEDULED),
    _move(Trigger.FALL_DUE, ChangeState.SCHEDULED, ChangeState.DUE),
    _move(Trigger.APPLY, ChangeState.DUE, ChangeState.APPLIED),
    _move(Trigger.REJECT, [ChangeState.SCHEDULED, ChangeState.DUE], ChangeState.REJECTED),
]


class ChangeLifecycle:
    """The model the lifecycle machine drives. Restore it at a state with `initial=`.

    One machine (LIFECYCLE) drives every change's model: it only reads and sets the model's
    `state` and calls its conditions and callbacks by name, so a change carries its state, not a
    machine of its own (48 kB each, which a worker holding a thousand changes felt)."""

    def __init__(self, initial: ChangeState = ChangeState.REQUESTED,
                 parked_from: ChangeState | None = None) -> None:
        self.parked_from = parked_from
        self.state = initial

    state: ChangeState  # set by the machine

    def fire(self, trigger: Trigger) -> bool:
        """Take the transition named `trigger`; MachineError when it does not fit the state."""
        return LIFECYCLE.events[trigger.value].trigger(self)

    def _remember_parked_from(self) -> None:
        self.parked_from = ChangeState(self.state)

    def _parked_from(self, state: ChangeState) -> bool:
        return self.parked_from == state

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
    def is_awaiting_payment(self) -> bool:
        return self.current is ChangeState.AWAITING_PAYMENT

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


# A method per trigger, as a machine of its own would add (`lifecycle.park()`).
for _trigger in Trigger:
    setattr(ChangeLifecycle, _trigger.value, lambda self, trigger=_trigger: self.fire(trigger))

# RESUME's conditions, one per state a change can be parked from: `_parked_from_<state>`.
for _state in PARKABLE:
    setattr(ChangeLifecycle, f"_parked_from_{_state.value}",
            lambda self, state=_state: self._parked_from(state))

# The machine of every change (see ChangeLifecycle). Built once; it holds no model, so nothing
# of one change stays in it, and it is never changed afterwards.
LIFECYCLE = Machine(model=None, states=ChangeState, transitions=TRANSITIONS,
                    initial=ChangeState.REQUESTED, auto_transitions=False,
                    ignore_invalid_triggers=False)
