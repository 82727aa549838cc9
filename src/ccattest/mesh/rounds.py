"""Collective-nonce rounds: N evidence collections per round instead of N x (N-1).

Each site contributes a random value; the coordinator publishes the transcript T of all
contributions; each site collects ONE evidence bound to H(T) and its own identity; every
site verifies every peer against its own policy, after checking that its own contribution
is in T. Freshness is checkable by each verifier without trusting the coordinator.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..errors import CCAttestError, MalformedEvidence, StaleEvidence
from ..evidence import Evidence
from ..freshness import ReplayCache
from ..record.witness import LogView, Witness, Witnessed, WrongStartingPoint
from ..timeutil import utcnow
from .actions import FailureHandler
from .agent import SiteAgent, SiteVerdict
from .journal import Journal, evidence_digest
from .roster import Roster
from .telemetry import Telemetry
from .transport import PeerUnreachable, Transport
from .trustbook import TrustBook
from .wire import Transcript, bundle_from_wire, bundle_to_wire, parse_hex

CONTRIBUTE, ATTEST, VERIFY = "round.contribute", "round.attest", "round.verify"
COSIGN = "record.cosign"  # witness the coordinator's log outside a round (job receipts)
MAX_PENDING_ROUNDS = 64


class RoundParticipant:
    """A site's side of the rounds; `handle` is its transport handler for round topics."""

    def __init__(self, agent: SiteAgent, trust: TrustBook, *,
                 handler: FailureHandler | None = None,
                 clock: Callable[[], datetime] = utcnow,
                 round_ttl: timedelta = timedelta(minutes=10),
                 journal: Journal | None = None, witness: Witness | None = None,
                 telemetry: Telemetry | None = None) -> None:
        self.agent = agent
        self.trust = trust
        self.handler = handler
        self.clock = clock
        self.journal = journal or Journal(None, agent.identity)
        self.witness = witness
        self._witness_pool: ThreadPoolExecutor | None = None
        self._judged: dict[str, list[tuple[SiteVerdict, list[Evidence]]]] = {}
        self.record_rounds = True  # the coordinator's own site records rounds it ran itself
        self._lock = threading.Lock()
        self._contributed: dict[str, bytes] = {}  # round id -> our contribution, bounded
        self._verified = ReplayCache(ttl=round_ttl, max_entries=4096, what="round")
        # Rounds this site judged its peers in. Only the coordinator knows a round ended, so
        # every other site counts the rounds it took part in, at its verify step.
        self._completed = 0
        self._last: dict[str, Any] | None = None
        # Round telemetry: a site's part is its collection plus its judging, in seconds.
        self.telemetry = telemetry
        self._attest_seconds: dict[str, float] = {}  # round id -> collection time, bounded
        # A client judges only the peers a round brings it: one the server leaves out (it
        # cannot reach it) must count as unreachable here too, by this site's own grace.
        self.watch_peers = False
        self._peers_seen: set[str] = set()
        self.last_verified: datetime | None = None  # the last round that reached this site

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
            # Witnessing (a signature check, a proof, one durable write) runs beside the
            # verification of the peers, not after it.
            witnessing = (self._witnessing().submit(self.cosign, sender, body["log"])
                          if "log" in body and self.witness is not None else None)
            answer = self._verify(Transcript.from_wire(body.get("transcript")),
                                  body.get("evidence"), sender)
            if witnessing is not None:
                answer.update(witnessing.result())
            return answer
        if topic == COSIGN:
            return self.cosign(sender, body.get("log"))
        raise MalformedEvidence(f"unknown round topic {topic!r}")

    def _witnessing(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._witness_pool is None:
                self._witness_pool = ThreadPoolExecutor(max_workers=1,
                                                        thread_name_prefix="ccattest-witness")
            return self._witness_pool

    def cosign(self, sender: str, view: Any) -> dict[str, Any]:
        """Witness the coordinator's log: check its checkpoint extends what this site
        cosigned before, then cosign it. A log that forked, was rewritten or lost its tail
        is a failure of the coordinator, handled like any rejection (and recorded)."""
        if self.witness is None:
            return {}
        try:
            line = self.witness.cosign(LogView.from_wire(view), at=self.clock())
        except WrongStartingPoint as error:
            return {"witness_error": error.message, "witnessed": error.needed}
        except CCAttestError as error:
            detail = f"its log failed this site's witness check: {error}"
            self.journal.action(sender, "witness", "refuse-cosignature", detail)
            if self.handler is not None:
                self.handler.rejected(sender, detail)
            return {"witness_error": str(error)[:300]}
        return {"cosignature": line}

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
        answer: dict[str, Any] = {"contribution": contribution.hex()}
        if self.witness is not None:
            answer["witnessed"] = self.witness.seen_size()
        return answer

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
        started = time.perf_counter()
        evidence, key = self.agent.collect_bound(transcript.nonce(), transcript.context,
                                                 self.clock())
        if self.telemetry is not None:
            with self._lock:
                self._attest_seconds[transcript.round_id] = time.perf_counter() - started
                while len(self._attest_seconds) > MAX_PENDING_ROUNDS:
                    self._attest_seconds.pop(next(iter(self._attest_seconds)))
        if self.journal.enabled:
            self.journal.own_evidence = ",".join(evidence_digest(item) for item in evidence)
        return {"evidence": bundle_to_wire(evidence, key)}

    def _verify(self, transcript: Transcript, evidence_map: Any, coordinator: str
                ) -> dict[str, Any]:
        self._own_contribution_checked(transcript)
        self._verified.check_and_add(transcript.nonce(), at=self.clock())
        with self._lock:
            self._contributed.pop(transcript.round_id, None)
        if not isinstance(evidence_map, dict):
            raise MalformedEvidence("round evidence map is malformed")
        started = time.perf_counter()
        verdicts = {}
        judged: list[tuple[SiteVerdict, list[Evidence]]] = []  # for the record, written later
        at = self.clock()
        for peer in transcript.sites():
            if peer == self.agent.identity or peer not in evidence_map:
                continue
            key = None
            try:
                evidence, key = bundle_from_wire(evidence_map[peer])
            except MalformedEvidence as error:
                evidence, note = [], str(error)
            else:
                note = ""
            verdict = self.agent.judge(peer, evidence, nonce=transcript.nonce(),
                                       context=transcript.context, at=at, seal_key=key)
            self.trust.record(verdict, definitive=True)
            if verdict.cc_enabled:
                judged.append((verdict, evidence))
            summary = verdict.summary()
            if note:
                summary["failures"] = [note, *summary["failures"]]  # type: ignore[list-item]
            verdicts[peer] = summary
            if self.handler is not None and verdict.cc_enabled and not verdict.affirming:
                self.handler.rejected(peer, "; ".join(verdict.failures()[:3]) or verdict.status)
            elif self.handler is not None and verdict.cc_enabled:
                # Fresh (bound to a transcript holding our contribution), definitive and
                # affirming: what re-admits an excluded peer when its exclusion allows it.
                self.handler.affirmed(peer, f"fresh affirming evidence in round "
                                            f"{transcript.round_id}")
        if self.watch_peers and self.handler is not None:
            self._missing_peers(transcript, verdicts, coordinator, at)
        with self._lock:
            self.last_verified = at
            self._completed += 1
            self._last = {"round_id": transcript.round_id, "at": at.isoformat(),
                          "sites": transcript.sites(), "judged": sorted(verdicts)}
            attesting = self._attest_seconds.pop(transcript.round_id, 0.0)
        # The coordinator's own participant does not record rounds: its coordinator times
        # the whole round instead (record_rounds is False there, as for the record).
        if self.telemetry is not None and self.record_rounds:
            self.telemetry.round_done(attesting + time.perf_counter() - started)
        if self.journal.enabled:
            with self._lock:
                self._judged[transcript.round_id] = judged
                while len(self._judged) > MAX_PENDING_ROUNDS:
                    self._judged.pop(next(iter(self._judged)))
            if self.record_rounds:
                missing = {site: "no evidence in the round" for site in transcript.sites()
                           if site != self.agent.identity and site not in evidence_map}
                self.record_round(transcript, missing, at, coordinator)
        return {"verdicts": verdicts}

    def _missing_peers(self, transcript: Transcript, verdicts: Mapping[str, Any],
                       coordinator: str, at: datetime) -> None:
        """Peers seen in earlier rounds and absent from this one are unreachable to this
        site (the handler's grace applies); those present and judged answered."""
        assert self.handler is not None
        present = set(verdicts) | {coordinator, self.agent.identity}
        with self._lock:
            self._peers_seen |= present
            absent = sorted(self._peers_seen - present)
        for peer in present:
            self.handler.reachable(peer)
        for peer in absent:
            if self.agent.roster.is_cc(peer):
                self.handler.unreachable(peer, f"missing from round {transcript.round_id}",
                                         at)

    def record_round(self, transcript: Transcript, missing: Mapping[str, str], at: datetime,
                     coordinator: str) -> None:
        """Queue this round's record: each changed verdict and the round entry, with the
        evidence digests. All of it (even the hashing) runs on the record's writer thread,
        after the site has answered."""
        with self._lock:
            judged = self._judged.pop(transcript.round_id, [])
        journal = self.journal

        def write() -> None:
            statuses: dict[str, tuple[str, str | None]] = {}
            for verdict, evidence in judged:
                digests = {item.platform: evidence_digest(item) for item in evidence}
                journal.verdict(verdict, evidence, context="round", definitive=True,
                                round_id=transcript.round_id, digests=digests)
                statuses[verdict.site] = (verdict.status, ",".join(digests.values()) or None)
            journal.round(round_id=transcript.round_id, transcript=transcript.nonce().hex(),
                          coordinator=coordinator, participants=transcript.sites(),
                          missing=missing, judged=statuses, at=at)

        journal.later(write)


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
    cosigned: list[str] = field(default_factory=list)
    witness_refused: dict[str, str] = field(default_factory=dict)

    @property
    def collections(self) -> int:
        return len(self.attested)


class RoundCoordinator:
    """Runs rounds from one site (the server); fans each phase out in parallel."""

    def __init__(self, participant: RoundParticipant, transport: Transport, roster: Roster,
                 members: Callable[[], list[str]], *, handler: FailureHandler | None = None,
                 deadline: timedelta = timedelta(seconds=30), max_workers: int = 16,
                 witnessed: Witnessed | None = None, telemetry: Telemetry | None = None
                 ) -> None:
        self.participant = participant
        participant.record_rounds = False  # it judges; the coordinator records the round
        self.witnessed = witnessed
        self.identity = participant.agent.identity
        self.transport = transport
        self.roster = roster
        self.members = members
        self.handler = handler
        self.deadline = deadline
        self.telemetry = telemetry
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
        # Excluded sites take part again once their exclusion allows re-admission (their
        # cause is `auto`, or an operator lifted the hold, and no back-off runs): their
        # fresh evidence is what re-admits them. The host may not list them as members.
        retry = set(self.handler.probation()) if self.handler is not None else set()
        sites = sorted(s for s in set(self.members()) | {self.identity} | retry
                       if self.roster.is_cc(s) and (s not in excluded or s in retry))
        round_id = secrets.token_hex(8)
        report = RoundReport(round_id, started, 0.0, sites, [], [], {})
        # Each phase gets its share of the deadline, so that one slow peer cannot spend the
        # time the honest sites need to attest and judge (the transcript's deadline is final).
        quarter = self.deadline.total_seconds() / 4
        answers = self._fan_out(sites, CONTRIBUTE, lambda _: {"round_id": round_id}, report,
                                t0 + quarter)
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
                                 report, t0 + 3 * quarter)
        evidence = {site: answer.get("evidence") for site, answer in attested.items()}
        report.attested = sorted(evidence)
        verify_body = {"transcript": wire, "evidence": evidence}
        with self._witnessing():  # receipts' cosigning waits: checkpoints shown only grow
            checkpoint = (self.participant.journal.checkpoint() if self.witnessed is not None
                          else None)

            def body(site: str) -> dict[str, Any]:
                if checkpoint is None or self.witnessed is None or site == self.identity:
                    return verify_body
                seen = self.witnessed.seen_by(site, answers.get(site, {}).get("witnessed"))
                return {**verify_body,
                        "log": self.witnessed.view(checkpoint, seen, site).to_wire()}

            results = self._fan_out(report.attested, VERIFY, body, report, until)
            if checkpoint is not None:
                self._accept_cosignatures(checkpoint, results, report)
        report.verdicts = {site: answer.get("verdicts", {}) for site, answer in results.items()}
        self._record_remote(report)
        self._record_round(transcript, report)
        self._handle_unreachable(report)
        report.seconds = time.monotonic() - t0
        if self.telemetry is not None:
            self.telemetry.round_done(report.seconds)
        return report

    def _witnessing(self) -> Any:
        return self.witnessed.lock if self.witnessed is not None else contextlib.nullcontext()

    def _accept_cosignatures(self, checkpoint: bytes, results: Mapping[str, Any],
                             report: RoundReport) -> None:
        assert self.witnessed is not None
        lines = {site: answer.get("cosignature") for site, answer in results.items()
                 if site != self.identity and self.roster.is_cc(site)}
        for site, answer in results.items():
            if answer.get("witness_error"):
                report.witness_refused[site] = str(answer["witness_error"])[:300]
            needed = answer.get("witnessed")
            if isinstance(needed, int) and not isinstance(needed, bool):
                self.witnessed.seen[site] = needed  # it said where to prove from next time
        try:
            report.cosigned, refused = self.witnessed.accept(
                checkpoint, {s: line for s, line in lines.items() if line}, at=utcnow(),
                defer=self.participant.journal.later)
        except CCAttestError as error:  # the record failed: the round itself stands
            self.participant.journal.action(self.identity, "record", "alert", str(error))
            return
        report.witness_refused.update(refused)

    def _record_round(self, transcript: Transcript, report: RoundReport) -> None:
        missing = dict(report.unreachable)
        for site in report.sites:
            if site != self.identity and site not in report.attested:
                missing.setdefault(site, "no evidence in the round")
        self.participant.record_round(transcript, missing, report.started, self.identity)

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
