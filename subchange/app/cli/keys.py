"""`starter.py api-key create | list | revoke`: the keys of the HTTP API (SPEC section 12), for
operators. A key is printed once, when it is made; the database keeps only a hash of its secret.
Each key made or revoked is in the audit log (org `-`, actor the operator's OS user and host),
written in the transaction that makes or revokes it."""

from __future__ import annotations

import getpass
import socket
from datetime import UTC, datetime

from subchange.app.cli.common import CLI_FIELDS, EXIT_BAD_INPUT, EXIT_OK, CommandError, emit
from subchange.app.cli.database import open_database
from subchange.app.cli.inputs import ApiKeyCreateOptions, ApiKeyListOptions, ApiKeyRevokeOptions
from subchange.settings import Settings
from subchange.store import api_keys, audit
from subchange.store.tables import ApiKey


def operator() -> str:
    """Who ran the command: no principal is given (whoever may run starter.py against the
    database manages the keys), so the audit log names the OS user and the host."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        user = "unknown"
    return f"operator:{user}@{socket.gethostname()}"


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment).isoformat()


def _shown(row: ApiKey) -> dict:
    """A key as `list` shows it: never its hash or salt."""
    return {"id": row.id, "owner": row.owner, "roles": list(row.roles),
            "created_at": _iso(row.created_at), "revoked_at": _iso(row.revoked_at)}


def cmd_api_key_create(options: ApiKeyCreateOptions, settings: Settings) -> int:
    with open_database(settings)() as session:
        try:
            row, key = api_keys.create_key(session=session, owner=options.owner,
                                           roles=list(options.roles))
        except api_keys.KeyRefused as error:
            raise CommandError(f"{CLI_FIELDS[error.field]}: {error.problem}",
                               EXIT_BAD_INPUT) from None
        made = {"id": row.id, "key": key, "owner": row.owner, "roles": list(row.roles)}
        audit.add_audit_entry(session=session, org_id=audit.NO_ORG, actor=operator(),
                              action="api_key_create", outcome="created",
                              detail=f"key {row.id} of {row.owner}, roles "
                                     f"{', '.join(row.roles)}")
        session.commit()
    emit(made)
    return EXIT_OK


def cmd_api_key_list(options: ApiKeyListOptions, settings: Settings) -> int:
    with open_database(settings)() as session:
        emit({"keys": [_shown(row) for row in api_keys.list_keys(session=session)]})
    return EXIT_OK


def cmd_api_key_revoke(options: ApiKeyRevokeOptions, settings: Settings) -> int:
    with open_database(settings)() as session:
        revoked = api_keys.revoke_key(session=session, key_id=options.key_id)
        row = session.get(ApiKey, options.key_id, populate_existing=True)
        if row is None:
            raise CommandError(f"ID: no key {options.key_id}; `api-key list` shows them",
                               EXIT_BAD_INPUT)
        if revoked:
            audit.add_audit_entry(session=session, org_id=audit.NO_ORG, actor=operator(),
                                  action="api_key_revoke", outcome="revoked",
                                  detail=f"key {row.id} of {row.owner}")
        shown = {**_shown(row), "revoked_now": revoked}
        session.commit()
    emit(shown)
    return EXIT_OK
