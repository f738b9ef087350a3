"""Engine and sessions for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlmodel import Session

from subchange.domain.limits import DATABASE_WAIT
from subchange.store import tables  # noqa: F401  (registers the tables on the metadata)

SessionFactory = Callable[[], Session]

# SQLite stores NUMERIC as a float; amounts have at most 2 decimals, far within its precision.
warnings.filterwarnings("ignore", category=sa_exc.SAWarning, message=".*Decimal objects natively.*")


def normalise_url(url: str) -> str:
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, *, connections: int = 16) -> sa.Engine:
    """`hide_parameters`: a database error's text names the statement but not its bound values
    (requested_by, emailed_to, actor are email addresses), since that text reaches the worker's
    log through the SDK's "Completing activity as failed" line (docs/operations.md).

    Made by `sa.create_engine`, looked up at each call (sqlmodel's is the same function, bound
    at import): with tracing on, subchange/app/tracing.py wraps it to trace the engine."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # A transaction waits for the write lock at most DATABASE_WAIT (the steps' time budget).
        wait = DATABASE_WAIT.total_seconds()
        engine = sa.create_engine(url, hide_parameters=True,
                                  connect_args={"check_same_thread": False, "timeout": wait})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - driver hook
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(wait * 1000)}")
            cursor.close()

        return engine
    # Up to `connections` (a worker: one per concurrent activity and two for its health check
    # and relays, build_dependencies), so no step waits for one; 5 kept open between bursts.
    lock_timeout = f"-c lock_timeout={int(DATABASE_WAIT.total_seconds() * 1000)}"
    kept = min(5, connections)
    return sa.create_engine(url, hide_parameters=True, pool_pre_ping=True, pool_size=kept,
                            max_overflow=connections - kept, connect_args={"options": lock_timeout})


def session_factory(engine: sa.Engine) -> SessionFactory:
    def new_session() -> Session:
        return Session(engine, expire_on_commit=False)

    return new_session
