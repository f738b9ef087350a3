"""What every activity class is built with, once per worker (subchange.app.wiring)."""

from __future__ import annotations

from dataclasses import dataclass

from subchange.adapters.gateway import Gateway
from subchange.adapters.workflows import ChangeWorkflows
from subchange.domain.catalog import Catalog
from subchange.settings import Settings
from subchange.store.db import SessionFactory


@dataclass(frozen=True)
class Dependencies:
    settings: Settings
    sessions: SessionFactory
    catalog: Catalog
    gateway: Gateway
    # Asks Temporal whether a change has ended; set by build_worker (None: only our records).
    workflows: ChangeWorkflows | None = None
