"""What every activity class is built with, once per worker (subchange.app.wiring)."""

from __future__ import annotations

from dataclasses import dataclass, field

from subchange.adapters.gateway import Gateway
from subchange.adapters.workflows import ChangeWorkflows
from subchange.domain.catalog import Catalog
from subchange.domain.gateway_minimums import GatewayMinimums, default_gateway_minimums
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
    # The gateway's minimum charge per currency: what the quote carries and the charge refuses.
    minimums: GatewayMinimums = field(default_factory=default_gateway_minimums)
