"""The job gate: a job runs only when every CC-enabled site in it holds a fresh result."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from .roster import Roster
from .trustbook import TrustBook


@dataclass(frozen=True)
class GateDecision:
    allowed: bool
    reasons: tuple[str, ...] = ()

    def explain(self) -> str:
        return "; ".join(self.reasons) or "all CC-enabled sites hold fresh affirming results"


class JobGate:
    def __init__(self, trust: TrustBook, roster: Roster, *, all_cc: bool = False) -> None:
        """`all_cc`: refuse any job a non-CC site takes part in (seal: required, where a
        model must never travel to a site that cannot receive it sealed)."""
        self.trust = trust
        self.roster = roster
        self.all_cc = all_cc

    def check(self, sites: Iterable[str], *, at: datetime, byoc: bool = False) -> GateDecision:
        reasons = []
        if byoc:
            reasons.append("BYOC jobs (custom code) are refused in CC mode")
        excluded = self.trust.excluded()
        for site in sorted(set(sites)):
            if site in excluded:
                reasons.append(f"{site} is excluded: {excluded[site]}")
            elif not self.roster.is_cc(site):
                if self.all_cc:
                    reasons.append(f"{site} is not CC-enabled and models must travel sealed "
                                   "(seal: required)")
                continue
            elif site != self.trust.owner and not self.trust.is_trusted(site, at):
                entry = self.trust.entry(site)
                state = "never attested" if entry is None else (
                    "only provisionally attested" if not entry.definitive else
                    f"last result {entry.verdict.status}, not fresh")
                reasons.append(f"{site} holds no fresh affirming result ({state})")
        return GateDecision(not reasons, tuple(reasons))
