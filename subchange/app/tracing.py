"""Tracing of a process (the worker, the HTTP API, the command line) with OpenTelemetry.

Off unless the environment names an OTLP endpoint (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
OTEL_EXPORTER_OTLP_ENDPOINT): then spans go to it over OTLP/HTTP in batches, and a change is one
trace from the client that starts it (starter.py, the API's request) through its workflow and
every step to the SQL statements and the gateway's HTTP requests. Off, nothing is installed, not
even the instrumentations' imports: the OpenTelemetry API's no-op is all that runs.

What is traced: the Temporal client and worker (temporalio's TracingInterceptor, given to the
client in subchange/app/client.py connect(), so workers built from it trace too), SQLAlchemy
statements, the Stripe SDK's requests (it uses `requests`, subchange/adapters/gateway.py) and the
FastAPI routes. Never traced: the webhook POSTs (httpx), whose URLs may carry a receiver's token.
Statements are recorded with their placeholders (values are bound, never inlined) and URLs are
the gateway's, which name ids (pm_, pi_), never a card number or an address.

The exporter reads its own OTEL_EXPORTER_OTLP_* variables (headers, timeout) from the process
environment, so these are read from there too, never from `.env`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import version
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from temporalio.client import Interceptor

log = logging.getLogger(__name__)

SERVICES = ("worker", "api", "cli")
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


@dataclass
class Tracing:
    """Tracing as one process set it up; `stop` flushes what is pending and takes the
    instrumentations out again (tests set it up and stop it within one process)."""

    provider: TracerProvider

    def client_interceptor(self) -> Interceptor:
        from temporalio.contrib.opentelemetry import TracingInterceptor

        return TracingInterceptor(self.provider.get_tracer("subchange.temporal"))

    def instrument_app(self, app: FastAPI) -> None:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        # A load balancer's health checks would be most of the API's traces.
        FastAPIInstrumentor.instrument_app(app, tracer_provider=self.provider,
                                           excluded_urls="healthz")

    def stop(self) -> None:
        global _current
        from opentelemetry.instrumentation.requests import RequestsInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        SQLAlchemyInstrumentor().uninstrument()
        RequestsInstrumentor().uninstrument()
        self.provider.shutdown()  # exports what the batch still holds
        if _current is self:
            _current = None


_current: Tracing | None = None


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def configure_tracing(service: str, *, exporter: SpanExporter | None = None,
                      environ: Mapping[str, str] = os.environ) -> Tracing | None:
    """Set up tracing for this process as `service` (worker, api or cli), exporting to the
    configured OTLP endpoint, or to `exporter` (tests); None, and nothing installed, when
    neither is there. Call it before the process makes its database engine and its Temporal
    client: engines made earlier are not traced, and connect() asks `current()`."""
    global _current
    assert service in SERVICES, service
    if exporter is None and not tracing_wanted(environ):
        return None
    if _current is not None:
        return _current
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()  # endpoint, headers and timeout from OTEL_EXPORTER_OTLP_*
    provider = TracerProvider(resource=Resource.create({
        "service.name": f"subchange-{service}", "service.namespace": "subchange",
        "service.version": version("subchange")}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    # Globally: the engines subchange/store/db.py makes from now on (it calls sa.create_engine,
    # which this wraps), and every requests.Session, the Stripe SDK's among them.
    # skip_dep_check: the instrumentation declares sqlalchemy < 2.1 and would do nothing on
    # the pinned 2.1; it uses only the engine events and create_engine, which 2.1 keeps, and
    # tests/workflow/test_one_change_is_one_trace.py checks its spans on this very pin.
    SQLAlchemyInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    RequestsInstrumentor().instrument(tracer_provider=provider)
    _current = Tracing(provider)
    log.info("tracing to %s as subchange-%s", "the OTLP endpoint"
             if tracing_wanted(environ) else type(exporter).__name__, service)
    return _current


def current() -> Tracing | None:
    """This process's tracing, or None when it is off."""
    return _current


@contextlib.contextmanager
def traced_as(service: str) -> Iterator[Tracing | None]:
    """Tracing for a short-lived process (a command), stopped at the end so that its spans are
    exported before it exits (starter.py leaves through os._exit, which would lose the batch)."""
    traced = configure_tracing(service)
    try:
        yield traced
    finally:
        if traced is not None:
            traced.stop()
