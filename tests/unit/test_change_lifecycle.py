"""The lifecycle of one change (SPEC section 3): named triggers, parking for support, cancelling,
compensating a charge, and illegal triggers raising."""

from __future__ import annotations

import pytest
from transitions import MachineError

from state_machines.lifecycle import ChangeLifecycle, ChangeState

S = ChangeState
# States in which a step runs and may fail for good, so the change can be parked there.
WORKING = [S.REQUESTED, S.AUTHORIZED, S.VALIDATED, S.QUOTED, S.AWAITING_SALES,
           S.SALES_APPROVED, S.CHARGED, S.APPLIED, S.INVOICED]
BEFORE_ANY_MONEY_OR_CHANGE = [S.REQUESTED, S.AUTHORIZED, S.VALIDATED, S.QUOTED,
                              S.AWAITING_SALES, S.SALES_APPROVED]
ENDINGS = [S.COMPLETED, S.REJECTED, S.CANCELLED, S.EXPIRED, S.COMPENSATED]


def run(lifecycle: ChangeLifecycle, *triggers: str) -> list[ChangeState]:
    visited = []
    for trigger in triggers:
        assert getattr(lifecycle, trigger)() is True, trigger
        visited.append(lifecycle.current)
    return visited


def test_an_online_change_runs_from_requested_to_completed():
    lifecycle = ChangeLifecycle()
    assert lifecycle.current is S.REQUESTED
    visited = run(lifecycle, "authorize", "validate", "quote", "charge", "apply", "invoice",
                  "complete")
    assert visited == [S.AUTHORIZED, S.VALIDATED, S.QUOTED, S.CHARGED, S.APPLIED, S.INVOICED,
                       S.COMPLETED]
    assert lifecycle.is_terminal


def test_a_change_with_nothing_to_charge_goes_from_quoted_to_applied():
    lifecycle = ChangeLifecycle(initial=S.QUOTED)
    assert run(lifecycle, "apply", "invoice", "complete")[-1] is S.COMPLETED


def test_an_offline_change_waits_for_sales_then_applies():
    lifecycle = ChangeLifecycle(initial=S.QUOTED)
    visited = run(lifecycle, "route_to_sales", "sales_approve", "apply", "invoice", "complete")
    assert visited == [S.AWAITING_SALES, S.SALES_APPROVED, S.APPLIED, S.INVOICED, S.COMPLETED]


@pytest.mark.parametrize("state", [S.REQUESTED, S.AUTHORIZED, S.VALIDATED, S.QUOTED,
                                   S.AWAITING_SALES, S.SALES_APPROVED])
def test_a_business_rejection_ends_the_change(state):
    """Also after the quote: quoted again after a wait, the change may no longer be allowed."""
    lifecycle = ChangeLifecycle(initial=state)
    lifecycle.reject()
    assert lifecycle.current is S.REJECTED and lifecycle.is_terminal


def test_a_sales_decision_that_never_comes_expires_the_change():
    lifecycle = ChangeLifecycle(initial=S.AWAITING_SALES)
    lifecycle.expire()
    assert lifecycle.current is S.EXPIRED and lifecycle.is_terminal


# --- parking for support ---------------------------------------------------------------------

@pytest.mark.parametrize("state", WORKING)
def test_a_parked_change_resumes_where_it_stopped(state):
    lifecycle = ChangeLifecycle(initial=state)
    lifecycle.park()
    assert lifecycle.current is S.AWAITING_SUPPORT
    assert lifecycle.is_parked and not lifecycle.is_terminal
    assert lifecycle.effective is state
    lifecycle.resume()
    assert lifecycle.current is state


def test_a_change_can_be_parked_and_resumed_repeatedly_along_the_way():
    lifecycle = ChangeLifecycle()
    for trigger in ("authorize", "validate", "quote", "charge", "apply", "invoice"):
        before = lifecycle.current
        lifecycle.park()
        lifecycle.resume()
        assert lifecycle.current is before
        getattr(lifecycle, trigger)()
    lifecycle.complete()
    assert lifecycle.current is S.COMPLETED


def test_a_restored_parked_change_resumes_to_the_state_it_was_parked_from():
    lifecycle = ChangeLifecycle(initial=S.AWAITING_SUPPORT, parked_from=S.CHARGED)
    assert lifecycle.effective is S.CHARGED
    lifecycle.resume()
    assert lifecycle.current is S.CHARGED


def test_a_parked_change_cannot_move_on_without_resuming():
    lifecycle = ChangeLifecycle(initial=S.QUOTED)
    lifecycle.park()
    for trigger in ("charge", "apply", "park", "complete"):
        with pytest.raises(MachineError):
            getattr(lifecycle, trigger)()
    assert lifecycle.current is S.AWAITING_SUPPORT


@pytest.mark.parametrize("state", ENDINGS)
def test_an_ended_change_cannot_be_parked(state):
    with pytest.raises(MachineError):
        ChangeLifecycle(initial=state).park()


# --- cancelling --------------------------------------------------------------------------------

@pytest.mark.parametrize("state", BEFORE_ANY_MONEY_OR_CHANGE)
def test_a_change_can_be_cancelled_before_money_moves_or_the_subscription_changes(state):
    lifecycle = ChangeLifecycle(initial=state)
    assert lifecycle.cancel_refusal() is None
    lifecycle.cancel()
    assert lifecycle.current is S.CANCELLED and lifecycle.is_terminal


@pytest.mark.parametrize("state", BEFORE_ANY_MONEY_OR_CHANGE)
def test_a_parked_change_can_be_cancelled_after_resuming(state):
    lifecycle = ChangeLifecycle(initial=state)
    lifecycle.park()
    assert lifecycle.cancel_refusal() is None
    lifecycle.resume()
    lifecycle.cancel()
    assert lifecycle.current is S.CANCELLED


def test_a_charged_change_is_cancelled_by_compensating_the_charge():
    lifecycle = ChangeLifecycle(initial=S.CHARGED)
    assert lifecycle.cancel_refusal() is None
    with pytest.raises(MachineError):
        lifecycle.cancel()  # money has moved: cancelling means refunding it
    lifecycle.compensate()
    assert lifecycle.current is S.COMPENSATED and lifecycle.is_terminal


def test_a_change_parked_after_its_charge_is_compensated_after_resuming():
    lifecycle = ChangeLifecycle()
    run(lifecycle, "authorize", "validate", "quote", "charge")
    lifecycle.park()  # e.g. applying the change failed for good
    assert lifecycle.cancel_refusal() is None
    lifecycle.resume()
    lifecycle.compensate()
    assert lifecycle.current is S.COMPENSATED


@pytest.mark.parametrize("state", [S.APPLIED, S.INVOICED])
def test_an_applied_change_cannot_be_cancelled(state):
    lifecycle = ChangeLifecycle(initial=state)
    assert "already applied" in (lifecycle.cancel_refusal() or "")
    with pytest.raises(MachineError):
        lifecycle.cancel()
    lifecycle.park()
    assert "already applied" in (lifecycle.cancel_refusal() or "")


@pytest.mark.parametrize("state", ENDINGS)
def test_an_ended_change_cannot_be_cancelled(state):
    lifecycle = ChangeLifecycle(initial=state)
    assert state.value in (lifecycle.cancel_refusal() or "")
    with pytest.raises(MachineError):
        lifecycle.cancel()


@pytest.mark.parametrize("state", [s for s in S if s is not S.CHARGED])
def test_only_a_charged_change_can_be_compensated(state):
    with pytest.raises(MachineError):
        ChangeLifecycle(initial=state).compensate()


# --- illegal triggers are bugs -----------------------------------------------------------------

@pytest.mark.parametrize(("state", "trigger"), [
    (S.REQUESTED, "quote"),  # skipping authorization and validation
    (S.REQUESTED, "charge"),
    (S.AUTHORIZED, "apply"),
    (S.VALIDATED, "charge"),  # charging before the quote
    (S.QUOTED, "complete"),
    (S.QUOTED, "sales_approve"),  # sales approving a change never routed to it
    (S.CHARGED, "reject"),  # the money moved: a cancel compensates, a rejection can't
    (S.CHARGED, "route_to_sales"),
    (S.APPLIED, "complete"),  # completing without the invoice
    (S.COMPLETED, "authorize"),
    (S.COMPLETED, "apply"),
    (S.REJECTED, "validate"),
    (S.AWAITING_SALES, "apply"),  # applying before sales approves
    (S.AWAITING_SALES, "charge"),
    (S.CANCELLED, "resume"),
    (S.EXPIRED, "sales_approve"),
])
def test_an_illegal_trigger_raises_and_leaves_the_state_alone(state, trigger):
    lifecycle = ChangeLifecycle(initial=state)
    with pytest.raises(MachineError):
        getattr(lifecycle, trigger)()
    assert lifecycle.current is state


def test_there_are_no_automatic_go_anywhere_triggers():
    lifecycle = ChangeLifecycle()
    assert not hasattr(lifecycle, "to_completed")
