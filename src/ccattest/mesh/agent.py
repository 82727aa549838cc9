"""One site's attestation agent: collects its own evidence, judges peers' against its policy."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ..errors import CollateralUnavailable
from ..evidence import Evidence, bind
from ..pipeline import verify_and_appraise
from ..platforms.base import Attester, Verifier
from ..policy import Policy, appraise_failure, check_required_platforms
from ..result import AttestationResult, Reason
from ..seal.keys import SealingKeys, SealingPublicKey
from ..timeutil import utcnow
from .roster import Roster
from .telemetry import Telemetry

REPORT_DATA_SIZES = {"nvgpu": 32}  # the GPU's SPDM nonce; CPU TEEs take 64 bytes


def report_data_size(platform: str) -> int:
    return REPORT_DATA_SIZES.get(platform, 64)


def bound_context(context: str, seal_key: SealingPublicKey | None) -> str:
    """The binding context, with the sealing key's id when the evidence carries one."""
    return context if seal_key is None else f"{context}|{seal_key.binding()}"


@dataclass(frozen=True)
class SiteVerdict:
    """A verifier's judgement of one peer: a result per platform plus site-level reasons."""

    site: str
    at: datetime
    results: tuple[AttestationResult, ...] = ()
    reasons: tuple[Reason, ...] = ()
    cc_enabled: bool = True
    # The sealing key the evidence bound (seal/): usable only while the verdict affirms.
    seal_key: SealingPublicKey | None = None

    @property
    def affirming(self) -> bool:
        if not self.cc_enabled:
            return False
        return bool(self.results) and all(r.affirming for r in self.results) and all(
            reason.passed for reason in self.reasons)

    @property
    def status(self) -> str:
        if not self.cc_enabled:
            return "not-cc"
        if self.affirming:
            return "affirming"
        statuses = [r.status.value for r in self.results]
        for tier in ("contraindicated", "warning", "none"):
            if tier in statuses:
                return tier
        return "contraindicated"

    @property
    def expires_at(self) -> datetime:
        return min((r.expires_at for r in self.results), default=self.at)

    def is_fresh(self, at: datetime) -> bool:
        return self.affirming and self.at <= at < self.expires_at

    def failures(self) -> list[str]:
        """Most specific first: each platform's failed checks, then site-level reasons."""
        messages = []
        for result in self.results:
            messages += [f"{result.platform}: {r.message}" for r in result.failures()]
        return messages + [reason.message for reason in self.reasons if not reason.passed]

    def summary(self) -> dict[str, object]:
        return {"site": self.site, "status": self.status, "affirming": self.affirming,
                "at": self.at.isoformat(), "failures": self.failures()[:8]}


@dataclass
class SiteAgent:
    identity: str
    attesters: Sequence[Attester]
    verifiers: Mapping[str, Verifier]
    policy: Policy
    roster: Roster = field(default_factory=Roster)
    telemetry: Telemetry | None = field(default=None, repr=False, compare=False)
    sealing: SealingKeys | None = field(default=None, repr=False, compare=False)

    @property
    def cc_enabled(self) -> bool:
        return bool(self.attesters)

    def collect_report_data(self, nonce: bytes, context: str, platform: str = "",
                            seal_key: SealingPublicKey | None = None) -> bytes:
        return bind(nonce, self.identity, bound_context(context, seal_key),
                    size=report_data_size(platform))

    def collect(self, nonce: bytes, context: str) -> list[Evidence]:
        return self.collect_bound(nonce, context)[0]

    def collect_bound(self, nonce: bytes, context: str, at: datetime | None = None
                      ) -> tuple[list[Evidence], SealingPublicKey | None]:
        """One evidence per local platform, all bound to the same challenge: a GPU's 32-byte
        nonce and a CPU TEE's 64-byte report_data both derive from it, so the site's
        composite result ties the GPU to the CPU TEE that answered the same challenge. With
        sealing on, every report_data also commits to this process's sealing key, which is
        returned to travel with the evidence."""
        key = self.sealing.current(at or utcnow()).public if self.sealing is not None \
            else None
        return [attester.collect(self.collect_report_data(nonce, context, attester.platform,
                                                          key))
                for attester in self.attesters], key

    def judge(self, peer: str, evidence: Sequence[Evidence], *, nonce: bytes, context: str,
              at: datetime, seal_key: SealingPublicKey | None = None) -> SiteVerdict:
        """`seal_key`: the sealing key the peer sent with its evidence. The binding includes
        it, so evidence that bound another key (a relay from another TEE) fails here."""
        spec = self.roster.spec(peer)
        if not spec.cc_enabled:
            return SiteVerdict(peer, at, cc_enabled=False)
        results, reasons = [], []
        presented = [item.platform for item in evidence]
        for item in evidence:
            verifier = self.verifiers.get(item.platform)
            if verifier is None or item.platform not in spec.platforms:
                reasons.append(Reason(f"platform:{item.platform}", False,
                                      f"{peer} presented {item.platform} evidence, which this "
                                      "site does not accept from it",
                                      expected=", ".join(spec.platforms), found=item.platform))
                continue
            report_data = bind(nonce, peer, bound_context(context, seal_key),
                               size=report_data_size(item.platform))
            started = time.perf_counter()
            try:
                result = verify_and_appraise(item, verifier, self.policy,
                                             report_data=report_data, at=at)
            except CollateralUnavailable as error:
                # Collateral this site cannot get (offline, not cached, service down) fails
                # this peer's verdict, naming what is missing; it must not abort the round.
                result = appraise_failure(item.platform, error, at, policy=self.policy,
                                          attester=item.attester)
            if self.telemetry is not None:
                self.telemetry.verified(item.platform, result.status.value,
                                        time.perf_counter() - started)
            results.append(result)
            if result.attester is not None and result.attester != peer:
                reasons.append(Reason("identity", False, "evidence names another site",
                                      expected=peer, found=result.attester))
        for platform in spec.platforms:
            if platform not in presented:
                reasons.append(Reason(f"platform:{platform}", False,
                                      f"{peer} presented no {platform} evidence",
                                      expected=platform, found=", ".join(presented) or "none"))
        reasons += check_required_platforms(self.policy, results)
        return SiteVerdict(peer, at, tuple(results), tuple(reasons), seal_key=seal_key)
