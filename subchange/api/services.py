"""What the routes share: the settings, one Temporal client (connected on first use, so the API
starts, and answers 503, while Temporal is down) and the database's sessions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlmodel import Session
from temporalio.client import Client

from subchange.api.problems import unavailable
from subchange.app.client import connect
from subchange.settings import Settings
from subchange.store.db import make_engine, session_factory

log = logging.getLogger("subchange.api")


class Services:
    def __init__(self, settings: Settings, *, client: Client | None = None,
                 sessions: Callable[[], Session] | None = None) -> None:
        self.settings = settings
        self._client = client
        self._connecting = asyncio.Lock()
        self.sessions = sessions or session_factory(make_engine(settings.database_url))

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._connecting:
            if self._client is None:
                try:
                    self._client = await connect(self.settings)
                except RuntimeError as error:  # "Failed client connect: ..."
                    log.warning("can't reach Temporal at %s: %s",
                                self.settings.temporal_address, error)
                    raise unavailable("the Temporal server") from None
        return self._client
