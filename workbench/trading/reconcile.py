"""Reconciliation: the event log's view of a session against the venue's, and what differs.

The venue is the truth about what traded; the log is the truth about what this session
asked for. :func:`reconcile` compares them and sorts every difference into one of:

- **missing fills** — the venue executed one of *our* orders (a client id in the log) and
  the log has no such fill (the process died between the venue's fill and the log write):
  booked, never a reason to stop;
- **unknown orders** / **unknown fills** — open orders and executions on the account whose
  client id is not in the log (another program, a person, an earlier session);
- **position gaps** — per symbol, the venue's position change since the session's
  baseline against the session's own position, once missing fills are booked.

:class:`ReconcilePolicy` says what to do with the last two: ``"flag"`` (default) makes
:attr:`Reconciliation.ok` False and the trading loop refuses to start; ``"adopt"`` accepts
the venue's view (unknown orders are reported and left alone; a position gap moves the
baseline, so the session trades from what is really held). Quantities compare with a
relative tolerance of 1e-9 (float round-off of sums of fills).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import ParameterError
from workbench.trading.venue import VenueFill, VenueOrder, VenueState

__all__ = ["ReconcilePolicy", "Reconciliation", "ReconciliationError", "reconcile"]

_CHOICES = ("flag", "adopt")


class ReconciliationError(ParameterError):
    """The venue and the event log disagree in a way the policy does not accept."""


@dataclass(frozen=True, kw_only=True)
class ReconcilePolicy:
    """What to do with orders and positions the log cannot explain (see the module notes)."""

    unknown_orders: str = "flag"
    position_gaps: str = "flag"
    tolerance: float = 1e-9

    def __post_init__(self) -> None:
        for name in ("unknown_orders", "position_gaps"):
            value = getattr(self, name)
            if value not in _CHOICES:
                raise ParameterError(f"ReconcilePolicy: {name} must be one of {_CHOICES}, got {name}={value!r}")
        if not (isinstance(self.tolerance, int | float) and 0 <= self.tolerance < 1):
            raise ParameterError(f"ReconcilePolicy: tolerance must be in [0, 1), got tolerance={self.tolerance!r}")


@dataclass(kw_only=True)
class Reconciliation:
    """What :func:`reconcile` found; ``ok`` when the policy accepts every difference."""

    venue: str
    missing_fills: list[VenueFill] = field(default_factory=list)
    unknown_orders: list[VenueOrder] = field(default_factory=list)
    unknown_fills: list[VenueFill] = field(default_factory=list)
    position_gaps: dict[str, tuple[float, float]] = field(default_factory=dict)  # symbol -> (ours, venue's)
    policy: ReconcilePolicy = field(default_factory=ReconcilePolicy)

    @property
    def ok(self) -> bool:
        flagged_orders = self.unknown_orders and self.policy.unknown_orders == "flag"
        flagged_gaps = self.position_gaps and self.policy.position_gaps == "flag"
        return not (flagged_orders or flagged_gaps)

    def problems(self) -> list[str]:
        """One line per difference, worst first."""
        out = [f"position gap in {s}: the session holds {ours:g}, the venue shows {theirs:g} since the baseline"
               for s, (ours, theirs) in self.position_gaps.items()]  # fmt: skip
        out += [f"unknown open order {o.venue_id} ({o.side.name} {o.quantity:g} {o.symbol}, client id "
                f"{o.client_id or 'none'}) is not in the event log" for o in self.unknown_orders]  # fmt: skip
        out += [f"unknown fill {f.fill_id} ({f.side.name} {f.quantity:g} {f.symbol} @ {f.price:g})"
                for f in self.unknown_fills]  # fmt: skip
        out += [f"fill {f.fill_id} of our order {f.client_id} was missing from the log: booked" for f in self.missing_fills]
        return out

    def summary(self) -> str:
        if not self.problems():
            return f"reconciled with {self.venue}: no differences"
        verdict = "accepted" if self.ok else "REFUSED"
        return f"reconciliation with {self.venue} {verdict}: " + "; ".join(self.problems())

    def to_dict(self) -> dict[str, Any]:
        return {"venue": self.venue, "ok": self.ok, "problems": self.problems(),
                "missing_fills": [f.fill_id for f in self.missing_fills],
                "unknown_orders": [o.venue_id for o in self.unknown_orders],
                "unknown_fills": [f.fill_id for f in self.unknown_fills],
                "position_gaps": {s: list(v) for s, v in self.position_gaps.items()}}  # fmt: skip


def reconcile(
    state: VenueState,
    *,
    venue: str,
    our_orders: set[str],
    our_fills: set[str],
    positions: Mapping[str, float],
    baseline: Mapping[str, float],
    policy: ReconcilePolicy | None = None,
) -> Reconciliation:
    """Compare the venue's ``state`` with the session's log (see the module notes).

    ``our_orders``: client ids in the log; ``our_fills``: fill ids in the log;
    ``positions``: the session's signed quantity per symbol from its logged fills;
    ``baseline``: the venue's position per symbol when the session started.
    """
    policy = policy or ReconcilePolicy()
    out = Reconciliation(venue=venue, policy=policy)
    booked: dict[str, float] = dict(positions)
    for f in state.fills:
        if f.client_id in our_orders:
            if f.fill_id not in our_fills:
                out.missing_fills.append(f)
                booked[f.symbol] = booked.get(f.symbol, 0.0) + f.side.sign * f.quantity
        else:
            out.unknown_fills.append(f)
    out.unknown_orders = [o for o in state.open_orders if o.client_id not in our_orders]
    for symbol in sorted(set(booked) | set(state.positions)):
        ours = booked.get(symbol, 0.0)
        theirs = state.positions.get(symbol, 0.0) - baseline.get(symbol, 0.0)
        if not math.isclose(ours, theirs, rel_tol=policy.tolerance, abs_tol=1e-12):
            out.position_gaps[symbol] = (ours, theirs)
    return out
