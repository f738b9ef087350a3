"""Listing changes through Temporal visibility, newest first and page by page; quotes; the
updates sent as the key's owner (support's retry and cancel, sales' decision, a requester's own
cancel), refused with 403 for the wrong principal and 409 for the wrong moment; a card from the
vendor's card form."""

from __future__ import annotations

import asyncio

import httpx

from tests.api.conftest import Keys, make_key
from tests.api.helpers import bearer, change_body, follow, start
from tests.helpers.documents import DECLINED_ON_CHARGE_CARD, GOOD_CARD, admin_email, unique_org
from tests.helpers.driver import load_suite
from tests.helpers.observers import subscription_row, succeeded_charges


async def eventually_listed(http, key, query: str, count: int) -> dict:
    for _ in range(100):  # visibility follows the workflows by a moment
        page = (await http.get(f"/v1/changes?{query}", headers=bearer(key))).json()
        if len(page["items"]) >= count:
            return page
        await asyncio.sleep(0.1)
    raise AssertionError(f"{query}: {page}")


async def test_changes_are_listed_newest_first_filtered_and_paged(http: httpx.AsyncClient,
                                                                  keys: Keys, driver):
    org = unique_org("list")
    await load_suite(driver, org, seats=30)
    started = []
    for seats in (31, 32, 33):
        answer = await start(http, keys.backend, change_body(org, seats=seats))
        started.append(answer.json()["workflow_id"])
        await follow(http, keys.backend, answer.headers["Location"])
    rejected = await start(http, keys.backend, change_body(org, seats=33))  # R3: no change
    await follow(http, keys.backend, rejected.headers["Location"])

    listed = await eventually_listed(http, keys.support, f"org_id={org}&status=completed", 3)
    assert [i["workflow_id"] for i in listed["items"]] == started[::-1]
    assert {(i["org_id"], i["product"], i["kind"], i["status"], i["step"])
            for i in listed["items"]} == {(org, "one", "seats", "completed", "completed")}
    assert [i["workflow_id"] for i in (await eventually_listed(
        http, keys.backend, f"org_id={org}&status=rejected", 1))["items"]] == [
        rejected.json()["workflow_id"]]

    seen, token = [], None
    while True:
        query = f"org_id={org}&status=completed&page_size=1" + (f"&page_token={token}"
                                                               if token else "")
        page = (await http.get(f"/v1/changes?{query}", headers=bearer(keys.backend))).json()
        seen += [i["workflow_id"] for i in page["items"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert seen == started[::-1]

    bad = await http.get("/v1/changes?step=nowhere&page_size=0", headers=bearer(keys.backend))
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"step", "page_size"}
    first = (await http.get(f"/v1/changes?org_id={org}&page_size=1",
                            headers=bearer(keys.backend))).json()["next_page_token"]
    # not base64; base64 of "not a token"; a real token for another filter
    for token, query in (("%%%", ""), ("bm90IGEgdG9rZW4", ""), (first, "&status=completed")):
        forged = await http.get(f"/v1/changes?org_id={org}&page_token={token}{query}",
                                headers=bearer(keys.backend))
        assert forged.status_code == 422, forged.text
        assert forged.json()["errors"][0]["field"] == "page_token"


async def test_a_quote_answers_the_price_or_the_rule_and_changes_nothing(http, keys: Keys,
                                                                        driver, deps, gateway):
    org = unique_org("quote")
    await load_suite(driver, org, seats=30)
    quoted = await http.post("/v1/quotes", json=change_body(org, seats=35),
                             headers=bearer(keys.backend))
    assert quoted.status_code == 200
    answer = quoted.json()
    assert answer["rejection"] is None
    assert (answer["quote"]["old_seats"], answer["quote"]["new_seats"]) == (30, 35)
    same = await http.post("/v1/quotes", json=change_body(org, seats=30),
                           headers=bearer(keys.backend))
    assert same.json()["quote"] is None
    assert same.json()["rejection"]["reason_code"] == "no_change"
    assert subscription_row(deps, org, "one").seats == 30
    assert succeeded_charges(gateway, subscription_row(deps, org, "one")) == []


async def test_support_retries_and_cancels_as_the_keys_owner(http, keys: Keys, driver, gateway):
    org = unique_org("support")
    await load_suite(driver, org, card=DECLINED_ON_CHARGE_CARD)
    started = await start(http, keys.backend, change_body(org, seats=35))
    location = started.headers["Location"]
    parked = await follow(http, keys.backend, location, until="waiting")
    assert parked["state"] == "awaiting_payment" and parked["step"] == "charge"
    assert parked["next_attempt_at"] is not None

    by_backend = await http.post(f"{location}/retry", headers=bearer(keys.backend))
    assert by_backend.status_code == 403
    retried = await http.post(f"{location}/retry", headers=bearer(keys.support))
    assert retried.status_code == 200 and retried.json()["by"] == "support@vendor.example"
    again = await follow(http, keys.backend, location, until="waiting")
    assert again["state"] == "awaiting_payment"

    stranger = make_key(driver_deps(driver), "someone@vendor.example", "backend")
    refused = await http.post(f"{location}/cancel", headers=bearer(stranger))
    assert refused.status_code == 403 and "someone@vendor.example" in refused.json()["detail"]
    cancelled = await http.post(f"{location}/cancel", json={"reason": "customer asked"},
                                headers=bearer(keys.support))
    assert cancelled.status_code == 200, cancelled.text
    view = await follow(http, keys.backend, location)
    assert view["status"] == "cancelled"
    late = await http.post(f"{location}/retry", headers=bearer(keys.support))
    assert late.status_code == 409 and "ended" in late.json()["detail"]
    assert (await http.post("/v1/changes/change-nope/retry", headers=bearer(keys.support))
            ).status_code == 404


async def test_a_requesters_own_key_cancels_and_sales_decides(http, keys: Keys, driver, deps):
    org = unique_org("sales")
    await load_suite(driver, org, card=None)  # offline payer: sales decides
    requester_key = make_key(deps, admin_email(org), "backend")
    first = await start(http, requester_key, change_body(org, seats=35))
    await follow(http, keys.backend, first.headers["Location"], until="waiting")
    mine = await http.post(f"{first.headers['Location']}/cancel", headers=bearer(requester_key))
    assert mine.status_code == 200, mine.text
    assert (await follow(http, keys.backend, first.headers["Location"]))["status"] == "cancelled"

    second = await start(http, keys.backend, change_body(org, seats=36))
    location = second.headers["Location"]
    waiting = await follow(http, keys.backend, location, until="waiting")
    assert waiting["state"] == "awaiting_sales"
    assert (await http.post(f"{location}/sales-decision", json={"approved": True},
                            headers=bearer(keys.support))).status_code == 403
    no_verdict = await http.post(f"{location}/sales-decision", json={"note": "x"},
                                 headers=bearer(keys.sales))
    assert no_verdict.status_code == 422 and no_verdict.json()["errors"][0]["field"] == "approved"
    smuggled = await http.post(f"{location}/sales-decision",
                               json={"approved": True, "by": "sales@vendor.example"},
                               headers=bearer(keys.sales))
    assert smuggled.status_code == 422 and smuggled.json()["errors"][0]["field"] == "by"
    decided = await http.post(f"{location}/sales-decision",
                              json={"approved": True, "note": "PO 7"}, headers=bearer(keys.sales))
    assert decided.status_code == 200 and decided.json()["by"] == "sales@vendor.example"
    view = await follow(http, keys.backend, location)
    assert view["status"] == "completed"
    assert view["result"]["payment"]["approved_by"] == "sales@vendor.example"


async def test_a_card_from_the_vendors_form_makes_an_offline_payer_pay_by_card(
        http, keys: Keys, driver, deps, gateway):
    org = unique_org("card")
    await load_suite(driver, org, card=None)
    method = gateway.v1.payment_methods.create(params={
        "type": "card", "card": {"number": GOOD_CARD, "exp_month": 12, "exp_year": 2034,
                                 "cvc": "123"}})
    used = await http.post(f"/v1/orgs/{org}/card", json={"payment_method": method.id},
                           headers=bearer(keys.backend))
    assert used.status_code == 200, used.text
    assert used.json()["card_payers"] == ["one"]
    sub = subscription_row(deps, org, "one")
    assert (sub.payment_method, sub.gateway_payment_method_id, sub.card_last4) == (
        "online", method.id, "4242")
    started = await start(http, keys.backend, change_body(org, seats=35))
    view = await follow(http, keys.backend, started.headers["Location"])
    assert view["result"]["payment"]["method"] == "card"
    assert len(succeeded_charges(gateway, workflow_id=started.json()["workflow_id"])) == 1

    unknown = await http.post(f"/v1/orgs/{org}/card", json={"payment_method": "pm_missing"},
                              headers=bearer(keys.backend))
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "payment_method"
    nowhere = await http.post(f"/v1/orgs/{unique_org('none')}/card",
                              json={"payment_method": method.id}, headers=bearer(keys.backend))
    assert nowhere.status_code == 404


def driver_deps(driver):
    return driver._load.args[0]
