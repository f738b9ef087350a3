"""The audit log: who attempted what on which organisation, and how it ended (R1)."""

from __future__ import annotations

from sqlmodel import Session, select

from subchange.store.tables import AuditLog

# The org_id of an entry about the service itself (an API key made or revoked), which no
# organisation's id can be (contracts.IDENTIFIER starts with a letter or digit).
NO_ORG = "-"


def _fit(column: str, value: str) -> str:
    """The value cut to its column's width: an entry is often written after the effect it
    records (a refund made), where a value too long for PostgreSQL must not fail it."""
    # SQLModel declares no __table__ (SQLAlchemy's declarative mapping sets it).
    return value[:AuditLog.__table__.c[column].type.length]  # type: ignore[attr-defined]


def add_audit_entry(*, session: Session, org_id: str, actor: str, action: str, outcome: str,
                    detail: str = "", workflow_id: str | None = None) -> None:
    """Add an entry to the caller's transaction; with a workflow id, at most one per
    (workflow id, action), so a retried step is recorded once."""
    action = _fit("action", action)
    if workflow_id is not None and session.exec(select(AuditLog.id).where(
            AuditLog.workflow_id == workflow_id, AuditLog.action == action)).first() is not None:
        return
    session.add(AuditLog(org_id=_fit("org_id", org_id), actor=_fit("actor", actor),
                         action=action, outcome=_fit("outcome", outcome),
                         detail=_fit("detail", detail), workflow_id=workflow_id))


def record_audit(*, session: Session, org_id: str, actor: str, action: str, outcome: str,
                 detail: str = "", workflow_id: str | None = None) -> None:
    """Add an entry (as add_audit_entry does) and commit it."""
    add_audit_entry(session=session, org_id=org_id, actor=actor, action=action, outcome=outcome,
                    detail=detail, workflow_id=workflow_id)
    session.commit()
