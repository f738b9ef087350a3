"""The staff directory (SPEC section 9), loaded from fixture files like organisations."""

from __future__ import annotations

from sqlmodel import Session

from subchange.store.tables import Staff, utcnow


def roles_of(*, session: Session, email: str) -> frozenset[str] | None:
    """The roles of a staff member; None when the address is not in the directory."""
    member = session.get(Staff, email.strip().lower())
    return frozenset(member.roles) if member is not None else None


def put_member(*, session: Session, email: str, roles: list[str]) -> bool:
    """Create or update a member in the caller's transaction; True when new."""
    member = session.get(Staff, email)
    created = member is None
    member = member or Staff(email=email)
    member.roles, member.updated_at = sorted(set(roles)), utcnow()
    session.add(member)
    return created
