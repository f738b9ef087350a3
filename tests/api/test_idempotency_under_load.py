"""Idempotency under load (issue 23): 200 `POST /v1/changes` sent at once, four with each of 50
Idempotency-Keys (the same body under a key), start 50 changes, answer every request with its
key's change (202 for the send that started it, 200 for the others, the same Location), and
charge each change once at the gateway."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict

import httpx
import pytest
from temporalio.client import Client

from subchange.domain.contracts import WORKFLOW_TYPE, workflow_id_for
from tests.api.conftest import Keys
from tests.api.helpers import change_body, follow, new_key, start
from tests.helpers.documents import admin, org_document, unique_org
from tests.helpers.observers import subscription_row, succeeded_charges

# Idempotency is Temporal's workflow id and the charge ledger's, the same on either database:
# when both passes run side by side, this load (about 40 s) runs in the PostgreSQL one only.
pytestmark = pytest.mark.one_pass(on="postgresql")

KEYS = 50
SENDS_PER_KEY = 4


async def changes_of(client: Client, orgs: list[str], count: int) -> set[str]:
    """The changes visibility lists for these organisations, once it lists `count` of them
    (it follows the starts by a moment)."""
    quoted = ", ".join(f"'{org}'" for org in orgs)
    query = f"WorkflowType = '{WORKFLOW_TYPE}' AND OrgId IN ({quoted})"
    for _ in range(100):
        found = {w.id async for w in client.list_workflows(query)}
        if len(found) >= count:
            return found
        await asyncio.sleep(0.2)
    return found


async def test_200_starts_at_once_under_50_keys_start_50_changes_each_charged_once(
        http: httpx.AsyncClient, keys: Keys, driver, dev_env, deps, gateway):
    # An organisation per key, one subscription each: no change waits for another's claim.
    orgs = [unique_org("load") for _ in range(KEYS)]
    driver.reload({"orgs": [org_document(org, users=[admin(org)], subscriptions=[{
        "product": "one", "plan": "enterprise", "seats": 30, "pricing_model": "flexible_user"}]
    )["orgs"][0] for org in orgs]})
    key_of = {org: new_key() for org in orgs}
    body_of = {org: change_body(org, seats=31 + n % 7) for n, org in enumerate(orgs)}
    sends = [org for org in orgs for _ in range(SENDS_PER_KEY)]
    random.shuffle(sends)

    answers = await asyncio.gather(*(start(http, keys.backend, body_of[org], key_of[org])
                                     for org in sends))

    by_key: dict[str, list[httpx.Response]] = defaultdict(list)
    for org, answer in zip(sends, answers, strict=True):
        by_key[key_of[org]].append(answer)
    for key, replies in by_key.items():
        location = f"/v1/changes/{workflow_id_for(key)}"
        assert sorted(r.status_code for r in replies) == [200, 200, 200, 202], [
            (r.status_code, r.text) for r in replies]
        assert {r.headers["Location"] for r in replies} == {location}
        assert {r.json()["workflow_id"] for r in replies} == {workflow_id_for(key)}

    expected = {workflow_id_for(key) for key in key_of.values()}
    assert await changes_of(dev_env.client, orgs, KEYS) == expected

    # Their ends, long-polled (a GET every moment for 50 changes would keep the worker answering
    # queries), then each change as the API shows it.
    await asyncio.wait_for(asyncio.gather(*(
        dev_env.client.get_workflow_handle(workflow_id).result() for workflow_id in expected)),
        timeout=300)
    views = [await follow(http, keys.backend, f"/v1/changes/{workflow_id}")
             for workflow_id in sorted(expected)]
    assert {view["status"] for view in views} == {"completed"}, [
        (v["workflow_id"], v["status"], v["last_error"]) for v in views if
        v["status"] != "completed"]
    for org in orgs:
        workflow_id = workflow_id_for(key_of[org])
        charged = succeeded_charges(gateway, subscription_row(deps, org, "one"),
                                    workflow_id=workflow_id)
        assert len(charged) == 1, (workflow_id, charged)
        assert subscription_row(deps, org, "one").seats == body_of[org]["change"]["seats"]
    assert await changes_of(dev_env.client, orgs, KEYS) == expected  # and no more since
