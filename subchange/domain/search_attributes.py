"""The search attributes of SPEC section 7, for list filters in the Web UI and the CLI."""

from __future__ import annotations

from datetime import datetime

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

from subchange.domain.contracts import ChangeRequest

ORG_ID = SearchAttributeKey.for_keyword("OrgId")
PRODUCT = SearchAttributeKey.for_keyword("Product")
CHANGE_KIND = SearchAttributeKey.for_keyword("ChangeKind")
CHANGE_STEP = SearchAttributeKey.for_keyword("ChangeStep")
CHANGE_STATUS = SearchAttributeKey.for_keyword("ChangeStatus")
# SPEC section 10: when a scheduled change fires (the start of its period end, in the
# organisation's time zone); only scheduled changes have it.
CHANGE_EFFECTIVE_AT = SearchAttributeKey.for_datetime("ChangeEffectiveAt")
ALL_KEYS = (ORG_ID, PRODUCT, CHANGE_KIND, CHANGE_STEP, CHANGE_STATUS, CHANGE_EFFECTIVE_AT)


def initial_search_attributes(request: ChangeRequest) -> TypedSearchAttributes:
    """Set at start, so a change is findable before its first workflow task runs."""
    return TypedSearchAttributes([
        SearchAttributePair(ORG_ID, request.org_id),
        SearchAttributePair(PRODUCT, request.product),
        SearchAttributePair(CHANGE_KIND, request.change.kind),
        SearchAttributePair(CHANGE_STEP, "requested"),
        SearchAttributePair(CHANGE_STATUS, "running"),
    ])


def search_attribute_updates(*, request: ChangeRequest | None, state: str, status: str,
                             effective_at: datetime | None = None
                             ) -> list[SearchAttributeUpdate]:
    updates: list[SearchAttributeUpdate] = [CHANGE_STEP.value_set(state),
                                            CHANGE_STATUS.value_set(status)]
    if effective_at is not None:
        updates.append(CHANGE_EFFECTIVE_AT.value_set(effective_at))
    if request is not None:
        updates += [ORG_ID.value_set(request.org_id), PRODUCT.value_set(request.product),
                    CHANGE_KIND.value_set(request.change.kind)]
    return updates
