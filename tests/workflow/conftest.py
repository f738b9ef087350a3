"""The workflow room: the real workflows and activities in a worker of this process, against the
time-skipping test server shared by the session (days of waiting are skipped), with the real
database, localstripe and SMTP sink of tests/conftest.py, and real webhook receivers."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.dependencies import Dependencies
from subchange.app.wiring import build_worker
from tests.helpers.driver import ChangeDriver, worker_with_stand_ins
from tests.helpers.services import time_skipping_server
from tests.helpers.webhooks import FAST_WEBHOOKS, WebhookRoom


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    async with time_skipping_server() as env:
        yield env


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


@pytest.fixture
def driver(ts_client, ts_worker, time_skipping_env, load) -> ChangeDriver:
    """Loads organisations and runs changes on this test's worker. (Named `driver`, not
    `changes`, so that it is never read as the module subchange.store.changes.)"""
    return ChangeDriver(ts_client, ts_worker.task_queue, time_skipping_env, load)


@pytest.fixture
async def driver_with_stand_ins(request: pytest.FixtureRequest,
                                time_skipping_env: WorkflowEnvironment, deps: Dependencies,
                                task_queue: str, load
                                ) -> AsyncIterator[Callable[..., Awaitable[ChangeDriver]]]:
    """Makes this test's driver on a worker of the real workflow and activities, except the
    activities named, replaced by stand-ins (tests/helpers/driver.py worker_with_stand_ins):
    `driver = await driver_with_stand_ins(charge=charge_then_lose_the_answer)`. `deps=` gives
    the worker other dependencies, `env=` another server, one that outlives the test. One
    driver a test; its worker stops when the test ends."""
    assert "ts_worker" not in request.fixturenames, (
        "the real worker would poll the stand-ins' task queue too")
    made: list[ChangeDriver] = []
    async with contextlib.AsyncExitStack() as running:
        async def make(*, env: WorkflowEnvironment = time_skipping_env,
                       deps: Dependencies = deps, **stand_ins: Callable) -> ChangeDriver:
            assert not made, "one stand-in driver a test: they would share its task queue"
            worker = await running.enter_async_context(
                worker_with_stand_ins(env, deps, task_queue, **stand_ins))
            made.append(ChangeDriver(env.client, worker.task_queue, env, load))
            return made[0]

        yield make


@pytest.fixture
async def webhook_room(time_skipping_env: WorkflowEnvironment, deps: Dependencies,
                       task_queue: str,
                       load) -> AsyncIterator[Callable[..., Awaitable[WebhookRoom]]]:
    """Makes this test's webhook room (tests/helpers/webhooks.py): a worker of the real
    workflows and activities whose settings take `**settings` (webhook retries in seconds by
    default), its change driver, and endpoints on real receivers. Everything it added is removed
    when the test ends: the database is the session's, and other tests' events are owed only
    to the endpoints that exist."""
    async with contextlib.AsyncExitStack() as running:
        async def make(**settings) -> WebhookRoom:
            room_deps = dataclasses.replace(deps, settings=deps.settings.model_copy(
                update={**FAST_WEBHOOKS, **settings}))
            worker = await running.enter_async_context(build_worker(
                time_skipping_env.client, room_deps, task_queue=task_queue,
                fail_workflows_on_bugs=True))
            room = WebhookRoom(ChangeDriver(time_skipping_env.client, worker.task_queue,
                                            time_skipping_env, load), room_deps)
            running.push_async_callback(room.close)
            return room

        yield make
