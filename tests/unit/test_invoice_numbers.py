"""Invoice numbers are gap-free per year for the deployment's issuer (SPEC section 14): taken in
the transaction that issues the invoice, consecutive under concurrent issues, given back by one
rolled back, and a year's counter continues after the numbers that year already has. The same
under a killed worker, through real changes:
tests/process/test_killed_workers_apply_each_effect_once.py."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from subchange.store.invoices import next_invoice_number
from subchange.store.tables import Invoice


def test_concurrent_issues_take_consecutive_numbers_and_a_rollback_leaves_no_gap(deps):
    year = 2041

    def issue(n: int) -> str | None:
        with deps.sessions() as session:
            number = next_invoice_number(session=session, year=year)
            if n % 3 == 0:  # the apply failed after taking its number: it is given back
                session.rollback()
                return None
            session.commit()
            return number

    with ThreadPoolExecutor(max_workers=6) as pool:
        numbers = [n for n in pool.map(issue, range(30)) if n is not None]

    assert len(numbers) == 20
    assert sorted(numbers) == [f"INV-{year}-{n:06d}" for n in range(1, 21)]


def test_each_year_counts_from_one(deps):
    with deps.sessions() as session:
        taken = [next_invoice_number(session=session, year=year)
                 for year in (2042, 2042, 2043, 2042)]
        session.commit()
    assert taken == ["INV-2042-000001", "INV-2042-000002", "INV-2043-000001",
                     "INV-2042-000003"]


def test_a_years_counter_continues_after_the_numbers_it_already_has(deps):
    """Invoices numbered before counters existed (from their row id) keep their numbers; the
    first counted one of that year comes after them, so no number repeats."""
    with deps.sessions() as session:
        session.add(Invoice(number="INV-2045-000041", workflow_id="change-numbered-before",
                            org_id="old", product="one", amount=Decimal(0), currency="JPY",
                            emailed_to="billing@old.example", quote={}, payment={}))
        session.commit()
        assert next_invoice_number(session=session, year=2045) == "INV-2045-000042"
        session.rollback()
