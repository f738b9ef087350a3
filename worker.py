"""Run the subscription-change worker against the configured Temporal server.

Migrates the database first, registers missing search attributes (with
REGISTER_SEARCH_ATTRIBUTES=false it only checks them: the migrate job registers them), registers
the reconciliation sweep's schedule (or brings its interval to CHANGE_SWEEP_EVERY), and starts
the relay of every webhook endpoint whose relay is not running (idempotent).

On SIGTERM or SIGINT it drains: it stops taking work, answers 503 on /healthz, lets the steps it
runs finish for up to GRACEFUL_SHUTDOWN_TIMEOUT, and exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError

from subchange.app import health
from subchange.app.client import connect, ensure_search_attributes
from subchange.app.logs import configure_logging
from subchange.app.relays import start_relays
from subchange.app.schedules import ensure_sweep_schedule
from subchange.app.tracing import configure_tracing
from subchange.app.wiring import build_dependencies, build_worker
from subchange.documents.invoice_pdf import japanese_font
from subchange.domain.search_attributes import ALL_KEYS
from subchange.settings import ConfigurationError, Settings, get_settings

log = logging.getLogger("worker")


async def search_attributes_ready(client: Client, settings: Settings) -> None:
    """Register the missing ones, or, where the migrate job does that, check they are there: a
    change can't start without them. A worker whose credentials may not list them goes on."""
    if settings.register_search_attributes:
        added = await ensure_search_attributes(client, settings.temporal_namespace)
        if added:
            log.info("registered search attributes: %s", ", ".join(added))
        return
    try:
        known = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=settings.temporal_namespace))
    except RPCError as error:
        log.warning("could not check the search attributes (%s); the migrate job registers "
                    "them", error.message)
        return
    missing = sorted(key.name for key in ALL_KEYS if key.name not in known.custom_attributes)
    if missing:
        raise ConfigurationError(
            f"search attributes {', '.join(missing)} are not registered in namespace "
            f"{settings.temporal_namespace!r}: run `python -m subchange.app.migrate` (compose's "
            "migrate job), or set REGISTER_SEARCH_ATTRIBUTES=true")


async def main() -> None:
    settings = get_settings()
    settings.seller()  # every invoice names its issuer: refuse to start without one
    configure_tracing("worker")  # before the engine and the client it traces (off by default)
    japanese_font()  # and a Japanese one must be legible: refuse to start without the font
    deps = build_dependencies(settings)
    client = await connect(settings, metrics=True)
    await search_attributes_ready(client, settings)
    schedule = await ensure_sweep_schedule(client, settings)
    if schedule:
        log.info("%s the reconciliation sweep's schedule: every %s", schedule,
                 settings.change_sweep_every)
    worker = build_worker(client, deps)
    await start_relays(client, deps.sessions, task_queue=settings.task_queue)
    stop, draining = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    probe = None
    if settings.health_bind_address:
        probe = await health.serve(settings.health_bind_address, client, deps.sessions, draining)
        log.info("health on http://%s/healthz", settings.health_bind_address)
    if settings.metrics_bind_address:
        log.info("Prometheus metrics on http://%s/metrics", settings.metrics_bind_address)
    log.info("worker polling task queue %r on %s (namespace %s)", settings.task_queue,
             settings.temporal_address, settings.temporal_namespace)
    try:
        async with worker:
            await stop.wait()
            draining.set()
            log.info("draining: taking no new work; the running steps have up to %s to finish",
                     settings.graceful_shutdown_timeout)
    finally:
        if probe is not None:
            await probe.cleanup()
    log.info("worker stopped")


if __name__ == "__main__":
    try:
        configure_logging(get_settings().log_format)
        asyncio.run(main())
    except ConfigurationError as error:
        print(error, file=sys.stderr)
        sys.exit(2)
    except RuntimeError as error:
        if "Failed client connect" not in str(error):
            raise
        print(f"TEMPORAL_ADDRESS: can't reach the Temporal server at "
              f"{get_settings().temporal_address}: {error}", file=sys.stderr)
        sys.exit(1)
