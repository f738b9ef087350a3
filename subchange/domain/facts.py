"""What the rules and the quote know of the world: read-only facts the store loads for one change.

The domain never sees a database row; `subchange.store.subscriptions.load_context` builds these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from subchange.domain.catalog import BillingPeriod


@dataclass(frozen=True)
class Organisation:
    id: str
    currency: str
    time_zone: str = "UTC"  # IANA name: the calendar its changes are dated by
    country: str | None = None  # ISO 3166-1 alpha-2: whose consumption tax applies
    tax_exempt: bool = False


@dataclass(frozen=True)
class Requester:
    """The one user of the organisation who asks for the change."""

    email: str
    role: str  # member | admin | super_admin
    primary_contact: bool
    active: bool


@dataclass(frozen=True)
class SubscriptionTerms:
    """A subscription as the quote prices it, at the version it was read."""

    id: int
    product: str
    plan: str
    seats: int
    pricing_model: str
    billing_period: BillingPeriod
    period_start: date
    period_end: date
    payment_method: Literal["online", "offline"]
    unit_price: Decimal | None  # a negotiated price for `plan`; None: the catalog's
    version: int


@dataclass(frozen=True)
class ChangeContext:
    """What the rules need to know about one organisation, one of its subscriptions and the
    requester. None: the organisation, the user or the subscription does not exist."""

    org: Organisation | None
    requester: Requester | None
    subscription: SubscriptionTerms | None
    active_seat_holders: int  # counted as R4 says (see rules.counts_every_active_user)
