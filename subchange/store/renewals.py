"""Items of a subscription's next renewal invoice: the total of a card payer's change below the
gateway's minimum charge, carried instead of charged (subchange/domain/gateway_minimums.py).

An item is added in the transaction that applies its change (subscriptions.apply_change), so it
exists exactly when the change is applied: a retried apply finds the change applied and adds
nothing, an apply rolled back (a stale quote, a lost race) takes its item with it, and the
unique workflow id refuses a second one whatever happens. Renewal billing collects the pending
items of a subscription (not built yet: they stay `pending`).
"""

from __future__ import annotations

from decimal import Decimal

from sqlmodel import Session, col, select

from subchange.domain.contracts import Quote
from subchange.store.tables import RenewalItem

PENDING = "pending"


def carry_to_renewal(*, session: Session, workflow_id: str, org_id: str, subscription_id: int,
                     quote: Quote, invoice_number: str) -> RenewalItem:
    """Add the change's total, with its tax, to the caller's transaction as a pending item of
    the subscription's next renewal invoice."""
    tax = quote.tax.tax if quote.tax is not None else Decimal(0)
    item = RenewalItem(workflow_id=workflow_id, org_id=org_id, product=quote.product,
                       subscription_id=subscription_id, amount=quote.amount_due, tax=tax,
                       total=quote.total_due, currency=quote.currency,
                       invoice_number=invoice_number, status=PENDING)
    session.add(item)
    return item


def renewal_items(*, session: Session, org_id: str, product: str | None = None,
                  status: str | None = PENDING) -> list[RenewalItem]:
    """An organisation's items (of one product), oldest first; pending ones unless told."""
    query = select(RenewalItem).where(RenewalItem.org_id == org_id)
    if product is not None:
        query = query.where(RenewalItem.product == product)
    if status is not None:
        query = query.where(RenewalItem.status == status)
    return list(session.exec(query.order_by(col(RenewalItem.id))))
