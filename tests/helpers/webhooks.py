"""Webhooks in the tests: a real receiver, an aiohttp server on a free port in a thread of its
own, that verifies every delivery as a backend would, with the `standardwebhooks` package, and
answers what the test tells it to (204 by default; a status, a Retry-After, a pause, or being
down: its port closed); and the workflow room's worker with endpoints on such receivers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError

from activities.dependencies import Dependencies
from subchange.adapters.relays import wake_relays
from subchange.dev.devstack import free_port
from subchange.domain.webhooks import RelayOutcome, relay_workflow_id
from subchange.store import webhooks
from subchange.store.tables import WebhookDelivery, WebhookEndpoint
from tests.helpers.driver import ChangeDriver

WAIT_LIMIT_SECONDS = 60  # a guard against hanging, not a timing assertion


@dataclass(frozen=True)
class Delivery:
    """One request the receiver got, as it got it, and whether it verified."""

    headers: dict[str, str]
    body: bytes
    verified: bool
    error: str | None
    received_at: float  # time.time()
    answered: int

    @property
    def id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)


class Receiver:
    """`url` to add as an endpoint, `secrets` to verify with (the one `webhook add` printed;
    after a rotation, either), `answer` to say what it answers (a callable gets the delivery's
    number, from 1), `hold` to keep a request waiting until released."""

    def __init__(self) -> None:
        self.port = free_port()
        self.secrets: list[str] = []
        self.answer: Answer | Callable[[int], Answer] = Answer()
        self.hold = threading.Event()
        self.hold.set()  # released: requests are answered at once
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/subchange"

    # --- up and down ------------------------------------------------------------------------

    def start(self) -> Receiver:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def serve() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            app = web.Application()
            app.router.add_post("/hooks/subchange", self._receive)
            self._runner = web.AppRunner(app)
            self._loop.run_until_complete(self._runner.setup())
            self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1",
                                                      self.port).start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="webhook-receiver", daemon=True)
        self._thread.start()
        assert ready.wait(10), "the receiver did not start"
        return self

    def stop(self) -> None:
        """Down: its port refuses connections until `start` again."""
        if self._loop is None:
            return
        self.hold.set()
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(10)
        self._loop.close()
        self._loop = None

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {name.lower(): value for name, value in request.headers.items()}
        verified, error = False, "no secret to verify with"
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError as failure:
                error = str(failure)
            else:
                verified, error = True, None
                break
        await asyncio.get_running_loop().run_in_executor(None, self.hold.wait, 120)
        with self._lock:
            number = len(self.deliveries) + 1
            answer = self.answer(number) if callable(self.answer) else self.answer
            self.deliveries.append(Delivery(headers=headers, body=body, verified=verified,
                                            error=error, received_at=time.time(),
                                            answered=answer.status))
        return web.Response(status=answer.status, headers=answer.headers)

    # --- what it got --------------------------------------------------------------------------

    def got(self, workflow_id: str | None = None) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries
                    if workflow_id is None or d.payload["data"].get("workflow_id") == workflow_id]

    def events(self, workflow_id: str | None = None) -> list[dict[str, Any]]:
        """The verified events it accepted (2xx), once each by webhook-id, in arrival order, as
        a backend deduplicating by webhook-id keeps them."""
        seen: set[str] = set()
        events = []
        for delivery in self.got(workflow_id):
            if delivery.verified and 200 <= delivery.answered < 300 and delivery.id not in seen:
                seen.add(delivery.id)
                events.append({"id": delivery.id, **delivery.payload})
        return events

    def types(self, workflow_id: str) -> list[str]:
        return [event["type"] for event in self.events(workflow_id)]

    async def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_LIMIT_SECONDS
        while time.monotonic() < deadline:
            if condition():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the receiver never got {what}; it got "
                             f"{[(d.payload.get('type'), d.answered) for d in self.got()]}")

    async def wait_for_types(self, workflow_id: str, types: list[str]) -> None:
        await self.wait_for(lambda: len(self.types(workflow_id)) >= len(types),
                            f"{types} of {workflow_id}")


# Webhook retries in seconds, and a relay that looks at the outbox every second.
FAST_WEBHOOKS = {"webhook_retry_schedule": (timedelta(seconds=1),) * 6,
                 "webhook_poll_every": timedelta(seconds=1)}


class WebhookRoom:
    """A test's worker (its `driver`), the endpoints it adds on real receivers, and cleanup."""

    def __init__(self, driver: ChangeDriver, deps: Dependencies) -> None:
        self.driver, self.deps = driver, deps
        self.endpoints: list[str] = []
        self.receivers: list[Receiver] = []

    def receiver(self) -> Receiver:
        receiver = Receiver().start()
        self.receivers.append(receiver)
        return receiver

    async def add(self, receiver: Receiver, events: list[str] | None = None) -> str:
        """An endpoint on `receiver`, which verifies with its secret, and its relay started,
        as `starter.py webhook add` does."""
        with self.deps.sessions() as session:
            row, secret = webhooks.add_endpoint(session=session, url=receiver.url,
                                                events=events or [])
            session.commit()
        receiver.secrets.append(secret)
        self.endpoints.append(row.id)
        assert await wake_relays(self.driver.client, [row.id],
                                 task_queue=self.driver.task_queue) == []
        return row.id

    def relay(self, endpoint_id: str) -> WorkflowHandle:
        return self.driver.client.get_workflow_handle(relay_workflow_id(endpoint_id),
                                                      result_type=RelayOutcome)

    async def relay_outcome(self, endpoint_id: str) -> RelayOutcome:
        """How the endpoint's relay ended (without skipping the test server's clock)."""
        with self.driver.env.auto_time_skipping_disabled():
            return await asyncio.wait_for(self.relay(endpoint_id).result(), WAIT_LIMIT_SECONDS)

    def endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        with self.deps.sessions() as session:
            row = session.get(WebhookEndpoint, endpoint_id)
            assert row is not None
            return row

    def delivery(self, endpoint_id: str, event_id: str) -> WebhookDelivery:
        with self.deps.sessions() as session:
            row = session.get(WebhookDelivery, (event_id, endpoint_id))
            assert row is not None
            return row

    async def close(self) -> None:
        with self.deps.sessions() as session:
            for endpoint_id in self.endpoints:
                webhooks.remove_endpoint(session=session, endpoint_id=endpoint_id)
            session.commit()
        for endpoint_id in self.endpoints:
            with contextlib.suppress(RPCError):
                await self.relay(endpoint_id).terminate("the test ended")
        for receiver in self.receivers:
            receiver.stop()
