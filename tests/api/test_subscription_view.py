"""A subscription as it stands over HTTP (`GET /v1/orgs/{org_id}/subscriptions/{product}`),
what the change page of SPEC section 15 and a backend show before a change is asked: seats and
active users with the limits a change must keep (R2, R3), every plan move judged as the quote
judges it (R5, R6, R7), the card as the gateway shows it, and the change scheduled or in
progress. `subchange subscription` prints the same."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from subchange.api.app import create_app
from subchange.app.cli.database import cmd_subscription
from subchange.app.cli.inputs import SubscriptionOptions
from subchange.dev.devstack import free_port
from tests.api.conftest import Keys
from tests.api.helpers import bearer, change_body, follow, start
from tests.helpers.documents import GOOD_CARD, admin, members, unique_org
from tests.helpers.driver import load_suite
from tests.helpers.observers import subscription_row


async def read(http: httpx.AsyncClient, key: str, org: str, product: str) -> httpx.Response:
    return await http.get(f"/v1/orgs/{org}/subscriptions/{product}", headers=bearer(key))


async def quote(http: httpx.AsyncClient, key: str, org: str, product: str, **change: Any
                ) -> dict[str, Any]:
    answer = await http.post("/v1/quotes", json=change_body(org, product, **change),
                             headers=bearer(key))
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_a_seat_subscription_shows_its_active_users_limits_and_card(
        http: httpx.AsyncClient, keys: Keys, driver, api_settings, capsys):
    org = unique_org("view")
    await driver.load(org, users=[admin(org), *members(org, 4, products=["one"]),
                                  *members(org, 2, products=["one"], active=False, prefix="left"),
                                  *members(org, 3, products=["desk"], prefix="agent")],
                      subscriptions=[{"product": "one", "plan": "enterprise", "seats": 30,
                                      "pricing_model": "flexible_user"}])

    answer = await read(http, keys.backend, org, "one")

    assert answer.status_code == 200, answer.text
    view = answer.json()
    assert (view["plan"], view["pricing_model"], view["seats"], view["currency"]) == (
        "enterprise", "flexible_user", 30, "JPY")
    # R4: under flexible_user the admin and the 4 active users assigned `one` hold a seat.
    assert view["active_users"] == 5
    assert view["seat_limits"] == {"floor": 5, "minimum": 1, "maximum": 10000}
    assert view["plan_moves"] == []
    assert view["payment"] == {"method": "card", "card_status": "on_file", "card": {
        "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034}}
    assert GOOD_CARD not in answer.text
    assert (view["scheduled_change"], view["change_in_progress"]) == (None, None)

    # The limits are the ones a quote keeps to: below the floor, above the maximum, at the floor.
    below = await quote(http, keys.backend, org, "one", seats=4)
    assert below["rejection"]["reason_code"] == "seat_floor"
    above = await quote(http, keys.backend, org, "one", seats=10001)
    assert above["rejection"]["reason_code"] == "seat_bounds"
    at_floor = (await quote(http, keys.backend, org, "one", seats=5))["quote"]
    assert at_floor["old_unit_price"] == view["unit_price"] == "7920"

    assert (await read(http, keys.support, org, "one")).json() == view
    cmd_subscription(SubscriptionOptions(org=org, product="one"), api_settings)
    assert json.loads(capsys.readouterr().out) == view


async def test_every_plan_move_is_judged_as_its_quote_judges_it(
        http: httpx.AsyncClient, keys: Keys, driver):
    org = unique_org("moves")
    await driver.load(org, users=[admin(org), *members(org, 3, products=["desk"])],
                      subscriptions=[{"product": "desk", "plan": "enterprise", "seats": 5}])

    view = (await read(http, keys.backend, org, "desk")).json()

    assert view["active_users"] == 4  # the agents: users assigned desk (R4)
    moves = {move["plan"]: move for move in view["plan_moves"]}
    assert list(moves) == ["free", "standard", "professional"]  # the catalog's order
    professional, standard, free = moves["professional"], moves["standard"], moves["free"]
    assert (professional["allowed"], professional["direction"], professional["route"]) == (
        True, "downgrade", None)
    assert professional["features_switched_off"] == [
        "ai_assistant", "live_chat", "multi_brand_help_center", "custom_functions"]
    assert (standard["allowed"], standard["reason_code"]) == (False, "forbidden_move")
    assert standard["route"] == ["enterprise", "professional", "standard"]
    assert "telephony" in standard["features_switched_off"]
    assert (free["allowed"], free["reason_code"], free["agent_limit"]) == (
        False, "agent_limit", 3)

    for plan, move in moves.items():  # the page and the quote never disagree
        answer = await quote(http, keys.backend, org, "desk", plan=plan)
        if move["allowed"]:
            assert answer["rejection"] is None
            found = answer["quote"]
            assert (found["new_seats"], found["new_unit_price"]) == (
                move["seats_after"], move["unit_price"])
            assert found["features_switched_off"] == move["features_switched_off"]
        else:
            assert answer["quote"] is None
            assert answer["rejection"] == {"reason_code": move["reason_code"],
                                           "reason": move["reason"]}


async def test_an_offline_payer_shows_no_card_and_the_change_it_waits_for(
        http: httpx.AsyncClient, keys: Keys, driver):
    org = unique_org("voff")
    await load_suite(driver, org, card=None)
    view = (await read(http, keys.backend, org, "one")).json()
    assert view["payment"] == {"method": "offline", "card": None, "card_status": None}
    assert view["change_in_progress"] is None

    started = await start(http, keys.backend, change_body(org, seats=35))
    location = started.headers["Location"]
    await follow(http, keys.backend, location, until="waiting")  # for sales (R9)
    waiting = (await read(http, keys.backend, org, "one")).json()
    assert waiting["change_in_progress"] == started.json()["workflow_id"]

    rejected = await http.post(f"{location}/sales-decision", json={"approved": False},
                               headers=bearer(keys.sales))
    assert rejected.status_code == 200, rejected.text
    await follow(http, keys.backend, location)
    assert (await read(http, keys.backend, org, "one")).json()["change_in_progress"] is None


async def test_a_change_scheduled_for_the_period_end_is_shown_with_its_date(
        http: httpx.AsyncClient, keys: Keys, driver, deps):
    org = unique_org("vsched")
    await driver.load(org, users=[admin(org)], subscriptions=[
        {"product": "desk", "plan": "professional", "seats": 3}])
    started = await start(http, keys.backend, {**change_body(org, "desk", plan="standard"),
                                               "effective": "period_end"})
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    await follow(http, keys.backend, location, until="waiting")

    view = (await read(http, keys.backend, org, "desk")).json()

    assert view["scheduled_change"] == {
        "workflow_id": started.json()["workflow_id"],
        "effective_date": str(subscription_row(deps, org, "desk").period_end)}
    assert view["change_in_progress"] is None  # a scheduled change leaves the claim free
    cancelled = await http.post(f"{location}/cancel", headers=bearer(keys.support))
    assert cancelled.status_code == 200, cancelled.text


async def test_a_gateway_that_does_not_answer_leaves_only_the_card_out(
        keys: Keys, driver, api_settings, dev_env, deps):
    org = unique_org("vdown")
    await load_suite(driver, org)
    dead = api_settings.model_copy(update={"stripe_api_base": f"http://127.0.0.1:{free_port()}"})
    app = create_app(dead, client=dev_env.client, sessions=deps.sessions)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://api.test") as http:
        answer = await read(http, keys.backend, org, "one")
    assert answer.status_code == 200, answer.text
    view = answer.json()
    assert view["payment"] == {"method": "card", "card": None, "card_status": "unavailable"}
    assert view["seats"] == 30


@pytest.mark.parametrize(("org", "product", "status"), [
    ("{org}", "one", 200), ("{org}", "desk", 404), ("{org}", "suite", 404),
    ("nobody-here", "one", 404), ("has space", "one", 404)])
async def test_an_unknown_org_or_product_is_404(http: httpx.AsyncClient, keys: Keys, driver,
                                                org, product, status):
    known = unique_org("v404")
    await load_suite(driver, known)
    answer = await read(http, keys.backend, org.format(org=known), product)
    assert answer.status_code == status, answer.text
    if status == 404:
        assert answer.headers["content-type"] == "application/problem+json"


async def test_only_backend_and_support_keys_may_read(http: httpx.AsyncClient, keys: Keys,
                                                      driver):
    org = unique_org("vkeys")
    await load_suite(driver, org)
    sales = await read(http, keys.sales, org, "one")
    assert sales.status_code == 403 and "support or backend" in sales.json()["detail"]
    nobody = await http.get(f"/v1/orgs/{org}/subscriptions/one")
    assert nobody.status_code == 401
