"""SQLModel tables: rows of the service's own database. Never used as Temporal payloads."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _money_column(nullable: bool = False) -> sa.Column:
    return sa.Column(sa.Numeric(14, 2), nullable=nullable)


def _json_column() -> sa.Column:
    return sa.Column(sa.JSON, nullable=False, default=list)


def _timestamp(nullable: bool = False) -> sa.Column:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


class Org(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    currency: str = Field(max_length=3)
    billing_email: str = Field(max_length=254)
    # The IANA time zone whose calendar dates its changes (a change is priced as of that day).
    time_zone: str = Field(default="UTC", sa_column=sa.Column(sa.String(64), nullable=False,
                                                              server_default="UTC"))
    # Whose consumption tax applies (ISO 3166-1 alpha-2; SPEC section 14), whether the customer
    # is exempt, and the language of its invoices (ja, en).
    country: str | None = Field(default=None, max_length=2)
    tax_exempt: bool = Field(default=False, sa_column=sa.Column(sa.Boolean, nullable=False,
                                                                server_default=sa.false()))
    locale: str = Field(default="en", sa_column=sa.Column(sa.String(8), nullable=False,
                                                          server_default="en"))
    # Its own waits between a declined charge's attempts (SPEC 11), ISO 8601 durations separated
    # by commas; None: PAYMENT_RETRY_SCHEDULE's.
    payment_retry_schedule: str | None = Field(default=None, max_length=200)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class OrgUser(SQLModel, table=True):
    __tablename__ = "org_user"
    __table_args__ = (sa.UniqueConstraint("org_id", "email"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(foreign_key="org.id", index=True, max_length=64)
    email: str = Field(max_length=254)
    role: str = Field(max_length=32)  # member | admin | super_admin
    primary_contact: bool = False
    active: bool = True


class OrgUserProduct(SQLModel, table=True):
    """A product assigned to a user of the organisation: while the user is active, a seat holder
    of it (R4). A row per user and product, so the seat floor is counted by the database through
    an index, however many users the organisation has."""
    __tablename__ = "org_user_product"
    __table_args__ = (sa.Index("ix_org_user_product_org_product", "org_id", "product"),)

    user_id: int = Field(foreign_key="org_user.id", primary_key=True)
    product: str = Field(primary_key=True, max_length=32)
    org_id: str = Field(foreign_key="org.id", max_length=64)


class Staff(SQLModel, table=True):
    """The vendor's people (SPEC section 9): who may retry or cancel any change (support) and
    decide sales cases (sales)."""

    email: str = Field(primary_key=True, max_length=254)  # lower case
    roles: list[str] = Field(default_factory=list, sa_column=_json_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class Subscription(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("org_id", "product"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(foreign_key="org.id", index=True, max_length=64)
    product: str = Field(max_length=32)
    plan: str = Field(max_length=32)
    seats: int
    pricing_model: str = Field(max_length=32)
    billing_period: str = Field(max_length=16)
    period_start: date
    period_end: date
    payment_method: str = Field(max_length=16)  # online | offline
    gateway_customer_id: str | None = Field(default=None, max_length=64)
    gateway_payment_method_id: str | None = Field(default=None, max_length=64)
    card_last4: str | None = Field(default=None, max_length=4)
    unit_price: Decimal | None = Field(default=None, sa_column=_money_column(nullable=True))
    disabled_features: list[str] = Field(default_factory=list, sa_column=_json_column())
    version: int = 1  # bumped by every applied change: quotes name the version they priced
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class ChangeRecord(SQLModel, table=True):
    """One row per change (workflow id), holding its final result once it has ended."""

    __tablename__ = "change_record"

    workflow_id: str = Field(primary_key=True, max_length=80)
    request_id: str = Field(max_length=64)
    org_id: str = Field(index=True, max_length=64)
    product: str = Field(max_length=32)
    kind: str = Field(max_length=16)
    requested_by: str = Field(max_length=254)
    status: str = Field(default="running", max_length=16)
    result: dict | None = Field(default=None, sa_column=sa.Column(sa.JSON, nullable=True))
    # How the change settled, first one wins: "applied", or "withdrawn" (cancelled, rejected,
    # or compensated after it ended without closing); an apply never commits once withdrawn.
    settled_as: str | None = Field(default=None, max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class SubscriptionClaim(SQLModel, table=True):
    """At most one change in flight per subscription: the row names the change that holds it."""

    __tablename__ = "subscription_claim"

    subscription_id: int = Field(primary_key=True, foreign_key="subscription.id")
    workflow_id: str = Field(max_length=80)
    claimed_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class ScheduledChange(SQLModel, table=True):
    """At most one change scheduled for a subscription's period end (SPEC section 10): the row
    names the change that holds the slot; it is freed when that change ends, and taken over
    (compare-and-set on the holder) by a change that replaces it."""

    __tablename__ = "scheduled_change"

    subscription_id: int = Field(primary_key=True, foreign_key="subscription.id")
    workflow_id: str = Field(max_length=80, unique=True)
    effective_date: date
    # The change this one replaced (replace_scheduled), kept so a retried step still tells it.
    replaced: str | None = Field(default=None, max_length=80)
    scheduled_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class GatewayCall(SQLModel, table=True):
    """Idempotency ledger of payment-gateway side effects, keyed by workflow id and step."""

    __tablename__ = "gateway_call"

    workflow_id: str = Field(primary_key=True, max_length=80)
    step: str = Field(primary_key=True, max_length=32)
    # charge: started -> created (intent recorded) -> pending | succeeded | declined | voided;
    # refund: started -> succeeded. Moved by compare-and-set (subchange.store.ledger).
    status: str = Field(max_length=16)
    external_id: str | None = Field(default=None, max_length=64)
    # The activity attempt that holds the entry: a newer attempt takes it over, and an older one
    # still running beside it then loses every move it tries.
    holder: str | None = Field(default=None, max_length=64)
    # Intents created for this entry so far: the gateway's idempotency key of the next one.
    generation: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False,
                                                           server_default="0"))
    amount: Decimal | None = Field(default=None, sa_column=_money_column(nullable=True))
    currency: str | None = Field(default=None, max_length=3)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class AppliedChange(SQLModel, table=True):
    __tablename__ = "applied_change"

    workflow_id: str = Field(primary_key=True, max_length=80)
    subscription_id: int = Field(foreign_key="subscription.id", index=True)
    before: dict = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    after: dict = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    applied_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class Invoice(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    number: str | None = Field(default=None, unique=True, max_length=32)
    workflow_id: str = Field(unique=True, max_length=80)
    org_id: str = Field(index=True, max_length=64)
    product: str = Field(max_length=32)
    amount: Decimal = Field(sa_column=_money_column())  # the total, tax included
    currency: str = Field(max_length=3)
    # Tax-exclusive amount and tax (SPEC 14); None on invoices issued before tax was shown.
    subtotal: Decimal | None = Field(default=None, sa_column=_money_column(nullable=True))
    tax: Decimal | None = Field(default=None, sa_column=_money_column(nullable=True))
    emailed_to: str = Field(max_length=254)
    email_status: str = Field(default="pending", max_length=16)  # pending | sending | sent
    message_id: str | None = Field(default=None, max_length=200)
    # While `sending`: the attempt holding the lease, and until when (renewed as it sends).
    sending_holder: str | None = Field(default=None, max_length=64)
    sending_until: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    quote: dict = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    payment: dict = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    # As they were at issue (an invoice is never edited after): the issuer (name, address,
    # registration_number), the language it is written in, the recipient's name.
    seller: dict | None = Field(default=None, sa_column=sa.Column(sa.JSON, nullable=True))
    locale: str | None = Field(default=None, max_length=8)
    billed_to: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())
    sent_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))


class InvoiceCounter(SQLModel, table=True):
    """The last invoice number of a year: moved in the transaction that issues the invoice, so
    numbers are consecutive and a rolled-back issue gives its number back. One sequence per
    year for the deployment's issuer; a new issuer continues it, so numbers never repeat."""

    __tablename__ = "invoice_counter"

    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    last: int


class RefundTicket(SQLModel, table=True):
    __tablename__ = "refund_ticket"

    id: int | None = Field(default=None, primary_key=True)
    workflow_id: str = Field(unique=True, max_length=80)
    org_id: str = Field(index=True, max_length=64)
    product: str = Field(max_length=32)
    amount: Decimal = Field(sa_column=_money_column())  # tax-inclusive
    currency: str = Field(max_length=3)
    tax: Decimal | None = Field(default=None, sa_column=_money_column(nullable=True))
    invoice_number: str = Field(max_length=32)
    change_link: str = Field(max_length=500)
    requested_by: str = Field(max_length=254)
    status: str = Field(default="open", max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class RenewalItem(SQLModel, table=True):
    """An amount carried to the organisation's next renewal invoice: the total of a card payer's
    change that was below the gateway's minimum charge, so it was applied without a charge.
    Written in the apply's own transaction, once per change (workflow id); renewal billing
    collects the subscription's pending items."""

    __tablename__ = "renewal_item"
    __table_args__ = (sa.Index("ix_renewal_item_subscription_status", "subscription_id",
                               "status"),)

    id: int | None = Field(default=None, primary_key=True)
    workflow_id: str = Field(unique=True, max_length=80)
    org_id: str = Field(foreign_key="org.id", index=True, max_length=64)
    product: str = Field(max_length=32)
    subscription_id: int = Field(foreign_key="subscription.id")
    amount: Decimal = Field(sa_column=_money_column())  # tax-exclusive
    tax: Decimal = Field(sa_column=_money_column())
    total: Decimal = Field(sa_column=_money_column())  # amount + tax: what renewal collects
    currency: str = Field(max_length=3)
    invoice_number: str = Field(max_length=32)  # the change's invoice, which shows it carried
    status: str = Field(default="pending", max_length=16)  # pending, until renewal collects it
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class PaymentWait(SQLModel, table=True):
    """A change whose charge was declined (SPEC section 11): while `waiting`, a new card of its
    organisation wakes it (subchange/app/payments.py); the notice to the billing contact is
    sent once (`notice_status`: none yet, `sending` under one attempt's lease, then `sent`)."""

    __tablename__ = "payment_wait"
    __table_args__ = (sa.Index("ix_payment_wait_org_waiting", "org_id", "waiting"),)

    workflow_id: str = Field(primary_key=True, max_length=80)
    org_id: str = Field(foreign_key="org.id", max_length=64)
    product: str = Field(max_length=32)
    waiting: bool = True
    declines: int = 0
    notice_status: str | None = Field(default=None, max_length=16)
    notice_message_id: str | None = Field(default=None, max_length=200)
    notice_holder: str | None = Field(default=None, max_length=64)
    notice_until: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class SalesCase(SQLModel, table=True):
    __tablename__ = "sales_case"

    id: int | None = Field(default=None, primary_key=True)
    workflow_id: str = Field(unique=True, max_length=80)
    org_id: str = Field(index=True, max_length=64)
    product: str = Field(max_length=32)
    summary: str = Field(max_length=500)
    amount: Decimal = Field(sa_column=_money_column())
    currency: str = Field(max_length=3)
    status: str = Field(default="open", max_length=16)  # open | approved | rejected | expired ...
    decided_by: str | None = Field(default=None, max_length=254)
    note: str = Field(default="", max_length=2000)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())
    decided_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())
    org_id: str = Field(index=True, max_length=64)
    actor: str = Field(max_length=254)
    action: str = Field(max_length=64)
    outcome: str = Field(max_length=32)
    detail: str = Field(default="", max_length=1000)
    workflow_id: str | None = Field(default=None, max_length=80)


class ApiKey(SQLModel, table=True):
    """A key of the HTTP API (SPEC section 12): its owner is the principal of every action sent
    with it (section 9), its roles what it may do. Only a slow hash of its secret is stored
    (scrypt, with a salt of its own); the key itself is shown once, when it is created."""

    __tablename__ = "api_key"

    id: str = Field(primary_key=True, max_length=32)  # the key's public part: sck_<id>_<secret>
    owner: str = Field(max_length=254)  # lower case
    roles: list[str] = Field(default_factory=list, sa_column=_json_column())
    salt: str = Field(max_length=64)  # hex
    secret_hash: str = Field(max_length=128)  # hex
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())
    revoked_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))



class WebhookEndpoint(SQLModel, table=True):
    """Where events are POSTed (SPEC section 13), configured by operators. The secrets sign each
    delivery, so they are stored as given, not hashed, and kept out of reprs; during a rotation
    the previous one signs too, until `previous_secret_until`."""

    __tablename__ = "webhook_endpoint"

    id: str = Field(primary_key=True, max_length=32)  # we_<hex>
    url: str = Field(max_length=2000)
    events: list[str] = Field(default_factory=list, sa_column=_json_column())  # empty: all
    secret: str = Field(max_length=100, repr=False)  # whsec_<base64>
    previous_secret: str | None = Field(default=None, max_length=100, repr=False)
    previous_secret_until: datetime | None = Field(default=None,
                                                   sa_column=_timestamp(nullable=True))
    status: str = Field(default="active", max_length=16)  # active | failing | disabled
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class OutboxEvent(SQLModel, table=True):
    """An event for backends, written in the transaction of the state change it reports, so it
    is never lost and never invented. `sequence` orders an endpoint's deliveries; `id` is the
    Standard Webhooks `webhook-id`, the receiver's idempotency key."""

    __tablename__ = "outbox_event"

    sequence: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, max_length=40)  # evt_<hex>
    workflow_id: str = Field(index=True, max_length=80)
    type: str = Field(max_length=40)
    payload: dict = Field(sa_column=sa.Column(sa.JSON, nullable=False))  # {type, timestamp, data}
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class WebhookDelivery(SQLModel, table=True):
    """An event owed to an endpoint, one row per (event, endpoint subscribed when the event was
    written): pending until its relay delivers it, or failed once its retries ran out."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (sa.Index("ix_webhook_delivery_endpoint_status", "endpoint_id", "status"),)

    event_id: str = Field(foreign_key="outbox_event.id", primary_key=True, max_length=40)
    # No foreign key: an endpoint removed while an event is being written must not fail the
    # state change's transaction (a delivery left for a removed endpoint is never read).
    endpoint_id: str = Field(primary_key=True, max_length=32)
    status: str = Field(default="pending", max_length=16)  # pending | delivered | failed
    attempts: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False,
                                                         server_default="0"))
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    next_attempt_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    delivered_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())

def sales_case_ref(case_id: int) -> str:
    return f"SC-{case_id:06d}"


def ticket_ref(ticket_id: int) -> str:
    return f"RT-{ticket_id:06d}"


def invoice_ref(year: int, sequence: int) -> str:
    return f"INV-{year}-{sequence:06d}"
