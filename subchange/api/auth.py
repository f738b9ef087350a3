"""Who is asking (SPEC sections 9 and 12): `Authorization: Bearer <API key>`. The key's owner is
the principal of every update sent with it, never a field of the body. A missing, unknown or
revoked key is 401; a key without the operation's role is 403."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from subchange.api.problems import ProblemError
from subchange.api.services import Services
from subchange.store.api_keys import KeyOwner, authenticate

bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                    description="an API key from `python starter.py api-key create`")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="subchange"'}


def services(request: Request) -> Services:
    return request.app.state.services


def key_owner(request: Request,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
              ) -> KeyOwner:
    # Sync: FastAPI runs it in its thread pool, beside the event loop, for the database lookup.
    if credentials is None:
        raise ProblemError(401, "unauthorized", "an API key is required: send "
                           "Authorization: Bearer <key>", headers=CHALLENGE)
    with services(request).sessions() as session:
        owner = authenticate(session=session, presented=credentials.credentials)
    if owner is None:
        raise ProblemError(401, "unauthorized", "the API key is unknown or revoked",
                           headers=CHALLENGE)
    return owner


def role(*allowed: str) -> Callable[..., KeyOwner]:
    """A dependency: the key's owner, when the key has one of `allowed` roles."""

    def check(owner: Annotated[KeyOwner, Depends(key_owner)]) -> KeyOwner:
        if not owner.roles & set(allowed):
            raise ProblemError(
                403, "forbidden", f"the key {owner.key_id} of {owner.owner} has role "
                f"{', '.join(sorted(owner.roles))}; this needs role {' or '.join(allowed)}")
        return owner

    return check


ApiServices = Annotated[Services, Depends(services)]
Backend = Annotated[KeyOwner, Depends(role("backend"))]
Support = Annotated[KeyOwner, Depends(role("support"))]
Sales = Annotated[KeyOwner, Depends(role("sales"))]
SupportOrBackend = Annotated[KeyOwner, Depends(role("support", "backend"))]
Reader = Annotated[KeyOwner, Depends(role("backend", "support", "sales"))]
