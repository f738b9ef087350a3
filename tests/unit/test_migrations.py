"""The migrations in subchange/store/migrations make exactly the schema of the models, on SQLite
and on PostgreSQL (TEST_DATABASE=postgresql), and `python -m subchange.store.migrate` / worker
start-up apply them safely: twice, concurrently, and on a database made by `create_all` before
migrations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from subchange.app.wiring import build_dependencies
from subchange.dev.devstack import ROOT
from subchange.settings import Settings
from subchange.store.migrate import (
    BASELINE,
    VERSION_TABLE,
    MigrationError,
    downgrade,
    script_directory,
    upgrade,
)
from tests.helpers.services import fresh_database

HEAD = script_directory().get_current_head()
ALL_REVISIONS = tuple(reversed([s.revision for s in script_directory().walk_revisions()]))


@pytest.fixture
def fresh_url(tmp_path: Path) -> Iterator[str]:
    """An empty database of the kind the suite runs on."""
    with fresh_database(tmp_path, "subchange_migrations") as url:
        yield url


@pytest.fixture
def db(fresh_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(fresh_url)
    yield engine
    engine.dispose()


def schema_differences(engine: sa.Engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)


def revision_of(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def tables_of(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {VERSION_TABLE}


def add_org(engine: sa.Engine, org_id: str) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO org (id, name, currency, billing_email, updated_at) "
            "VALUES (:id, 'Acme', 'EUR', 'billing@acme.example', CURRENT_TIMESTAMP)"),
            {"id": org_id})


def org_ids(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(sa.text("SELECT id FROM org ORDER BY id")).scalars())


def test_upgrade_makes_exactly_the_schema_of_the_models(fresh_url, db):
    result = upgrade(fresh_url)

    assert result.applied == ALL_REVISIONS and result.after == HEAD
    assert tables_of(db) == set(SQLModel.metadata.tables)
    assert schema_differences(db) == []


def test_upgrade_again_changes_nothing_and_keeps_the_data(fresh_url, db):
    upgrade(fresh_url)
    add_org(db, "acme")

    again = upgrade(fresh_url)

    assert again.applied == () and again.before == again.after == HEAD
    assert "nothing to apply" in again.describe()
    assert org_ids(db) == ["acme"]


def test_downgrade_to_base_leaves_no_tables_and_can_be_upgraded_again(fresh_url, db):
    upgrade(fresh_url)

    result = downgrade(fresh_url, "base")

    assert result.applied == tuple(reversed(ALL_REVISIONS))
    assert tables_of(db) == set() and revision_of(db) is None
    upgrade(fresh_url)
    assert schema_differences(db) == []


def test_tables_made_by_create_all_before_migrations_are_adopted(fresh_url, db):
    # What worker.py's create_all made before migrations existed: the baseline's tables, no
    # migration history.
    upgrade(fresh_url)
    downgrade(fresh_url, BASELINE)
    with db.begin() as connection:
        connection.execute(sa.text(f"DROP TABLE {VERSION_TABLE}"))
    add_org(db, "acme")

    result = upgrade(fresh_url)

    assert result.adopted and result.before is None and result.after == HEAD
    assert result.applied == ALL_REVISIONS[ALL_REVISIONS.index(BASELINE) + 1:]
    assert org_ids(db) == ["acme"]
    assert schema_differences(db) == []


def test_part_of_the_tables_without_history_is_refused_and_left_alone(fresh_url, db):
    SQLModel.metadata.tables["org"].create(db)

    with pytest.raises(MigrationError, match=r"lacks applied_change.*subscription"):
        upgrade(fresh_url)

    assert tables_of(db) == {"org"} and revision_of(db) is None


def test_workers_starting_together_migrate_once(fresh_url, db):
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: upgrade(fresh_url), range(4)))

    assert sorted(len(r.applied) for r in results) == [0, 0, 0, len(ALL_REVISIONS)]
    assert schema_differences(db) == []


def test_worker_start_up_migrates_a_new_database(fresh_url, db):
    build_dependencies(Settings(_env_file=None, database_url=fresh_url))

    assert revision_of(db) == HEAD and schema_differences(db) == []


def run_migrate(database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "subchange.store.migrate"], cwd=ROOT, env=env,
                          check=False, capture_output=True, text=True, timeout=120)


def test_migrate_command_says_what_it_did(fresh_url, db):
    first, second = run_migrate(fresh_url), run_migrate(fresh_url)

    assert first.returncode == 0, first.stderr
    assert f"applied {', '.join(ALL_REVISIONS)}" in first.stdout
    assert second.returncode == 0 and "nothing to apply" in second.stdout
    assert revision_of(db) == HEAD


@pytest.mark.parametrize("bad_url", ["not a url", "nosuchdb://host/db"])
def test_migrate_command_exits_2_naming_database_url(bad_url):
    completed = run_migrate(bad_url)

    assert completed.returncode == 2
    assert "DATABASE_URL" in completed.stderr and "Traceback" not in completed.stderr


def test_products_assigned_before_0011_become_rows_and_back(fresh_url, db):
    """0011 moves each user's JSON list of products to org_user_product rows (the seat floor's
    index), and its downgrade puts them back."""
    upgrade(fresh_url, "0010")
    add_org(db, "acme")
    with db.begin() as connection:
        for email, products in (("a@acme.example", '["one", "desk"]'),
                                ("b@acme.example", '["one"]'), ("c@acme.example", "[]")):
            connection.execute(sa.text(
                "INSERT INTO org_user (org_id, email, role, primary_contact, active, products) "
                "VALUES ('acme', :email, 'member', false, true, :products)"),
                {"email": email, "products": products})
    assigned = sa.text("SELECT u.email, p.product FROM org_user_product p JOIN org_user u "
                       "ON u.id = p.user_id WHERE p.org_id = 'acme' ORDER BY 1, 2")

    upgrade(fresh_url)
    with db.connect() as connection:
        assert [tuple(r) for r in connection.execute(assigned)] == [
            ("a@acme.example", "desk"), ("a@acme.example", "one"), ("b@acme.example", "one")]

    downgrade(fresh_url, "0010")
    with db.connect() as connection:
        rows = connection.execute(sa.text("SELECT email, products FROM org_user ORDER BY email"))
        assert [(email, products if isinstance(products, list) else json.loads(products))
                for email, products in rows] == [("a@acme.example", ["desk", "one"]),
                                                 ("b@acme.example", ["one"]),
                                                 ("c@acme.example", [])]


def test_0012_adds_renewal_items_one_per_change_and_its_downgrade_takes_only_them(fresh_url, db):
    """0012 adds the pending items of the next renewal invoice (amounts below the gateway's
    minimum charge, carried); a second item for the same change is refused by the database."""
    upgrade(fresh_url, "0011")
    add_org(db, "acme")

    upgrade(fresh_url)
    item = sa.text(
        "INSERT INTO renewal_item (workflow_id, org_id, product, subscription_id, amount, tax, "
        "total, currency, invoice_number, status, created_at) VALUES ('change-r1', 'acme', "
        "'desk', :sub, 0.47, 0, 0.47, 'USD', 'INV-2026-000001', 'pending', CURRENT_TIMESTAMP)")
    with db.begin() as connection:
        sub = connection.execute(sa.text(
            "INSERT INTO subscription (org_id, product, plan, seats, pricing_model, "
            "billing_period, period_start, period_end, payment_method, disabled_features, "
            "version, updated_at) VALUES ('acme', 'desk', 'standard', 3, 'per_agent', "
            "'monthly', '2026-11-01', '2026-12-01', 'online', '[]', 1, CURRENT_TIMESTAMP) "
            "RETURNING id")).scalar_one()
        connection.execute(item, {"sub": sub})
    with pytest.raises(sa.exc.IntegrityError), db.begin() as connection:
        connection.execute(item, {"sub": sub})
    with db.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM renewal_item")).scalar() == 1

    downgrade(fresh_url, "0011")
    assert "renewal_item" not in tables_of(db) and org_ids(db) == ["acme"]


def test_0014_adds_webhooks_one_delivery_per_event_and_endpoint_and_its_downgrade_takes_only_them(
        fresh_url, db):
    """0014 adds the webhook endpoints, the outbox and the deliveries; an event is owed to an
    endpoint once (a second delivery row of the pair is refused), and an event id is unique."""
    upgrade(fresh_url, "0013")
    add_org(db, "acme")

    upgrade(fresh_url)
    with db.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO webhook_endpoint (id, url, events, secret, status, created_at, "
            "updated_at) VALUES ('we_1', 'https://hooks.example/x', '[]', 'whsec_AAAA', "
            "'active', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        connection.execute(sa.text(
            "INSERT INTO outbox_event (id, workflow_id, type, payload, created_at) VALUES "
            "('evt_1', 'change-r1', 'change.completed', '{}', CURRENT_TIMESTAMP)"))
    delivery = sa.text("INSERT INTO webhook_delivery (event_id, endpoint_id, status, updated_at) "
                       "VALUES ('evt_1', 'we_1', 'pending', CURRENT_TIMESTAMP)")
    with db.begin() as connection:
        connection.execute(delivery)
    with pytest.raises(sa.exc.IntegrityError), db.begin() as connection:
        connection.execute(delivery)
    with pytest.raises(sa.exc.IntegrityError), db.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO outbox_event (id, workflow_id, type, payload, created_at) VALUES "
            "('evt_1', 'change-r2', 'change.rejected', '{}', CURRENT_TIMESTAMP)"))
    with db.connect() as connection:
        assert connection.execute(sa.text(
            "SELECT attempts FROM webhook_delivery")).scalars().all() == [0]

    downgrade(fresh_url, "0013")
    assert not {"webhook_endpoint", "outbox_event", "webhook_delivery"} & tables_of(db)
    assert org_ids(db) == ["acme"]


def test_a_database_migrated_by_a_newer_version_is_refused_saying_so(fresh_url, db):
    upgrade(fresh_url)
    with db.begin() as connection:
        connection.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    with pytest.raises(MigrationError, match="at revision 9999, which this version of the service"):
        upgrade(fresh_url)
