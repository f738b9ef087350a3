"""`starter.py release-claim`: free a subscription held by a change that ended without
releasing it (terminated, timed out). A holder that still runs keeps it: cancel that change.

Only support may (role `support` in the staff directory, as for retry and cancel), checked before
anything is looked up or refunded, and every refusal is audited; `--by` was checked as an
address that fits the audit log before the command started (inputs.py), so nothing knowable up
front can fail the audit after the refund."""

from __future__ import annotations

from activities.claims import SubscriptionClaims
from activities.dependencies import Dependencies
from subchange.adapters.gateway import Gateway
from subchange.adapters.workflows import ended_as
from subchange.app.cli.common import EXIT_BAD_INPUT, EXIT_OK, CommandError, emit
from subchange.app.cli.database import open_database
from subchange.app.cli.inputs import ReleaseClaimOptions
from subchange.app.client import connect
from subchange.domain.catalog import default_catalog
from subchange.domain.principals import Action, principal_refusal
from subchange.settings import Settings
from subchange.store import audit, changes, staff, subscriptions


async def cmd_release_claim(options: ReleaseClaimOptions, settings: Settings) -> int:
    sessions = open_database(settings)
    with sessions() as session:
        refusal = principal_refusal(Action.RELEASE_CLAIM, options.by, None,
                                    staff.roles_of(session=session, email=options.by))
        if refusal is not None:
            audit.record_audit(session=session, org_id=options.org, actor=options.by,
                               action=Action.RELEASE_CLAIM.value, outcome="denied",
                               detail=refusal)
            raise CommandError(f"release refused: {refusal}")
        subscription_id = subscriptions.subscription_id_of(session=session, org_id=options.org,
                                                           product=options.product)
        if subscription_id is None:
            raise CommandError(f"--org/--product: {options.org} has no {options.product} "
                               "subscription", EXIT_BAD_INPUT)
        holder = changes.claim_holder(session=session, subscription_id=subscription_id)
        if holder is None:
            emit({"org_id": options.org, "product": options.product, "released": None,
                  "message": "no change holds the subscription"})
            return EXIT_OK
        ended = ("closed" if changes.has_result(session=session, workflow_id=holder)
                 else await ended_as(await connect(settings), holder))
        if ended is None:
            raise CommandError(f"{holder} is still running and holds the subscription; cancel "
                               f"it instead: python starter.py cancel {holder} --by EMAIL")
        # Its compensation first: should it fail, the claim stays and a second run tries again.
        deps = Dependencies(settings=settings, sessions=sessions, catalog=default_catalog(),
                            gateway=Gateway(settings))
        refund_id = SubscriptionClaims(deps).compensate(
            session=session, org_id=options.org, holder=holder, ended=ended,
            by=options.by)
        if changes.release_claim(session=session, subscription_id=subscription_id,
                                 holder=holder):
            audit.record_audit(session=session, org_id=options.org, actor=options.by,
                               action="release_claim", outcome="released",
                               detail=f"{holder} held the {options.product} subscription and had "
                                      f"ended ({ended})")
    emit({"org_id": options.org, "product": options.product, "released": holder,
          "holder_ended": ended, "refund_id": refund_id})
    return EXIT_OK
