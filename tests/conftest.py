"""Shared fixtures: the real components of SPEC section 6, started locally.

- Database: a fresh SQLite file, or a fresh PostgreSQL database when TEST_DATABASE=postgresql.
- Payments: a localstripe server process. Email: an aiosmtpd server writing to a Maildir.
- Temporal: the time-skipping test server by default, the dev server for integration tests,
  both from their pip packages (nothing downloads).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import sqlalchemy as sa
import stripe
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import Dependencies
from subchange.app.wiring import build_worker
from subchange.settings import Settings
from tests.helpers.documents import load_document
from tests.helpers.observers import Mailbox, stripe_client
from tests.helpers.services import (
    SmtpSink,
    database_kind,
    dev_server,
    fresh_database,
    localstripe,
    migrated_engine,
    smtp_sink,
    suite_dependencies,
    suite_settings,
    time_skipping_server,
)


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {database_kind()}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(tmp_path_factory.mktemp("db"), "subchange_test") as url:
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[sa.Engine]:
    with migrated_engine(database_url) as engine:
        yield engine


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    with localstripe() as url:
        yield url


@pytest.fixture(scope="session")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpSink]:
    with smtp_sink(tmp_path_factory.mktemp("mail")) as sink:
        yield sink


@pytest.fixture(scope="session")
def settings(database_url: str, localstripe_url: str, smtp: SmtpSink) -> Settings:
    return suite_settings(database_url=database_url, localstripe_url=localstripe_url,
                          smtp_port=smtp.port)


@pytest.fixture(scope="session")
def deps(settings: Settings, engine: sa.Engine) -> Dependencies:
    return suite_dependencies(settings, engine)


@pytest.fixture(scope="session")
def gateway(settings: Settings) -> stripe.StripeClient:
    """The payment gateway as the payments team reads it (the stripe SDK on localstripe), not
    the application's adapter."""
    return stripe_client(settings.stripe_api_base, settings.stripe_api_key)


@pytest.fixture
def mailbox(smtp: SmtpSink) -> Mailbox:
    return smtp.mailbox


@pytest.fixture
def load(deps: Dependencies):
    """Load a fixture document (dict) through the real loader, as `starter.py load` does."""
    return functools.partial(load_document, deps)


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    async with time_skipping_server() as env:
        yield env


@pytest.fixture(scope="session")
async def dev_env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[WorkflowEnvironment]:
    async with dev_server() as env:
        yield env


@pytest.fixture(scope="session")
def process_env(dev_env, database_url, localstripe_url, smtp):
    """The environment of worker.py / starter.py processes against the suite's services, on a
    fresh task queue: process_env("cli", EXTRA_VAR="..."), or on a given one:
    process_env("crash", task_queue="crash-1")."""
    from tests.helpers.processes import service_env

    def make(prefix: str, *, task_queue: str | None = None, **extra: str) -> dict[str, str]:
        return service_env(temporal_address=dev_env.client.service_client.config.target_host,
                           database_url=database_url, localstripe_url=localstripe_url,
                           smtp_port=smtp.port,
                           task_queue=task_queue or f"{prefix}-{uuid.uuid4().hex[:8]}", **extra)

    return make


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def ts_worker(time_skipping_env: WorkflowEnvironment, deps: Dependencies,
                    task_queue: str) -> AsyncIterator[Worker]:
    async with build_worker(time_skipping_env.client, deps, task_queue=task_queue,
                            fail_workflows_on_bugs=True) as worker:
        yield worker


@pytest.fixture
def ts_client(time_skipping_env: WorkflowEnvironment) -> Client:
    return time_skipping_env.client

