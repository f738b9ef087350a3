"""Shared fixtures: the real components of SPEC section 6, started locally.

- Database: a fresh SQLite file, or a fresh PostgreSQL database when TEST_DATABASE=postgresql.
- Payments: a localstripe server process. Email: an aiosmtpd server writing to a Maildir.
- Temporal: the time-skipping test server by default, the dev server for integration tests,
  both from their pip packages (nothing downloads).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import sqlalchemy as sa
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import Dependencies
from subchange.adapters.gateway import Gateway
from subchange.app.fixtures import load_fixture, parse_fixture
from subchange.app.wiring import build_worker
from subchange.domain.catalog import default_catalog
from subchange.domain.search_attributes import ALL_KEYS
from subchange.settings import Settings
from subchange.store.db import make_engine, session_factory
from subchange.store.migrate import upgrade
from tests.helpers.services import (
    Mailbox,
    SmtpSink,
    binary,
    fresh_database,
    start_localstripe,
    stop_process,
    time_skipping_server,
)


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {os.environ.get('TEST_DATABASE', 'sqlite')}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(tmp_path_factory.mktemp("db"), "subchange_test") as url:
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(database_url)
    upgrade(engine.url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    process, url = start_localstripe(from_scratch=True)
    yield url
    stop_process(process)


@pytest.fixture(scope="session")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpSink]:
    sink = SmtpSink(tmp_path_factory.mktemp("mail"))
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def settings(database_url: str, localstripe_url: str, smtp: SmtpSink) -> Settings:
    return Settings(_env_file=None, database_url=database_url, stripe_api_base=localstripe_url,
                    stripe_api_key="sk_test_suite", smtp_host="127.0.0.1", smtp_port=smtp.port,
                    task_queue="unused-default")


@pytest.fixture(scope="session")
def deps(settings: Settings, engine: sa.Engine) -> Dependencies:
    return Dependencies(settings=settings, sessions=session_factory(engine),
                        catalog=default_catalog(), gateway=Gateway(settings))


@pytest.fixture
def mailbox(smtp: SmtpSink) -> Mailbox:
    return smtp.mailbox


@pytest.fixture
def load(deps: Dependencies):
    """Load a fixture document (dict) through the real loader, as `starter.py load` does."""

    def _load(document: dict) -> None:
        import json

        with deps.sessions() as session:
            load_fixture(parse_fixture(json.dumps(document)), session=session,
                         gateway=deps.gateway, settings=deps.settings)

    return _load


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    async with time_skipping_server() as env:
        yield env


@pytest.fixture(scope="session")
async def dev_env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter, search_attributes=ALL_KEYS,
        dev_server_existing_path=binary("temporal"),
        ui=False)
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def process_env(dev_env, database_url, localstripe_url, smtp):
    """The environment of worker.py / starter.py processes against the suite's services, on a
    fresh task queue: process_env("cli", EXTRA_VAR="...")."""
    from tests.helpers.processes import service_env

    def make(prefix: str, **extra: str) -> dict[str, str]:
        return service_env(temporal_address=dev_env.client.service_client.config.target_host,
                           database_url=database_url, localstripe_url=localstripe_url,
                           smtp_port=smtp.port, task_queue=f"{prefix}-{uuid.uuid4().hex[:8]}",
                           **extra)

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

