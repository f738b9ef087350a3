"""Fixture files: organisations, users and subscriptions (SPEC section 7) and the staff directory
(section 9) to create or update.

The whole file is validated before anything is written. A test card number becomes the gateway's
customer and payment-method ids; the card number itself is never stored.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pycountry
import stripe
from pydantic import EmailStr, Field, ValidationError, field_validator, model_validator
from sqlmodel import Session, col, select, update

from subchange.adapters.gateway import CardDeclined, Gateway
from subchange.domain.catalog import PRICED_CURRENCIES, PRODUCT_IDS, default_catalog
from subchange.domain.contracts import IDENTIFIER, Contract, describe_validation_error
from subchange.domain.principals import STAFF_ROLES
from subchange.settings import Settings, iso_durations, positive_delays
from subchange.store import staff
from subchange.store.tables import Org, OrgUser, OrgUserProduct, Subscription, utcnow


class FixtureError(ValueError):
    pass


class FixtureConflict(RuntimeError):
    """A subscription changed between the loader's read and its write (a change was applied):
    nothing of the load was written; loading the file again starts from what is there now."""


def country_problem(code: str) -> str | None:
    """Why `code` is not a country an organisation can be in, or None when it is one: an
    officially assigned ISO 3166-1 alpha-2 code, as pycountry (ISO's list, maintained) has them.
    Not CLDR's territories (Babel): those carry the user-assigned codes (ZZ "Unknown Region",
    XA, XK, QO), EU and UN, which no jurisdiction's tax rules are about."""
    if (len(code) == 2 and code.isascii() and code.isalpha()
            and pycountry.countries.get(alpha_2=code.upper()) is not None):
        return None
    return (f"unknown country {code!r}; expected an officially assigned ISO 3166-1 alpha-2 "
            "code such as JP or US (user-assigned codes such as ZZ, XA-XZ and QM-QZ name no "
            "country)")


class FixtureUser(Contract):
    email: EmailStr
    role: Literal["member", "admin", "super_admin"] = "member"
    primary_contact: bool = False
    active: bool = True
    products: list[str] = Field(default_factory=list)

    @field_validator("email", mode="after")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("products")
    @classmethod
    def _known_products(cls, value: list[str]) -> list[str]:
        unknown = [p for p in value if p not in PRODUCT_IDS]
        if unknown:
            raise ValueError(f"unknown product(s) {unknown}; expected {list(PRODUCT_IDS)}")
        return value


class FixtureSubscription(Contract):
    product: str
    plan: str
    seats: Annotated[int, Field(ge=0, strict=True)]
    pricing_model: str
    billing_period: Literal["monthly", "yearly"]
    period_start: date
    period_end: date
    payment_method: Literal["online", "offline"]
    card: Annotated[str | None, Field(pattern=r"^\d{16}$")] = None
    unit_price: Annotated[Decimal | None, Field(ge=0, max_digits=12, decimal_places=2)] = None

    @model_validator(mode="after")
    def _consistent(self) -> FixtureSubscription:
        catalog = default_catalog()
        if self.product not in catalog.products:
            raise ValueError(f"product: unknown product {self.product!r}")
        product = catalog.product(self.product)
        if not product.has_tier(self.plan):
            raise ValueError(f"plan: {self.product} has no plan {self.plan!r}; plans: "
                             + ", ".join(t.id for t in product.tiers))
        if self.pricing_model not in product.pricing_models:
            raise ValueError(f"pricing_model: {self.product} is priced "
                             + " or ".join(product.pricing_models))
        if self.period_end <= self.period_start:
            raise ValueError("period_end must be after period_start")
        if self.seats > product.tier(self.plan).max_seats:
            raise ValueError(f"seats: {self.plan} allows at most "
                             f"{product.tier(self.plan).max_seats}")
        if self.payment_method == "online" and self.card is None:
            raise ValueError("card: an online subscription needs a gateway test card")
        if self.payment_method == "offline" and self.card is not None:
            raise ValueError("card: an offline (bank transfer) subscription has no card")
        return self


class FixtureOrg(Contract):
    id: Annotated[str, Field(pattern=IDENTIFIER)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    currency: str
    billing_email: EmailStr
    # The calendar its changes are dated by (an IANA name): a Tokyo customer's change at 08:00
    # JST is priced as of that day, not the UTC day before.
    time_zone: str = "UTC"
    # Whose consumption tax applies (ISO 3166-1 alpha-2): JP by default for a yen organisation,
    # to be stated for any other; exempt customers pay none; invoices in ja or en (ja for JP).
    country: str | None = None
    tax_exempt: bool = False
    locale: Literal["ja", "en"] | None = None
    # Its own waits between a declined charge's attempts (SPEC 11), e.g. "PT12H,P1D" for a
    # customer paid on a tight cycle; absent: PAYMENT_RETRY_SCHEDULE's.
    payment_retry_schedule: Annotated[str | None, Field(max_length=200)] = None
    users: list[FixtureUser] = Field(default_factory=list)
    subscriptions: list[FixtureSubscription] = Field(default_factory=list)

    @field_validator("payment_retry_schedule")
    @classmethod
    def _retry_schedule(cls, value: str | None) -> str | None:
        if value is None:
            return None
        positive_delays(iso_durations(value))  # refused with the item at fault
        return ",".join(text.strip().upper() for text in value.split(","))

    @field_validator("time_zone")
    @classmethod
    def _time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; expected an IANA name such as "
                             "Asia/Tokyo or UTC") from None
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        priced = PRICED_CURRENCIES  # an org can only be billed in a currency the catalog prices
        if value not in priced:
            raise ValueError(f"unsupported currency {value!r}; expected one of "
                             f"{', '.join(priced)}")
        return value

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if (problem := country_problem(value)) is not None:
            raise ValueError(problem)
        return value.upper()

    @model_validator(mode="after")
    def _tax_profile(self) -> FixtureOrg:
        if self.country is None:
            if self.currency != "JPY":
                raise ValueError(f"country: required for an organisation billed in "
                                 f"{self.currency} (an ISO 3166-1 alpha-2 code such as US); "
                                 "it decides which consumption tax applies")
            self.country = "JP"
        if self.locale is None:
            self.locale = "ja" if self.country == "JP" else "en"
        return self

    @model_validator(mode="after")
    def _unique(self) -> FixtureOrg:
        emails = [u.email for u in self.users]
        if len(emails) != len(set(emails)):
            raise ValueError("users: an email appears twice")
        products = [s.product for s in self.subscriptions]
        if len(products) != len(set(products)):
            raise ValueError("subscriptions: a product appears twice")
        return self


class FixtureStaff(Contract):
    """A member of the vendor's staff directory; an empty `roles` takes every right away."""

    email: EmailStr
    roles: list[Literal[STAFF_ROLES]]  # type: ignore[valid-type]

    @field_validator("email", mode="after")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class Fixture(Contract):
    orgs: list[FixtureOrg] = Field(default_factory=list)
    staff: list[FixtureStaff] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Fixture:
        if not self.model_fields_set & {"orgs", "staff"}:
            raise ValueError("nothing to load: expected orgs, staff or both")
        ids = [o.id for o in self.orgs]
        if len(ids) != len(set(ids)):
            raise ValueError("orgs: an org id appears twice")
        emails = [member.email for member in self.staff]
        if len(emails) != len(set(emails)):
            raise ValueError("staff: an email appears twice")
        return self


def parse_fixture(text: str) -> Fixture:
    try:
        return Fixture.model_validate_json(text)
    except ValidationError as error:
        raise FixtureError(describe_validation_error(error)) from None


BILLING_FIELDS = ("plan", "seats", "pricing_model", "billing_period", "period_start",
                  "period_end", "unit_price")


def load_fixture(fixture: Fixture, *, session: Session, gateway: Gateway, settings: Settings
                 ) -> dict[str, int]:
    """Create or update everything in the fixture; returns counts of what was written."""
    if (any(s.card for o in fixture.orgs for s in o.subscriptions)
            and not settings.gateway_test_mode):
        raise FixtureError("card: test card numbers are accepted only with a test gateway "
                           "(an sk_test_ key or a local STRIPE_API_BASE)")
    counts = {"orgs": 0, "users": 0, "subscriptions": 0, "staff": 0}
    created_customers: list[str] = []
    try:
        _load_orgs(fixture, session=session, gateway=gateway, counts=counts,
                   created_customers=created_customers)
        for member in fixture.staff:
            staff.put_member(session=session, email=member.email, roles=member.roles)
            counts["staff"] += 1
        session.commit()
    except BaseException:
        # Nothing half-written: no rows, and no gateway customers made by this load.
        session.rollback()
        for customer_id in created_customers:
            try:
                gateway.delete_customer(customer_id)
            except stripe.StripeError:
                pass
        raise
    return counts


def _load_orgs(fixture: Fixture, *, session: Session, gateway: Gateway, counts: dict[str, int],
               created_customers: list[str]) -> None:
    for org_index, org_in in enumerate(fixture.orgs):
        org = session.get(Org, org_in.id) or Org(id=org_in.id, name="", currency="",
                                                 billing_email="")
        org.name, org.currency, org.billing_email = (org_in.name, org_in.currency,
                                                     org_in.billing_email)
        org.time_zone = org_in.time_zone
        org.country, org.tax_exempt = org_in.country, org_in.tax_exempt
        org.locale = org_in.locale or "en"
        org.payment_retry_schedule = org_in.payment_retry_schedule
        org.updated_at = utcnow()
        session.add(org)
        counts["orgs"] += 1
        _load_users(session, org.id, org_in.users)
        counts["users"] += len(org_in.users)
        for sub_index, sub_in in enumerate(org_in.subscriptions):
            sub = session.exec(select(Subscription).where(
                Subscription.org_id == org.id, Subscription.product == sub_in.product)).first()
            _load_subscription(sub_in, sub, org=org, session=session, gateway=gateway,
                               created_customers=created_customers,
                               where=f"orgs.{org_index}.subscriptions.{sub_index}")
            counts["subscriptions"] += 1


def _load_users(session: Session, org_id: str, users_in: list[FixtureUser]) -> None:
    """Create or update the organisation's users and make each one's assigned products
    (org_user_product rows) exactly the fixture's: a few statements per organisation, not per
    user."""
    users = {user.email: user
             for user in session.exec(select(OrgUser).where(OrgUser.org_id == org_id))}
    wanted = {user_in.email: set(user_in.products) for user_in in users_in}
    for user_in in users_in:
        user = users.get(user_in.email) or OrgUser(org_id=org_id, email=user_in.email,
                                                   role=user_in.role)
        for field in ("role", "primary_contact", "active"):
            setattr(user, field, getattr(user_in, field))
        session.add(user)
        users[user_in.email] = user
    session.flush()  # the new users' ids
    email_of = {user.id: email for email, user in users.items()}
    assigned: dict[int, set[str]] = {}
    for row in session.exec(select(OrgUserProduct).where(OrgUserProduct.org_id == org_id)):
        assigned.setdefault(row.user_id, set()).add(row.product)
        email = email_of.get(row.user_id)
        if email in wanted and row.product not in wanted[email]:
            session.delete(row)
    for user_in in users_in:
        user = users[user_in.email]
        assert user.id is not None
        session.add_all(OrgUserProduct(user_id=user.id, product=product, org_id=org_id)
                        for product in dict.fromkeys(user_in.products)
                        if product not in assigned.get(user.id, set()))


def _load_subscription(sub_in: FixtureSubscription, sub: Subscription | None, *, org: Org,
                       session: Session, gateway: Gateway, created_customers: list[str],
                       where: str) -> None:
    """Create the subscription, or update it with a compare-and-set on the version read: a
    change applied since (which bumps the version) is never overwritten, and the load refuses
    instead (FixtureConflict; the caller rolls everything back)."""
    values = {field: getattr(sub_in, field) for field in (*BILLING_FIELDS, "payment_method")}
    card = _card(sub_in, None if sub is None else (sub.gateway_customer_id,
                                                   sub.gateway_payment_method_id,
                                                   sub.card_last4),
                 org=org, gateway=gateway, created_customers=created_customers, where=where)
    values.update(zip(("gateway_customer_id", "gateway_payment_method_id", "card_last4"), card,
                      strict=True))
    if sub is None:
        session.add(Subscription(org_id=org.id, product=sub_in.product, **values))
        return
    read = sub.version
    billing_changed = any(getattr(sub, f) != getattr(sub_in, f) for f in BILLING_FIELDS)
    # quotes priced on the old values must not apply over the new ones: a new version
    written = session.exec(
        update(Subscription)
        .where(col(Subscription.id) == sub.id, col(Subscription.version) == read)
        .values(**values, version=read + 1 if billing_changed else read, updated_at=utcnow()))
    if written.rowcount != 1:
        now = session.exec(select(Subscription.version).where(Subscription.id == sub.id)).one()
        raise FixtureConflict(
            f"{where}: the {sub_in.product} subscription of {org.id} changed while loading "
            f"(read at version {read}, now {now}: a change was applied meanwhile); nothing was "
            "loaded; load the file again to write it over what is there now")


def _card(sub_in: FixtureSubscription, current: tuple[str | None, str | None, str | None] | None,
          *, org: Org, gateway: Gateway, created_customers: list[str], where: str
          ) -> tuple[str | None, str | None, str | None]:
    """The gateway customer, payment method and last four digits for the fixture's card, made at
    the gateway when the current ones don't match it; all None without a card."""
    if sub_in.card is None:
        return None, None, None
    customer_id, method, last4 = current or (None, None, None)
    if not (customer_id and gateway.customer_exists(customer_id)):
        customer_id = gateway.create_customer(email=org.billing_email, name=org.name,
                                              org_id=org.id)
        created_customers.append(customer_id)
        method = None
    if not (method and gateway.payment_method_last4(method) == sub_in.card[-4:]
            and last4 == sub_in.card[-4:]):
        try:
            method, last4 = gateway.create_test_card(sub_in.card)
            gateway.attach_test_card(customer_id=customer_id, method_id=method)
        except CardDeclined as declined:
            raise FixtureError(f"{where}.card: the gateway declined the card ending "
                               f"{sub_in.card[-4:]} ({declined})") from None
    return customer_id, method, last4
