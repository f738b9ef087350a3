"""Keys of the HTTP API (SPEC section 12): created, listed and revoked by operators
(`starter.py api-key`), presented by backends as `Authorization: Bearer sck_<id>_<secret>`.

The id is public (it names the key in `api-key list` and the audit log); only a salted scrypt
hash of the secret is stored, so the database never holds a usable key. Verifying a secret is
deliberately slow, so the secrets verified lately are remembered in this process (by id and
SHA-256 of the secret): a repeated request costs one primary-key lookup, which still sees a
revocation at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from pydantic.networks import validate_email
from sqlmodel import Session, col, select

from subchange.domain.contracts import RetryRequest
from subchange.domain.principals import KEY_ROLES, STAFF_ROLES
from subchange.store.staff import roles_of
from subchange.store.tables import ApiKey, utcnow

ROLES = KEY_ROLES
PREFIX = "sck"
KEY_ID = re.compile(r"[0-9a-f]{12}")
# secrets.token_urlsafe(32): 43 characters of the URL-safe alphabet, which has `_`: a key is
# split at its first two underscores only, and the id (hex) never holds one.
SECRET = re.compile(r"[A-Za-z0-9_-]{43}")
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
# An owner is the principal of the updates sent with the key: as long as an update's `by` may be.
OWNER_MAX = RetryRequest.model_fields["by"].metadata[0].max_length
CACHE_SIZE = 1024


class KeyRefused(ValueError):
    """A key that can't be created: `field` (owner, roles) and the problem."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


@dataclass(frozen=True)
class KeyOwner:
    """Who a presented key speaks for: the principal of section 9 and what the key may do."""

    key_id: str
    owner: str
    roles: frozenset[str]


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode("ascii"), salt=salt, **SCRYPT)


def _owner(owner: str) -> str:
    owner = owner.strip().lower()
    if not owner or len(owner) > OWNER_MAX:
        raise KeyRefused("owner", f"an email address of 1 to {OWNER_MAX} characters is needed "
                                  f"(got {len(owner)})")
    try:
        validate_email(owner)
    except ValueError as error:
        why = str(error).removeprefix("value is not a valid email address: ")
        raise KeyRefused("owner", f"{owner!r} is not an email address ({why})") from None
    return owner


def _roles(*, session: Session, owner: str, roles: list[str]) -> list[str]:
    if not roles:
        raise KeyRefused("roles", f"at least one is needed: {', '.join(ROLES)}")
    unknown = [role for role in roles if role not in ROLES]
    if unknown:
        raise KeyRefused("roles", f"unknown role {unknown[0]!r}: expected {', '.join(ROLES)}")
    repeated = [role for index, role in enumerate(roles) if role in roles[:index]]
    if repeated:
        raise KeyRefused("roles", f"{repeated[0]!r} is given more than once")
    needed = [role for role in roles if role in STAFF_ROLES]
    held = roles_of(session=session, email=owner) if needed else frozenset()
    for role in needed:
        if held is None:
            raise KeyRefused("owner", f"{owner} is not in the staff directory: a {role} key "
                                      f"needs an owner with role {role}")
        if role not in held:
            raise KeyRefused("owner", f"{owner} lacks role {role} in the staff directory: a "
                                      f"{role} key needs it; their roles: "
                                      f"{', '.join(sorted(held)) or 'none'}")
    return [role for role in ROLES if role in roles]


def create_key(*, session: Session, owner: str, roles: list[str]) -> tuple[ApiKey, str]:
    """A new key of `owner` with `roles`, added to the caller's transaction (not committed),
    and the full key, which nobody can read again. Raises KeyRefused naming the field."""
    owner = _owner(owner)
    roles = _roles(session=session, owner=owner, roles=list(roles))
    key_id = secrets.token_hex(6)
    while session.get(ApiKey, key_id) is not None:  # 2**48 ids: a clash is all but impossible
        key_id = secrets.token_hex(6)
    secret, salt = secrets.token_urlsafe(32), secrets.token_bytes(16)
    row = ApiKey(id=key_id, owner=owner, roles=roles, salt=salt.hex(),
                 secret_hash=_hash(secret, salt).hex())
    session.add(row)
    return row, f"{PREFIX}_{key_id}_{secret}"


def list_keys(*, session: Session) -> list[ApiKey]:
    """Every key, newest first, the revoked ones with their revoked_at."""
    return list(session.exec(select(ApiKey).order_by(col(ApiKey.created_at).desc(),
                                                     col(ApiKey.id).desc())))


def revoke_key(*, session: Session, key_id: str) -> bool:
    """Revoke a key in the caller's transaction; False when it is unknown or already revoked
    (of two revocations racing, one wins)."""
    done = session.exec(sa.update(ApiKey)
                        .where(col(ApiKey.id) == key_id, col(ApiKey.revoked_at).is_(None))
                        .values(revoked_at=utcnow())
                        .execution_options(synchronize_session="evaluate"))
    return done.rowcount == 1


class VerifiedSecrets:
    """The (key id, SHA-256 of the secret) pairs verified lately, least recently used out."""

    def __init__(self, size: int) -> None:
        self.size, self.lock = size, threading.Lock()
        self.pairs: OrderedDict[tuple[str, bytes], str] = OrderedDict()

    def holds(self, pair: tuple[str, bytes], secret_hash: str) -> bool:
        with self.lock:
            if self.pairs.get(pair) != secret_hash:
                return False
            self.pairs.move_to_end(pair)
            return True

    def add(self, pair: tuple[str, bytes], secret_hash: str) -> None:
        with self.lock:
            self.pairs[pair] = secret_hash
            self.pairs.move_to_end(pair)
            while len(self.pairs) > self.size:
                self.pairs.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.pairs.clear()


_verified = VerifiedSecrets(CACHE_SIZE)


class FailedGuesses:
    """Wrong secrets presented for each key id lately. Past GUESS_LIMIT within GUESS_WINDOW
    seconds, a key id's unverified secrets are refused without hashing: guessing costs the
    guesser, not the API's CPU (scrypt is slow on purpose). A secret already verified (cached)
    still passes, so a backend that is using its key is not locked out by someone else's
    guesses."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window, self.lock = limit, window, threading.Lock()
        self.seen: dict[str, list[float]] = {}

    def exhausted(self, key_id: str) -> bool:
        now = time.monotonic()
        with self.lock:
            recent = [t for t in self.seen.get(key_id, ()) if now - t < self.window]
            if recent:
                self.seen[key_id] = recent
            else:
                self.seen.pop(key_id, None)
            return len(recent) >= self.limit

    def add(self, key_id: str) -> None:
        with self.lock:
            if len(self.seen) > CACHE_SIZE:  # bounded: forget the oldest ids
                self.seen.pop(next(iter(self.seen)))
            self.seen.setdefault(key_id, []).append(time.monotonic())


@contextmanager
def _verifying(pair: tuple[str, bytes]) -> Iterator[None]:
    with _verifying_lock:
        lock, users = _in_flight.get(pair, (threading.Lock(), 0))
        _in_flight[pair] = (lock, users + 1)
    try:
        with lock:
            yield
    finally:
        with _verifying_lock:
            lock, users = _in_flight[pair]
            if users == 1:
                del _in_flight[pair]
            else:
                _in_flight[pair] = (lock, users - 1)


_verifying_lock = threading.Lock()
_in_flight: dict[tuple[str, bytes], tuple[threading.Lock, int]] = {}

GUESS_LIMIT, GUESS_WINDOW = 10, 60.0
_guesses = FailedGuesses(GUESS_LIMIT, GUESS_WINDOW)


def parse_key(presented: str) -> tuple[str, str] | None:
    """(id, secret) of a key as `create_key` makes them; None for anything else."""
    parts = presented.strip().split("_", 2)
    if (len(parts) != 3 or parts[0] != PREFIX or not KEY_ID.fullmatch(parts[1])
            or not SECRET.fullmatch(parts[2])):
        return None
    return parts[1], parts[2]


def authenticate(*, session: Session, presented: str) -> KeyOwner | None:
    """Whom a presented key speaks for; None when it is malformed, unknown, revoked or its
    secret is wrong. Use a fresh session (one per request): the row is read on every call."""
    parsed = parse_key(presented)
    if parsed is None:
        return None
    key_id, secret = parsed
    row = session.get(ApiKey, key_id, populate_existing=True)
    if row is None or row.revoked_at is not None:
        return None
    pair = (key_id, hashlib.sha256(secret.encode("ascii")).digest())
    if not _verified.holds(pair, row.secret_hash):
        # One verification of a secret at a time: requests arriving together with a key this
        # process has not verified yet wait for the first one's verdict instead of each paying
        # scrypt's 16 MB and tens of milliseconds.
        with _verifying(pair):
            if not _verified.holds(pair, row.secret_hash):
                if _guesses.exhausted(key_id):
                    return None
                if not hmac.compare_digest(_hash(secret, bytes.fromhex(row.salt)),
                                           bytes.fromhex(row.secret_hash)):
                    _guesses.add(key_id)
                    return None
                _verified.add(pair, row.secret_hash)
    return KeyOwner(key_id=row.id, owner=row.owner, roles=frozenset(row.roles))
