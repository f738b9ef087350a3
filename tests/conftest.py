"""Fixtures every room shares: the real services of SPEC section 6, started once a session from
their pip packages (tests/helpers/services.py), and the suite's handles on them.

- Database: a fresh SQLite file, or a fresh PostgreSQL database when TEST_DATABASE=postgresql.
- Payments: a localstripe server process. Email: an aiosmtpd server writing to a Maildir.

Each room's own conftest.py adds what only that room uses: unit/ the settings environment,
workflow/ the time-skipping test server and a worker in this process, process/ the dev server
and the environment of worker.py / starter.py processes, ui/ a dev server with its Web UI, the
codec server and Chromium; deploy/ reads files and needs nothing.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
import stripe
from sqlmodel import Session

from activities.dependencies import Dependencies
from subchange.settings import Settings
from subchange.store import staff
from tests.helpers.documents import STAFF_DIRECTORY, load_document
from tests.helpers.observers import Mailbox, stripe_client
from tests.helpers.services import (
    SmtpSink,
    database_kind,
    fresh_database,
    localstripe,
    migrated_engine,
    smtp_sink,
    suite_dependencies,
    suite_settings,
)


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {database_kind()}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """When `make test` runs the SQLite and the PostgreSQL pass side by side (TEST_PASSES=both),
    a test marked one_pass(on=...) runs in that pass only: what it checks does not depend on the
    database, and the two passes share two cores. Alone, a pass runs every test."""
    if os.environ.get("TEST_PASSES") != "both":
        return
    kind, keep, other_pass = database_kind(), [], []
    for item in items:
        marker = item.get_closest_marker("one_pass")
        (other_pass if marker is not None and marker.kwargs["on"] != kind else keep).append(item)
    if other_pass:
        config.hook.pytest_deselected(items=other_pass)
        items[:] = keep


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(tmp_path_factory.mktemp("db"), "subchange_test") as url:
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[sa.Engine]:
    """The suite's database, migrated, with the suite's staff directory."""
    with migrated_engine(database_url) as engine:
        with Session(engine) as session:
            for member in STAFF_DIRECTORY["staff"]:
                staff.put_member(session=session, email=member["email"], roles=member["roles"])
            session.commit()
        yield engine


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    with localstripe() as url:
        yield url


@pytest.fixture(scope="session")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpSink]:
    with smtp_sink(tmp_path_factory.mktemp("mail")) as sink:
        yield sink


@pytest.fixture(scope="session")
def settings(database_url: str, localstripe_url: str, smtp: SmtpSink) -> Settings:
    return suite_settings(database_url=database_url, localstripe_url=localstripe_url,
                          smtp_port=smtp.port)


@pytest.fixture(scope="session")
def deps(settings: Settings, engine: sa.Engine) -> Dependencies:
    return suite_dependencies(settings, engine)


@pytest.fixture(scope="session")
def gateway(settings: Settings) -> stripe.StripeClient:
    """The payment gateway as the payments team reads it (the stripe SDK on localstripe), not
    the application's adapter."""
    return stripe_client(settings.stripe_api_base, settings.stripe_api_key)


@pytest.fixture
def mailbox(smtp: SmtpSink) -> Mailbox:
    return smtp.mailbox


@pytest.fixture
def load(deps: Dependencies):
    """Load a fixture document (dict) through the real loader, as `starter.py load` does."""
    return functools.partial(load_document, deps)
