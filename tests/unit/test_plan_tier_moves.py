"""Plan tiers of the help desk as a state machine (R5, R6, R7), over the whole tier table."""

from __future__ import annotations

import itertools

import pytest

from state_machines.plan_tiers import MoveVerdict, PlanTierMachine
from subchange.domain.catalog import Product, default_catalog

TIERS = ("free", "standard", "professional", "enterprise")  # R5, lowest first
RANK = {tier: rank for rank, tier in enumerate(TIERS)}
ALLOWED_DOWNGRADES = {("enterprise", "professional"), ("professional", "standard"),
                      ("enterprise", "free"), ("professional", "free"), ("standard", "free")}
FREE_AGENT_LIMIT = 3


@pytest.fixture(scope="module")
def desk() -> PlanTierMachine:
    return PlanTierMachine(default_catalog().product("desk"))


def test_the_desk_catalog_has_the_tiers_of_r5_in_order():
    product = default_catalog().product("desk")
    assert tuple(t.id for t in sorted(product.tiers, key=lambda t: t.rank)) == TIERS
    assert product.tier("free").agent_limit == FREE_AGENT_LIMIT


@pytest.mark.parametrize(("source", "target"), list(itertools.permutations(TIERS, 2)))
def test_every_tier_pair_follows_r5(desk, source, target):
    answer = desk.check_move(source, target, active_agents=1)
    if RANK[target] > RANK[source] or (source, target) in ALLOWED_DOWNGRADES:
        assert answer.verdict is MoveVerdict.ALLOWED, f"{source} → {target} should be allowed"
        assert answer.route == ()
    else:
        assert answer.verdict is MoveVerdict.FORBIDDEN, f"{source} → {target} should be refused"
        route = answer.route
        assert (route[0], route[-1]) == (source, target)
        for step_from, step_to in itertools.pairwise(route):
            assert desk.check_move(step_from, step_to, active_agents=1).allowed


def test_enterprise_to_standard_names_the_route_through_professional(desk):
    answer = desk.check_move("enterprise", "standard", active_agents=1)
    assert answer.verdict is MoveVerdict.FORBIDDEN
    # Not enterprise → free → standard, though that is also two allowed moves.
    assert answer.route == ("enterprise", "professional", "standard")


@pytest.mark.parametrize("tier", TIERS)
def test_a_move_to_the_same_tier_is_not_a_move(desk, tier):
    assert desk.check_move(tier, tier, active_agents=1).verdict is MoveVerdict.SAME_TIER


def test_an_unknown_tier_is_reported_as_unknown(desk):
    assert desk.check_move("enterprise", "platinum", active_agents=1).verdict is (
        MoveVerdict.UNKNOWN_TIER)
    assert desk.check_move("gold", "free", active_agents=1).verdict is MoveVerdict.UNKNOWN_TIER


def test_downgrades_can_be_repeated_step_by_step_down_to_free(desk):
    switched_off: list[str] = []
    for source, target in [("enterprise", "professional"), ("professional", "standard"),
                           ("standard", "free")]:
        answer = desk.check_move(source, target, active_agents=2)
        assert answer.allowed, f"{source} → {target}"
        switched_off.extend(answer.features_switched_off)
    direct = desk.check_move("enterprise", "free", active_agents=2)
    assert sorted(switched_off) == sorted(direct.features_switched_off)


def test_a_downgrade_can_be_repeated_after_upgrading_again(desk):
    for _ in range(3):
        assert desk.check_move("enterprise", "professional", active_agents=2).allowed
        assert desk.check_move("professional", "enterprise", active_agents=2).allowed


# --- R6: what a downgrade switches off -------------------------------------------------------

def test_enterprise_to_professional_switches_off_the_enterprise_features(desk):
    answer = desk.check_move("enterprise", "professional", active_agents=2)
    assert set(answer.features_switched_off) == {"ai_assistant", "live_chat",
                                                 "multi_brand_help_center", "custom_functions"}


def test_professional_to_standard_switches_off_the_professional_features(desk):
    answer = desk.check_move("professional", "standard", active_agents=2)
    assert set(answer.features_switched_off) == {"telephony", "blueprints",
                                                 "round_robin_assignment", "custom_reports"}


def test_a_downgrade_to_free_keeps_only_the_free_features(desk):
    product = default_catalog().product("desk")
    free = set(product.tier("free").features)
    for source in ("standard", "professional", "enterprise"):
        answer = desk.check_move(source, "free", active_agents=2)
        assert set(answer.features_switched_off) == set(product.tier(source).features) - free
        assert not free & set(answer.features_switched_off)


@pytest.mark.parametrize(("source", "target"),
                         [(s, t) for s, t in itertools.permutations(TIERS, 2) if RANK[t] > RANK[s]])
def test_an_upgrade_switches_nothing_off(desk, source, target):
    assert desk.check_move(source, target, active_agents=2).features_switched_off == ()


# --- R7: the free tier's agent limit ---------------------------------------------------------

@pytest.mark.parametrize("source", ["standard", "professional", "enterprise"])
def test_down_to_free_within_the_agent_limit_is_allowed(desk, source):
    assert desk.check_move(source, "free", active_agents=FREE_AGENT_LIMIT).allowed


@pytest.mark.parametrize(("active", "to_deactivate"), [(4, 1), (7, 4), (50, 47)])
@pytest.mark.parametrize("source", ["standard", "professional", "enterprise"])
def test_down_to_free_over_the_agent_limit_names_how_many_to_deactivate(
        desk, source, active, to_deactivate):
    answer = desk.check_move(source, "free", active_agents=active)
    assert answer.verdict is MoveVerdict.OVER_AGENT_LIMIT
    assert answer.agents_to_deactivate == to_deactivate


def test_the_agent_limit_only_guards_moves_into_free(desk):
    assert desk.check_move("enterprise", "professional", active_agents=500).allowed
    assert desk.check_move("free", "enterprise", active_agents=500).allowed


# --- the table is data: a new product is a catalog entry --------------------------------------

def test_a_catalog_product_with_other_tiers_gets_its_own_moves_and_routes():
    prices = {"per_seat": {"JPY": {"monthly": "100", "yearly": "1000"},
                           "USD": {"monthly": "1.00", "yearly": "10.00"}}}
    product = Product.model_validate({
        "name": "Chat", "seat_unit": "seat", "managers": "org_admin",
        "pricing_models": ["per_seat"],
        "tiers": [{"id": tier, "rank": rank, "max_seats": 100, "features": [f"f{rank}"],
                   "prices": prices}
                  for rank, tier in enumerate(["lite", "plus", "pro", "max"])],
        "downgrades": [["max", "pro"], ["pro", "plus"], ["plus", "lite"]],
    })
    machine = PlanTierMachine(product)
    assert machine.check_move("max", "pro", active_agents=1).allowed
    answer = machine.check_move("max", "lite", active_agents=1)
    assert answer.verdict is MoveVerdict.FORBIDDEN
    assert answer.route == ("max", "pro", "plus", "lite")
    assert machine.check_move("lite", "max", active_agents=1).allowed
