"""Configuration and reachability edges of `starter.py`: a bad DATABASE_URL is named, and a
gateway that can't be reached leaves nothing loaded."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlmodel import select

from subchange.app import cli
from subchange.dev.devstack import free_port
from subchange.store.tables import Org
from tests.helpers.documents import org_document


@pytest.fixture
def configured(environment, settings):
    """starter.py's environment: the suite's services, no .env file."""
    for name, value in {"DATABASE_URL": settings.database_url,
                        "STRIPE_API_BASE": settings.stripe_api_base,
                        "STRIPE_API_KEY": settings.stripe_api_key}.items():
        environment.setenv(name, value)
    return environment


@pytest.mark.parametrize("url", ["foo", "mysql://root@localhost/db"])
def test_a_bad_database_url_is_named(configured, capsys, url, tmp_path):
    configured.setenv("DATABASE_URL", url)
    code = cli.main(["load", str(tmp_path / "none.json")])
    assert code == 2
    assert "DATABASE_URL" in capsys.readouterr().err


def test_an_unreachable_gateway_loads_nothing(configured, capsys, deps, tmp_path):
    org = f"nogw-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "org.json"
    path.write_text(json.dumps(org_document(org, users=[], subscriptions=[
        {"product": "one", "plan": "enterprise", "seats": 5}])))
    configured.setenv("STRIPE_API_BASE", f"http://127.0.0.1:{free_port()}")

    code = cli.main(["load", str(path)])

    assert code == 1
    assert "STRIPE_API_BASE" in capsys.readouterr().err
    with deps.sessions() as session:
        assert session.exec(select(Org).where(Org.id == org)).first() is None


def test_an_org_billed_in_a_currency_the_catalog_does_not_price_is_refused(configured, capsys,
                                                                            tmp_path):
    path = tmp_path / "org.json"
    path.write_text(json.dumps(org_document("eur-org", currency="EUR", users=[],
                                            subscriptions=[])))
    assert cli.main(["load", str(path)]) == 2
    err = capsys.readouterr().err
    assert "currency" in err and "EUR" in err


@pytest.mark.parametrize("command", [
    ["load", "FILE"],
    ["quote", "--org", "acme", "--product", "one", "--by", "admin@acme.example", "--seats", "3"],
    ["release-claim", "--org", "acme", "--product", "one", "--by", "support@vendor.example"],
    ["subscription", "--org", "acme", "--product", "one"],
], ids=["load", "quote", "release-claim", "subscription"])
def test_an_unreachable_database_is_named_without_a_traceback(configured, capsys, tmp_path,
                                                              command):
    """A database server that is down (nothing listens at DATABASE_URL): every command that
    opens the database says so, naming the variable (exit 1), instead of a MigrationError
    traceback."""
    path = tmp_path / "org.json"
    path.write_text(json.dumps(org_document("down-org", users=[], subscriptions=[])))
    configured.setenv("DATABASE_URL",
                      f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/subchange")

    code = cli.main([str(path) if arg == "FILE" else arg for arg in command])

    err = capsys.readouterr().err
    assert code == 1, err
    assert err.startswith(f"subchange {command[0]}: database at DATABASE_URL "), err
    assert "connection failed" in err
