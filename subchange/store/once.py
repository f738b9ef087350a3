"""Insert a row at most once per key (a workflow id, a subscription), safe against a concurrent
attempt of the same step: the first insert wins and the others read it back."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

Row = TypeVar("Row", bound=SQLModel)


def insert_once(*, session: Session, row: Row, find: Callable[[], Row | None],
                also: Callable[[Row], object] | None = None) -> Row:
    """The row `find` reads; when there is none yet, `row`, inserted and committed. When a
    concurrent attempt commits the same key first, its row (read back) is returned instead.
    `also` adds what goes with the insert to its transaction (an event reporting it): it is
    committed with the row, or rolled back with it."""
    existing = find()
    if existing is not None:
        return existing
    session.add(row)
    try:
        if also is not None:
            session.flush()  # the row's generated key, for `also`
            also(row)
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = find()
        if existing is None:  # not a concurrent insert of this key: another constraint failed
            raise
        return existing
    return row
