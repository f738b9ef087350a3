"""Wiring shared by worker.py, starter.py, the demo and the tests: client, worker, search
attributes."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities import Dependencies, all_activities
from subchange.catalog import default_catalog
from subchange.codec import data_converter
from subchange.db import make_engine, session_factory
from subchange.gateway import Gateway
from subchange.search_attributes import ALL_KEYS
from subchange.settings import Settings
from workflows.subscription_change import SubscriptionChange


async def connect(settings: Settings, *, metrics: bool = False) -> Client:
    """A client with the pydantic converter; with `metrics`, the SDK runtime serves Prometheus
    metrics (its own and the service's counters) on METRICS_BIND_ADDRESS."""
    runtime = None
    if metrics and settings.metrics_bind_address:
        runtime = Runtime(telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=settings.metrics_bind_address)))
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                data_converter=data_converter(settings.payload_keys),
                                runtime=runtime)


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register the missing search attributes; returns the names it added (idempotent)."""
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace))
        known = set(existing.custom_attributes) | set(existing.system_attributes)
    except RPCError as error:  # the time-skipping test server can add but not list them
        if error.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        known = set()
    missing = {key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
               for key in ALL_KEYS if key.name not in known}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing))
    return sorted(missing)


def build_dependencies(settings: Settings, *, create_schema: bool = True) -> Dependencies:
    """With `create_schema`, first migrate the database to the latest revision (a new one gets its
    tables; see subchange.migrate)."""
    if create_schema:
        from subchange.migrate import upgrade  # alembic: only where the schema is migrated

        upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    return Dependencies(settings=settings, sessions=session_factory(engine),
                        catalog=default_catalog(), gateway=Gateway(settings))


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox for workers and replayers. pydantic's EmailStr imports email_validator lazily;
    share the worker's copy instead of re-importing it inside every workflow run."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("email_validator",
                                                                          "idna"))


def build_worker(client: Client, deps: Dependencies, *, task_queue: str | None = None,
                 max_concurrent_activities: int = 16, fail_workflows_on_bugs: bool = False,
                 activities: list[Callable] | None = None) -> Worker:
    """A worker for the service. `fail_workflows_on_bugs` (tests) fails a workflow whose code
    raises instead of retrying its task forever, the production behaviour that lets a fix be
    deployed under a stuck change. `activities` replaces the real ones (workflow-logic tests)."""
    return Worker(
        client,
        task_queue=task_queue or deps.settings.task_queue,
        workflows=[SubscriptionChange],
        workflow_runner=workflow_runner(),
        activities=activities if activities is not None else all_activities(deps),
        activity_executor=ThreadPoolExecutor(max_workers=max_concurrent_activities),
        max_concurrent_activities=max_concurrent_activities,
        workflow_failure_exception_types=[Exception] if fail_workflows_on_bugs else [],
    )
