"""Which declines payment recovery retries on its schedule (SPEC section 11): declines.json, a
table of the gateway's codes, soft or hard. Data, like the catalog, the tax rules and the gateway's
minimum charges: a gateway's new code is a row, not a branch. Pure, safe inside the workflow
sandbox (no I/O beyond the package's own file).
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, model_validator

# The charge step's own codes, for declines that are not the gateway's.
NO_PAYMENT_METHOD = "no_payment_method"  # no card on file
AUTHENTICATION_REQUIRED = "authentication_required"  # the card needs the payer (3-D Secure)


class DeclineClass(StrEnum):
    SOFT = "soft"  # may go through later: retried on PAYMENT_RETRY_SCHEDULE
    HARD = "hard"  # won't: waits for a new card or support


class DeclineTable(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    note: str = ""
    gateway: str
    unknown: DeclineClass
    soft: frozenset[str]
    hard: frozenset[str]

    @model_validator(mode="after")
    def _each_code_once(self) -> DeclineTable:
        if both := self.soft & self.hard:
            raise ValueError(f"codes listed both soft and hard: {', '.join(sorted(both))}")
        return self

    def classify(self, code: str | None) -> DeclineClass:
        """Soft or hard, by the gateway's code (None: the gateway gave none)."""
        if code in self.hard:
            return DeclineClass.HARD
        if code in self.soft:
            return DeclineClass.SOFT
        return self.unknown


@cache
def decline_table() -> DeclineTable:
    text = resources.files("subchange.domain").joinpath("declines.json").read_text("utf-8")
    return DeclineTable.model_validate_json(text)


def classify(code: str | None) -> DeclineClass:
    return decline_table().classify(code)
