"""Who may act on a change (SPEC section 9): every update names its principal (`by`), and this
says whether that principal may do it; a refusal names the principal and the missing right.

Requesters are users of the organisation: they may cancel their own change. Staff are the
vendor's people, in the staff directory: `retry` and `cancel` of any change need role `support`,
`sales_decision` needs role `sales`, and a requester never decides their own sales case. The
support command `starter.py release-claim` (not an update: it runs outside the workflow) needs
role `support` too.

Through the HTTP API (section 12) the principal is the API key's owner: a key's roles say what
it may do, and a `support` or `sales` key's owner must hold that role in the staff directory.
"""

from __future__ import annotations

from enum import StrEnum

STAFF_ROLES = ("support", "sales")
# What an API key may do: `backend` quotes, starts and follows changes; the staff roles do what
# their namesakes in the staff directory do, and only their holders may own such a key.
KEY_ROLES = ("backend", *STAFF_ROLES)


class Action(StrEnum):
    RETRY = "retry"
    CANCEL = "cancel"
    SALES_DECISION = "sales_decision"
    RELEASE_CLAIM = "release_claim"
    RESCHEDULE = "reschedule"  # staging only: fire a scheduled change early (SPEC section 10)


NEEDED_ROLE = {Action.RETRY: "support", Action.CANCEL: "support",
               Action.SALES_DECISION: "sales", Action.RELEASE_CLAIM: "support",
               Action.RESCHEDULE: "support"}


def same_person(one: str | None, other: str | None) -> bool:
    return bool(one and other and one.strip().lower() == other.strip().lower())


def needs_directory(action: Action, by: str, requester: str | None) -> bool:
    """False when the request alone decides (a requester cancelling their own change)."""
    return not (action is Action.CANCEL and same_person(by, requester))


def missing_principal(action: Action) -> str:
    who = "the requester or a member of support" if action is Action.CANCEL else (
        f"a member of {NEEDED_ROLE[action]}")
    return f"{action.value} needs `by`: who asks ({who} in the staff directory)"


def principal_refusal(action: Action, by: str, requester: str | None,
                      roles: frozenset[str] | None) -> str | None:
    """Why `by` may not do `action` on a change `requester` asked for, or None when they may.
    `roles`: theirs in the staff directory, None when they are not in it."""
    if action is Action.SALES_DECISION and same_person(by, requester):
        return f"{by} requested this change and can't decide its sales case"
    if not needs_directory(action, by, requester):
        return None
    needed = NEEDED_ROLE[action]
    alternative = " (or to be its requester)" if action is Action.CANCEL else ""
    if roles is None:
        return (f"{by} is not in the staff directory: {action.value} needs role "
                f"{needed}{alternative}")
    if needed not in roles:
        held = ", ".join(sorted(roles)) or "none"
        return (f"{by} lacks role {needed}: {action.value} needs it{alternative}; "
                f"their roles: {held}")
    return None


def reschedule_refusal(allowed: bool) -> str | None:
    """The `reschedule` update is for staging and demos: a worker without ALLOW_RESCHEDULE
    refuses it, whoever asks."""
    if allowed:
        return None
    return ("reschedule is for staging and demos only: this worker does not have "
            "ALLOW_RESCHEDULE=true")
