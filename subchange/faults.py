"""Named pause points for the crash tests: a worker started with FAULT_PAUSE_POINTS=name pauses
there, so a test can kill it at exactly that moment. Inert unless configured."""

from __future__ import annotations

import logging
import time

from subchange.settings import Settings

log = logging.getLogger(__name__)


def pause_point(settings: Settings, name: str) -> None:
    points = {p.strip() for p in settings.fault_pause_points.split(",") if p.strip()}
    if name in points:
        log.warning("fault injection: pausing at %s for %ss", name, settings.fault_pause_seconds)
        time.sleep(settings.fault_pause_seconds)
