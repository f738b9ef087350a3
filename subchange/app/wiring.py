"""Wiring of a worker: its dependencies (database, gateway, catalog) and the Temporal worker that
runs the workflows (changes, webhook relays, the reconciliation sweep) and the activities. Used by
worker.py, the replayer and the tests."""

from __future__ import annotations

import asyncio
import pkgutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.worker import Worker, WorkflowRunner

import workflows
from activities.dependencies import Dependencies
from activities.registry import all_activities
from subchange.adapters.gateway import Gateway
from subchange.adapters.relays import RelayWaker
from subchange.adapters.workflows import ChangeWorkflows
from subchange.app.sandbox import sandboxed_runner
from subchange.domain.catalog import default_catalog
from subchange.settings import Settings
from subchange.store import outbox
from subchange.store.db import make_engine, session_factory
from subchange.store.migrate import upgrade
from workflows.subscription_change import SubscriptionChange
from workflows.sweep import ChangeSweep
from workflows.webhook_relay import WebhookRelay


def build_dependencies(settings: Settings, *, create_schema: bool = True) -> Dependencies:
    """With `create_schema`, first migrate the database to the latest revision (a new one gets its
    tables; see subchange.store.migrate)."""
    if create_schema:
        upgrade(settings.database_url)
    # A connection for each step the worker runs at once, and two for its health check and
    # its relays' wake-ups, so that none waits for the pool.
    engine = make_engine(settings.database_url,
                         connections=settings.max_concurrent_activities + 2)
    return Dependencies(settings=settings, sessions=session_factory(engine),
                        catalog=default_catalog(), gateway=Gateway(settings))


# The workflow's helper modules (every module of the workflows package but the workflows' own):
# loaded once per process and shared by every run, instead of being executed again in each run's
# sandbox (about 15-30 ms of CPU per change). They hold no state between runs and call nothing
# non-deterministic, which tests/unit/test_workflow_helpers_are_deterministic.py checks, since
# the sandbox no longer does for them.
WORKFLOW_MODULE = "workflows.subscription_change"
WORKFLOW_MODULES = (WORKFLOW_MODULE, "workflows.webhook_relay", "workflows.sweep")
WORKFLOW_HELPERS = tuple(
    f"workflows.{module.name}" for module in pkgutil.iter_modules(workflows.__path__)
    if f"workflows.{module.name}" not in WORKFLOW_MODULES)


def workflow_runner(data_converter: DataConverter, *, context_shortcut: bool) -> WorkflowRunner:
    """The sandbox for workers and replayers (subchange/app/sandbox.py), sharing the helpers;
    `context_shortcut` is the setting SANDBOX_CONTEXT_SHORTCUT."""
    return sandboxed_runner(data_converter, *WORKFLOW_HELPERS, context_shortcut=context_shortcut)


def with_temporal(deps: Dependencies, client: Client, *, task_queue: str) -> Dependencies:
    """The dependencies of a worker's activities, which reach Temporal through `client`: they
    ask whether a claim's holder has ended, and after a commit that owes webhook endpoints an
    event they wake those endpoints' relays (on `task_queue`, this worker's). Unchanged when
    they reach it already."""
    if deps.workflows is not None:
        return deps
    loop = asyncio.get_running_loop()
    waker = RelayWaker(client, loop, task_queue=task_queue, settings=deps.settings)
    return replace(deps, workflows=ChangeWorkflows(client, loop),
                   sessions=outbox.waking(deps.sessions, waker))


def build_worker(client: Client, deps: Dependencies, *, task_queue: str | None = None,
                 fail_workflows_on_bugs: bool = False,
                 activities: list[Callable] | None = None,
                 max_cached_workflows: int = 1000) -> Worker:
    """A worker for the service, sized and drained by its settings (MAX_CONCURRENT_ACTIVITIES,
    MAX_CONCURRENT_WORKFLOW_TASKS, GRACEFUL_SHUTDOWN_TIMEOUT). `fail_workflows_on_bugs` (tests)
    fails a workflow whose code raises instead of retrying its task forever, the production
    behaviour that lets a fix be deployed under a stuck change. `activities` replaces the real
    ones (workflow-logic tests); `max_cached_workflows=0` (tests) sends every workflow task to
    the shared queue, not to this worker's sticky one."""
    settings = deps.settings
    task_queue = task_queue or settings.task_queue
    deps = with_temporal(deps, client, task_queue=task_queue)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[SubscriptionChange, WebhookRelay, ChangeSweep],
        workflow_runner=workflow_runner(
            client.data_converter, context_shortcut=settings.sandbox_context_shortcut),
        activities=activities if activities is not None else all_activities(deps),
        activity_executor=ThreadPoolExecutor(max_workers=settings.max_concurrent_activities),
        max_concurrent_activities=settings.max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        workflow_failure_exception_types=[Exception] if fail_workflows_on_bugs else [],
        max_cached_workflows=max_cached_workflows,
        # A heartbeat of the steps that move money reaches the server within 2 s, and with its
        # answer a cancel reaches the attempt before its next gateway request.
        max_heartbeat_throttle_interval=timedelta(seconds=2),
        # On shutdown (SIGTERM) the worker stops polling and waits this long for the steps it
        # runs before cancelling them: a deploy lets a charge or an email finish.
        graceful_shutdown_timeout=settings.graceful_shutdown_timeout,
    )
