"""What schemathesis found (tests/api/test_schema_conformance.py), each kept as a plain test of
the OpenAPI document or of the app in this process: the document says what the app accepts, and
the app accepts what the document says. None of these needs Temporal or a database: the app
answers them before it authenticates."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from subchange.api.app import create_app
from subchange.domain.contracts import IDENTIFIER
from subchange.settings import Settings


@pytest.fixture(scope="module")
def bare_app() -> FastAPI:
    return create_app(Settings(_env_file=None, database_url="sqlite://"))


@pytest.fixture
async def client(bare_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bare_app),
                                 base_url="http://api.test") as client:
        yield client


@pytest.fixture(scope="module")
def document(bare_app: FastAPI) -> dict:
    return bare_app.openapi()


def test_a_change_names_its_product_from_the_catalog(document: dict):
    """Found: any string was a valid `product` by the document; the app answers 422 but for
    `one` and `desk`."""
    product = document["components"]["schemas"]["ChangeInput"]["properties"]["product"]
    assert product["enum"] == ["one", "desk"]


@pytest.mark.parametrize("path", ["/v1/quotes", "/v1/changes", "/v1/changes/change-x/cancel",
                                  "/v1/changes/change-x/retry",
                                  "/v1/changes/change-x/sales-decision", "/v1/orgs/x/card"])
async def test_a_body_that_is_not_utf8_text_is_bad_input_naming_the_body(
        client: httpx.AsyncClient, path: str):
    """Found: FastAPI answered such a body with a 400 no operation documents ("There was an
    error parsing the body"), where a body that is not JSON is a 422 naming `body`."""
    answer = await client.post(path, content=b"\xff\xfe{", headers={
        "Content-Type": "application/json", "Authorization": "Bearer sk_nobody",
        "Idempotency-Key": "k-1"})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["errors"] == [{"field": "body",
                                        "problem": "not valid JSON: not UTF-8 text"}]


def test_the_idempotency_key_is_a_required_header_of_a_start(document: dict):
    """Found: the document made the header optional and any string, so a generated start
    without one, or with a space in it, got a 400 the document did not lead anyone to expect.
    The app still answers both with 400, as the IETF draft says (test_changes_over_http)."""
    [header] = document["paths"]["/v1/changes"]["post"]["parameters"]
    assert (header["name"], header["in"], header["required"]) == ("Idempotency-Key", "header",
                                                                  True)
    assert header["schema"] == {"type": "string", "pattern": IDENTIFIER}


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("OPTIONS", "/v1/changes", "GET, HEAD, POST"),
    ("DELETE", "/v1/changes", "GET, HEAD, POST"),
    ("PUT", "/v1/changes/change-x", "GET, HEAD"),
    ("GET", "/v1/changes/change-x/cancel", "POST"),
])
async def test_a_method_the_path_does_not_have_is_405_naming_every_method_it_has(
        client: httpx.AsyncClient, method: str, path: str, allowed: str):
    """Found: `Allow` named only the methods of the first route on the path (POST for
    /v1/changes, which has GET too)."""
    answer = await client.request(method, path)
    assert answer.status_code == 405
    assert answer.headers["allow"] == allowed
    assert answer.headers["content-type"] == "application/problem+json"
