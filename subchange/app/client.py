"""A Temporal client of the service (the pydantic converter, sealed payloads when keys are set),
and the search attributes it needs registered. Light enough for starter.py: no worker code."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError, RPCStatusCode

from subchange.adapters.codec import data_converter
from subchange.app import tracing
from subchange.domain.search_attributes import ALL_KEYS
from subchange.settings import Settings


async def connect(settings: Settings, *, metrics: bool = False) -> Client:
    """A client with the pydantic converter; with `metrics`, the SDK runtime serves Prometheus
    metrics (its own and the service's counters) on METRICS_BIND_ADDRESS. With tracing on
    (subchange/app/tracing.py), the client traces what it sends, and so does every worker built
    from it: a change's start, workflow and steps are one trace."""
    runtime = None
    if metrics and settings.metrics_bind_address:
        runtime = Runtime(telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=settings.metrics_bind_address)))
    traced = tracing.current()
    interceptors = [traced.client_interceptor()] if traced is not None else []
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                data_converter=data_converter(settings.payload_keys),
                                runtime=runtime, interceptors=interceptors)


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
    missing = {key.name: IndexedValueType.ValueType(key.indexed_value_type)  # mirrors the API's
               for key in ALL_KEYS if key.name not in known}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing))
    return sorted(missing)
