"""What a backend's client relies on beyond the happy path: an outage of Temporal or of the
database is a 503 with Retry-After (never a 500, nothing started); the OpenAPI document names
every operation, its problems, headers and links; and the API process loads no gateway, SMTP or
PDF code until a route needs it."""

from __future__ import annotations

import httpx
import pytest

from subchange.api.app import create_app
from subchange.settings import Settings
from tests.api.conftest import Keys
from tests.api.helpers import bearer, change_body, new_key
from tests.unit.test_import_layers import loaded_after

CLOSED = "127.0.0.1:9"  # the discard port: nothing listens


async def test_temporal_down_is_a_503_with_retry_after(api_settings: Settings, deps, keys: Keys):
    app = create_app(api_settings.model_copy(update={"temporal_address": CLOSED}),
                     sessions=deps.sessions)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://api.test") as http:
        for call in (http.post("/v1/changes", json=change_body("acme"),
                               headers=bearer(keys.backend, **{"Idempotency-Key": new_key()})),
                     http.get("/v1/changes", headers=bearer(keys.backend)),
                     http.get("/v1/changes/change-x", headers=bearer(keys.backend))):
            answer = await call
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"].isdigit()
            assert answer.headers["content-type"] == "application/problem+json"
            assert "Temporal" in answer.json()["detail"]
        health = await http.get("/healthz")
        assert health.status_code == 503 and health.json() == {"temporal": False,
                                                               "database": True}


async def test_the_database_down_is_a_503_too(api_settings: Settings, dev_env, keys: Keys):
    down = api_settings.model_copy(update={
        "database_url": f"postgresql+psycopg://postgres@{CLOSED}/subchange"})
    app = create_app(down, client=dev_env.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://api.test") as http:
        answer = await http.post("/v1/quotes", json=change_body("acme"),
                                 headers=bearer(keys.backend))
        assert answer.status_code == 503 and answer.headers["retry-after"].isdigit()
        assert "database" in answer.json()["detail"]


PATH_PARAMETERS_ONLY = ("/v1/invoices/{number}", "/v1/orgs/{org_id}/subscriptions/{product}")


@pytest.fixture(scope="module")
def document(api_settings: Settings) -> dict:
    return create_app(api_settings).openapi()


def test_the_openapi_document_describes_every_operation_for_a_client_generator(document):
    operations = {(path, method): op for path, methods in document["paths"].items()
                  for method, op in methods.items()}
    assert {op["operationId"] for op in operations.values()} == {
        "quoteChange", "startChange", "getChange", "listChanges", "retryChange", "cancelChange",
        "decideChange", "getInvoice", "useCard", "addWebhookEndpoint", "listWebhookEndpoints",
        "getWebhookEndpoint", "rotateWebhookSecret", "removeWebhookEndpoint",
        "listFailedWebhookEvents", "replayWebhookEvent", "enableWebhookEndpoint",
        "getSubscription"}
    for (path, method), op in operations.items():
        responses = op["responses"]
        for status in ("401", "403", "503"):
            assert "application/problem+json" in responses[status]["content"], (path, status)
        assert "Retry-After" in responses["503"]["headers"], path
        assert op["security"] == [{"ApiKey": []}], path
        if "requestBody" in op or op.get("parameters"):
            # Path parameters only: an unknown one is a 404, as a change's id is.
            assert "422" in responses or path in PATH_PARAMETERS_ONLY, (path, method)
    start = document["paths"]["/v1/changes"]["post"]
    assert {p["name"] for p in start["parameters"]} == {"Idempotency-Key"}
    for status in ("200", "202"):
        assert "Location" in start["responses"][status]["headers"]
        links = start["responses"][status]["links"]
        assert links["GetChange"] == {"operationId": "getChange",
                                      "description": "follow the change",
                                      "parameters": {"workflow_id": "$response.body#/workflow_id"}}
    assert document["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    assert {"Problem", "FieldProblem", "ChangeInput", "ChangeView", "Quote"} <= set(
        document["components"]["schemas"])


def test_the_api_loads_no_gateway_smtp_or_pdf_code_at_start():
    code = ("from subchange.api.app import create_app\nfrom subchange.settings import Settings\n"
            "create_app(Settings(_env_file=None)).openapi()")
    assert loaded_after(code) & {"stripe", "smtplib", "fpdf", "aiosmtpd"} == set()
