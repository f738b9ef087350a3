"""A change's quote as of today, or the rule that refuses it, without changing anything: what
`starter.py quote` and `POST /v1/quotes` answer, computed as the workflow would today."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from subchange.domain import rules
from subchange.domain.catalog import Catalog
from subchange.domain.contracts import ChangeInput, Quote, Rejection
from subchange.domain.quoting import build_period_end_quote, build_quote
from subchange.domain.step_io import DatedRequest
from subchange.store import subscriptions

PREVIEW_ID = "quote-preview"


def preview(*, session: Session, catalog: Catalog, change: ChangeInput) -> Quote | Rejection:
    request = change.with_request_id(PREVIEW_ID)
    ctx = subscriptions.load_context(session=session, org_id=request.org_id,
                                     product=request.product, requested_by=request.requested_by)
    now = datetime.now(UTC)
    today = DatedRequest(request=request, change_date=now.date(),
                         as_of=now).day_for(ctx.org)  # as the workflow dates it
    rejection = rules.authorize_requester(catalog, request, ctx)
    target = None
    if rejection is None:
        target, rejection = rules.validate_change(catalog, request, ctx, today)
    if rejection is not None:
        return rejection
    assert target and ctx.org and ctx.subscription
    if request.effective == "period_end":
        return build_period_end_quote(catalog=catalog, org=ctx.org, sub=ctx.subscription,
                                      request=request, target=target, change_date=today)
    return build_quote(catalog=catalog, org=ctx.org, sub=ctx.subscription, request=request,
                       target=target, change_date=today)
