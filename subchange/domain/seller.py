"""The issuer of the invoices (SPEC section 14): a qualified invoice (適格請求書) names its issuer
and the issuer's registration number, `T` and 13 digits whose first digit checks the other twelve
as the National Tax Agency defines it for corporate numbers (python-stdnum's jp.cn)."""

from __future__ import annotations

from dataclasses import dataclass

from stdnum.exceptions import InvalidChecksum, ValidationError
from stdnum.jp import cn


@dataclass(frozen=True)
class Seller:
    name: str
    address: str
    registration_number: str  # T + 13 digits


def registration_number_problem(value: str) -> str | None:
    """What is wrong with a registration number, or None when it is valid."""
    if not value.startswith("T") or len(value) != 14 or not value[1:].isdigit():
        return "must be T followed by 13 digits, e.g. T7000012050002"
    try:
        cn.validate(value[1:])
    except InvalidChecksum:
        return (f"{value} fails the National Tax Agency's check digit (the first digit after T "
                f"would be {cn.calc_check_digit(value[2:])}); check for a mistyped digit")
    except ValidationError as error:  # pragma: no cover - the format was checked above
        return str(error)
    return None
