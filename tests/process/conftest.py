"""The process room: `worker.py` and `starter.py` run as the separate programs people run,
against the Temporal dev server (shared by the session) and the real database, localstripe and
SMTP sink of tests/conftest.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.helpers.processes import service_env
from tests.helpers.services import dev_server


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    async with dev_server() as env:
        yield env


@pytest.fixture(scope="session")
def process_env(dev_env, database_url, engine, localstripe_url, smtp):
    """The environment of worker.py / starter.py processes against the suite's services (the
    database migrated, with the suite's staff directory), on a fresh task queue:
    process_env("cli", EXTRA_VAR="..."), or on a given one:
    process_env("crash", task_queue="crash-1")."""

    def make(prefix: str, *, task_queue: str | None = None, **extra: str) -> dict[str, str]:
        return service_env(temporal_address=dev_env.client.service_client.config.target_host,
                           database_url=database_url, localstripe_url=localstripe_url,
                           smtp_port=smtp.port,
                           task_queue=task_queue or f"{prefix}-{uuid.uuid4().hex[:8]}", **extra)

    return make
