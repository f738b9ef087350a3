"""Events for backends are written to the outbox in the transaction of the state change they
report (SPEC section 13): committed with it, rolled back with it, recorded once however often a
step writes the same state, owed to each endpoint subscribed to their type, and free of card
numbers and secrets. What reaches an endpoint is tested through the relay
(tests/workflow/test_webhooks_reach_a_real_receiver.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlmodel import select

from subchange.domain.contracts import ChangeRequest, ChangeResult, ChangeStatus
from subchange.domain.webhooks import EndpointRefused, scrubbed
from subchange.store import changes, deliveries, ledger, outbox, webhooks
from subchange.store.outbox import NewEvent
from subchange.store.tables import (
    ChangeRecord,
    GatewayCall,
    OutboxEvent,
    WebhookDelivery,
    utcnow,
)


@pytest.fixture
def endpoints(deps):
    """Add endpoints for the test (the database is the session's: other tests' events are
    owed to them only while they exist); removed when it ends."""
    made: list[str] = []

    def add(events: list[str] | None = None) -> str:
        with deps.sessions() as session:
            row, _ = webhooks.add_endpoint(session=session, url="https://hooks.example/in",
                                           events=events or [])
            session.commit()
        made.append(row.id)
        return row.id

    yield add
    with deps.sessions() as session:
        for endpoint_id in made:
            webhooks.remove_endpoint(session=session, endpoint_id=endpoint_id)
        session.commit()


def opened_change(deps) -> str:
    request = ChangeRequest.model_validate({
        "request_id": f"evt-{uuid.uuid4().hex[:10]}", "org_id": "acme-events", "product": "one",
        "requested_by": "admin@acme-events.example", "change": {"kind": "seats", "seats": 3}})
    with deps.sessions() as session:
        changes.open_change(session=session, workflow_id=request.workflow_id, request=request)
    return request.workflow_id


def events_of(deps, workflow_id: str) -> list[OutboxEvent]:
    with deps.sessions() as session:
        return list(session.exec(select(OutboxEvent).where(OutboxEvent.workflow_id == workflow_id)
                                 .order_by(OutboxEvent.sequence)))


def owed(deps, event_id: str) -> set[str]:
    with deps.sessions() as session:
        return set(session.exec(select(WebhookDelivery.endpoint_id)
                                .where(WebhookDelivery.event_id == event_id)))


def rejected(workflow_id: str) -> ChangeResult:
    return ChangeResult(workflow_id=workflow_id, request_id=workflow_id.removeprefix("change-"),
                        status=ChangeStatus.REJECTED, reason_code="seat_floor",
                        reason="3 seats are in use")


def test_a_change_closed_twice_reports_its_ending_once_with_its_result(deps):
    workflow_id = opened_change(deps)
    for _ in range(2):  # the local step run again (its workflow task timed out)
        with deps.sessions() as session:
            changes.close_change(session=session, workflow_id=workflow_id,
                                 result=rejected(workflow_id))

    [event] = events_of(deps, workflow_id)
    assert event.type == "change.rejected" and event.id.startswith("evt_")
    assert event.payload["type"] == "change.rejected" and event.payload["timestamp"]
    assert event.payload["data"] == {
        **rejected(workflow_id).model_dump(mode="json"), "org_id": "acme-events",
        "product": "one"}


def test_of_two_attempts_closing_a_change_at_once_one_stores_it_and_reports_it(deps):
    workflow_id = opened_change(deps)
    with deps.sessions() as late:
        looked = late.get(ChangeRecord, workflow_id)  # it read the record before the other
        assert looked is not None and looked.result is None
        with deps.sessions() as first:
            changes.close_change(session=first, workflow_id=workflow_id,
                                 result=rejected(workflow_id))
        cancelled = rejected(workflow_id).model_copy(update={"status": ChangeStatus.CANCELLED})
        changes.close_change(session=late, workflow_id=workflow_id, result=cancelled)

    assert [event.type for event in events_of(deps, workflow_id)] == ["change.rejected"]
    with deps.sessions() as session:
        assert session.get(ChangeRecord, workflow_id).status == "rejected"


def test_a_rolled_back_state_change_leaves_no_event_and_wakes_no_relay(deps, endpoints):
    endpoint = endpoints()
    workflow_id = opened_change(deps)
    woken: list[frozenset[str]] = []
    sessions = outbox.waking(deps.sessions, woken.append)

    with sessions() as session:
        sa.event.listen(session, "before_commit", _database_refuses)
        with pytest.raises(sa.exc.OperationalError):
            changes.close_change(session=session, workflow_id=workflow_id,
                                 result=rejected(workflow_id))
    assert events_of(deps, workflow_id) == [] and woken == []
    with deps.sessions() as session:
        assert changes.has_result(session=session, workflow_id=workflow_id) is False

    with sessions() as session:  # the same step again, the database back: now it is reported
        changes.close_change(session=session, workflow_id=workflow_id,
                             result=rejected(workflow_id))
    [event] = events_of(deps, workflow_id)
    assert endpoint in owed(deps, event.id) and endpoint in woken[0]


def _database_refuses(session) -> None:
    raise sa.exc.OperationalError("COMMIT", {}, Exception("the database went away"))


def test_a_ledger_entry_reports_only_the_move_that_happened(deps):
    workflow_id = opened_change(deps)
    with deps.sessions() as session:
        ledger.take(session=session, workflow_id=workflow_id, step="charge", holder="a",
                    status="created", amount=Decimal(100), currency="JPY")
    charged = NewEvent("payment.succeeded", workflow_id, {"payment": {"charge_id": "ch_1"}})
    moves = []
    for _ in range(2):  # the second attempt finds it succeeded already
        with deps.sessions() as session:
            moves.append(ledger.move(session=session, workflow_id=workflow_id, step="charge",
                                     holder=ledger.ANY_HOLDER, expected=("created",),
                                     to="succeeded", event=charged))
    assert moves == [True, False]
    [event] = events_of(deps, workflow_id)
    assert event.type == "payment.succeeded"
    assert event.payload["data"] == {"workflow_id": workflow_id,
                                     "request_id": workflow_id.removeprefix("change-"),
                                     "org_id": "acme-events", "product": "one",
                                     "payment": {"charge_id": "ch_1"}}
    with deps.sessions() as session:
        assert session.get(GatewayCall, (workflow_id, "charge")).status == "succeeded"


def test_an_event_recorded_under_its_own_key_is_recorded_once(deps):
    """A park's event is keyed by the run and the park's number: the step run again (its
    workflow task timed out after the commit) records nothing more."""
    workflow_id, key = opened_change(deps), f"evt_{uuid.uuid4().hex}"
    recorded = []
    for _ in range(2):
        with deps.sessions() as session:
            recorded.append(outbox.record_once(
                session=session, event_id=key, workflow_id=workflow_id,
                type="change.awaiting_support", data={"step": "charge"}))
    assert recorded == [True, False]
    [event] = events_of(deps, workflow_id)
    assert (event.id, event.type) == (key, "change.awaiting_support")
    assert event.payload["data"]["step"] == "charge"
    assert event.payload["data"]["org_id"] == "acme-events"


def test_an_event_is_owed_to_the_endpoints_subscribed_to_its_type_and_not_disabled(
        deps, endpoints):
    everything, endings = endpoints(), endpoints(["change.completed", "change.rejected"])
    payments, disabled = endpoints(["payment.succeeded"]), endpoints()
    with deps.sessions() as session:
        session.execute(sa.text("UPDATE webhook_endpoint SET status = 'disabled' WHERE id = :id"),
                        {"id": disabled})
        session.commit()
    workflow_id = opened_change(deps)
    with deps.sessions() as session:
        changes.close_change(session=session, workflow_id=workflow_id,
                             result=rejected(workflow_id))
    [event] = events_of(deps, workflow_id)
    assert {everything, endings} <= owed(deps, event.id)
    assert not {payments, disabled} & owed(deps, event.id)


def test_event_data_holds_no_card_number_and_no_secret():
    data = {"reason": "card 4242 4242 4242 4242 declined; key sk_live_51Habc and whsec_MfKQ9r8G=",
            "nested": [{"note": "api key sck_0123456789ab_S3cr3t-value_xyz"}],
            "invoice": "INV-2026-000123", "amount": "10560", "charge_id": "ch_3PqRsT",
            "phone": "4242424242424241"}  # sixteen digits failing the Luhn check: no card
    assert scrubbed(data) == {
        "reason": "card [card] declined; key [secret] and [secret]",
        "nested": [{"note": "api key [secret]"}], "invoice": "INV-2026-000123",
        "amount": "10560", "charge_id": "ch_3PqRsT", "phone": "4242424242424241"}


@pytest.mark.parametrize(("url", "events", "field", "problem"), [
    ("ftp://hooks.example/x", [], "url", "must start with https:// or http://"),
    ("https:///no-host", [], "url", "has no host"),
    ("hooks.example/x", [], "url", "must start with https:// or http://"),
    ("https://hooks.example/x", ["change.completed", "change.done"], "events",
     "unknown event type 'change.done'"),
])
def test_an_endpoint_is_refused_naming_the_field(deps, url, events, field, problem):
    with deps.sessions() as session, pytest.raises(EndpointRefused) as refused:
        webhooks.add_endpoint(session=session, url=url, events=events)
    assert refused.value.field == field and problem in refused.value.problem


def test_the_outbox_keeps_an_event_while_an_endpoint_is_owed_it_then_prunes_it(deps, endpoints):
    """What the sweep does every CHANGE_SWEEP_EVERY with OUTBOX_RETENTION: events delivered to
    every endpoint they were for go once old enough, with their deliveries; one still pending or
    failed somewhere stays (for its relay, for `webhook replay`) until that endpoint is removed."""
    a, b = endpoints(), endpoints()
    workflow_id = opened_change(deps)
    now = utcnow()
    moves = {"delivered": deliveries.delivered, "pending": None,
             "failed": lambda **kw: deliveries.exhausted(**kw, error="HTTP 500")}

    def event(age: timedelta, to_a: str, to_b: str) -> str:
        with deps.sessions() as session:
            row = outbox.record_event(session=session, type="change.awaiting_support",
                                      workflow_id=workflow_id, data={"step": "charge"})
            row.created_at = now - age
            session.commit()
            for endpoint_id, status in ((a, to_a), (b, to_b)):
                if moves[status] is not None:
                    moves[status](session=session, endpoint_id=endpoint_id, event_id=row.id,
                                  status_code=200 if status == "delivered" else 500)
            return row.id

    old = timedelta(days=40)
    everywhere = event(old, "delivered", "delivered")
    pending_at_b = event(old, "delivered", "pending")
    failed_at_b = event(old, "delivered", "failed")
    recent = event(timedelta(days=2), "delivered", "delivered")

    def kept() -> set[str]:
        return {row.id for row in events_of(deps, workflow_id)}

    with deps.sessions() as session:
        assert outbox.prune(session=session, before=now - timedelta(days=30)) == 1
        session.commit()
    assert kept() == {pending_at_b, failed_at_b, recent}
    assert owed(deps, everywhere) == set()  # its deliveries went with it

    with deps.sessions() as session:
        webhooks.remove_endpoint(session=session, endpoint_id=b)  # nobody is owed them now
        session.commit()
        assert outbox.prune(session=session, before=now - timedelta(days=30)) == 2
        session.commit()
    assert kept() == {recent}
