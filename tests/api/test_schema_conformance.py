"""schemathesis against `python api.py` as operators run it (SPEC section 12), with a `worker.py`
on its task queue, the suite's database, localstripe and SMTP sink: every operation with
generated input (stateless), and sequences that follow the OpenAPI links from `POST /v1/changes`
to its status and updates (stateful). Every response must be no 5xx, a documented status code
with its documented content type, headers and body schema.

The fixture organisations, changes, invoice and card are offered to the generator as
dictionaries (sampled half the time for their parameter), so that some generated requests reach
a real organisation, change or invoice; nothing else is constrained."""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from pydantic import EmailStr, TypeAdapter, ValidationError

from subchange.dev.devstack import free_port
from subchange.domain.contracts import IDENTIFIER
from subchange.store import webhooks
from tests.api.conftest import BACKEND, Keys, make_key
from tests.api.helpers import bearer, change_body
from tests.helpers.documents import (
    DECLINED_ON_CHARGE_CARD,
    GOOD_CARD,
    SALES,
    SUPPORT,
    admin,
    admin_email,
    load_document,
    org_document,
    unique_org,
)
from tests.helpers.processes import ApiProcess, WorkerProcess, service_env

pytestmark = pytest.mark.one_pass(on="postgresql")

# Bounds that keep this file near a minute and a half on a 2-core machine.
STATELESS_EXAMPLES = 12
STATEFUL_SCENARIOS = 15
STATEFUL_STEPS = 4
REQUEST_TIMEOUT = 30.0
# Which key a staff operation is sent with; every other operation goes with the backend key.
STAFF_ROLES = {"retryChange": "support", "cancelChange": "support", "decideChange": "sales",
               **dict.fromkeys((
                   "addWebhookEndpoint", "listWebhookEndpoints", "getWebhookEndpoint",
                   "rotateWebhookSecret", "removeWebhookEndpoint", "listFailedWebhookEvents",
                   "replayWebhookEvent"), "support")}
READS = ["getChange", "listChanges", "quoteChange", "getInvoice"]
# positive_data_acceptance's own list of answers to a schema-valid request.
ACCEPTED = ["2xx", "401", "403", "404", "409", "5xx"]


@dataclass(frozen=True)
class Fixtures:
    """What the running API holds for the generator to find."""

    base_url: str
    keys: Keys
    orgs: list[str]
    changes: list[str]  # a completed change, one waiting for support, one waiting for sales
    invoice: str
    payment_method: str

    def key_for(self, role: str) -> str:
        return getattr(self.keys, role)


def _follow(client: httpx.Client, key: str, location: str, *, waiting: bool = False,
            timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view = client.get(location, headers=bearer(key))
        assert view.status_code == 200, view.text
        body = view.json()
        if body["result"] is not None or (waiting and body["waiting_for"]):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


def _load_org(deps, org: str, *, card: str | None) -> None:
    load_document(deps, org_document(org, users=[admin(org)], subscriptions=[{
        "product": "one", "plan": "enterprise", "seats": 30, "pricing_model": "flexible_user",
        "card": card, "payment_method": "online" if card else "offline"}]))


@pytest.fixture(scope="module")
def running_api(dev_env, database_url, engine, localstripe_url, smtp, deps, gateway,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixtures]:
    """api.py and worker.py on one fresh task queue, keys of each role, and the fixtures: an
    organisation paying by card with a completed change (and its invoice), one whose change
    waits for support (card declined at charge), one whose change waits for sales (offline)."""
    logs: Path = tmp_path_factory.mktemp("schemathesis")
    env = service_env(temporal_address=dev_env.client.service_client.config.target_host,
                      database_url=database_url, localstripe_url=localstripe_url,
                      smtp_port=smtp.port, task_queue=f"schema-{uuid.uuid4().hex[:8]}",
                      API_HOST="127.0.0.1", API_PORT=str(free_port()), METRICS_BIND_ADDRESS="")
    keys = Keys(backend=make_key(deps, BACKEND, "backend"),
                support=make_key(deps, SUPPORT, "support"), sales=make_key(deps, SALES, "sales"))
    paying, parked, offline = (unique_org(p) for p in ("schema", "schema-parked", "schema-sales"))
    _load_org(deps, paying, card=GOOD_CARD)
    _load_org(deps, parked, card=DECLINED_ON_CHARGE_CARD)
    _load_org(deps, offline, card=None)
    method = gateway.v1.payment_methods.create(params={
        "type": "card", "card": {"number": GOOD_CARD, "exp_month": 12, "exp_year": 2034,
                                 "cvc": "123"}})
    api = ApiProcess(env, logs / "api.log")
    with WorkerProcess(env, logs / "worker.log").running(), api.running(), \
            httpx.Client(base_url=api.base_url, timeout=REQUEST_TIMEOUT) as client:
        ids = []
        for org, seats in ((paying, 31), (parked, 35), (offline, 35)):
            started = client.post("/v1/changes", json=change_body(org, seats=seats),
                                  headers=bearer(keys.backend, **{"Idempotency-Key":
                                                                  f"schema-{uuid.uuid4()}"}))
            assert started.status_code == 202, started.text
            ids.append(started.json()["workflow_id"])
        completed = _follow(client, keys.backend, f"/v1/changes/{ids[0]}")
        assert completed["status"] == "completed", completed
        for workflow_id in ids[1:]:
            _follow(client, keys.backend, f"/v1/changes/{workflow_id}", waiting=True)
        endpoints_before = _endpoint_ids(deps)
        yield Fixtures(base_url=api.base_url, keys=keys, orgs=[paying, parked, offline],
                       changes=ids, invoice=completed["result"]["invoice"]["number"],
                       payment_method=method.id)
    # Endpoints the generator added would be owed every later event of the suite's database.
    with deps.sessions() as session:
        for endpoint_id in _endpoint_ids(deps) - endpoints_before:
            webhooks.remove_endpoint(session=session, endpoint_id=endpoint_id)
        session.commit()


def _endpoint_ids(deps) -> set[str]:
    with deps.sessions() as session:
        return {row.id for row in webhooks.list_endpoints(session=session)}


def schema_config(fixtures: Fixtures) -> schemathesis.Config:
    half = 0.5
    return schemathesis.Config.from_dict({
        "generation": {"max-examples": STATELESS_EXAMPLES, "database": "none"},
        # Sequences follow the document's own links only: links inferred from the list's items
        # would depend on what the server holds at the moment, which Hypothesis takes for a
        # flaky strategy when it replays a prefix.
        "phases": {"stateful": {"max-steps": STATEFUL_STEPS, "link-calibration": False,
                                "inference": {"algorithms": []}}},
        "request-timeout": REQUEST_TIMEOUT,
        "dictionaries": {
            "orgs": {"values": fixtures.orgs},
            "requesters": {"values": [admin_email(org) for org in fixtures.orgs]},
            "products": {"values": ["one", "desk"]},
            "changes": {"values": fixtures.changes},
            "invoices": {"values": [fixtures.invoice]},
            "cards": {"values": [fixtures.payment_method]},
        },
        # A schema-valid request these operations answer 422 for what no schema can say: a
        # key already used for another body, a page token the list did not give, a payment
        # method the gateway does not know.
        "operations": [{"include-operation-id": operation, "checks": {
            "positive_data_acceptance": {"expected-statuses": [*ACCEPTED, 422]}}}
            for operation in ("startChange", "listChanges", "useCard")],
        "parameters": {
            "body.org_id": {"dictionary": "orgs", "probability": half},
            "body.requested_by": {"dictionary": "requesters", "probability": half},
            "body.product": {"dictionary": "products", "probability": half},
            "body.payment_method": {"dictionary": "cards", "probability": half},
            "path.workflow_id": {"dictionary": "changes", "probability": half},
            "path.number": {"dictionary": "invoices", "probability": half},
            "path.org_id": {"dictionary": "orgs", "probability": half},
            "path.product": {"dictionary": "products", "probability": half},
            "query.org_id": {"dictionary": "orgs", "probability": half},
        },
    })


@pytest.fixture(scope="module")
def api_schema(running_api: Fixtures) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{running_api.base_url}/openapi.json",
                                         config=schema_config(running_api))


def deliverable(address: str) -> bool:
    try:
        TypeAdapter(EmailStr).validate_python(address)
    except ValidationError:
        return False
    return True


# `format: email` as the app reads it (EmailStr, email-validator): no special-use domains such
# as .test, which the document's description names and JSON Schema's format cannot.
schemathesis.openapi.format("email", st.emails().filter(deliverable))
schema = schemathesis.pytest.from_fixture("api_schema")
# What the generated requests got, by test and operation: they must have reached the fixtures.
ANSWERED: dict[str, Counter[tuple[str, int]]] = defaultdict(Counter)
BOUNDS = settings(deadline=None, suppress_health_check=list(HealthCheck), database=None)


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's fixture-loaded schemas read `node._nodeid` (to name each operation's
    subtest), which pytest 9.2 no longer has."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


def operation_id(case: schemathesis.Case) -> str:
    return case.operation.definition.raw["operationId"]


def auth(case: schemathesis.Case, key: str) -> dict[str, str]:
    """The key's header, unless this case leaves out or spoils the Authorization header on
    purpose (a negative case, where the API must answer 401)."""
    return {} if case.operation.schema.is_security_param_negated(case) else bearer(key)


def call(case: schemathesis.Case, key: str, test: str) -> None:
    answer = case.call_and_validate(headers=auth(case, key), timeout=REQUEST_TIMEOUT)
    ANSWERED[test][operation_id(case), answer.status_code] += 1


@schema.parametrize()
@BOUNDS
def test_every_operation_answers_as_documented_to_a_backend_key(case, running_api: Fixtures):
    call(case, running_api.keys.backend, "backend")


@schema.include(operation_id=[*READS, *STAFF_ROLES]).parametrize()
@BOUNDS
def test_staff_operations_answer_as_documented_to_support_and_sales_keys(
        case, running_api: Fixtures):
    """Each update with the role that may send it; the reads with the support and the sales
    key in turn."""
    role = STAFF_ROLES.get(operation_id(case)) or ("support", "sales")[
        sum(ANSWERED["staff"].values()) % 2]
    call(case, running_api.key_for(role), "staff")


def test_sequences_following_the_links_from_a_started_change(api_schema, running_api: Fixtures):
    """Start a change, then follow the links of its answer to its status, retry, cancel and
    sales decision, each sent with the key of the role that may send it."""
    class Sequences(api_schema.as_state_machine()):
        def get_call_kwargs(self, case) -> dict[str, Any]:
            role = STAFF_ROLES.get(operation_id(case), "backend")
            headers = auth(case, running_api.key_for(role))
            key = (case.headers or {}).get("Idempotency-Key")
            if operation_id(case) == "startChange" and re.fullmatch(IDENTIFIER, key or ""):
                # A key of its own for each start: a key generated again in a later scenario
                # would answer 422 where it answered 202, and change the links to follow
                # (the stateless tests send keys again). A malformed one stays malformed.
                headers["Idempotency-Key"] = f"st-{uuid.uuid4()}"
            return {"headers": headers, "timeout": REQUEST_TIMEOUT}

        def after_call(self, response, case) -> None:
            ANSWERED["stateful"][operation_id(case), response.status_code] += 1

    Sequences.run(settings=settings(BOUNDS, max_examples=STATEFUL_SCENARIOS,
                                    stateful_step_count=STATEFUL_STEPS))


def test_generated_requests_reached_the_fixtures():
    """Not only 4xx: some generated starts started, some reads found a change or the invoice,
    and every update reached a real change (accepted, or refused for its state)."""
    if set(ANSWERED) != {"backend", "staff", "stateful"}:
        pytest.skip("runs after the three schemathesis tests of this file")
    answered = sum(ANSWERED.values(), Counter())
    for operation, statuses in [("startChange", {202}), ("getChange", {200}),
                                ("getInvoice", {200}), ("quoteChange", {200}),
                                ("listChanges", {200}), ("retryChange", {200, 409}),
                                ("cancelChange", {200, 409}), ("decideChange", {200, 409})]:
        assert any(answered[operation, status] for status in statuses), (
            operation, sorted((k, n) for k, n in answered.items() if k[0] == operation))
