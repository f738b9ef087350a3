"""Run the subscription-change worker against the configured Temporal server.

Creates missing database tables and registers missing search attributes first, registers the
reconciliation sweep's schedule (or brings its interval to CHANGE_SWEEP_EVERY), and starts the
relay of every webhook endpoint whose relay is not running (idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from subchange.app.client import connect, ensure_search_attributes
from subchange.app.logs import configure_logging
from subchange.app.relays import start_relays
from subchange.app.schedules import ensure_sweep_schedule
from subchange.app.wiring import build_dependencies, build_worker
from subchange.documents.invoice_pdf import japanese_font
from subchange.settings import ConfigurationError, get_settings

log = logging.getLogger("worker")


async def main() -> None:
    settings = get_settings()
    settings.seller()  # every invoice names its issuer: refuse to start without one
    japanese_font()  # and a Japanese one must be legible: refuse to start without the font
    deps = build_dependencies(settings)
    client = await connect(settings, metrics=True)
    added = await ensure_search_attributes(client, settings.temporal_namespace)
    if added:
        log.info("registered search attributes: %s", ", ".join(added))
    schedule = await ensure_sweep_schedule(client, settings)
    if schedule:
        log.info("%s the reconciliation sweep's schedule: every %s", schedule,
                 settings.change_sweep_every)
    worker = build_worker(client, deps)
    await start_relays(client, deps.sessions, task_queue=settings.task_queue)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if settings.metrics_bind_address:
        log.info("Prometheus metrics on http://%s/metrics", settings.metrics_bind_address)
    log.info("worker polling task queue %r on %s (namespace %s)", settings.task_queue,
             settings.temporal_address, settings.temporal_namespace)
    async with worker:
        await stop.wait()
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
