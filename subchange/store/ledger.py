"""The idempotency ledger of payment-gateway side effects, one entry per (workflow id, step):
what was started, its gateway id once known, and how it ended.

An entry is a small state machine moved by compare-and-set. Activities run at least once, and a
timed-out attempt can still be running beside its retry; so every attempt first takes the entry
(`take`: the newest attempt becomes its holder), and every later move names the state it expects
and, where a stale attempt must not act, the holder it expects. A move that finds something else
changes nothing and says so: the older attempt has lost and stops, the newer one goes on.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from subchange.store.once import insert_once
from subchange.store.outbox import NewEvent
from subchange.store.tables import GatewayCall, utcnow

ANY_HOLDER = None  # a move any attempt may make (it records what the gateway already did)
_UPDATE = sa.update(GatewayCall).execution_options(synchronize_session=False)  # the db decides


def gateway_call(*, session: Session, workflow_id: str, step: str) -> GatewayCall | None:
    return session.get(GatewayCall, (workflow_id, step))


def take(*, session: Session, workflow_id: str, step: str, holder: str, status: str = "started",
         **fields: Any) -> GatewayCall:
    """The entry, now held by `holder`; a new one starts in `status` with `fields`. The caller's
    attempt is the newest, so it takes the entry over unconditionally."""
    def find() -> GatewayCall | None:
        session.expire_all()
        return gateway_call(session=session, workflow_id=workflow_id, step=step)

    entry = insert_once(session=session, find=find, row=GatewayCall(
        workflow_id=workflow_id, step=step, status=status, holder=holder, **fields))
    if entry.holder != holder:
        session.execute(_UPDATE.where(*_key(workflow_id, step))
                        .values(holder=holder, updated_at=utcnow()))
        session.commit()
        taken = find()
        assert taken is not None
        entry = taken
    return entry


def move(*, session: Session, workflow_id: str, step: str, holder: str | None,
         expected: Collection[str], to: str, event: NewEvent | None = None,
         at_generation: int | None = None, **fields: Any) -> bool:
    """Move the entry from one of the `expected` states to `to` (setting `fields`), only while
    `holder` holds it (ANY_HOLDER: whoever does) and, given `at_generation`, while it is that
    generation; False when it was elsewhere, and then nothing changed. `event` reports the move:
    recorded in its transaction, only when it moves."""
    conditions = [*_key(workflow_id, step), col(GatewayCall.status).in_(list(expected))]
    if holder is not ANY_HOLDER:
        conditions.append(col(GatewayCall.holder) == holder)
    if at_generation is not None:
        conditions.append(col(GatewayCall.generation) == at_generation)
    moved = session.exec(_UPDATE.where(*conditions)
                         .values(status=to, updated_at=utcnow(), **fields))
    if moved.rowcount == 1 and event is not None:
        event.record(session)
    session.commit()
    return moved.rowcount == 1


def _key(workflow_id: str, step: str) -> tuple[sa.ColumnElement[bool], ...]:
    return col(GatewayCall.workflow_id) == workflow_id, col(GatewayCall.step) == step


def retire(*, session: Session, workflow_id: str, generation: int) -> bool:
    """After the compensation of a change that ended without closing: its charge entry starts
    afresh (a new intent generation) and its refund entry is kept aside as `refund.<generation>`,
    so the same request started again charges and refunds on its own.

    Once per generation, by compare-and-set on the charge entry's: of two compensations of one
    change at once (the sweep and a takeover), the second finds it retired (False). A refund entry
    it took afresh after the first put the refund aside moved no money (the charge was declined
    with no intent by then): it is dropped, rather than renamed onto the first one's."""
    retired = session.exec(_UPDATE.where(*_key(workflow_id, "charge"),
                                         col(GatewayCall.generation) == generation).values(
        status="declined", external_id=None, holder=None, generation=generation + 1,
        updated_at=utcnow())).rowcount == 1
    if retired:
        session.execute(_UPDATE.where(*_key(workflow_id, "refund"))
                        .values(step=f"refund.{generation}", updated_at=utcnow()))
    else:
        session.execute(sa.delete(GatewayCall).where(*_key(workflow_id, "refund"),
                                                     col(GatewayCall.external_id).is_(None)))
    session.commit()
    return retired
