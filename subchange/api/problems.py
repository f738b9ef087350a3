"""Errors as RFC 9457 problem details (`application/problem+json`): `type`, `title`, `status`,
`detail`, and for bad input `errors`, each naming a field and its problem. An outage of Temporal
or the database is a 503 with `Retry-After`, never a 500."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from temporalio.service import RPCError, RPCStatusCode

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 5
# Temporal's answers that mean "not now" rather than "no".
OUTAGE_STATUSES = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED,
                   RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.ABORTED,
                   RPCStatusCode.CANCELLED, RPCStatusCode.UNKNOWN}
TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
          405: "Method not allowed", 406: "Not acceptable", 409: "Conflict",
          415: "Unsupported media type", 422: "Unprocessable content",
          500: "Internal server error", 503: "Service unavailable"}

HTTP_METHODS = {"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"}

log = logging.getLogger("subchange.api")


class FieldProblem(BaseModel):
    field: str = Field(description="where: a body field (change.seats), a header "
                                   "(Idempotency-Key) or a query parameter (page_size)")
    problem: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(description="a URI reference naming the kind of problem, e.g. "
                                  "/problems/validation-error")
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = Field(
        default=None, description="for bad input: every failing field")


class ProblemError(Exception):
    """Raised by a route to answer with a problem."""

    def __init__(self, status: int, kind: str, detail: str, *,
                 errors: Sequence[FieldProblem] | None = None,
                 headers: dict[str, str] | None = None, title: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail = status, kind, detail
        self.errors, self.headers = list(errors) if errors else None, headers
        self.title = title or TITLES.get(status, "Error")


def problem_response(error: ProblemError) -> JSONResponse:
    body = Problem(type=f"/problems/{error.kind}", title=error.title, status=error.status,
                   detail=error.detail, errors=error.errors)
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=error.status,
                        media_type=PROBLEM_JSON, headers=error.headers)


def bad_field(field: str, problem: str, *, status: int = 422) -> ProblemError:
    return ProblemError(status, "validation-error", f"{field}: {problem}",
                        errors=[FieldProblem(field=field, problem=problem)])


def unavailable(what: str) -> ProblemError:
    return ProblemError(503, "unavailable", f"{what} is not reachable now; nothing was done, "
                        "send the request again", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def field_name(loc: Sequence[Any]) -> str:
    """`change.seats` for ("body", "change", "seats", "seats"): the source dropped, a tagged
    union's tag dropped, a header named as it is sent."""
    parts = [str(p) for p in loc]
    source = parts[0] if parts else ""
    if source in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    if (len(parts) >= 2 and parts[0] == "change" and parts[1] in ("seats", "plan")
            and len(parts) > 2):
        parts = [parts[0], *parts[2:]]
    if source == "header" and parts:
        return "-".join(word.capitalize() for word in parts[0].split("-"))
    return ".".join(parts) or ("body" if source == "body" else "request")


def _validation_problem(error: RequestValidationError) -> ProblemError:
    errors: list[FieldProblem] = []
    for item in error.errors():
        if item.get("type") == "json_invalid":
            problem = FieldProblem(field="body", problem="not valid JSON: "
                                   + str(item.get("ctx", {}).get("error", item["msg"])))
        elif item.get("type") == "missing" and list(item["loc"]) == ["body"]:
            problem = FieldProblem(field="body", problem="a JSON object is required")
        else:
            problem = FieldProblem(field=field_name(item["loc"]),
                                   problem=str(item["msg"]).removeprefix("Value error, "))
        if problem not in errors:
            errors.append(problem)
    detail = "; ".join(f"{e.field}: {e.problem}" for e in errors)
    return ProblemError(422, "validation-error", f"invalid input: {detail}", errors=errors)


def allowed_methods(request: Request) -> str | None:
    """Every method of the request's path, as the OpenAPI document lists them (and HEAD with
    GET). Starlette's 405 names only the methods of the first route on the path (GET and POST
    /v1/changes are two routes), where `Allow` must list them all (RFC 9110, 15.5.6)."""
    path = request.scope["path"]
    for template, item in request.app.openapi()["paths"].items():
        if compile_path(template)[0].match(path):
            methods = {method.upper() for method in item} & HTTP_METHODS
            return ", ".join(sorted(methods | ({"HEAD"} if "GET" in methods else set())))
    return None  # a path outside the document (/healthz, /docs): Starlette's own answer


def install(app: FastAPI) -> None:
    async def on_problem(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ProblemError)
        return problem_response(error)

    async def on_validation(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        return problem_response(_validation_problem(error))

    async def on_http(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        if error.status_code == 400 and isinstance(error.__cause__, UnicodeDecodeError):
            # FastAPI's answer to a JSON body that is not UTF-8 text: bad input like any other
            # body that is not JSON (422 naming `body`), not an undocumented 400.
            return problem_response(bad_field("body", "not valid JSON: not UTF-8 text"))
        kind = {404: "not-found", 405: "method-not-allowed"}.get(error.status_code, "http-error")
        detail = error.detail if isinstance(error.detail, str) else TITLES.get(error.status_code,
                                                                               "error")
        headers = getattr(error, "headers", None)
        if error.status_code == 405 and (allowed := allowed_methods(request)) is not None:
            headers = {**(headers or {}), "Allow": allowed}
        return problem_response(ProblemError(error.status_code, kind, detail, headers=headers))

    async def on_rpc(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RPCError)
        if error.status in OUTAGE_STATUSES:
            log.warning("Temporal did not answer: %s", error.message)
            return problem_response(unavailable("the Temporal server"))
        log.error("Temporal refused a request: %s (%s)", error.message, error.status)
        return problem_response(ProblemError(500, "internal", "the Temporal server refused "
                                             "the request; see the API's log"))

    async def on_database(_: Request, error: Exception) -> JSONResponse:
        log.warning("the database did not answer: %s", type(error).__name__)
        return problem_response(unavailable("the database"))

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RPCError, on_rpc)
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    app.add_exception_handler(DBAPIError, on_database)
    app.add_exception_handler(PoolTimeout, on_database)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problems an operation can answer."""
    described = {400: "Bad request (a missing or malformed header)",
                 401: "No API key, or an unknown or revoked one",
                 403: "The key's role may not do this", 404: "No such resource",
                 409: "The change refused the update in its current state",
                 422: "Invalid input: every failing field is named",
                 503: "Temporal or the database is not reachable; retry after Retry-After"}
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": Problem, "description": described[status],
                                 "content": {PROBLEM_JSON: {"schema": {
                                     "$ref": "#/components/schemas/Problem"}}}}
        if status == 503:
            entry["headers"] = {"Retry-After": {"description": "seconds to wait",
                                                "schema": {"type": "integer"}}}
        if status == 401:
            entry["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        responses[status] = entry
    return responses
