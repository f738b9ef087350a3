"""`starter.py api-key create | list | revoke` as operators run it (SPEC section 12): a separate
process against the suite's database. The key is printed once and works; the list and the audit
log never show a secret; a revoked key stops working; bad input exits 2 naming the option."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import func, select

from subchange.store import api_keys, audit
from subchange.store.tables import ApiKey
from tests.helpers.documents import SALES, SUPPORT
from tests.helpers.observers import audit_entries
from tests.helpers.processes import run_cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cli_env(process_env) -> dict[str, str]:
    return process_env("api-key")


def a_backend() -> str:
    return f"backend-{uuid.uuid4().hex[:8]}@shop.example"


def authenticate(deps, key: str):
    with deps.sessions() as session:
        return api_keys.authenticate(session=session, presented=key)


def key_entries(deps, key_id: str) -> list[tuple[str, str]]:
    return [(entry.action, entry.outcome) for entry in audit_entries(deps, org=audit.NO_ORG)
            if key_id in entry.detail]


def key_count(deps) -> int:
    with deps.sessions() as session:
        return session.exec(select(func.count()).select_from(ApiKey)).one()


def test_create_prints_the_key_once_and_it_works(cli_env, deps):
    owner = a_backend()
    made = run_cli(cli_env, "api-key", "create", "--owner", owner.upper(), "--role", "backend")
    assert made.code == 0, made
    key = made.json["key"]
    assert made.json == {"id": made.json["id"], "key": key, "owner": owner,
                         "roles": ["backend"]}
    assert key.startswith(f"sck_{made.json['id']}_")
    assert authenticate(deps, key).owner == owner
    assert key_entries(deps, made.json["id"]) == [("api_key_create", "created")]
    [entry] = [e for e in audit_entries(deps, org=audit.NO_ORG) if made.json["id"] in e.detail]
    assert entry.actor.startswith("operator:")
    assert key.split("_", 2)[2] not in entry.detail


def test_staff_keys_for_their_roles_and_every_role_given(cli_env, deps):
    made = run_cli(cli_env, "api-key", "create", "--owner", SUPPORT, "--role", "support",
                   "--role", "backend")
    assert made.code == 0, made
    assert made.json["roles"] == ["backend", "support"]
    assert authenticate(deps, made.json["key"]).roles == frozenset({"backend", "support"})
    sales = run_cli(cli_env, "api-key", "create", "--owner", SALES, "--role", "sales")
    assert sales.code == 0, sales


@pytest.mark.parametrize(("args", "named"), [
    (["--owner", "not-an-address", "--role", "backend"], "--owner: value is not a valid email"),
    (["--owner", "ops@shop.example", "--role", "admin"], "--role: unknown role 'admin'"),
    (["--owner", "ops@shop.example", "--role", "backend", "--role", "backend"],
     "--role: 'backend' is given more than once"),
    (["--owner", "ops@shop.example"], "the following arguments are required: --role"),
    (["--role", "backend"], "the following arguments are required: --owner"),
    (["--owner", "stranger@shop.example", "--role", "support"],
     ("--owner: stranger@shop.example is not in the staff directory: a support key needs an "
     "owner with role support")),
    (["--owner", SUPPORT, "--role", "sales"],
     f"--owner: {SUPPORT} lacks role sales in the staff directory"),
])
def test_create_refuses_bad_input_naming_the_option(cli_env, deps, args, named):
    before = key_count(deps)
    refused = run_cli(cli_env, "api-key", "create", *args)
    assert refused.code == 2, refused
    assert named in refused.stderr
    assert refused.stdout == ""
    assert key_count(deps) == before


def test_list_shows_every_key_newest_first_and_never_a_secret(cli_env, deps):
    made = [run_cli(cli_env, "api-key", "create", "--owner", a_backend(), "--role", "backend")
            for _ in range(2)]
    assert [m.code for m in made] == [0, 0], made
    listed = run_cli(cli_env, "api-key", "list")
    assert listed.code == 0, listed
    ids = [m.json["id"] for m in made]
    rows = [row for row in listed.json["keys"] if row["id"] in ids]
    assert [row["id"] for row in rows] == ids[::-1]
    assert set(rows[0]) == {"id", "owner", "roles", "created_at", "revoked_at"}
    assert rows[0]["owner"] == made[1].json["owner"] and rows[0]["revoked_at"] is None
    with deps.sessions() as session:
        stored = [session.get(ApiKey, key_id) for key_id in ids]
    secrets = [m.json["key"].split("_", 2)[2] for m in made]
    hidden = secrets + [row.secret_hash for row in stored] + [row.salt for row in stored]
    assert [value for value in hidden if value in listed.stdout] == []


def test_revoke_stops_the_key_at_once_and_is_audited_once(cli_env, deps):
    made = run_cli(cli_env, "api-key", "create", "--owner", a_backend(), "--role", "backend")
    key_id, key = made.json["id"], made.json["key"]
    assert authenticate(deps, key) is not None
    revoked = run_cli(cli_env, "api-key", "revoke", key_id)
    assert revoked.code == 0, revoked
    assert revoked.json["id"] == key_id and revoked.json["revoked_now"] is True
    assert revoked.json["revoked_at"]
    assert authenticate(deps, key) is None
    again = run_cli(cli_env, "api-key", "revoke", key_id)
    assert again.code == 0, again
    assert again.json["revoked_now"] is False
    assert again.json["revoked_at"] == revoked.json["revoked_at"]
    assert key_entries(deps, key_id) == [("api_key_create", "created"),
                                         ("api_key_revoke", "revoked")]
    listed = run_cli(cli_env, "api-key", "list")
    [row] = [row for row in listed.json["keys"] if row["id"] == key_id]
    assert row["revoked_at"] == revoked.json["revoked_at"]


@pytest.mark.parametrize(("key_id", "named"), [
    ("0123456789ab", "ID: no key 0123456789ab"),
    ("not-a-key", "ID: not a key id"),
    ("0123456789AB", "ID: not a key id"),
])
def test_revoke_of_an_unknown_or_malformed_id_exits_2_naming_it(cli_env, key_id, named):
    refused = run_cli(cli_env, "api-key", "revoke", key_id)
    assert refused.code == 2, refused
    assert named in refused.stderr
