"""`GET /v1/orgs/{org_id}/subscriptions/{product}`: a subscription as it stands, with what a
change of it may ask for, so a page or a backend explains a change before it is asked."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool

from subchange.api.auth import ApiServices, SupportOrBackend
from subchange.api.problems import ProblemError, problem_responses
from subchange.app.subscriptions import UnknownSubscription, describe_subscription
from subchange.domain.catalog import PRODUCT_IDS, default_catalog
from subchange.domain.contracts import IDENTIFIER
from subchange.domain.subscription_details import SubscriptionDetails

router = APIRouter(prefix="/v1", tags=["subscriptions"])
PRODUCT_IDS_TEXT = ", ".join(PRODUCT_IDS)


@router.get("/orgs/{org_id}/subscriptions/{product}", operation_id="getSubscription",
            response_model=SubscriptionDetails,
            summary="A subscription as it stands, and what a change of it may ask for",
            description="Its plan, seats, active users, billing period and payment, the seat "
                        "counts a change may ask for (R2, R3), every plan move judged now by "
                        "the rules a change is judged by (R5, R6, R7: the same `reason_code` a "
                        "quote gives), the card on file as the gateway shows it (brand and last "
                        "four digits; `card_status` `unavailable`, not a failure, when the "
                        "gateway does not answer), and the change scheduled for the period end "
                        "or in progress, if any. `product` is a product of the catalog; any "
                        "other, an unknown organisation or one without that product is a 404.",
            responses=problem_responses(401, 403, 404, 503))
async def get_subscription(
    org_id: Annotated[str, Path(description="the organisation's id")],
    product: Annotated[str, Path(description=f"a product of the catalog: {PRODUCT_IDS_TEXT}")],
    _: SupportOrBackend, api: ApiServices,
) -> SubscriptionDetails:
    def describe() -> SubscriptionDetails:
        from subchange.adapters.gateway import Gateway  # loaded by the first read, not at start

        return describe_subscription(sessions=api.sessions, catalog=default_catalog(),
                                     gateway=Gateway(api.settings), org_id=org_id,
                                     product=product)

    if re.fullmatch(IDENTIFIER, org_id) is None:
        raise ProblemError(404, "not-found", f"no organisation {org_id!r}")
    try:
        return await run_in_threadpool(describe)
    except UnknownSubscription as error:
        raise ProblemError(404, "not-found", str(error)) from None
