"""Which declines payment recovery retries on its schedule (SPEC section 11) is a table of the
gateway's codes (subchange/domain/declines.json), judged by the charge step. The local gateway
only ever says `card_declined` (soft) and holds 3-D Secure cards (`authentication_required`,
hard), which tests/workflow/test_payment_recovery.py drives; the finer codes below come from the
real gateway only, so they are checked here, against the table."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from subchange.adapters.gateway import _decline_code
from subchange.app.payments import replaced
from subchange.domain.declines import DeclineClass, DeclineTable, classify, decline_table


@pytest.mark.parametrize("code", [
    "card_declined", "generic_decline", "insufficient_funds", "processing_error",
    "try_again_later", "do_not_honor", "issuer_not_available"])
def test_declines_the_bank_may_accept_later_are_soft(code):
    assert classify(code) is DeclineClass.SOFT


@pytest.mark.parametrize("code", [
    "lost_card", "stolen_card", "expired_card", "fraudulent", "pickup_card",
    "no_payment_method", "authentication_required", "incorrect_cvc", "restricted_card"])
def test_declines_no_retry_can_mend_are_hard(code):
    assert classify(code) is DeclineClass.HARD


def test_a_code_the_table_does_not_know_is_retried_on_the_schedule():
    assert classify("a_code_from_next_year") is DeclineClass.SOFT
    assert classify(None) is DeclineClass.SOFT  # a decline without a code


def test_a_code_listed_as_both_soft_and_hard_is_refused_when_the_table_loads():
    with pytest.raises(ValidationError, match="both soft and hard: lost_card"):
        DeclineTable(gateway="stripe", unknown=DeclineClass.SOFT,
                     soft=frozenset({"lost_card"}), hard=frozenset({"lost_card"}))


def test_the_table_ships_with_the_package():
    table = decline_table()
    assert table.gateway == "stripe" and len(table.soft) >= 5 and len(table.hard) >= 10


class _StripeError:
    """The shape of Stripe's `last_payment_error`: a decline has a code, and a card decline a
    finer decline_code."""

    def __init__(self, code: str, decline_code: str | None = None) -> None:
        self.code, self.decline_code = code, decline_code


def test_the_finer_decline_code_of_the_real_gateway_is_the_one_judged():
    assert _decline_code(_StripeError("card_declined", "stolen_card")) == "stolen_card"
    assert classify(_decline_code(_StripeError("card_declined", "stolen_card"))) is \
        DeclineClass.HARD
    assert _decline_code(_StripeError("expired_card")) == "expired_card"
    assert _decline_code(_StripeError("card_declined")) == "card_declined"


def test_a_load_wakes_the_organisations_whose_card_it_replaced_or_added():
    """`starter.py load` compares the cards on file before and after: a new card for a
    subscription that had another (or none, an offline payer) wakes that organisation; a new
    subscription, an unchanged or a removed card does not."""
    before = {("acme", "one"): "pm_old", ("beta", "one"): "pm_same", ("gamma", "one"): None,
              ("delta", "one"): "pm_gone"}
    after = {("acme", "one"): "pm_new", ("beta", "one"): "pm_same", ("gamma", "one"): "pm_1",
             ("delta", "one"): None, ("new", "one"): "pm_2"}
    assert replaced(before, after) == ["acme", "gamma"]
