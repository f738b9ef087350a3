"""The commands that read or write the service's database directly: `load`, `quote` and
`subscription`, and the opening of that database every such command shares."""

from __future__ import annotations

import asyncio
from pathlib import Path

import stripe
from temporalio.service import RPCError

from subchange.adapters.gateway import Gateway
from subchange.app.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    CommandError,
    emit,
    progress,
)
from subchange.app.cli.inputs import ChangeOptions, LoadOptions, SubscriptionOptions
from subchange.app.fixtures import FixtureConflict, FixtureError, load_fixture, parse_fixture
from subchange.app.payments import cards_on_file, replaced, wake_changes_waiting_for_payment
from subchange.app.quotes import preview
from subchange.app.subscriptions import UnknownSubscription, describe_subscription
from subchange.domain.catalog import default_catalog
from subchange.domain.contracts import Rejection
from subchange.settings import Settings
from subchange.store.db import SessionFactory, make_engine, session_factory
from subchange.store.migrate import MigrationError, upgrade


def open_database(settings: Settings) -> SessionFactory:
    """Sessions on the migrated database; one that can't be reached or migrated is a failure
    named by DATABASE_URL (exit 1), not a traceback."""
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine.url)
    except MigrationError as error:
        raise CommandError(str(error), EXIT_FAILED) from None
    return session_factory(engine)


def cmd_load(options: LoadOptions, settings: Settings) -> int:
    path = Path(options.file)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CommandError(f"FILE: can't read {path}: {error.strerror}", EXIT_BAD_INPUT) from None
    except UnicodeDecodeError as error:
        raise CommandError(f"FILE: {path} is not UTF-8 text (byte {error.object[error.start]:#04x} "
                           f"at offset {error.start}); save it as UTF-8", EXIT_BAD_INPUT) from None
    try:
        fixture = parse_fixture(text)
    except FixtureError as error:
        raise CommandError(f"invalid fixture {path}: {error}", EXIT_BAD_INPUT) from None
    sessions = open_database(settings)
    with sessions() as session:
        before = cards_on_file(session)
        try:
            counts = load_fixture(fixture, session=session, gateway=Gateway(settings),
                                  settings=settings)
        except FixtureError as error:
            raise CommandError(f"invalid fixture {path}: {error}", EXIT_BAD_INPUT) from None
        except FixtureConflict as error:
            raise CommandError(str(error), EXIT_FAILED) from None
        except stripe.StripeError as error:
            raise CommandError(f"the payment gateway at STRIPE_API_BASE "
                               f"({settings.stripe_api_base}) failed: "
                               f"{error.user_message or error}; "
                               "nothing was loaded") from None
        new_cards = replaced(before, cards_on_file(session))
    emit({"loaded": str(path), **counts,
          "retried_changes": _wake(settings, sessions, new_cards) if new_cards else []})
    return EXIT_OK


def _wake(settings: Settings, sessions: SessionFactory, orgs: list[str]) -> list[str]:
    """The changes waiting for payment of organisations with a new card, told to try again now
    (SPEC section 11). The load stands if Temporal can't be reached: they try again at their
    next scheduled attempt, which the warning says."""
    from subchange.app.client import connect

    async def wake() -> list[str]:
        client = await connect(settings)
        return [workflow_id for org in orgs
                for workflow_id in await wake_changes_waiting_for_payment(client, sessions, org)]

    try:
        return asyncio.run(wake())
    except (RPCError, RuntimeError, ConnectionError) as error:
        progress(f"warning: the new card of {', '.join(orgs)} is loaded, but the changes "
                 f"waiting for payment could not be told ({error}); they try again at their "
                 "next scheduled attempt, or when support retries them")
        return []


def cmd_quote(options: ChangeOptions, settings: Settings) -> int:
    with open_database(settings)() as session:
        answer = preview(session=session, catalog=default_catalog(), change=options.request)
    if isinstance(answer, Rejection):
        emit({"rejected": answer.model_dump()})
        return EXIT_FAILED
    emit(answer)
    return EXIT_OK


def cmd_subscription(options: SubscriptionOptions, settings: Settings) -> int:
    """The subscription as `GET /v1/orgs/{org_id}/subscriptions/{product}` answers it."""
    try:
        details = describe_subscription(sessions=open_database(settings),
                                        catalog=default_catalog(), gateway=Gateway(settings),
                                        org_id=options.org, product=options.product)
    except UnknownSubscription as error:
        raise CommandError(f"--org/--product: {error}", EXIT_BAD_INPUT) from None
    emit(details)
    return EXIT_OK
