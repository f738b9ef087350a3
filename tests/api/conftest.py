"""The API room: the HTTP API of SPEC section 12 in this process (httpx through ASGI), against
the Temporal dev server and a real worker of this process on the suite's database, localstripe
and SMTP sink; and `python api.py` as the process operators run, for schemathesis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import Session
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.dependencies import Dependencies
from subchange.api.app import create_app
from subchange.app.wiring import build_worker
from subchange.settings import Settings
from subchange.store import api_keys
from tests.helpers.documents import SALES, SUPPORT
from tests.helpers.driver import ChangeDriver
from tests.helpers.services import dev_server

BACKEND = "crm@vendor.example"


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    async with dev_server() as env:
        yield env


@pytest.fixture(scope="session")
def api_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"task_queue": f"api-{uuid.uuid4().hex[:8]}"})


@pytest.fixture(scope="session")
async def api_worker(dev_env: WorkflowEnvironment, deps: Dependencies, api_settings: Settings
                     ) -> AsyncIterator[Worker]:
    async with build_worker(dev_env.client, deps, task_queue=api_settings.task_queue,
                            fail_workflows_on_bugs=True) as worker:
        yield worker


@pytest.fixture(scope="session")
def app(api_settings: Settings, dev_env: WorkflowEnvironment, deps: Dependencies) -> FastAPI:
    return create_app(api_settings, client=dev_env.client, sessions=deps.sessions)


@pytest.fixture
async def http(app: FastAPI, api_worker: Worker) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the API; the worker runs the changes it starts."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://api.test") as client:
        yield client


@dataclass(frozen=True)
class Keys:
    backend: str
    support: str
    sales: str

    @staticmethod
    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


def make_key(deps: Dependencies, owner: str, *roles: str) -> str:
    with deps.sessions() as session:
        _, key = api_keys.create_key(session=session, owner=owner, roles=list(roles))
        session.commit()
    return key


@pytest.fixture(scope="session")
def keys(deps: Dependencies, engine) -> Keys:
    return Keys(backend=make_key(deps, BACKEND, "backend"),
                support=make_key(deps, SUPPORT, "support"),
                sales=make_key(deps, SALES, "sales"))


@pytest.fixture
def driver(dev_env: WorkflowEnvironment, api_worker: Worker, load) -> ChangeDriver:
    """Loads organisations (through the real loader) and reads changes on the API's worker."""
    return ChangeDriver(dev_env.client, api_worker.task_queue, dev_env, load)


def session_of(deps: Dependencies) -> Session:
    return deps.sessions()
