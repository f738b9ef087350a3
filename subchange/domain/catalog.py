"""The product catalog: products, plan tiers, prices, limits and features, read from catalog.json.

A new product or tier is a catalog entry, not a code path: the plan-tier state machine is built from
this data (see state_machines/plan_tiers.py).
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

# Every tier has a price in each of these (checked on load); orgs are billed in one of them.
PRICED_CURRENCIES = ("JPY", "USD")

BillingPeriod = Literal["monthly", "yearly"]


class Tier(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    rank: int
    max_seats: int
    agent_limit: int | None = None  # R7: active agents allowed on this tier
    features: tuple[str, ...]
    # pricing model -> currency -> billing period -> unit price per seat
    prices: dict[str, dict[str, dict[BillingPeriod, Decimal]]]

    @property
    def is_free(self) -> bool:
        return all(p == 0 for by_cur in self.prices.values() for by_period in by_cur.values()
                   for p in by_period.values())


class Product(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    seat_unit: str
    managers: Literal["org_admin", "primary_contact"]  # R1 / R12
    pricing_models: tuple[str, ...]
    tiers: tuple[Tier, ...]
    downgrades: tuple[tuple[str, str], ...]  # R5: the allowed downgrades, exactly

    @model_validator(mode="after")
    def _consistent(self) -> Product:
        ids = {t.id for t in self.tiers}
        for source, dest in self.downgrades:
            if source not in ids or dest not in ids:
                raise ValueError(f"downgrade {source}->{dest} names an unknown tier")
        for tier in self.tiers:
            for model in self.pricing_models:
                for currency in PRICED_CURRENCIES:
                    if currency not in tier.prices.get(model, {}):
                        raise ValueError(f"tier {tier.id} has no {currency} price for {model}")
        return self

    def tier(self, tier_id: str) -> Tier:
        for tier in self.tiers:
            if tier.id == tier_id:
                return tier
        raise KeyError(tier_id)

    def has_tier(self, tier_id: str) -> bool:
        return any(t.id == tier_id for t in self.tiers)


class Catalog(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    products: dict[str, Product]

    def product(self, product_id: str) -> Product:
        try:
            return self.products[product_id]
        except KeyError:
            raise KeyError(
                f"unknown product {product_id!r}; known: {sorted(self.products)}") from None

    def unit_price(
        self, *, product: str, tier: str, pricing_model: str, currency: str, period: BillingPeriod
    ) -> Decimal:
        prices = self.product(product).tier(tier).prices
        try:
            return prices[pricing_model][currency][period]
        except KeyError:
            raise KeyError(
                f"no {currency} {period} price for {product}/{tier} under {pricing_model}"
            ) from None


@cache
def default_catalog() -> Catalog:
    text = resources.files("subchange.domain").joinpath("catalog.json").read_text(encoding="utf-8")
    return Catalog.model_validate_json(text)


PRODUCT_IDS: tuple[str, ...] = tuple(default_catalog().products)
