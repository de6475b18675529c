"""The Pareto front of the grid and the best cell under a bitrate budget (pure).

A cell is on a system's front when no other cell of that system is at least as cheap and at least
as good on recall@N, and strictly better in one of the two. Under a budget the best cell is the
one with the highest recall among those at or below the budget (the cheaper one on a tie); it is
always on the front.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vidvpr.study.curves import Point, non_dominated


def front(points: Sequence[Point], n: int) -> list[Point]:
    """The non-dominated cells on (bitrate, recall@n), cheapest first."""
    return sorted(non_dominated(points, n), key=lambda p: (p.kbps, -p.recall[n], p.cell))


@dataclass(frozen=True)
class BudgetChoice:
    budget_kbps: float
    best: Point | None
    reason: str | None = None


def best_under_budget(points: Sequence[Point], n: int, budget_kbps: float) -> BudgetChoice:
    """The highest-recall cell with kbps <= budget (the cheaper on a tie), or why there is none."""
    affordable = [p for p in points if p.kbps <= budget_kbps]
    if not affordable:
        if not points:
            return BudgetChoice(budget_kbps, None, "no encoded cells")
        cheapest = min(points, key=lambda p: p.kbps)
        return BudgetChoice(budget_kbps, None, f"no cell at or below {budget_kbps:g} kbps "
                                               f"(the cheapest, {cheapest.cell}, needs {cheapest.kbps:g} kbps)")
    best = min(affordable, key=lambda p: (-p.recall[n], p.kbps, p.cell))
    return BudgetChoice(budget_kbps, best)
