"""Every activity of the change pipeline, the webhook relays and the reconciliation sweep, bound
to one set of dependencies, for a worker."""

from __future__ import annotations

from collections.abc import Callable

from activities.admission import AdmissionActivities
from activities.dependencies import Dependencies
from activities.invoicing import InvoiceActivities
from activities.payment_recovery import PaymentRecoveryActivities
from activities.payments import PaymentActivities
from activities.principals import PrincipalActivities
from activities.sales import SalesActivities
from activities.scheduling import SchedulingActivities
from activities.subscriptions import SubscriptionActivities
from activities.support import SupportActivities
from activities.sweep import SweepActivities
from activities.tickets import TicketActivities
from activities.webhooks import WebhookActivities


def all_activities(deps: Dependencies) -> list[Callable]:
    admission, payments = AdmissionActivities(deps), PaymentActivities(deps)
    sales, subscriptions = SalesActivities(deps), SubscriptionActivities(deps)
    invoices, tickets = InvoiceActivities(deps), TicketActivities(deps)
    principals, support = PrincipalActivities(deps), SupportActivities(deps)
    webhooks, recovery = WebhookActivities(deps), PaymentRecoveryActivities(deps)
    scheduling = SchedulingActivities(deps)
    return [
        admission.open_change, admission.authorize_admin, admission.validate_change,
        admission.quote_change, admission.close_change,
        payments.charge, payments.refund_charge,
        sales.open_sales_case, sales.close_sales_case,
        subscriptions.apply_change, subscriptions.find_applied_change,
        invoices.email_invoice,
        tickets.open_refund_ticket,
        principals.authorize_principal, principals.record_temporal_cancel,
        support.record_awaiting_support,
        recovery.record_awaiting_payment, recovery.email_payment_failed,
        webhooks.pending, webhooks.deliver,
        SweepActivities(deps).sweep_changes,
        scheduling.schedule_change, scheduling.fire_scheduled_change,
    ]
