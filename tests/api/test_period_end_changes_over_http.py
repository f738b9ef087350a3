"""A change at the period end over HTTP (SPEC sections 10 and 12): the body's `effective` is the
section 7 input's, the quote shows nothing due now and the date it takes effect, the change is
scheduled and listed by ChangeStep, and support's cancel ends it with nothing changed."""

from __future__ import annotations

import httpx

from tests.api.conftest import Keys
from tests.api.helpers import bearer, change_body, follow, start
from tests.api.test_following_and_acting_on_changes import eventually_listed
from tests.helpers.documents import admin, unique_org
from tests.helpers.observers import subscription_row


async def test_a_period_end_change_over_http_is_scheduled_and_listed_by_step(
        http: httpx.AsyncClient, keys: Keys, driver, deps):
    org = unique_org("hpend")
    await driver.load(org, users=[admin(org)], subscriptions=[
        {"product": "desk", "plan": "professional", "seats": 3}])
    body = {**change_body(org, "desk", plan="standard"), "effective": "period_end"}
    end = str(subscription_row(deps, org, "desk").period_end)

    answer = await http.post("/v1/quotes", json=body, headers=bearer(keys.backend))
    quote = answer.json()["quote"]
    assert (quote["amount_due"], quote["effective_date"]) == ("0", end)
    assert quote["new_period_start"] == end
    bad = await http.post("/v1/quotes", json={**body, "effective": "tomorrow"},
                          headers=bearer(keys.backend))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "effective"

    started = await start(http, keys.backend, body)
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    view = await follow(http, keys.backend, location, until="waiting")
    assert view["state"] == "scheduled" and end in view["waiting_for"]
    page = await eventually_listed(http, keys.backend, f"org_id={org}&step=scheduled", 1)
    assert [item["workflow_id"] for item in page["items"]] == [started.json()["workflow_id"]]

    cancelled = await http.post(f"{location}/cancel", json={"reason": "changed our mind"},
                                headers=bearer(keys.support))
    assert cancelled.status_code == 200, cancelled.text
    ended = await follow(http, keys.backend, location)
    assert ended["result"]["status"] == "cancelled"
    assert subscription_row(deps, org, "desk").plan == "professional"
