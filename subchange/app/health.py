"""Health of a process (`GET /healthz`): whether it reaches Temporal and the database. The HTTP
API answers it on its own port; worker.py serves it on HEALTH_BIND_ADDRESS, and answers 503 once
it drains (SIGTERM), so an orchestrator sends nothing more its way while its steps finish."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

import sqlalchemy as sa
from aiohttp import web
from sqlmodel import Session
from temporalio.client import Client

log = logging.getLogger("subchange.health")
CHECK_SECONDS = 2.0  # each check's own limit; the orchestrators' probes wait 3 s or more


async def checks(client: Callable[[], Awaitable[Client]],
                 sessions: Callable[[], Session]) -> dict[str, bool]:
    """{"temporal": ..., "database": ...}: each True when it answered just now."""
    found = {"temporal": False, "database": False}
    try:
        found["temporal"] = await (await client()).service_client.check_health(
            timeout=timedelta(seconds=CHECK_SECONDS))
    except Exception as error:  # noqa: BLE001 - any failure is "not healthy"
        log.warning("health: Temporal: %s", error)
    try:
        # A probe gives up after a few seconds: answer before it does, rather than pile up.
        await asyncio.wait_for(asyncio.to_thread(_select_one, sessions), CHECK_SECONDS)
        found["database"] = True
    except Exception as error:  # noqa: BLE001
        log.warning("health: database: %s", type(error).__name__)  # a URL may hold a password
    return found


def _select_one(sessions: Callable[[], Session]) -> None:
    with sessions() as session:
        session.execute(sa.text("SELECT 1"))


def bind_address(text: str) -> tuple[str, int]:
    """host:port as the settings write it (METRICS_BIND_ADDRESS, HEALTH_BIND_ADDRESS)."""
    host, _, port = text.rpartition(":")
    return host or "0.0.0.0", int(port)


async def serve(address: str, client: Client, sessions: Callable[[], Session],
                draining: asyncio.Event) -> web.AppRunner:
    """Serve GET /healthz on `address` until the returned runner is cleaned up: 200 with the
    checks while both answer, 503 when one does not or once `draining` is set."""

    async def healthz(_: web.Request) -> web.Response:
        async def the_client() -> Client:
            return client

        found: dict[str, bool | str] = {**await checks(the_client, sessions)}
        healthy = all(found.values()) and not draining.is_set()
        if draining.is_set():
            found["status"] = "draining"
        return web.Response(status=200 if healthy else 503, content_type="application/json",
                            text=json.dumps(found))

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, port = bind_address(address)
    await web.TCPSite(runner, host, port).start()
    return runner
