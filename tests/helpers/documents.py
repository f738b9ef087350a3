"""Fixture documents, the organisations `starter.py load` reads: orgs with their users and
subscriptions, the test cards localstripe knows, billing periods around a day, fresh org ids;
written to a file for the CLI, or loaded through the real loader."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from dateutil.relativedelta import relativedelta

from activities.dependencies import Dependencies
from subchange.app.fixtures import load_fixture, parse_fixture

GOOD_CARD = "4242424242424242"
# The suite's staff directory (SPEC section 9), loaded into every test database.
SUPPORT, SALES = "support@vendor.example", "sales@vendor.example"
STAFF_DIRECTORY = {"staff": [{"email": SUPPORT, "roles": ["support"]},
                             {"email": SALES, "roles": ["sales"]}]}
DECLINED_CARD = "4000000000000002"  # the gateway declines it (at attach time in localstripe)
DECLINED_ON_CHARGE_CARD = "4000000000000341"  # attaches, then every charge is declined
THREE_D_SECURE_CARD = "4000002500003155"  # every charge waits for the payer's authentication
JAPANESE_NAME = "株式会社アクメ"  # an org name outside Latin-1, for the PDF and the email


def unique_org(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def admin_email(org: str) -> str:
    """The address of the admin that `admin` loads, who asks for a change unless a test names
    someone else."""
    return f"admin@{org}.example"


def admin(org: str, **fields: Any) -> dict[str, Any]:
    return {"email": admin_email(org), "role": "admin", "primary_contact": True,
            "products": ["one", "desk"], **fields}


def members(org: str, count: int, *, products: list[str], active: bool = True,
            prefix: str = "user") -> list[dict[str, Any]]:
    return [{"email": f"{prefix}{i}@{org}.example", "role": "member", "active": active,
             "products": products} for i in range(count)]


def current_period(today: date | None = None, period: str = "monthly") -> tuple[date, date]:
    """A billing period that contains today (UTC), as the workflow's clock sees it."""
    today = today or datetime.now(UTC).date()
    start = today.replace(day=1)
    if period == "yearly":
        start = today.replace(month=1, day=1)
        return start, start + relativedelta(years=1)
    return start, start + relativedelta(months=1)


# The issuer of the suite's invoices: a registration number whose check digit is right.
SELLER = {"SELLER_NAME": "株式会社テスト請求", "SELLER_ADDRESS": "東京都港区芝公園4-2-8",
          "SELLER_REGISTRATION_NUMBER": "T1011101234567"}


def org_document(org_id: str, *, currency: str = "JPY", users: list[dict[str, Any]],
                 subscriptions: list[dict[str, Any]], billing_email: str | None = None,
                 country: str | None = None, locale: str = "en") -> dict[str, Any]:
    """One organisation; one billed in another currency than yen is in the US unless told. Its
    invoices are in English unless told (the Japanese ones have tests of their own)."""
    start, end = current_period()
    subs = []
    for sub in subscriptions:
        subs.append({"pricing_model": "all_employee" if sub["product"] == "one" else "per_agent",
                     "billing_period": "monthly", "period_start": str(start),
                     "period_end": str(end), "payment_method": "online", "card": GOOD_CARD,
                     "unit_price": None, **sub})
    return {"orgs": [{"id": org_id, "name": f"{org_id} KK", "currency": currency,
                      "billing_email": billing_email or f"billing@{org_id}.example",
                      **({"country": country or "US"} if country or currency != "JPY" else {}),
                      "locale": locale,
                      "users": users,
                      "subscriptions": subs}]}


def write_fixture(path: Path, document: dict) -> Path:
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


def load_document(deps: Dependencies, document: dict) -> None:
    """Load a fixture document through the real loader, as `starter.py load` does."""
    with deps.sessions() as session:
        load_fixture(parse_fixture(json.dumps(document)), session=session,
                     gateway=deps.gateway, settings=deps.settings)
