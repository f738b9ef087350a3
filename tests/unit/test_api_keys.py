"""Keys of the HTTP API in the store (SPEC section 12): a key made for an owner authenticates as
that owner with its roles, and nothing else does; the database holds only a slow hash of the
secret; a `support` or `sales` key belongs to staff with that role (section 9)."""

from __future__ import annotations

import hashlib
import re
import threading
import uuid

import pytest
import sqlalchemy as sa

from subchange.store import api_keys
from subchange.store.api_keys import KeyOwner, KeyRefused
from tests.helpers.documents import SALES, SUPPORT

KEY = re.compile(r"sck_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch):
    """Each test starts with nothing verified in this process."""
    monkeypatch.setattr(api_keys, "_verified", api_keys.VerifiedSecrets(api_keys.CACHE_SIZE))
    monkeypatch.setattr(api_keys, "_guesses", api_keys.FailedGuesses(api_keys.GUESS_LIMIT,
                                                                     api_keys.GUESS_WINDOW))


def a_backend() -> str:
    return f"backend-{uuid.uuid4().hex[:8]}@shop.example"


def make_key(deps, owner: str | None = None, roles: tuple[str, ...] = ("backend",)) -> str:
    with deps.sessions() as session:
        _, key = api_keys.create_key(session=session, owner=owner or a_backend(),
                                     roles=list(roles))
        session.commit()
    return key


def authenticate(deps, presented: str) -> KeyOwner | None:
    with deps.sessions() as session:  # a session per request, as the API opens them
        return api_keys.authenticate(session=session, presented=presented)


def revoke(deps, key_id: str) -> bool:
    with deps.sessions() as session:
        revoked = api_keys.revoke_key(session=session, key_id=key_id)
        session.commit()
    return revoked


def parts(key: str) -> tuple[str, str]:
    match = KEY.fullmatch(key)
    assert match, key
    return match[1], match[2]


def test_a_new_key_authenticates_as_its_owner_with_its_roles(deps):
    owner = a_backend()
    key = make_key(deps, owner.upper())
    key_id, _ = parts(key)
    assert authenticate(deps, key) == KeyOwner(key_id=key_id, owner=owner,
                                               roles=frozenset({"backend"}))


def test_a_staff_key_carries_every_role_it_was_given(deps):
    key = make_key(deps, SUPPORT, ("support", "backend"))
    assert authenticate(deps, key).roles == frozenset({"backend", "support"})


def test_a_wrong_secret_an_unknown_id_or_a_malformed_key_is_refused(deps):
    key = make_key(deps)
    key_id, secret = parts(key)
    other_secret = ("A" if secret[0] != "A" else "B") + secret[1:]
    presented = [
        f"sck_{key_id}_{other_secret}",  # wrong secret
        f"sck_{uuid.uuid4().hex[:12]}_{secret}",  # unknown id, a real secret
        "", "sck", f"sck_{key_id}", f"sck_{key_id}_", f"Bearer {key}", key + "x", key[:-1],
        f"sk_{key_id}_{secret}", f"sck_{key_id.upper()}_{secret}", f"sck_{key_id}x_{secret}",
        key.replace("_", "-", 1), "sck_" + "_" * 60, "\x00" * 60, "ключ" * 20,
    ]
    assert [p for p in presented if authenticate(deps, p) is not None] == []
    assert authenticate(deps, key) is not None


def test_a_wrong_secret_is_refused_for_a_key_already_verified(deps):
    key = make_key(deps)
    key_id, secret = parts(key)
    assert authenticate(deps, key) is not None
    assert authenticate(deps, f"sck_{key_id}_{secret[::-1]}") is None
    assert authenticate(deps, f"sck_{key_id}_{secret[:-1]}{'x' if secret[-1] != 'x' else 'y'}") \
        is None


def test_a_revoked_key_is_refused_at_once_even_after_it_was_verified(deps):
    key = make_key(deps)
    key_id, _ = parts(key)
    assert authenticate(deps, key) is not None  # now remembered as verified
    assert revoke(deps, key_id) is True
    assert authenticate(deps, key) is None
    assert revoke(deps, key_id) is False  # already revoked
    assert revoke(deps, uuid.uuid4().hex[:12]) is False  # unknown


def test_a_repeated_request_costs_no_second_slow_hash(deps, monkeypatch):
    """scrypt takes tens of milliseconds on purpose; a backend's every request must not."""
    key = make_key(deps)
    calls = []
    scrypt = hashlib.scrypt
    monkeypatch.setattr(hashlib, "scrypt", lambda *a, **k: calls.append(1) or scrypt(*a, **k))
    for _ in range(3):
        assert authenticate(deps, key) is not None
    assert len(calls) == 1
    key_id, secret = parts(key)
    assert authenticate(deps, f"sck_{key_id}_{secret[::-1]}") is None
    assert len(calls) == 2  # a different secret is hashed, never taken from the cache


def test_guessing_a_keys_secret_stops_costing_slow_hashes_but_its_user_goes_on(deps,
                                                                             monkeypatch):
    """Past GUESS_LIMIT wrong secrets for one key id within the window, wrong secrets are refused
    without hashing; the key's own secret, already verified, still passes."""
    key = make_key(deps)
    assert authenticate(deps, key) is not None  # its backend is using it
    key_id, _ = parts(key)
    calls = []
    scrypt = hashlib.scrypt
    monkeypatch.setattr(hashlib, "scrypt", lambda *a, **k: calls.append(1) or scrypt(*a, **k))
    guesses = [f"sck_{key_id}_{uuid.uuid4().hex}{uuid.uuid4().hex[:11]}" for _ in range(30)]
    assert all(authenticate(deps, guess) is None for guess in guesses)
    assert len(calls) == api_keys.GUESS_LIMIT
    assert authenticate(deps, key) is not None
    other = make_key(deps)  # another key's first use is hashed as usual
    calls.clear()
    assert authenticate(deps, other) is not None and len(calls) == 1


def test_requests_arriving_at_once_with_a_new_key_verify_it_once(deps, monkeypatch):
    """A burst right after the API starts: one request verifies the secret (16 MB and tens of
    milliseconds of scrypt), the others wait for its verdict instead of each hashing."""
    import threading

    key = make_key(deps)
    calls = []
    scrypt = hashlib.scrypt
    monkeypatch.setattr(hashlib, "scrypt", lambda *a, **k: calls.append(1) or scrypt(*a, **k))
    answers, start = [], threading.Barrier(12)

    def call() -> None:
        start.wait()
        answers.append(authenticate(deps, key))

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 12 and all(answers)
    assert len(calls) == 1


def test_the_cache_of_verified_secrets_is_bounded():
    cache = api_keys.VerifiedSecrets(2)
    for n in range(3):
        cache.add((f"id{n}", b"digest"), "hash")
    assert [cache.holds((f"id{n}", b"digest"), "hash") for n in range(3)] == [False, True, True]
    assert not cache.holds(("id1", b"digest"), "another hash")


def test_keys_verified_from_many_threads_at_once(deps):
    keys = [make_key(deps) for _ in range(3)]
    found: list[KeyOwner | None] = []

    def request(key: str) -> None:
        found.append(authenticate(deps, key))

    threads = [threading.Thread(target=request, args=(key,)) for key in keys * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 12 and None not in found
    assert {owner.key_id for owner in found} == {parts(key)[0] for key in keys}


def test_the_database_never_holds_the_key_or_its_secret(deps):
    key = make_key(deps)
    key_id, secret = parts(key)
    with deps.sessions() as session:
        [row] = session.execute(sa.text("SELECT * FROM api_key WHERE id = :id"),
                                {"id": key_id}).mappings().all()
    stored = " ".join(str(value) for value in row.values())
    fast_hashes = [hashlib.new(name, text.encode()).hexdigest()
                   for name in ("md5", "sha1", "sha256", "sha512") for text in (secret, key)]
    assert [leak for leak in (key, secret, secret[:16], *fast_hashes) if leak in stored] == []
    # What is stored is the salted scrypt hash SPEC section 12 asks for.
    assert len(bytes.fromhex(row["salt"])) >= 16
    assert bytes.fromhex(row["secret_hash"]) == hashlib.scrypt(
        secret.encode(), salt=bytes.fromhex(row["salt"]), n=2**14, r=8, p=1, dklen=32)


def test_two_keys_never_share_a_salt(deps):
    ids = [parts(make_key(deps))[0] for _ in range(2)]
    with deps.sessions() as session:
        salts = session.execute(sa.text("SELECT salt FROM api_key WHERE id IN (:a, :b)"),
                                {"a": ids[0], "b": ids[1]}).scalars().all()
    assert len(set(salts)) == 2


@pytest.mark.parametrize(("owner", "roles"), [
    (SUPPORT, ["support"]), (SALES, ["sales"]), (SUPPORT, ["backend", "support"]),
    (SALES, ["backend"]),
])
def test_a_staff_role_key_belongs_to_staff_with_that_role(deps, owner, roles):
    key = make_key(deps, owner, tuple(roles))
    assert authenticate(deps, key).owner == owner


@pytest.mark.parametrize(("owner", "roles", "problem"), [
    (SUPPORT, ["sales"], f"owner: {SUPPORT} lacks role sales in the staff directory"),
    (SALES, ["support", "backend"], f"owner: {SALES} lacks role support"),
    ("stranger@shop.example", ["support"],
     ("owner: stranger@shop.example is not in the staff directory: a support key needs an "
     "owner with role support")),
    ("stranger@shop.example", ["sales"], "owner: stranger@shop.example is not in the staff"),
    ("not an address", ["backend"], "owner: 'not an address' is not an email address"),
    ("", ["backend"], "owner: an email address of 1 to 200 characters"),
    ("a" * 200 + "@shop.example", ["backend"], "owner: an email address of 1 to 200"),
    ("ops@shop.example", [], "roles: at least one is needed: backend, support, sales"),
    ("ops@shop.example", ["admin"], "roles: unknown role 'admin': expected backend, support"),
    ("ops@shop.example", ["Backend"], "roles: unknown role 'Backend'"),
    ("ops@shop.example", ["backend", "backend"], "roles: 'backend' is given more than once"),
])
def test_a_key_that_may_not_be_made_is_refused_naming_the_field(deps, owner, roles, problem):
    with deps.sessions() as session:
        with pytest.raises(KeyRefused) as refused:
            api_keys.create_key(session=session, owner=owner, roles=roles)
        assert not session.new  # nothing half-written
    assert str(refused.value).startswith(problem)
    assert isinstance(refused.value, ValueError)
    assert refused.value.field == problem.split(":")[0]


def test_the_list_shows_every_key_newest_first_with_its_revocation(deps):
    older, newer = (parts(make_key(deps))[0] for _ in range(2))
    revoke(deps, older)
    with deps.sessions() as session:
        listed = [(row.id, row.revoked_at is not None)
                  for row in api_keys.list_keys(session=session) if row.id in (older, newer)]
    assert listed == [(newer, False), (older, True)]
