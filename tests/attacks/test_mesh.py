"""Attacks on the mesh's freshness and identity: replayed and relayed evidence at
registration and in collective-nonce rounds, tampered transcripts, late and duplicated
contributions, stale round evidence, slow peers. Each runs on an in-process federation whose
honest sites must come out still trusted, not excluded, and still admitted to jobs."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from ccattest.errors import MalformedEvidence, PolicyRejected, StaleEvidence
from ccattest.mesh.registration import RegistrationClient
from ccattest.mesh.rounds import ATTEST, CONTRIBUTE, VERIFY, RoundCoordinator, RoundParticipant
from ccattest.mesh.transport import PeerUnreachable
from ccattest.mesh.wire import Transcript, evidence_to_wire
from ccattest.testing.cases import FIXED_NOW
from ccattest.testing.federation import SERVER
from ccattest.timeutil import utcnow

from .catalog import attack
from .conftest import assert_honest_unharmed

HONEST = ["site-1", "site-3"]


class Tamper:
    """A transport in the attacker's hands: rewrites requests before and answers after."""

    def __init__(self, inner: Any, *, before: Any = None, after: Any = None) -> None:
        self.inner, self.before, self.after = inner, before, after

    def request(self, target: str, topic: str, body: dict[str, Any], *, timeout: float
                ) -> dict[str, Any]:
        if self.before is not None:
            body = self.before(target, topic, body)
        answer = self.inner.request(target, topic, body, timeout=timeout)
        return self.after(target, topic, answer) if self.after is not None else answer


def _round_through(fed, transport, **kwargs: Any):
    server = fed.sites[SERVER]
    coordinator = RoundCoordinator(server.participant, transport, fed.roster,
                                   members=lambda: list(fed.sites), handler=server.handler,
                                   **kwargs)
    try:
        return coordinator.run_round()
    finally:
        coordinator.close()


def _client(fed, name: str) -> RegistrationClient:
    site = fed.sites[name]
    return RegistrationClient(site.agent, SERVER, site.trust)


def _register_fully(fed, name: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """One honest registration of `name`, as the attacker observed it on the wire."""
    at = utcnow()
    client = _client(fed, name)
    hello = client.hello(at)
    reply = fed.registration.on_hello(name, hello, at)
    client.on_reply(reply, at)
    confirm = client.confirm(reply)
    assert fed.registration.on_confirm(name, confirm, at).affirming
    return hello, reply, confirm


# --- registration ------------------------------------------------------------------------------

@attack("replayed registration hello",
        does="captures a site's registration hello (its evidence and challenge) and sends it "
             "again later",
        stopped_by="the server's replay cache of client challenges (StaleEvidence "
                   "'replayed') and the two-minute time window ('too old')")
def test_replayed_registration_hello(fed):
    hello, _, _ = _register_fully(fed, "site-1")
    with pytest.raises(StaleEvidence, match="replayed"):
        fed.registration.on_hello("site-1", hello, utcnow())
    old = _client(fed, "site-1").hello(utcnow() - timedelta(minutes=10))
    with pytest.raises(StaleEvidence, match="too old"):
        fed.registration.on_hello("site-1", old, utcnow())
    assert_honest_unharmed(fed, CLIENTS_ALL)


@attack("replayed registration confirmation",
        does="replays a site's answer to the server's challenge N, or answers a challenge the "
             "server never issued",
        stopped_by="ChallengeIssuer.redeem: each challenge is redeemed once, by the site it "
                   "was issued to (StaleEvidence 'unknown or already used')")
def test_replayed_registration_confirmation(fed):
    _, _, confirm = _register_fully(fed, "site-1")
    with pytest.raises(StaleEvidence, match="unknown or already used"):
        fed.registration.on_confirm("site-1", confirm, utcnow())
    with pytest.raises(StaleEvidence, match="unknown or already used"):
        fed.registration.on_confirm("site-1", {**confirm, "challenge": "00" * 32}, utcnow())
    assert_honest_unharmed(fed, CLIENTS_ALL)


@attack("registration relayed under another name",
        does="site-2, authenticated as itself, registers with site-1's fresh hello (site-1's "
             "genuine evidence)",
        stopped_by="the binding: report_data = bind(nonce, the transport-authenticated name, "
                   "context), so site-1's evidence does not bind site-2 (PolicyRejected)")
def test_registration_relayed_under_another_name(fed):
    at = utcnow()
    stolen = _client(fed, "site-1").hello(at)
    with pytest.raises(PolicyRejected, match="registration refused: site-2") as caught:
        fed.registration.on_hello("site-2", stolen, at)
    assert "site-2" in str(caught.value)
    assert not fed.sites[SERVER].trust.is_trusted("site-2", utcnow())
    assert_honest_unharmed(fed, HONEST)


@attack("CC site claiming to be non-CC",
        does="a site the roster lists as CC-enabled registers without evidence, as a non-CC "
             "site would, to skip attestation",
        stopped_by="the verifier's own roster decides who must attest, never the peer: the "
                   "hello without evidence is MalformedEvidence and the site is refused")
def test_cc_site_claiming_to_be_non_cc(fed):
    at = utcnow()
    hello = _client(fed, "site-2").hello(at)
    del hello["evidence"]
    with pytest.raises(MalformedEvidence, match="evidence list is malformed"):
        fed.registration.on_hello("site-2", hello, at)
    # and in a round: answering ATTEST with nothing is a failed verdict, not a skip
    report = _round_through(fed, Tamper(fed.transports[SERVER], after=lambda target, topic, a: (
        {"evidence": []} if (target, topic) == ("site-2", ATTEST) else a)))
    verdict = report.verdicts[SERVER]["site-2"]
    assert not verdict["affirming"] and "presented no software evidence" in verdict["failures"][0]
    assert "site-2" in fed.sites[SERVER].trust.excluded()
    assert_honest_unharmed(fed, HONEST)


# --- rounds -------------------------------------------------------------------------------------

@attack("round evidence relayed under another name",
        does="in a round, site-2 answers ATTEST with site-1's evidence for the same round",
        stopped_by="each peer checks the evidence against bind(H(transcript), site-2, "
                   "round context): site-1's report_data does not bind site-2, so the verdict "
                   "is contraindicated and only site-2 is excluded")
def test_round_evidence_relayed_under_another_name(fed):
    round_of: dict[str, Transcript] = {}

    def capture(target: str, topic: str, body: dict[str, Any]) -> dict[str, Any]:
        if topic == ATTEST:
            round_of["transcript"] = Transcript.from_wire(body["transcript"])
        return body

    def swap(target: str, topic: str, answer: dict[str, Any]) -> dict[str, Any]:
        if (target, topic) == ("site-2", ATTEST):  # site-1's genuine answer to this round
            transcript = round_of["transcript"]
            return {"evidence": evidence_to_wire(fed.sites["site-1"].agent.collect(
                transcript.nonce(), transcript.context))}
        return answer

    report = _round_through(fed, Tamper(fed.transports[SERVER], before=capture, after=swap))
    for verifier in (SERVER, *HONEST):
        verdict = report.verdicts[verifier]["site-2"]
        assert verdict["status"] == "contraindicated", verdict
        assert any("report_data does not bind" in f or "names another site" in f
                   for f in verdict["failures"]), verdict
    assert "site-2" in fed.sites[SERVER].trust.excluded()
    assert_honest_unharmed(fed, HONEST)


@attack("evidence from another round",
        does="a peer answers a round with the evidence it (genuinely) produced in an earlier "
             "round",
        stopped_by="round evidence binds SHA-256 of this round's transcript, which holds every "
                   "site's fresh contribution: old evidence fails the report_data binding")
def test_evidence_from_another_round(fed):
    kept: dict[str, Any] = {}

    def keep(target: str, topic: str, answer: dict[str, Any]) -> dict[str, Any]:
        if (target, topic) == ("site-2", ATTEST):
            kept.setdefault("old", answer)
        return answer

    _round_through(fed, Tamper(fed.transports[SERVER], after=keep))
    assert "old" in kept

    def stale(target: str, topic: str, answer: dict[str, Any]) -> dict[str, Any]:
        return kept["old"] if (target, topic) == ("site-2", ATTEST) else answer

    report = _round_through(fed, Tamper(fed.transports[SERVER], after=stale))
    for verifier in (SERVER, *HONEST):
        verdict = report.verdicts[verifier]["site-2"]
        assert verdict["status"] == "contraindicated"
        assert any("report_data does not bind" in f for f in verdict["failures"]), verdict
    assert fed.sites[SERVER].effects.actions() == [("exclude_site", "site-2")]
    assert_honest_unharmed(fed, HONEST)


@attack("contribution left out of the transcript",
        does="the coordinator (or a man in the middle) publishes a transcript without a site's "
             "contribution, or with another value in its place, so the site would attest to a "
             "transcript whose freshness it cannot check",
        stopped_by="each site checks its own fresh contribution is in the transcript before "
                   "it attests or judges (StaleEvidence 'our contribution is missing')")
def test_contribution_left_out(fed):
    participant = fed.sites["site-1"].participant
    mine = bytes.fromhex(participant.handle(SERVER, CONTRIBUTE, {"round_id": "r-left"})[
        "contribution"])
    deadline = utcnow() + timedelta(minutes=1)
    for contributions in ({"site-3": b"\3" * 32}, {"site-1": b"\1" * 32, "site-3": b"\3" * 32}):
        forged = Transcript.build("r-left", contributions, deadline)
        for topic in (ATTEST, VERIFY):
            with pytest.raises(StaleEvidence, match="our contribution is missing"):
                participant.handle(SERVER, topic, {"transcript": forged.to_wire(),
                                                   "evidence": {}})
    honest = Transcript.build("r-left", {"site-1": mine}, deadline)
    assert "evidence" in participant.handle(SERVER, ATTEST, {"transcript": honest.to_wire()})
    assert_honest_unharmed(fed, CLIENTS_ALL)


@attack("transcript past its deadline",
        does="a late coordinator (or an attacker replaying a held-back transcript) asks a site "
             "to attest after the round's deadline",
        stopped_by="the participant compares the transcript's deadline with its own clock "
                   "(StaleEvidence 'past its deadline')")
def test_transcript_past_its_deadline(fed):
    site = fed.sites["site-1"]
    clock = [FIXED_NOW]
    participant = RoundParticipant(site.agent, site.trust, clock=lambda: clock[0])
    mine = bytes.fromhex(participant.handle(SERVER, CONTRIBUTE, {"round_id": "r-late"})[
        "contribution"])
    transcript = Transcript.build("r-late", {"site-1": mine}, FIXED_NOW + timedelta(seconds=30))
    clock[0] = FIXED_NOW + timedelta(seconds=31)
    for topic in (ATTEST, VERIFY):
        with pytest.raises(StaleEvidence, match="past its deadline"):
            participant.handle(SERVER, topic, {"transcript": transcript.to_wire(),
                                               "evidence": {}})
    assert_honest_unharmed(fed, CLIENTS_ALL)


@attack("late contribution",
        does="a site answers the coordinator's CONTRIBUTE, or its ATTEST, only at the end of "
             "the round deadline, so that no time is left for the honest sites to attest and "
             "judge (every round, keeping their results from being refreshed)",
        stopped_by="each round phase has its share of the deadline (contribute 1/4, attest "
                   "3/4): the late site is unreachable for this round (grace period before any "
                   "action) and the honest sites' round completes without it")
@pytest.mark.parametrize("phase", [CONTRIBUTE, ATTEST])
def test_late_contribution(fed, phase):
    def late(target: str, topic: str, body: dict[str, Any]) -> dict[str, Any]:
        if (target, topic) == ("site-2", phase):
            time.sleep(1.9)
        return body

    started = time.monotonic()
    report = _round_through(fed, Tamper(fed.transports[SERVER], before=late),
                            deadline=timedelta(seconds=2))
    assert time.monotonic() - started < 5
    assert "before the round deadline" in report.unreachable["site-2"]
    assert "site-2" not in report.attested
    assert fed.sites[SERVER].effects.actions() == []  # the grace period holds
    for verifier in (SERVER, *HONEST):
        assert {peer for peer, v in report.verdicts[verifier].items() if v["affirming"]} == (
            {SERVER, *HONEST} - {verifier})
    assert_honest_unharmed(fed, HONEST)


@attack("duplicated contribution",
        does="asks a site to contribute twice to one round (to pick the value it likes), or "
             "lists a site twice in a transcript",
        stopped_by="a site contributes once per round id (StaleEvidence 'already started'); "
                   "a transcript's sites must be unique and sorted (MalformedEvidence)")
def test_duplicated_contribution(fed):
    participant = fed.sites["site-1"].participant
    participant.handle(SERVER, CONTRIBUTE, {"round_id": "r-dup"})
    with pytest.raises(StaleEvidence, match="already started"):
        participant.handle(SERVER, CONTRIBUTE, {"round_id": "r-dup"})
    wire = Transcript.build("r-dup", {"site-1": b"\1" * 32}, utcnow()).to_wire()
    wire["contributions"] = wire["contributions"] * 2
    with pytest.raises(MalformedEvidence, match="unique and sorted"):
        participant.handle(SERVER, ATTEST, {"transcript": wire})
    assert_honest_unharmed(fed, CLIENTS_ALL)


@attack("replayed round transcript",
        does="sends a site the VERIFY step of a round it already judged, to make it record "
             "verdicts on stale evidence again",
        stopped_by="each site's ReplayCache of transcript digests: a round is judged once "
                   "(StaleEvidence 'replayed')")
def test_replayed_round_transcript(fed):
    participant = fed.sites["site-1"].participant
    mine = bytes.fromhex(participant.handle(SERVER, CONTRIBUTE, {"round_id": "r-again"})[
        "contribution"])
    transcript = Transcript.build("r-again", {"site-1": mine}, utcnow() + timedelta(minutes=1))
    body = {"transcript": transcript.to_wire(), "evidence": {}}
    participant.handle(SERVER, VERIFY, body)
    with pytest.raises(StaleEvidence):
        participant.handle(SERVER, VERIFY, body)
    assert_honest_unharmed(fed, CLIENTS_ALL)


@attack("slow peer",
        does="a peer takes the VERIFY request and never finishes answering",
        stopped_by="the round deadline: the coordinator stops waiting at the deadline, the "
                   "transport's timeout ends the call, the honest sites' verdicts stand and "
                   "no thread is left behind")
def test_slow_peer():
    from ccattest.testing.federation import SimulatedFederation

    baseline = threading.active_count()
    fed = SimulatedFederation.create(3)
    try:
        for name in ("site-1", "site-2", "site-3"):
            assert fed.register(name)[0]
        fed.round()
        stuck = threading.Event()

        class Stalling:
            """site-2 holds the call until the transport's timeout, as a cell request does."""

            def request(self, target, topic, body, *, timeout):
                if (target, topic) == ("site-2", VERIFY):
                    stuck.wait(timeout)
                    raise PeerUnreachable(f"{target} did not answer {topic}", found="TIMEOUT")
                return fed.transports[SERVER].request(target, topic, body, timeout=timeout)

        started = time.monotonic()
        report = _round_through(fed, Stalling(), deadline=timedelta(seconds=2))
        assert time.monotonic() - started < 4  # the deadline, not the peer, ended the round
        assert "site-2" in report.unreachable
        assert report.verdicts[SERVER]["site-1"]["affirming"]
        assert report.verdicts["site-3"]["site-1"]["affirming"]
        assert_honest_unharmed(fed, HONEST)
    finally:
        fed.close()
    limit = time.monotonic() + 5
    while threading.active_count() > baseline and time.monotonic() < limit:
        time.sleep(0.05)
    assert threading.active_count() <= baseline, [t.name for t in threading.enumerate()]


CLIENTS_ALL = ["site-1", "site-2", "site-3"]
