"""Roster, trust book, gate, failure handler, scheduler, wire forms, agent edge cases."""

import contextlib
import dataclasses
import threading
import time
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccattest.errors import ConfigError, MalformedEvidence
from ccattest.mesh.actions import Action, ActionConfig, FailureHandler
from ccattest.mesh.agent import SiteVerdict
from ccattest.mesh.gate import JobGate
from ccattest.mesh.roster import Roster, SiteSpec
from ccattest.mesh.scheduler import PeriodicRunner
from ccattest.mesh.trustbook import TrustBook
from ccattest.mesh.wire import Transcript, evidence_from_wire
from ccattest.testing.federation import SERVER, RecordingEffects, SimulatedFederation
from ccattest.timeutil import utcnow


def test_roster_rules():
    roster = Roster([SiteSpec("a"), SiteSpec("b", cc_enabled=False)])
    assert roster.is_cc("a") and not roster.is_cc("b")
    assert roster.is_cc("unlisted")  # unknown sites must attest
    assert roster.names() == ["a", "b"]
    with pytest.raises(ConfigError, match="listed twice"):
        Roster([SiteSpec("a"), SiteSpec("a")])
    with pytest.raises(ConfigError, match="names no platform"):
        Roster([SiteSpec("a", platforms=())])
    with pytest.raises(ConfigError, match="requires every site"):
        Roster([SiteSpec("b", cc_enabled=False)], require_all_cc=True)
    parsed = Roster.from_mapping({"x": {"platforms": ["software"]}, "y": {"cc_enabled": False}})
    assert parsed.spec("x").platforms == ("software",) and not parsed.is_cc("y")
    with pytest.raises(ConfigError, match="must be a list"):
        Roster.from_mapping({"x": {"platforms": "software"}})


def _verdict(site, *, good=True, at=None):
    fed = SimulatedFederation.create(1, tampered=[] if good else ["site-1"])
    try:
        agent = fed.sites[SERVER].agent
        evidence = fed.sites["site-1"].agent.collect(b"n" * 32, "c")
        return agent.judge("site-1", evidence, nonce=b"n" * 32, context="c", at=at or utcnow())
    finally:
        fed.close()


def test_verdict_and_gate():
    at = utcnow()
    good, bad = _verdict("site-1", at=at), _verdict("site-1", good=False, at=at)
    assert good.affirming and good.status == "affirming" and good.is_fresh(at)
    assert not bad.affirming and bad.status == "contraindicated" and bad.failures()
    trust = TrustBook(SERVER)
    roster = Roster([SiteSpec("site-2", cc_enabled=False)])
    gate = JobGate(trust, roster)
    assert "never attested" in gate.check(["site-1"], at=at).explain()
    trust.record(good, definitive=False)
    assert "only provisionally" in gate.check(["site-1"], at=at).explain()
    trust.record(good, definitive=True)
    decision = gate.check([SERVER, "site-1", "site-2"], at=at)
    assert decision.allowed, decision.explain()
    assert "fresh affirming" in decision.explain()
    assert not gate.check(["site-1"], at=at + timedelta(hours=2)).allowed
    assert "BYOC" in gate.check(["site-1"], at=at, byoc=True).explain()
    trust.record(bad, definitive=True)
    assert "last result contraindicated" in gate.check(["site-1"], at=at).explain()
    assert trust.exclude("site-1", "tampered") and not trust.exclude("site-1", "again")
    assert "excluded: tampered" in gate.check(["site-1"], at=at).explain()
    assert trust.matrix()[0].last_good == at


def test_not_cc_verdict():
    verdict = SiteVerdict("x", utcnow(), cc_enabled=False)
    assert verdict.status == "not-cc" and not verdict.affirming


def test_agent_rejects_unexpected_and_missing_platforms():
    fed = SimulatedFederation.create(1)
    try:
        agent, at = fed.sites[SERVER].agent, utcnow()
        evidence = fed.sites["site-1"].agent.collect(b"n" * 32, "c")
        import dataclasses

        odd = [dataclasses.replace(evidence[0], platform="snp")]
        verdict = agent.judge("site-1", odd, nonce=b"n" * 32, context="c", at=at)
        assert not verdict.affirming
        assert any("does not accept" in f for f in verdict.failures())
        assert any("presented no software" in f for f in verdict.failures())
        impostor = agent.judge("site-2", evidence, nonce=b"n" * 32, context="c", at=at)
        assert not impostor.affirming  # bound to site-1, judged as site-2
    finally:
        fed.close()


def test_failure_handler_grace_and_once():
    trust = TrustBook("me")
    effects = RecordingEffects(trust)
    handler = FailureHandler(ActionConfig(unreachable_grace_seconds=30), effects)
    t0 = utcnow()
    assert handler.unreachable("a", "silent", t0) is None
    assert handler.unreachable("a", "silent", t0 + timedelta(seconds=10)) is None
    handler.reachable("a")
    assert handler.unreachable("a", "silent", t0 + timedelta(seconds=40)) is None  # reset
    assert handler.unreachable("a", "silent", t0 + timedelta(seconds=80)) is Action.EXCLUDE_SITE
    assert effects.actions() == [("exclude_site", "a")]
    stop = FailureHandler(ActionConfig(on_rejected=Action.STOP_JOBS), effects)
    stop.rejected("b", "bad")
    alert = FailureHandler(ActionConfig(on_rejected=Action.ALERT), effects)
    alert.rejected("c", "bad")
    assert ("stop_jobs", "b") in effects.actions()
    assert ("alert", "c", "rejected: bad") in effects.calls


def test_periodic_runner_runs_and_stops_and_survives_errors():
    calls = []
    done = threading.Event()

    def task():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first round fails")
        if len(calls) >= 3:
            done.set()

    runner = PeriodicRunner(task, interval=0.01, jitter=0.5, first_delay=0)
    runner.start()
    assert done.wait(5)
    runner.stop()
    assert not runner.running
    count = len(calls)
    time.sleep(0.05)
    assert len(calls) == count
    with pytest.raises(ValueError, match="interval"):
        PeriodicRunner(task, interval=0)


def test_transcript_wire_round_trip_and_nonce():
    at = utcnow()
    t = Transcript.build("r", {"b": b"\2" * 32, "a": b"\1" * 32}, at)
    assert t.sites() == ["a", "b"]
    assert Transcript.from_wire(t.to_wire()) == t
    other = Transcript.build("r", {"b": b"\2" * 32, "a": b"\3" * 32}, at)
    assert t.nonce() != other.nonce() and len(t.nonce()) == 32
    with pytest.raises(MalformedEvidence, match="unique and sorted"):
        Transcript("r", (("b", b"\0" * 32), ("a", b"\0" * 32)), at)


@given(st.recursive(st.none() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["round_id", "contributions", "deadline"]),
                                      inner, max_size=3), max_leaves=10))
def test_wire_parsers_raise_only_malformed(data):
    for parse in (Transcript.from_wire, evidence_from_wire):
        with contextlib.suppress(MalformedEvidence):
            parse(data)


class _ShortLivedCollateral:
    """Wraps a verifier: the same claims, resting on collateral that ends `left` after `at`."""

    def __init__(self, inner, left):
        self.inner, self.left, self.platform = inner, left, inner.platform

    def verify(self, evidence, *, report_data, at):
        verified = self.inner.verify(evidence, report_data=report_data, at=at)
        return dataclasses.replace(verified, valid_until=at + self.left,
                                   valid_until_source="test CRL nextUpdate")


def test_peer_is_trusted_only_until_its_collateral_expires():
    at = utcnow()
    fed = SimulatedFederation.create(1)
    try:
        agent = fed.sites[SERVER].agent
        agent.verifiers = {name: _ShortLivedCollateral(verifier, timedelta(minutes=10))
                           for name, verifier in agent.verifiers.items()}
        evidence = fed.sites["site-1"].agent.collect(b"n" * 32, "c")
        verdict = agent.judge("site-1", evidence, nonce=b"n" * 32, context="c", at=at)
    finally:
        fed.close()
    assert verdict.affirming and verdict.expires_at == at + timedelta(minutes=10)
    assert {r.expiry_source for r in verdict.results} == {"test CRL nextUpdate"}
    trust = TrustBook(SERVER)
    trust.record(verdict, definitive=True)
    gate = JobGate(trust, Roster())
    assert trust.is_trusted("site-1", at + timedelta(minutes=9, seconds=59))
    assert gate.check(["site-1"], at=at + timedelta(minutes=9)).allowed
    # the policy's hour has not passed, the collateral has
    assert not trust.is_trusted("site-1", at + timedelta(minutes=10))
    assert not gate.check(["site-1"], at=at + timedelta(minutes=10)).allowed
