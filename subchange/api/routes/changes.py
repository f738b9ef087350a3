"""Changes: start one (idempotent by its Idempotency-Key), follow it, list them, and send the
updates of SPEC section 7 as the API key's owner."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from state_machines.lifecycle import ChangeState
from subchange.api.auth import ApiServices, Backend, Reader, Sales, Support, SupportOrBackend
from subchange.api.models import (
    CancelBody,
    ChangeList,
    ChangeOutcome,
    ChangeView,
    RetryBody,
    SalesDecisionBody,
    StartedChange,
    UpdateAnswer,
)
from subchange.api.problems import ProblemError, bad_field, problem_responses
from subchange.api.services import Services
from subchange.app import changes
from subchange.domain.contracts import (
    IDENTIFIER,
    CancelRequest,
    ChangeInput,
    RetryRequest,
    SalesDecision,
    workflow_id_for,
)
from subchange.settings import Settings
from subchange.store.api_keys import KeyOwner

router = APIRouter(prefix="/v1", tags=["changes"])
WORKFLOW_ID = re.compile(workflow_id_for(IDENTIFIER.removeprefix("^").removesuffix("$")))
CHANGE_LINK = {"GetChange": {"operationId": "getChange",
                             "parameters": {"workflow_id": "$response.body#/workflow_id"},
                             "description": "follow the change"},
               "RetryChange": {"operationId": "retryChange",
                               "parameters": {"workflow_id": "$response.body#/workflow_id"}},
               "CancelChange": {"operationId": "cancelChange",
                                "parameters": {"workflow_id": "$response.body#/workflow_id"}},
               "DecideChange": {"operationId": "decideChange",
                                "parameters": {"workflow_id": "$response.body#/workflow_id"}}}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": True,
    "description": "your id for this request (letters, digits and . _ : -, at most 64): it "
                   "becomes the change's request id; missing or malformed is a 400",
    "schema": {"type": "string", "pattern": IDENTIFIER}}
LOCATION = {"Location": {"description": "/v1/changes/{workflow_id}: the change",
                         "schema": {"type": "string"}}}


def path_of(workflow_id: str) -> str:
    return f"/v1/changes/{workflow_id}"


def known_id(workflow_id: str) -> str:
    if WORKFLOW_ID.fullmatch(workflow_id) is None:
        raise ProblemError(404, "not-found", f"no change {workflow_id!r}: a change's id is "
                           "change-<request id>")
    return workflow_id


@router.post(
    "/changes", status_code=202, operation_id="startChange", response_model=StartedChange,
    summary="Start a change",
    description="Starts the change the body describes; the `Idempotency-Key` header becomes its "
                "request id, so its workflow id is `change-<key>`. The same key with the same "
                "body answers the same change (200 once it exists, the same `Location`), however "
                "often it is sent and whoever races; the same key with another body is 422. "
                "Nothing starts on any 4xx.",
    responses={202: {"description": "Started", "headers": LOCATION, "links": CHANGE_LINK},
               200: {"model": StartedChange, "description": "This key's change already exists",
                     "headers": LOCATION, "links": CHANGE_LINK},
               **problem_responses(400, 401, 403, 422, 503)},
    openapi_extra={"parameters": [IDEMPOTENCY_KEY]})
async def start_change(body: ChangeInput, request: Request, response: Response, owner: Backend,
                       api: ApiServices) -> StartedChange:
    # Read here, not declared to FastAPI, so that a missing or malformed key is the 400 of the
    # IETF draft (FastAPI would make it a 422), while the document says it is required.
    idempotency_key = request.headers.get("Idempotency-Key")
    if idempotency_key is None:
        raise bad_field("Idempotency-Key", "required: a key of your own for this request, so "
                        "that sending it again never starts a second change", status=400)
    if re.fullmatch(IDENTIFIER, idempotency_key) is None:
        raise bad_field("Idempotency-Key", "must be 1 to 64 letters, digits and . _ : - , "
                        "starting with a letter or digit (a UUID fits)", status=400)
    change = body.with_request_id(idempotency_key)
    try:
        outcome = await changes.start_change(await api.client(), api.settings, change)
    except changes.RequestIdTaken as error:
        raise bad_field("Idempotency-Key", f"already used for a different request "
                        f"({error.existing.describe() if error.existing else 'unreadable'}); "
                        "send a new key for a new request") from None
    response.headers["Location"] = path_of(change.workflow_id)
    if not outcome.started:
        response.status_code = 200
    return StartedChange(workflow_id=change.workflow_id, request_id=change.request_id)


@router.get(
    "/changes/{workflow_id}", operation_id="getChange", response_model=ChangeView,
    summary="A change's status, with its result once ended",
    responses=problem_responses(401, 403, 404, 503))
async def get_change(workflow_id: str, _: Reader,
                     api: ApiServices) -> ChangeView:
    client = await api.client()
    try:
        found = await changes.report(client, known_id(workflow_id))
    except changes.UnknownChange:
        raise ProblemError(404, "not-found", f"no change {workflow_id!r}") from None
    view = found.view
    if found.ended_from_outside is not None:
        end = found.ended_from_outside
        return ChangeView(workflow_id=workflow_id, status=_outcome(end), state=end,
                          last_state=view.state if view else None,
                          step=view.step if view else None, waiting_for=None,
                          history=view.history if view else [],
                          last_error=view.last_error if view else None)
    if view is None:
        raise ProblemError(503, "unavailable", f"the change's status could not be read now "
                           f"({found.unanswered}); send the request again",
                           headers={"Retry-After": "5"})
    status = view.result.status.value if view.result is not None else "running"
    return ChangeView(workflow_id=view.workflow_id, status=_outcome(status), state=view.state,
                      step=view.step, waiting_for=view.waiting_for, history=view.history,
                      last_error=view.last_error, result=view.result,
                      next_attempt_at=view.next_attempt_at)


def _outcome(value: str) -> ChangeOutcome:
    return value  # type: ignore[return-value]  # the values ChangeOutcome lists


@router.get(
    "/changes", operation_id="listChanges", response_model=ChangeList,
    summary="List changes: the running ones first, then by when they ended",
    description="Through Temporal visibility and the change's search attributes; pages follow "
                "`next_page_token`.",
    responses=problem_responses(401, 403, 422, 503))
async def list_changes(
    response: Response, _: Reader, api: ApiServices,
    org_id: Annotated[str | None, Query(pattern=IDENTIFIER)] = None,
    product: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,31}$")] = None,
    step: Annotated[ChangeState | None, Query(description="the lifecycle state (ChangeStep)")
                    ] = None,
    status: Annotated[ChangeOutcome | None, Query()] = None,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    page_token: Annotated[str | None, Query(max_length=4096)] = None,
) -> ChangeList:
    # The values are checked by their patterns and enums above (changes.list_query).
    query = changes.list_query(org_id=org_id, product=product,
                               step=step.value if step is not None else None, status=status)
    tokens = PageTokens(api.settings)
    token = tokens.open(query, page_token) if page_token else None
    client = await api.client()
    pages = client.list_workflows(query, page_size=page_size, next_page_token=token)
    await pages.fetch_next_page(page_size=page_size)
    items = [changes.summary(execution) for execution in pages.current_page or []]
    next_token = tokens.seal(query, pages.next_page_token) if pages.next_page_token else None
    return ChangeList(items=items, next_page_token=next_token)


class PageTokens:
    """Visibility's page tokens, handed out signed and bound to the list's filter: a token the
    API did not give, or gave for another filter, is a 422 at once, never sent to Temporal
    (which would retry a token it can't parse for seconds). The key is derived from settings
    every API process of a deployment shares."""

    def __init__(self, settings: Settings) -> None:
        self.key = hashlib.sha256(f"page-token:{settings.temporal_namespace}:"
                                  f"{settings.database_url}".encode()).digest()

    def _mac(self, query: str, token: bytes) -> bytes:
        return hmac.new(self.key, query.encode() + b"\0" + token, "sha256").digest()[:16]

    def seal(self, query: str, token: bytes) -> str:
        return base64.urlsafe_b64encode(self._mac(query, token) + token).decode().rstrip("=")

    def open(self, query: str, text: str) -> bytes:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raw = b""
        mac, token = raw[:16], raw[16:]
        if not token or not hmac.compare_digest(mac, self._mac(query, token)):
            raise bad_field("page_token", "not a token this list gave for these filters")
        return token


async def _update(api: Services, workflow_id: str, name: str, argument: Any, owner: KeyOwner
                  ) -> UpdateAnswer:
    client = await api.client()
    try:
        ack = await changes.send_update(client, known_id(workflow_id), name, argument)
    except changes.UnknownChange:
        raise ProblemError(404, "not-found", f"no change {workflow_id!r}") from None
    except changes.UpdateRefused as refusal:
        if refusal.by_principal:
            raise ProblemError(403, "forbidden", str(refusal)) from None
        raise ProblemError(409, "update-refused", str(refusal)) from None
    return UpdateAnswer(state=ack.state, message=ack.message, by=owner.owner)


UPDATE_RESPONSES = problem_responses(401, 403, 404, 409, 422, 503)


@router.post("/changes/{workflow_id}/retry", operation_id="retryChange",
             response_model=UpdateAnswer, responses=UPDATE_RESPONSES,
             summary="Run the change's failed step again (support)")
async def retry_change(workflow_id: str, owner: Support, api: ApiServices,
                       body: RetryBody | None = None) -> UpdateAnswer:
    return await _update(api, workflow_id, "retry", RetryRequest(by=owner.owner), owner)


@router.post("/changes/{workflow_id}/cancel", operation_id="cancelChange",
             response_model=UpdateAnswer, responses=UPDATE_RESPONSES,
             summary="Cancel the change (support, or a key owned by its requester)")
async def cancel_change(workflow_id: str, owner: SupportOrBackend, api: ApiServices,
                        body: CancelBody | None = None) -> UpdateAnswer:
    update = CancelRequest(by=owner.owner, reason=body.reason if body else None)
    return await _update(api, workflow_id, "cancel", update, owner)


@router.post("/changes/{workflow_id}/sales-decision", operation_id="decideChange",
             response_model=UpdateAnswer, responses=UPDATE_RESPONSES,
             summary="Record the sales team's decision (sales)")
async def decide_change(workflow_id: str, body: SalesDecisionBody,
                        owner: Sales,
                        api: ApiServices) -> UpdateAnswer:
    decision = SalesDecision(approved=body.approved, by=owner.owner, note=body.note)
    return await _update(api, workflow_id, "sales_decision", decision, owner)
