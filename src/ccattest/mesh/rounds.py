"""Collective-nonce rounds: N evidence collections per round instead of N x (N-1).

Each site contributes a random value; the coordinator publishes the transcript T of all
contributions; each site collects ONE evidence bound to H(T) and its own identity; every
site verifies every peer against its own policy, after checking that its own contribution
is in T. Freshness is checkable by each verifier without trusting the coordinator.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..errors import CCAttestError, MalformedEvidence, StaleEvidence
from ..freshness import ReplayCache
from ..timeutil import utcnow
from .actions import FailureHandler
from .agent import SiteAgent
from .roster import Roster
from .transport import PeerUnreachable, Transport
from .trustbook import TrustBook
from .wire import Transcript, evidence_from_wire, evidence_to_wire, parse_hex

CONTRIBUTE, ATTEST, VERIFY = "round.contribute", "round.attest", "round.verify"
MAX_PENDING_ROUNDS = 64


class RoundParticipant:
    """A site's side of the rounds; `handle` is its transport handler for round topics."""

    def __init__(self, agent: SiteAgent, trust: TrustBook, *,
                 handler: FailureHandler | None = None,
                 clock: Callable[[], datetime] = utcnow,
                 round_ttl: timedelta = timedelta(minutes=10)) -> None:
        self.agent = agent
        self.trust = trust
        self.handler = handler
        self.clock = clock
        self._lock = threading.Lock()
        self._contributed: dict[str, bytes] = {}  # round id -> our contribution, bounded
        self._verified = ReplayCache(ttl=round_ttl, max_entries=4096, what="round")
        # Rounds this site judged its peers in. Only the coordinator knows a round ended, so
        # every other site counts the rounds it took part in, at its verify step.
        self._completed = 0
        self._last: dict[str, Any] | None = None

    def completed(self) -> tuple[int, dict[str, Any] | None]:
        """How many rounds this site judged its peers in, and the last one."""
        with self._lock:
            return self._completed, None if self._last is None else dict(self._last)

    def handle(self, sender: str, topic: str, body: dict[str, Any]) -> dict[str, Any]:
        if topic == CONTRIBUTE:
            return self._contribute(body)
        if topic == ATTEST:
            return self._attest(Transcript.from_wire(body.get("transcript")))
        if topic == VERIFY:
            return self._verify(Transcript.from_wire(body.get("transcript")),
                                body.get("evidence"))
        raise MalformedEvidence(f"unknown round topic {topic!r}")

    def _contribute(self, body: dict[str, Any]) -> dict[str, Any]:
        round_id = body.get("round_id")
        if not isinstance(round_id, str) or not 0 < len(round_id) <= 64:
            raise MalformedEvidence("round id is malformed")
        contribution = secrets.token_bytes(32)
        with self._lock:
            if round_id in self._contributed:
                raise StaleEvidence(f"round {round_id} was already started")
            while len(self._contributed) >= MAX_PENDING_ROUNDS:
                self._contributed.pop(next(iter(self._contributed)))
            self._contributed[round_id] = contribution
        return {"contribution": contribution.hex()}

    def _own_contribution_checked(self, transcript: Transcript) -> None:
        with self._lock:
            mine = self._contributed.get(transcript.round_id)
        if mine is None or transcript.contribution_of(self.agent.identity) != mine:
            raise StaleEvidence(
                f"round {transcript.round_id}: our contribution is missing from the transcript",
                hint="the round was not started with this site, or the transcript was altered")
        if self.clock() > transcript.deadline:
            raise StaleEvidence(f"round {transcript.round_id} is past its deadline",
                                expected=f"before {transcript.deadline.isoformat()}")

    def _attest(self, transcript: Transcript) -> dict[str, Any]:
        self._own_contribution_checked(transcript)
        evidence = self.agent.collect(transcript.nonce(), transcript.context)
        return {"evidence": evidence_to_wire(evidence)}

    def _verify(self, transcript: Transcript, evidence_map: Any) -> dict[str, Any]:
        self._own_contribution_checked(transcript)
        self._verified.check_and_add(transcript.nonce(), at=self.clock())
        with self._lock:
            self._contributed.pop(transcript.round_id, None)
        if not isinstance(evidence_map, dict):
            raise MalformedEvidence("round evidence map is malformed")
        verdicts = {}
        at = self.clock()
        for peer in transcript.sites():
            if peer == self.agent.identity or peer not in evidence_map:
                continue
            try:
                evidence = evidence_from_wire(evidence_map[peer])
            except MalformedEvidence as error:
                evidence, note = [], str(error)
            else:
                note = ""
            verdict = self.agent.judge(peer, evidence, nonce=transcript.nonce(),
                                       context=transcript.context, at=at)
            self.trust.record(verdict, definitive=True)
            summary = verdict.summary()
            if note:
                summary["failures"] = [note, *summary["failures"]]  # type: ignore[list-item]
            verdicts[peer] = summary
            if self.handler is not None and verdict.cc_enabled and not verdict.affirming:
                self.handler.rejected(peer, "; ".join(verdict.failures()[:3]) or verdict.status)
        with self._lock:
            self._completed += 1
            self._last = {"round_id": transcript.round_id, "at": at.isoformat(),
                          "sites": transcript.sites(), "judged": sorted(verdicts)}
        return {"verdicts": verdicts}


@dataclass
class RoundReport:
    round_id: str
    started: datetime
    seconds: float
    sites: list[str]
    contributed: list[str]
    attested: list[str]
    unreachable: dict[str, str]
    verdicts: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    messages: int = 0

    @property
    def collections(self) -> int:
        return len(self.attested)


class RoundCoordinator:
    """Runs rounds from one site (the server); fans each phase out in parallel."""

    def __init__(self, participant: RoundParticipant, transport: Transport, roster: Roster,
                 members: Callable[[], list[str]], *, handler: FailureHandler | None = None,
                 deadline: timedelta = timedelta(seconds=30), max_workers: int = 16) -> None:
        self.participant = participant
        self.identity = participant.agent.identity
        self.transport = transport
        self.roster = roster
        self.members = members
        self.handler = handler
        self.deadline = deadline
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="ccattest")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _call(self, site: str, topic: str, body: dict[str, Any], timeout: float
              ) -> dict[str, Any]:
        if site == self.identity:
            return self.participant.handle(site, topic, body)
        return self.transport.request(site, topic, body, timeout=timeout)

    def _fan_out(self, sites: list[str], topic: str, body: Callable[[str], dict[str, Any]],
                 report: RoundReport, until: float) -> dict[str, dict[str, Any]]:
        futures = {site: self._pool.submit(self._call, site, topic, body(site),
                                           max(0.1, until - time.monotonic()))
                   for site in sites}
        answers = {}
        for site, future in futures.items():
            try:
                answers[site] = future.result(timeout=max(0.1, until - time.monotonic()))
                report.messages += 1
            except PeerUnreachable as error:
                report.unreachable[site] = error.message
            except CCAttestError as error:  # the peer answered, but refused the round
                report.unreachable[site] = f"{topic}: {error}"
            except TimeoutError:
                report.unreachable[site] = f"no answer to {topic} before the round deadline"
        return answers

    def run_round(self) -> RoundReport:
        started, t0 = utcnow(), time.monotonic()
        until = t0 + self.deadline.total_seconds()
        excluded = self.participant.trust.excluded()
        sites = sorted(s for s in set(self.members()) | {self.identity}
                       if self.roster.is_cc(s) and s not in excluded)
        round_id = secrets.token_hex(8)
        report = RoundReport(round_id, started, 0.0, sites, [], [], {})
        answers = self._fan_out(sites, CONTRIBUTE, lambda _: {"round_id": round_id}, report,
                                until)
        contributions = {}
        for site, answer in answers.items():
            try:
                contributions[site] = parse_hex(answer.get("contribution"), 32, "contribution")
            except MalformedEvidence as error:
                report.unreachable[site] = str(error)
        report.contributed = sorted(contributions)
        transcript = Transcript.build(round_id, contributions, started + self.deadline)
        wire = transcript.to_wire()
        attested = self._fan_out(report.contributed, ATTEST, lambda _: {"transcript": wire},
                                 report, until)
        evidence = {site: answer.get("evidence") for site, answer in attested.items()}
        report.attested = sorted(evidence)
        verify_body = {"transcript": wire, "evidence": evidence}
        results = self._fan_out(report.attested, VERIFY, lambda _: verify_body, report, until)
        report.verdicts = {site: answer.get("verdicts", {}) for site, answer in results.items()}
        self._record_remote(report)
        self._handle_unreachable(report)
        report.seconds = time.monotonic() - t0
        return report

    def _record_remote(self, report: RoundReport) -> None:
        trust = self.participant.trust
        for verifier, verdicts in report.verdicts.items():
            if verifier == self.identity or not isinstance(verdicts, Mapping):
                continue
            for peer, summary in verdicts.items():
                if isinstance(summary, Mapping):
                    trust.record_remote(verifier, str(peer), str(summary.get("status")),
                                        report.started, bool(summary.get("affirming")))

    def _handle_unreachable(self, report: RoundReport) -> None:
        if self.handler is None:
            return
        for site in report.sites:
            if site == self.identity:
                continue
            if site in report.unreachable:
                self.handler.unreachable(site, report.unreachable[site], report.started)
            else:
                self.handler.reachable(site)
