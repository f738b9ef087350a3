"""Calls a backend makes: start a change with a key of its own, follow its Location."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx

from tests.helpers.documents import admin_email


def change_body(org: str, product: str = "one", *, by: str | None = None, seats: int | None = 35,
                plan: str | None = None, refund: bool = False) -> dict[str, Any]:
    change = {"kind": "plan", "plan": plan} if plan else {"kind": "seats", "seats": seats}
    return {"org_id": org, "product": product, "requested_by": by or admin_email(org),
            "change": change, "request_refund": refund}


def bearer(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


def new_key() -> str:
    return f"crm-{uuid.uuid4()}"


async def start(http: httpx.AsyncClient, key: str, body: dict[str, Any],
                idempotency_key: str | None = None) -> httpx.Response:
    return await http.post("/v1/changes", json=body, headers=bearer(
        key, **{"Idempotency-Key": idempotency_key or new_key()}))


async def follow(http: httpx.AsyncClient, key: str, location: str, *, until: str = "ended",
                 timeout: float = 60) -> dict[str, Any]:
    """GET the change until it has a result (`ended`) or waits for a person (`waiting`)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = await http.get(location, headers=bearer(key))
        assert answer.status_code == 200, answer.text
        view = answer.json()
        if view["result"] is not None or (until == "waiting" and view["waiting_for"]):
            return view
        assert time.monotonic() < deadline, f"{location} did not get there: {view}"
        await asyncio.sleep(0.2)
