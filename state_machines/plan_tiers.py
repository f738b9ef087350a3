"""Plan tiers of a product as a `transitions` machine built from the catalog (R5, R6, R7).

States are the product's tiers. Triggers are the allowed moves: every upgrade to a higher rank and
exactly the downgrades the catalog lists. A move into a tier with an agent limit is guarded by the
condition that the organisation's active agents fit (R7). The machine answers three questions:
is a move allowed, which features it switches off, and, for a forbidden move, the route of
allowed moves that reaches the target.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from transitions import Machine

from subchange.domain.catalog import Product


class MoveVerdict(StrEnum):
    ALLOWED = "allowed"
    SAME_TIER = "same_tier"
    UNKNOWN_TIER = "unknown_tier"
    FORBIDDEN = "forbidden_move"
    OVER_AGENT_LIMIT = "agent_limit_exceeded"


@dataclass(frozen=True)
class MoveAnswer:
    verdict: MoveVerdict
    route: tuple[str, ...] = ()  # for FORBIDDEN: tiers from source to target via allowed moves
    features_switched_off: tuple[str, ...] = ()
    agents_to_deactivate: int = 0  # for OVER_AGENT_LIMIT

    @property
    def allowed(self) -> bool:
        return self.verdict is MoveVerdict.ALLOWED


def move_trigger(target: str) -> str:
    return f"move_to_{target}"


class _TierPosition:
    """The model the machine drives: a subscription's tier (the machine's state) and its active
    agents, which the guards of R7 compare with each tier's limit."""

    state: str  # the tier: the machine sets it

    def __init__(self, active_agents: int) -> None:
        self.active_agents = active_agents


class PlanTierMachine:
    def __init__(self, product: Product) -> None:
        self.product = product
        self._limits = {t.id: t.agent_limit for t in product.tiers}
        self.transitions: list[dict] = []
        for source in product.tiers:
            for target in product.tiers:
                upgrade = target.rank > source.rank
                downgrade = (source.id, target.id) in product.downgrades
                if upgrade or downgrade:
                    self.transitions.append(
                        {
                            "trigger": move_trigger(target.id),
                            "source": source.id,
                            "dest": target.id,
                            "conditions": ["fits_" + target.id],
                        }
                    )

    def _model_at(self, tier: str, active_agents: int) -> _TierPosition:
        model = _TierPosition(active_agents)
        for tier_id, limit in self._limits.items():
            setattr(model, "fits_" + tier_id,
                    (lambda lim=limit: lim is None or model.active_agents <= lim))
        Machine(
            model=model,
            states=[t.id for t in self.product.tiers],
            transitions=self.transitions,
            initial=tier,
            auto_transitions=False,
        )
        return model

    def allowed_targets(self, tier: str) -> list[str]:
        return [t["dest"] for t in self.transitions if t["source"] == tier]

    def route(self, source: str, target: str) -> tuple[str, ...]:
        """Shortest chain of allowed moves from source to target (ignoring limits).

        Routes that step monotonically toward the target, never past it, come first: a
        downgrade from enterprise to standard goes through professional, not through free."""
        rank = {t.id: t.rank for t in self.product.tiers}
        low, high = sorted((rank[source], rank[target]))

        def between(tier: str) -> bool:
            return low <= rank[tier] <= high

        return self._shortest(source, target, between) or self._shortest(
            source, target, lambda _tier: True)

    def _shortest(self, source: str, target: str, admissible) -> tuple[str, ...]:
        previous: dict[str, str | None] = {source: None}
        queue = deque([source])
        while queue:
            tier = queue.popleft()
            if tier == target:
                path = [tier]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])  # type: ignore[arg-type]
                return tuple(reversed(path))
            for nxt in self.allowed_targets(tier):
                if nxt not in previous and admissible(nxt):
                    previous[nxt] = tier
                    queue.append(nxt)
        return ()

    def features_switched_off(self, source: str, target: str) -> tuple[str, ...]:
        kept = set(self.product.tier(target).features)
        return tuple(f for f in self.product.tier(source).features if f not in kept)

    def check_move(self, source: str, target: str, *, active_agents: int) -> MoveAnswer:
        if not self.product.has_tier(target) or not self.product.has_tier(source):
            return MoveAnswer(MoveVerdict.UNKNOWN_TIER)
        if source == target:
            return MoveAnswer(MoveVerdict.SAME_TIER)
        model = self._model_at(source, active_agents)
        trigger = move_trigger(target)
        has_move = any(t["source"] == source and t["dest"] == target for t in self.transitions)
        if not has_move:
            return MoveAnswer(MoveVerdict.FORBIDDEN, route=self.route(source, target))
        if not getattr(model, "may_" + trigger)():
            limit = self._limits[target] or 0
            return MoveAnswer(
                MoveVerdict.OVER_AGENT_LIMIT, agents_to_deactivate=active_agents - limit
            )
        getattr(model, trigger)()
        assert model.state == target
        return MoveAnswer(
            MoveVerdict.ALLOWED, features_switched_off=self.features_switched_off(source, target)
        )
