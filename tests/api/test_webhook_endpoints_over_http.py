"""A backend team's whole loop over HTTP (issue 23, "done when"): support adds their endpoint
under /v1/webhook-endpoints, the backend starts a change with an Idempotency-Key, and the
endpoint receives the change's events, each verified with the standardwebhooks package against
the secret the API showed once; the endpoint is listed without its secret, rotated, removed."""

from __future__ import annotations

from standardwebhooks import Webhook

from subchange.store.tables import WebhookEndpoint
from tests.api.conftest import Keys
from tests.api.helpers import bearer, change_body, follow, start
from tests.helpers.documents import unique_org
from tests.helpers.driver import load_suite
from tests.helpers.webhooks import Receiver


async def test_a_change_started_over_http_reaches_the_backends_endpoint_signed(
        http, keys: Keys, driver):
    receiver = Receiver().start()
    added = await http.post("/v1/webhook-endpoints", headers=bearer(keys.support), json={
        "url": receiver.url, "events": ["change.completed", "payment.succeeded"]})
    assert added.status_code == 201, added.text
    endpoint = added.json()
    location = added.headers["Location"]
    try:
        assert endpoint["secret"].startswith("whsec_") and endpoint["status"] == "active"
        receiver.secrets.append(endpoint["secret"])

        org = unique_org("hooks")
        await load_suite(driver, org, seats=30)
        started = await start(http, keys.backend, change_body(org, seats=34))
        workflow_id = started.json()["workflow_id"]
        view = await follow(http, keys.backend, started.headers["Location"])
        await receiver.wait_for_types(workflow_id, ["payment.succeeded", "change.completed"])
        events = receiver.events(workflow_id)
        assert [e["type"] for e in events] == ["payment.succeeded", "change.completed"]
        assert all(d.verified for d in receiver.got(workflow_id))
        completed = events[-1]["data"]
        assert completed["workflow_id"] == workflow_id and completed["org_id"] == org
        assert completed["status"] == "completed"
        assert completed["invoice"] == view["result"]["invoice"]  # the section 7 result
        assert "4242" not in str(events) and keys.backend not in str(events)
        delivery = receiver.got(workflow_id)[-1]
        Webhook(endpoint["secret"]).verify(delivery.body, delivery.headers)  # as a backend does

        listed = (await http.get("/v1/webhook-endpoints", headers=bearer(keys.support))).json()
        mine = [e for e in listed["endpoints"] if e["id"] == endpoint["id"]]
        assert mine and "secret" not in mine[0] and endpoint["secret"] not in str(listed)
        assert (await http.get(location, headers=bearer(keys.support))).json()["url"] == (
            receiver.url)
        rotated = await http.post(f"{location}/rotate", headers=bearer(keys.support))
        assert rotated.status_code == 200
        assert rotated.json()["secret"] != endpoint["secret"]
        assert rotated.json()["previous_secret_until"] is not None
        failed = await http.get(f"{location}/failed-events", headers=bearer(keys.support))
        assert failed.json() == {"failed": []}
        unknown = await http.post(f"{location}/failed-events/evt_missing/replay",
                                  headers=bearer(keys.support))
        assert unknown.status_code == 404
    finally:
        removed = await http.delete(location, headers=bearer(keys.support))
        receiver.stop()
    assert removed.status_code == 204
    assert (await http.get(location, headers=bearer(keys.support))).status_code == 404


async def test_only_support_manages_endpoints_and_bad_ones_are_named(http, keys: Keys):
    body = {"url": "https://hooks.example/subchange"}
    for key in (keys.backend, keys.sales):
        assert (await http.post("/v1/webhook-endpoints", json=body, headers=bearer(key))
                ).status_code == 403
    bad = await http.post("/v1/webhook-endpoints", headers=bearer(keys.support),
                          json={"url": "ftp://hooks.example", "events": ["change.exploded"]})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] in ("url", "events")
    listed = (await http.get("/v1/webhook-endpoints", headers=bearer(keys.support))).json()
    assert all(e["url"] != "ftp://hooks.example" for e in listed["endpoints"])


async def test_support_enables_an_endpoint_a_410_disabled(http, keys: Keys, deps):
    added = await http.post("/v1/webhook-endpoints", headers=bearer(keys.support),
                            json={"url": "https://hooks.example/back-soon"})
    endpoint_id, location = added.json()["id"], added.headers["Location"]
    try:
        with deps.sessions() as session:  # the receiver answered 410 Gone (tests/workflow)
            row = session.get(WebhookEndpoint, endpoint_id)
            row.status = "disabled"
            session.add(row)
            session.commit()
        assert (await http.get(location, headers=bearer(keys.support))).json()[
            "status"] == "disabled"
        assert (await http.post(f"{location}/enable", headers=bearer(keys.backend))
                ).status_code == 403
        for _ in range(2):  # the second finds it active already, and says so
            enabled = await http.post(f"{location}/enable", headers=bearer(keys.support))
            assert enabled.status_code == 200, enabled.text
            assert enabled.json()["id"] == endpoint_id
            assert enabled.json()["status"] == "active" and "secret" not in enabled.json()
        missing = await http.post("/v1/webhook-endpoints/we_000000000000000000000000/enable",
                                  headers=bearer(keys.support))
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
    finally:
        await http.delete(location, headers=bearer(keys.support))
