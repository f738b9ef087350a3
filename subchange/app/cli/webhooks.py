"""`subchange webhook add | list | rotate | enable | remove | failed | replay`: the endpoints events
are POSTed to (SPEC section 13), for operators. A secret is printed when the endpoint is added or
rotated, never listed. What a command commits (an endpoint added or removed, an event replayed)
wakes the endpoint's relay workflow at once; should Temporal be out of reach, the command says so
and the relay starts with the next worker start or the endpoint's next event."""

from __future__ import annotations

from collections.abc import Callable, Collection

from sqlmodel import select

from subchange.adapters.relays import wake_relays
from subchange.app.cli.common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, CommandError, emit
from subchange.app.cli.common import progress as say
from subchange.app.cli.database import open_database
from subchange.app.cli.inputs import (
    WebhookAddOptions,
    WebhookEndpointOptions,
    WebhookListOptions,
    WebhookReplayOptions,
)
from subchange.app.client import connect
from subchange.app.relays import noting_wakes
from subchange.settings import Settings
from subchange.store import webhooks
from subchange.store.db import SessionFactory
from subchange.store.tables import OutboxEvent, WebhookEndpoint


def _sessions(settings: Settings) -> tuple[SessionFactory, set[str]]:
    """Sessions on the database, and the endpoints whose relays their commits owe a wake."""
    return noting_wakes(open_database(settings))


async def _wake(settings: Settings, endpoint_ids: Collection[str]) -> None:
    if not endpoint_ids:
        return
    try:
        missed = await wake_relays(await connect(settings), endpoint_ids,
                                   task_queue=settings.task_queue)
    except (RuntimeError, ConnectionError) as error:
        missed, why = sorted(endpoint_ids), str(error)
    else:
        why = "the Temporal server refused"
    if missed:
        say(f"warning: could not wake the relay of {', '.join(missed)} at "
            f"{settings.temporal_address} ({why}); it starts with the next `worker.py` start or "
            "the endpoint's next event")


async def cmd_webhook_add(options: WebhookAddOptions, settings: Settings) -> int:
    sessions, woken = _sessions(settings)
    with sessions() as session:
        row, secret = webhooks.add_endpoint(session=session, url=options.url,
                                            events=options.events)
        session.commit()
    await _wake(settings, woken)
    emit({"id": row.id, "secret": secret})
    return EXIT_OK


def cmd_webhook_list(options: WebhookListOptions, settings: Settings) -> int:
    with open_database(settings)() as session:
        emit({"endpoints": [webhooks.endpoint_view(row)
                            for row in webhooks.list_endpoints(session=session)]})
    return EXIT_OK


def cmd_webhook_rotate(options: WebhookEndpointOptions, settings: Settings) -> int:
    with open_database(settings)() as session:
        secret = webhooks.rotate_secret(session=session, endpoint_id=options.endpoint_id,
                                        overlap=settings.webhook_secret_overlap)
        if secret is None:
            raise _unknown_endpoint(options.endpoint_id)
        session.commit()
        row = session.get(WebhookEndpoint, options.endpoint_id)
        assert row is not None
        until = webhooks.endpoint_view(row)["previous_secret_until"]
    emit({"id": options.endpoint_id, "secret": secret, "previous_secret_until": until})
    return EXIT_OK


async def cmd_webhook_enable(options: WebhookEndpointOptions, settings: Settings) -> int:
    sessions, woken = _sessions(settings)
    with sessions() as session:
        row = webhooks.enable_endpoint(session=session, endpoint_id=options.endpoint_id)
        if row is None:
            raise _unknown_endpoint(options.endpoint_id)
        session.commit()
        view = webhooks.endpoint_view(row)
    if not woken:
        say(f"{options.endpoint_id} was not disabled: nothing to do")
    await _wake(settings, woken)
    emit(view)
    return EXIT_OK


async def cmd_webhook_remove(options: WebhookEndpointOptions, settings: Settings) -> int:
    sessions, woken = _sessions(settings)
    with sessions() as session:
        if not webhooks.remove_endpoint(session=session, endpoint_id=options.endpoint_id):
            raise _unknown_endpoint(options.endpoint_id)
        session.commit()
    await _wake(settings, woken)  # its relay sees it gone and ends
    emit({"id": options.endpoint_id, "removed": True})
    return EXIT_OK


def cmd_webhook_failed(options: WebhookListOptions, settings: Settings) -> int:
    with open_database(settings)() as session:
        emit({"failed": [vars(failed) for failed in webhooks.failed_events(session=session)]})
    return EXIT_OK


async def cmd_webhook_replay(options: WebhookReplayOptions, settings: Settings) -> int:
    sessions, woken = _sessions(settings)
    with sessions() as session:
        if session.exec(select(OutboxEvent.sequence)
                        .where(OutboxEvent.id == options.event_id)).first() is None:
            raise CommandError(f"EVENT_ID: no event {options.event_id}; `webhook failed` lists "
                               "the events that could not be delivered", EXIT_BAD_INPUT)
        if not webhooks.replay_event(session=session, event_id=options.event_id):
            raise CommandError(f"{options.event_id} has no endpoint left to send it to: the "
                               "endpoints it was for are removed or disabled", EXIT_FAILED)
        session.commit()
    await _wake(settings, woken)
    emit({"event_id": options.event_id, "replayed_to": sorted(woken)})
    return EXIT_OK


def _unknown_endpoint(endpoint_id: str) -> CommandError:
    return CommandError(f"ID: no endpoint {endpoint_id}; `webhook list` shows them",
                        EXIT_BAD_INPUT)


WEBHOOK_COMMANDS: dict[str, Callable] = {
    "add": cmd_webhook_add, "list": cmd_webhook_list, "rotate": cmd_webhook_rotate,
    "enable": cmd_webhook_enable, "remove": cmd_webhook_remove, "failed": cmd_webhook_failed,
    "replay": cmd_webhook_replay}
