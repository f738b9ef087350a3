"""Which version of the workflow's code a run follows: the patches it takes, all at its start.

Release v1.0.0 (the git tag) is the baseline: its behaviour is the only code path and its
histories (tests/workflow/histories/) are the ones every later release must replay. A later change
that running changes must not see is a patch, added to PATCHES and asked here only, when a run
starts (`take_at_start`): a patch first asked after a local step could answer otherwise on replay,
since a local step can end in one workflow task and hand its result over in the next, while a
replay hands it over within the first. The code then branches on `name in state.patches`.

A patch is deprecated (moved to DEPRECATED: `workflow.deprecate_patch`, its old branch deleted)
once no run started without it can still be open (the longest wait a change can make: the sales
decision's expiry, and a change scheduled for the end of a yearly period), and removed a release
after that. The policy is written down in docs/architecture.md, "Versioning".
"""

from __future__ import annotations

from temporalio import workflow

# A change that parks for support records a change.awaiting_support event for webhooks (SPEC
# section 13): one more local step, record_awaiting_support, as it parks.
AWAITING_SUPPORT_EVENT = "awaiting_support_event"

# A declined charge waits for payment (SPEC section 11: retried on a schedule, at once on a new
# card) instead of parking for support: record_awaiting_payment, email_payment_failed and a timer
# where a run without it parks (workflows/payment_recovery.py).
PAYMENT_RECOVERY = "payment_recovery"

# Patches since v1.0.0, oldest first, each with a comment saying what it changes.
PATCHES: tuple[str, ...] = (AWAITING_SUPPORT_EVENT, PAYMENT_RECOVERY)
# Patches whose old branch is gone: still marked, so histories that have them replay.
DEPRECATED: tuple[str, ...] = ()


def take_at_start() -> frozenset[str]:
    """The run's first act: the patches it follows, recorded now (or, on replay, read)."""
    for patch in DEPRECATED:
        workflow.deprecate_patch(patch)
    return frozenset(patch for patch in PATCHES if workflow.patched(patch))
