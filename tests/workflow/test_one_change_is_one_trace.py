"""With tracing on (subchange/app/tracing.py), one change is one trace: the client's start (the
path starter.py and the API share: subchange.app.changes.start_change on a client from
connect()), the workflow, every step it ran, and the SQL statements and gateway requests of those
steps, all under the start's trace id. And no span records a card number or an email address,
from the fixture's loading (the customer and card created at the gateway, the users' rows) to the
invoice emailed. Real workflow, activities, database, localstripe and SMTP sink; the spans go to
an in-memory exporter instead of an OTLP endpoint."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from activities.dependencies import Dependencies
from subchange.app import tracing
from subchange.app.changes import start_change
from subchange.app.client import connect
from subchange.app.wiring import build_worker
from subchange.domain.contracts import ChangeStatus
from subchange.settings import Settings
from subchange.store.db import make_engine
from tests.helpers.documents import (
    GOOD_CARD,
    admin,
    admin_email,
    load_document,
    org_document,
    unique_org,
)
from tests.helpers.driver import request_for, wait_ended
from tests.helpers.services import suite_dependencies

SQL_SCOPE = "opentelemetry.instrumentation.sqlalchemy"
HTTP_SCOPE = "opentelemetry.instrumentation.requests"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    traced = tracing.configure_tracing("worker", exporter=spans)
    assert traced is not None
    try:
        yield spans
    finally:
        traced.stop()


@pytest.fixture
def traced_deps(exporter, settings: Settings, database_url: str, engine: sa.Engine,
                time_skipping_env: WorkflowEnvironment, task_queue: str
                ) -> Iterator[Dependencies]:
    """The worker's dependencies as worker.py builds them once tracing is on: an engine of its
    own (made after, so traced), the gateway, settings that reach the test server. (`engine`,
    the suite's, has migrated the database.)"""
    traced_engine = make_engine(database_url)
    settings = settings.model_copy(update={
        "temporal_address": time_skipping_env.client.service_client.config.target_host,
        "task_queue": task_queue})
    try:
        yield suite_dependencies(settings, traced_engine)
    finally:
        traced_engine.dispose()


@pytest.fixture
async def traced_client(traced_deps):
    return await connect(traced_deps.settings)


@pytest.fixture
async def traced_worker(traced_client, traced_deps, task_queue) -> AsyncIterator[None]:
    async with build_worker(traced_client, traced_deps, task_queue=task_queue,
                            fail_workflows_on_bugs=True):
        yield


def steps_in(history: WorkflowHistory) -> set[str]:
    """The names of the activities and local activities the change ran."""
    names = set()
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            names.add(event.activity_task_scheduled_event_attributes.activity_type.name)
        elif event.marker_recorded_event_attributes.marker_name == "core_local_activity":
            details = event.marker_recorded_event_attributes.details
            names.add(json.loads(details["data"].payloads[0].data)["activity_type"])
    return names


def recorded_values(span: ReadableSpan) -> list[str]:
    """Every value a span records: its name, its attributes, its events' attributes."""
    values = [span.name]
    for attributes in (span.attributes, *(event.attributes for event in span.events)):
        values += [str(value) for value in (attributes or {}).values()]
    return values


async def test_a_change_is_one_trace_and_no_span_holds_a_card_or_an_address(
        exporter, traced_deps, traced_client, traced_worker, time_skipping_env):
    org = unique_org("traced")
    billing = f"billing@{org}.example"
    load_document(traced_deps, org_document(org, users=[admin(org)], billing_email=billing,
                                            subscriptions=[{
        "product": "one", "plan": "enterprise", "seats": 30, "pricing_model": "flexible_user",
        "card": GOOD_CARD}]))
    tracing.current().provider.force_flush()
    loading = exporter.get_finished_spans()
    exporter.clear()

    started = await start_change(traced_client, traced_deps.settings, request_for(org, seats=35))
    # Followed by the test server's own client, whose queries are no part of the change.
    handle = time_skipping_env.client.get_workflow_handle(started.handle.id)
    assert (await wait_ended(handle)).result.status is ChangeStatus.COMPLETED
    steps = steps_in(await handle.fetch_history())
    tracing.current().provider.force_flush()
    spans = exporter.get_finished_spans()

    [start] = [s for s in spans if s.name == "StartWorkflow:SubscriptionChange"]
    assert start.parent is None
    trace_id = start.context.trace_id
    assert {s.name for s in spans if s.context.trace_id != trace_id} == set()
    names = {s.name for s in spans}
    assert "RunWorkflow:SubscriptionChange" in names
    assert {"charge", "apply_change", "email_invoice", "open_change", "close_change"} <= steps
    missing = {f"{kind}:{step}" for step in steps for kind in ("StartActivity", "RunActivity")}
    assert missing - names == set()
    statements = [s.attributes.get("db.statement", "") for s in spans
                  if s.instrumentation_scope.name == SQL_SCOPE]
    assert any(statement.startswith("INSERT INTO applied_change") for statement in statements)
    urls = [s.attributes.get("http.url") or s.attributes.get("url.full") for s in spans
            if s.instrumentation_scope.name == HTTP_SCOPE]
    assert any("/v1/payment_intents/pi_" in url and url.endswith("/confirm") for url in urls)

    for span in (*loading, *spans):
        for value in recorded_values(span):
            assert GOOD_CARD not in value, (span.name, value)
            assert admin_email(org) not in value and billing not in value, (span.name, value)
            assert "@" not in value, (span.name, value)
