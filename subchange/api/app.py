"""The FastAPI application of SPEC section 12: its routes, problem details, and the services
they share. `create_app(settings)` is what uvicorn serves (`python api.py`) and tests drive."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlmodel import Session
from temporalio.client import Client

from subchange.api import problems
from subchange.api.routes import (
    changes,
    invoices,
    orgs,
    quotes,
    subscriptions,
    webhook_endpoints,
)
from subchange.api.services import Services
from subchange.app import health, tracing
from subchange.settings import Settings

DESCRIPTION = """Seat and plan changes of subscriptions, each run as a durable Temporal workflow
(authorize, validate, quote, charge or route to sales, apply, email the invoice).

Authenticate with `Authorization: Bearer <API key>` (`python starter.py api-key create`). Start
a change with `POST /v1/changes` and an `Idempotency-Key` of your own, follow the `Location` it
answers, and receive its events on your webhook endpoint. Errors are RFC 9457 problem details;
a 503 asks you to retry after `Retry-After` seconds."""


def create_app(settings: Settings, *, client: Client | None = None,
               sessions: Callable[[], Session] | None = None) -> FastAPI:
    api = Services(settings, client=client, sessions=sessions)

    app = FastAPI(title="subchange", version=version("subchange"), description=DESCRIPTION,
                  openapi_url="/openapi.json", docs_url="/docs",
                  redoc_url=None)
    app.state.services = api
    if (traced := tracing.current()) is not None:
        traced.instrument_app(app)
    problems.install(app)
    for module in (quotes, changes, invoices, orgs, subscriptions, webhook_endpoints):
        app.include_router(module.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        """Whether the API reaches Temporal and the database (for load balancers)."""
        found = await health.checks(api.client, api.sessions)
        return JSONResponse(found, status_code=200 if all(found.values()) else 503)

    return app
