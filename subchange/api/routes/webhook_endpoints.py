"""`/v1/webhook-endpoints` (role `support`): the endpoints events are POSTed to (SPEC section 13),
as `subchange webhook` manages them: add, list, rotate a secret, enable one a 410 disabled,
remove, the events an endpoint could not be delivered, and replaying one. What a route commits
wakes the endpoint's relay workflow at once; should Temporal be out of reach, the relay starts
with the next worker start or the endpoint's next event, and the route still succeeds (the commit
is what counts)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import TypeVar

from fastapi import APIRouter, Response
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool

from subchange.api.auth import ApiServices, Support
from subchange.api.models import (
    FailedEvent,
    FailedEventList,
    ReplayedEvent,
    RotatedSecret,
    WebhookEndpointBody,
    WebhookEndpointCreated,
    WebhookEndpointList,
    WebhookEndpointView,
)
from subchange.api.problems import ProblemError, bad_field, problem_responses
from subchange.api.services import Services
from subchange.app.relays import noting_wakes, wake_relays
from subchange.domain.webhooks import EndpointRefused
from subchange.store import webhooks
from subchange.store.tables import OutboxEvent, WebhookEndpoint

router = APIRouter(prefix="/v1", tags=["webhook endpoints"])
log = logging.getLogger("subchange.api")
T = TypeVar("T")


async def _committing(api: Services, work: Callable[[Session], T]) -> tuple[T, set[str]]:
    """Run `work` in a transaction (in the thread pool), then wake the relays it owes a wake;
    what `work` returned, and the endpoints woken."""
    sessions, woken = noting_wakes(api.sessions)

    def run() -> T:
        with sessions() as session:
            done = work(session)
            session.commit()
            return done

    done = await run_in_threadpool(run)
    await _wake(api, woken)
    return done, woken


async def _wake(api: Services, endpoint_ids: Collection[str]) -> None:
    if not endpoint_ids:
        return
    try:
        missed = await wake_relays(await api.client(), endpoint_ids,
                                   task_queue=api.settings.task_queue)
    except ProblemError:
        missed = sorted(endpoint_ids)
    if missed:
        log.warning("could not wake the webhook relay of %s; it starts with the next worker "
                    "start or the endpoint's next event", ", ".join(missed))


def _view(row: WebhookEndpoint) -> WebhookEndpointView:
    return WebhookEndpointView.model_validate(webhooks.endpoint_view(row))


def _endpoint(session: Session, endpoint_id: str) -> WebhookEndpoint:
    row = session.get(WebhookEndpoint, endpoint_id)
    if row is None:
        raise ProblemError(404, "not-found", f"no webhook endpoint {endpoint_id!r}")
    return row


ENDPOINT = {"Location": {"description": "/v1/webhook-endpoints/{id}",
                         "schema": {"type": "string"}}}


@router.post("/webhook-endpoints", status_code=201, operation_id="addWebhookEndpoint",
             response_model=WebhookEndpointCreated, summary="Add an endpoint (support)",
             responses={201: {"description": "Added; the secret is shown this once",
                              "headers": ENDPOINT},
                        **problem_responses(401, 403, 422, 503)})
async def add_endpoint(body: WebhookEndpointBody, response: Response, _: Support,
                       api: ApiServices) -> WebhookEndpointCreated:
    def add(session: Session) -> WebhookEndpointCreated:
        try:
            row, secret = webhooks.add_endpoint(session=session, url=body.url,
                                                events=body.events)
        except EndpointRefused as refusal:
            raise bad_field(refusal.field, refusal.problem) from None
        session.flush()
        return WebhookEndpointCreated(**_view(row).model_dump(), secret=secret)

    created, _woken = await _committing(api, add)
    response.headers["Location"] = f"/v1/webhook-endpoints/{created.id}"
    return created


@router.get("/webhook-endpoints", operation_id="listWebhookEndpoints",
            response_model=WebhookEndpointList, summary="Every endpoint, newest first (support)",
            responses=problem_responses(401, 403, 503))
async def list_endpoints(_: Support, api: ApiServices) -> WebhookEndpointList:
    def read() -> WebhookEndpointList:
        with api.sessions() as session:
            return WebhookEndpointList(endpoints=[
                _view(row) for row in webhooks.list_endpoints(session=session)])

    return await run_in_threadpool(read)


@router.get("/webhook-endpoints/{endpoint_id}", operation_id="getWebhookEndpoint",
            response_model=WebhookEndpointView, summary="One endpoint (support)",
            responses=problem_responses(401, 403, 404, 503))
async def get_endpoint(endpoint_id: str, _: Support, api: ApiServices) -> WebhookEndpointView:
    def read() -> WebhookEndpointView:
        with api.sessions() as session:
            return _view(_endpoint(session, endpoint_id))

    return await run_in_threadpool(read)


@router.post("/webhook-endpoints/{endpoint_id}/rotate", operation_id="rotateWebhookSecret",
             response_model=RotatedSecret,
             summary="A new secret; the previous one still signs during the overlap (support)",
             responses=problem_responses(401, 403, 404, 503))
async def rotate_secret(endpoint_id: str, _: Support, api: ApiServices) -> RotatedSecret:
    def rotate(session: Session) -> RotatedSecret:
        secret = webhooks.rotate_secret(session=session, endpoint_id=endpoint_id,
                                        overlap=api.settings.webhook_secret_overlap)
        if secret is None:
            _endpoint(session, endpoint_id)  # raises the 404
        session.flush()
        view = _view(_endpoint(session, endpoint_id))
        return RotatedSecret(id=endpoint_id, secret=secret or "",
                             previous_secret_until=view.previous_secret_until)

    return (await _committing(api, rotate))[0]


@router.post("/webhook-endpoints/{endpoint_id}/enable", operation_id="enableWebhookEndpoint",
             response_model=WebhookEndpointView,
             summary="Make an endpoint disabled by a 410 Gone active again (support)",
             description="Once its receiver is back: it is sent the events from now on; replay "
                         "what it missed from its failed events. An endpoint that is not "
                         "disabled is answered as it is.",
             responses=problem_responses(401, 403, 404, 503))
async def enable_endpoint(endpoint_id: str, _: Support, api: ApiServices) -> WebhookEndpointView:
    def enable(session: Session) -> WebhookEndpointView:
        row = webhooks.enable_endpoint(session=session, endpoint_id=endpoint_id)
        if row is None:
            raise ProblemError(404, "not-found", f"no webhook endpoint {endpoint_id!r}")
        return _view(row)

    return (await _committing(api, enable))[0]


@router.delete("/webhook-endpoints/{endpoint_id}", status_code=204,
               operation_id="removeWebhookEndpoint", response_class=Response,
               summary="Remove an endpoint and what it was still owed (support)",
               responses={204: {"description": "Removed"},
                          **problem_responses(401, 403, 404, 503)})
async def remove_endpoint(endpoint_id: str, _: Support, api: ApiServices) -> Response:
    def remove(session: Session) -> None:
        if not webhooks.remove_endpoint(session=session, endpoint_id=endpoint_id):
            raise ProblemError(404, "not-found", f"no webhook endpoint {endpoint_id!r}")

    await _committing(api, remove)
    return Response(status_code=204)


@router.get("/webhook-endpoints/{endpoint_id}/failed-events",
            operation_id="listFailedWebhookEvents", response_model=FailedEventList,
            summary="The events this endpoint could not be delivered (support)",
            responses=problem_responses(401, 403, 404, 503))
async def failed_events(endpoint_id: str, _: Support, api: ApiServices) -> FailedEventList:
    def read() -> FailedEventList:
        with api.sessions() as session:
            _endpoint(session, endpoint_id)
            return FailedEventList(failed=[
                FailedEvent.model_validate(vars(failed))
                for failed in webhooks.failed_events(session=session)
                if failed.endpoint_id == endpoint_id])

    return await run_in_threadpool(read)


@router.post("/webhook-endpoints/{endpoint_id}/failed-events/{event_id}/replay",
             operation_id="replayWebhookEvent", response_model=ReplayedEvent,
             summary="Deliver an event again, with the same webhook-id (support)",
             responses=problem_responses(401, 403, 404, 409, 503))
async def replay_event(endpoint_id: str, event_id: str, _: Support, api: ApiServices
                       ) -> ReplayedEvent:
    def replay(session: Session) -> None:
        _endpoint(session, endpoint_id)
        if session.exec(select(OutboxEvent.sequence)
                        .where(OutboxEvent.id == event_id)).first() is None:
            raise ProblemError(404, "not-found", f"no event {event_id!r}")
        if not webhooks.replay_event(session=session, event_id=event_id):
            raise ProblemError(409, "update-refused", f"{event_id} has no endpoint left to "
                               "send it to: the endpoints it was for are removed or disabled")

    _replayed, woken = await _committing(api, replay)
    return ReplayedEvent(event_id=event_id, replayed_to=sorted(woken))
