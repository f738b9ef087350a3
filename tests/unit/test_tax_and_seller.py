"""Consumption tax arithmetic (SPEC section 14) in yen and dollars: rounded down once per invoice
per rate, never per line; no Japanese tax for a customer outside Japan or an exempt one, with the
line that says why; the issuer's registration number checked as the National Tax Agency defines
it; an organisation's tax profile read from a fixture."""

from __future__ import annotations

from decimal import Decimal

import pytest

from subchange.domain.seller import registration_number_problem
from subchange.domain.tax import default_tax_table, invoice_tax
from subchange.settings import ConfigurationError, Settings
from subchange.store.tables import Org
from tests.helpers.documents import admin, org_document, unique_org

D = Decimal


@pytest.mark.parametrize(("amount", "currency", "tax", "total"), [
    ("4352", "JPY", "435", "4787"),  # 435.2 rounds down
    ("4359", "JPY", "435", "4794"),  # 435.9 too: the customer is never charged the fraction
    ("99000", "JPY", "9900", "108900"),
    ("338.71", "USD", "33.87", "372.58"),  # 33.871
    ("0.09", "USD", "0.00", "0.09"),
])
def test_japanese_consumption_tax_is_ten_percent_rounded_down(amount, currency, tax, total):
    taxed = invoice_tax([D(amount)], currency=currency, country="JP", tax_exempt=False)
    assert (taxed.subtotal, taxed.tax, taxed.total) == (D(amount), D(tax), D(total))
    [line] = taxed.lines
    assert (line.rate, line.taxable_amount, line.tax) == (D("0.10"), D(amount), D(tax))
    assert taxed.label["ja"] == "消費税" and taxed.no_tax_note is None


@pytest.mark.parametrize(("amounts", "currency", "tax"), [
    (["105", "105"], "JPY", "21"),  # per line: 10 + 10 = 20
    (["19", "19", "19"], "JPY", "5"),  # per line: 1 + 1 + 1 = 3
    (["0.05", "0.05"], "USD", "0.01"),  # per line: 0.00 + 0.00
])
def test_tax_is_rounded_once_per_invoice_never_per_line(amounts, currency, tax):
    taxed = invoice_tax([D(a) for a in amounts], currency=currency, country="JP",
                        tax_exempt=False)
    assert taxed.tax == D(tax)
    assert taxed.total == sum(D(a) for a in amounts) + D(tax)


def test_a_decreases_refundable_amount_carries_its_tax():
    """R11 with tax: a refund returns the tax too, so the refundable amount is tax-inclusive."""
    refundable = invoice_tax([D("2487")], currency="JPY", country="JP", tax_exempt=False)
    assert (refundable.tax, refundable.total) == (D("248"), D("2735"))


def test_a_zero_amount_confirmation_has_no_tax():
    taxed = invoice_tax([D("0")], currency="JPY", country="JP", tax_exempt=False)
    assert (taxed.tax, taxed.total) == (D("0"), D("0"))


def test_a_customer_outside_japan_pays_no_japanese_tax_and_is_told_why():
    taxed = invoice_tax([D("338.71")], currency="USD", country="US", tax_exempt=False)
    assert (taxed.tax, taxed.total) == (D("0"), D("338.71"))
    assert taxed.no_tax_note is not None
    assert "Not subject to Japanese consumption tax" in taxed.no_tax_note["en"]
    assert "対象外" in taxed.no_tax_note["ja"]


def test_an_exempt_customer_pays_none_and_is_told_why():
    taxed = invoice_tax([D("4352")], currency="JPY", country="JP", tax_exempt=True)
    assert (taxed.tax, taxed.total) == (D("0"), D("4352"))
    assert "tax exempt" in taxed.no_tax_note["en"]


def test_a_new_jurisdiction_is_a_row_of_the_table():
    table = default_tax_table().model_copy(update={"rules": (
        *default_tax_table().rules,
        default_tax_table().rules[0].model_copy(update={"country": "SG", "rate": D("0.09")}))})
    taxed = invoice_tax([D("100.00")], currency="USD", country="SG", tax_exempt=False,
                        table=table)
    assert taxed.tax == D("9.00")


# --- the issuer --------------------------------------------------------------------------------

def test_the_national_tax_agencys_check_digit_is_verified():
    assert registration_number_problem("T7000012050002") is None
    problem = registration_number_problem("T7000012050003")
    assert problem is not None and "check digit" in problem


@pytest.mark.parametrize("value", ["7000012050002", "T700001205000", "T70000120500021",
                                   "TABCDEFGHIJKLM", "t7000012050002x"])
def test_a_registration_number_of_the_wrong_shape_is_refused(value):
    assert "T followed by 13 digits" in registration_number_problem(value)


def test_settings_name_the_seller_an_invoice_needs():
    seller = Settings(seller_name="Demo KK", seller_address="Tokyo",
                      seller_registration_number="t7000012050002").seller()
    assert seller.registration_number == "T7000012050002"
    with pytest.raises(ConfigurationError) as missing:
        Settings(seller_name="Demo KK").seller()
    assert "SELLER_ADDRESS, SELLER_REGISTRATION_NUMBER: not set" in str(missing.value)


# --- an organisation's tax profile, from a fixture ----------------------------------------------

def test_a_yen_organisation_is_japanese_and_reads_japanese_by_default(deps, load):
    japanese, american = unique_org("taxjp"), unique_org("taxus")
    jp = org_document(japanese, users=[admin(japanese)], subscriptions=[])
    del jp["orgs"][0]["locale"]  # as SPEC 7's example has it: no country, no locale
    load(jp)
    us = org_document(american, currency="USD", country="us", users=[admin(american)],
                      subscriptions=[])
    us["orgs"][0]["tax_exempt"] = True
    del us["orgs"][0]["locale"]
    load(us)
    with deps.sessions() as session:
        jp_row, us_row = session.get(Org, japanese), session.get(Org, american)
        assert (jp_row.country, jp_row.tax_exempt, jp_row.locale) == ("JP", False, "ja")
        assert (us_row.country, us_row.tax_exempt, us_row.locale) == ("US", True, "en")
