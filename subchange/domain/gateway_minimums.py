"""The card gateway's minimum charge per currency (gateway_minimums.json, beside the tax rules):
a card payer's total due above zero but below it is not sent to the gateway, which would refuse
it (Stripe: `amount_too_small`), but carried to the organisation's next renewal invoice.

Data, like the catalog and the tax rules: a gateway's new minimum is a row, not a code path. A
currency without a row has no minimum. Pure, safe inside the workflow sandbox (no I/O beyond the
package's own file).
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, field_validator

from subchange.domain.money import round_money


class GatewayMinimums(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    note: str = ""
    gateway: str
    minimums: dict[str, Decimal]  # currency -> the smallest amount charged, in its units

    @field_validator("minimums")
    @classmethod
    def _at_the_minor_unit(cls, minimums: dict[str, Decimal]) -> dict[str, Decimal]:
        for currency, amount in minimums.items():
            if amount <= 0 or round_money(amount, currency) != amount:  # unknown: ValueError
                raise ValueError(f"the minimum charge of {currency} must be above zero and "
                                 f"at its minor unit, not {amount}")
        return minimums

    def minimum_charge(self, currency: str) -> Decimal | None:
        """The smallest amount the gateway charges in `currency`; None: no minimum."""
        return self.minimums.get(currency)

    def below_minimum(self, amount: Decimal, currency: str) -> bool:
        """Above zero but less than the gateway would charge: carried, never sent."""
        minimum = self.minimum_charge(currency)
        return minimum is not None and 0 < amount < minimum


@cache
def default_gateway_minimums() -> GatewayMinimums:
    text = resources.files("subchange.domain").joinpath("gateway_minimums.json").read_text(
        encoding="utf-8")
    return GatewayMinimums.model_validate_json(text)


def minimum_charge(currency: str, table: GatewayMinimums | None = None) -> Decimal | None:
    """The gateway's minimum charge in `currency` (JPY 50, USD 0.50); None: no minimum."""
    return (table or default_gateway_minimums()).minimum_charge(currency)


def below_minimum_charge(amount: Decimal, currency: str,
                         table: GatewayMinimums | None = None) -> bool:
    """Whether `amount` (a total due, tax included) is above zero but below the minimum."""
    return (table or default_gateway_minimums()).below_minimum(amount, currency)
