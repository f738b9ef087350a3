"""A backend's day over HTTP (SPEC section 12): start a change with an Idempotency-Key, follow
its Location to the result, download its invoice; the same key again is the same change, a
different body under it is refused, and nothing starts on any 4xx."""

from __future__ import annotations

import asyncio

import httpx
from temporalio.client import Client

from subchange.domain.contracts import workflow_id_for
from tests.api.conftest import Keys
from tests.api.helpers import bearer, change_body, follow, new_key, start
from tests.helpers.documents import unique_org
from tests.helpers.driver import load_suite
from tests.helpers.observers import (
    change_record,
    pdf_attachments,
    succeeded_charges,
)


async def workflows_of(client: Client, org: str) -> list[str]:
    return [w.id async for w in client.list_workflows(f"OrgId = '{org}'")]


async def test_a_change_started_over_http_ends_completed_with_its_invoice_pdf_as_emailed(
        http: httpx.AsyncClient, keys: Keys, driver, gateway, mailbox):
    org = unique_org("http")
    await load_suite(driver, org, seats=30)
    key = new_key()
    started = await start(http, keys.backend, change_body(org, seats=32), key)
    assert started.status_code == 202, started.text
    assert started.headers["Location"] == f"/v1/changes/change-{key}"
    assert started.json() == {"workflow_id": f"change-{key}", "request_id": key}

    view = await follow(http, keys.backend, started.headers["Location"])
    assert view["status"] == "completed" and view["state"] == "completed"
    result = view["result"]
    assert result["subscription"]["seats"] == 32
    assert [c.amount for c in succeeded_charges(gateway, workflow_id=f"change-{key}")] == [
        int(result["payment"]["amount"])]
    assert result["quote"]["tax"]["total"] == result["payment"]["amount"]
    assert [h["step"] for h in view["history"]][:2] == ["open_change", "authorize_admin"]

    number = result["invoice"]["number"]
    pdf = await http.get(f"/v1/invoices/{number}", headers=bearer(keys.backend))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    [message] = mailbox.messages(to=result["invoice"]["emailed_to"])
    [attachment] = pdf_attachments(message)
    assert pdf.content == attachment.get_payload(decode=True)
    unknown = await http.get("/v1/invoices/INV-1999-000001", headers=bearer(keys.backend))
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"


async def test_the_same_key_is_the_same_change_and_a_different_body_under_it_is_refused(
        http: httpx.AsyncClient, keys: Keys, driver, dev_env, gateway, deps):
    org = unique_org("idem")
    await load_suite(driver, org, seats=30)
    key = new_key()
    first = await start(http, keys.backend, change_body(org, seats=33), key)
    again = await start(http, keys.backend, change_body(org, seats=33), key)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.headers["Location"] == first.headers["Location"]
    assert again.json() == first.json()

    other = await start(http, keys.backend, change_body(org, seats=34), key)
    assert other.status_code == 422
    problem = other.json()
    assert problem["errors"][0]["field"] == "Idempotency-Key"
    assert "different request" in problem["errors"][0]["problem"]

    view = await follow(http, keys.backend, first.headers["Location"])
    assert view["result"]["subscription"]["seats"] == 33
    after_the_end = await start(http, keys.backend, change_body(org, seats=33), key)
    assert after_the_end.status_code == 200  # safe forever, not only while it runs
    assert await workflows_of(dev_env.client, org) == [workflow_id_for(key)]
    assert len(succeeded_charges(gateway, workflow_id=workflow_id_for(key))) == 1


async def test_racing_requests_with_one_key_start_one_change(http, keys: Keys, driver, dev_env,
                                                             gateway):
    org = unique_org("race")
    await load_suite(driver, org, seats=30)
    key = new_key()
    answers = await asyncio.gather(*(start(http, keys.backend, change_body(org, seats=31), key)
                                     for _ in range(8)))
    assert sorted(a.status_code for a in answers).count(202) == 1
    assert {a.status_code for a in answers} == {200, 202}
    assert {a.headers["Location"] for a in answers} == {f"/v1/changes/change-{key}"}
    await follow(http, keys.backend, f"/v1/changes/change-{key}")
    assert len(succeeded_charges(gateway, workflow_id=f"change-{key}")) == 1


async def test_bad_input_names_each_field_and_starts_nothing(http, keys: Keys, driver, dev_env,
                                                            deps, gateway):
    org = unique_org("bad")
    await load_suite(driver, org, seats=30)
    key = new_key()
    body = change_body(org, seats=-3)
    body["product"] = "suite"
    bad = await start(http, keys.backend, body, key)
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    problem = bad.json()
    assert {e["field"] for e in problem["errors"]} == {"product", "change.seats"}
    assert problem["status"] == 422 and problem["type"] == "/problems/validation-error"

    missing = await http.post("/v1/changes", json=change_body(org), headers=bearer(keys.backend))
    assert missing.status_code == 400 and missing.json()["errors"][0]["field"] == "Idempotency-Key"
    malformed = await start(http, keys.backend, change_body(org), "has spaces in it")
    assert malformed.status_code == 400
    extra = await start(http, keys.backend, {**change_body(org), "request_id": "x"}, key)
    assert extra.status_code == 422 and extra.json()["errors"][0]["field"] == "request_id"
    not_json = await http.post("/v1/changes", content=b"{seats: 3", headers=bearer(
        keys.backend, **{"Idempotency-Key": key, "Content-Type": "application/json"}))
    assert not_json.status_code == 422 and not_json.json()["errors"][0]["field"] == "body"

    assert await workflows_of(dev_env.client, org) == []
    assert change_record(deps, workflow_id_for(key)) is None


async def test_keys_and_roles_decide_who_may_call(http, keys: Keys, driver, dev_env, deps):
    from tests.api.conftest import make_key

    org = unique_org("auth")
    await load_suite(driver, org, seats=30)
    nobody = await http.post("/v1/changes", json=change_body(org),
                             headers={"Idempotency-Key": new_key()})
    assert nobody.status_code == 401 and nobody.headers["www-authenticate"].startswith("Bearer")
    forged = await start(http, keys.backend[:-4] + "AAAA", change_body(org))
    assert forged.status_code == 401
    sales = await start(http, keys.sales, change_body(org))
    assert sales.status_code == 403 and "backend" in sales.json()["detail"]

    from subchange.store import api_keys

    revoked = make_key(deps, "ops@vendor.example", "backend")
    assert (await http.get("/v1/changes", headers=bearer(revoked))).status_code == 200
    with deps.sessions() as session:
        assert api_keys.revoke_key(session=session, key_id=revoked.split("_")[1])
        session.commit()
    assert (await start(http, revoked, change_body(org))).status_code == 401
    assert await workflows_of(dev_env.client, org) == []
