"""Activities: the steps that touch the world (database, payment gateway, SMTP).

Each side effect is keyed by the workflow id (from the activity context) and the step name, and
recorded in our database, so a retried or re-run activity finds what it already did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from subchange.adapters.gateway import Gateway
from subchange.domain.catalog import Catalog
from subchange.settings import Settings
from subchange.store.db import SessionFactory


@dataclass(frozen=True)
class Dependencies:
    settings: Settings
    sessions: SessionFactory
    catalog: Catalog
    gateway: Gateway


def all_activities(deps: Dependencies) -> list[Callable]:
    from activities.admission import AdmissionActivities
    from activities.invoicing import InvoiceActivities
    from activities.payments import PaymentActivities
    from activities.sales import SalesActivities
    from activities.subscriptions import SubscriptionActivities
    from activities.tickets import TicketActivities

    admission, payments = AdmissionActivities(deps), PaymentActivities(deps)
    sales, subscriptions = SalesActivities(deps), SubscriptionActivities(deps)
    invoices, tickets = InvoiceActivities(deps), TicketActivities(deps)
    return [
        admission.open_change, admission.authorize_admin, admission.validate_change,
        admission.quote_change, admission.close_change,
        payments.charge, payments.refund_charge,
        sales.open_sales_case, sales.close_sales_case,
        subscriptions.apply_change,
        invoices.email_invoice,
        tickets.open_refund_ticket,
    ]
