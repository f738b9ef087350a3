"""The lifecycle of one change as a `transitions` machine (SPEC section 3).

The workflow moves through it by named triggers; an illegal trigger raises `MachineError`, which is
a bug, never a business outcome. A step that fails for good parks the change in
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


S = ChangeState
TERMINAL = frozenset({S.COMPLETED, S.REJECTED, S.CANCELLED, S.EXPIRED, S.COMPENSATED})
# States in which a step is running and may fail for good.
PARKABLE = (S.REQUESTED, S.AUTHORIZED, S.VALIDATED, S.QUOTED, S.AWAITING_SALES, S.SALES_APPROVED,
            S.CHARGED, S.APPLIED, S.INVOICED)
# Before the subscription is changed, a change can still be called off.
CANCELLABLE = (S.REQUESTED, S.AUTHORIZED, S.VALIDATED, S.QUOTED, S.AWAITING_SALES,
               S.SALES_APPROVED)

TRANSITIONS: list[dict] = [
    {"trigger": "authorize", "source": S.REQUESTED, "dest": S.AUTHORIZED},
    {"trigger": "validate", "source": S.AUTHORIZED, "dest": S.VALIDATED},
    {"trigger": "quote", "source": S.VALIDATED, "dest": S.QUOTED},
    {"trigger": "route_to_sales", "source": S.QUOTED, "dest": S.AWAITING_SALES},
    {"trigger": "sales_approve", "source": S.AWAITING_SALES, "dest": S.SALES_APPROVED},
    {"trigger": "charge", "source": S.QUOTED, "dest": S.CHARGED},
    {"trigger": "apply", "source": [S.QUOTED, S.CHARGED, S.SALES_APPROVED], "dest": S.APPLIED},
    {"trigger": "invoice", "source": S.APPLIED, "dest": S.INVOICED},
    {"trigger": "complete", "source": S.INVOICED, "dest": S.COMPLETED},
    {"trigger": "reject", "source": [S.REQUESTED, S.AUTHORIZED, S.VALIDATED, S.AWAITING_SALES],
     "dest": S.REJECTED},
    {"trigger": "expire", "source": S.AWAITING_SALES, "dest": S.EXPIRED},
    {"trigger": "park", "source": list(PARKABLE), "dest": S.AWAITING_SUPPORT,
     "before": "_remember_parked_from"},
    *[
        {"trigger": "resume", "source": S.AWAITING_SUPPORT, "dest": state,
         "conditions": f"_parked_from_{state.value}"}
        for state in PARKABLE
    ],
    {"trigger": "cancel", "source": list(CANCELLABLE), "dest": S.CANCELLED},
    {"trigger": "compensate", "source": S.CHARGED, "dest": S.COMPENSATED},
]


class ChangeLifecycle:
    """The model the lifecycle machine drives. Restore it at a state with `initial=`."""

    def __init__(self, initial: ChangeState = S.REQUESTED,
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
        return self.current is S.AWAITING_SUPPORT

    @property
    def effective(self) -> ChangeState:
        """The working state: where a parked change stands, or the current state."""
        return self.parked_from if self.is_parked and self.parked_from else self.current

    def cancel_refusal(self) -> str | None:
        """Why a cancel does not fit now, or None when it does (money taken means refund)."""
        if self.is_terminal:
            return f"the change has already ended ({self.current.value})"
        if self.effective in (S.APPLIED, S.INVOICED):
            return ("the change is already applied to the subscription and can't be cancelled; "
                    "retry the failed step instead")
        return None
