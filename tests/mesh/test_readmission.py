"""Recovery: what heals heals the federation, and attestation is never skipped."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from ccattest.errors import ConfigError, PolicyRejected
from ccattest.mesh.actions import ActionConfig, FailureHandler, FlappingConfig, Readmit
from ccattest.mesh.journal import Journal
from ccattest.mesh.readmission import Readmissions
from ccattest.mesh.registration import RegistrationClient
from ccattest.mesh.trustbook import TrustBook
from ccattest.record.entry import decode
from ccattest.testing.federation import SERVER, TAMPERED, RecordingEffects, SimulatedFederation
from ccattest.testing.software import SoftwareFixture
from ccattest.timeutil import utcnow

GRACE0 = ActionConfig(unreachable_grace_seconds=0)


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class HostEffects(RecordingEffects):
    """Effects with the optional re-admission hooks a host (NVFlare) has."""

    def readmit_site(self, site: str, detail: str) -> None:
        self.calls.append(("readmit_site", site, detail))

    def allow_rejoin(self, site: str) -> None:
        self.calls.append(("allow_rejoin", site, ""))


@pytest.fixture
def fed(tmp_path):
    federation = SimulatedFederation.create(2, actions=GRACE0, record_dir=tmp_path)
    server = federation.sites[SERVER]
    server.effects = HostEffects(server.trust)
    server.handler.effects = server.effects
    federation.registration.handler = server.handler
    for name in ("site-1", "site-2"):
        assert federation.register(name)[0]
    yield federation
    federation.close()


def _kinds(fed, site=SERVER, wanted=("exclusion", "readmission", "action")):
    fed.flush()
    store = fed.sites[site].record.journal.log.store
    return [(e.kind, decode(e.body).data.get("site")) for e in store.entries()
            if e.kind in wanted]


def _tamper(fed, site="site-2"):
    """The site's evidence now measures code the policy does not accept; returns a way back."""
    slow = fed.sites[site].attester
    honest = slow.inner
    slow.inner = SoftwareFixture.create(site, now=utcnow(), root=fed.sites[site].fixture.root,
                                        items=TAMPERED).attester
    return lambda: setattr(slow, "inner", honest)


def _gate(fed):
    return fed.gate.check([SERVER, "site-1", "site-2"], at=utcnow())


def test_unreachable_site_is_readmitted_when_it_answers_with_affirming_evidence(fed):
    server = fed.sites[SERVER]
    fed.transports[SERVER].down.add("site-2")
    fed.round()
    assert "site-2" in server.trust.excluded() and not _gate(fed).allowed
    alerts = len(server.effects.calls)
    still = fed.round()  # still down: tried again (it may answer), quietly
    assert "site-2" in still.sites and "site-2" in still.unreachable
    assert len(server.effects.calls) == alerts
    fed.transports[SERVER].down.discard("site-2")
    report = fed.round()
    assert report.verdicts[SERVER]["site-2"]["affirming"]
    assert not server.trust.excluded()
    assert _gate(fed).allowed, _gate(fed).explain()
    assert ("readmit_site", "site-2") in server.effects.actions()
    assert [k for k in _kinds(fed) if k[1] == "site-2"] == [
        ("action", "site-2"), ("exclusion", "site-2"), ("readmission", "site-2")]
    # A later outage is a new exclusion, acted on again.
    fed.transports[SERVER].down.add("site-2")
    fed.round()
    assert "site-2" in server.trust.excluded()


def test_answering_with_contraindicated_evidence_keeps_it_excluded_and_held(fed):
    server = fed.sites[SERVER]
    fed.transports[SERVER].down.add("site-2")
    fed.round()
    _tamper(fed)
    fed.transports[SERVER].down.discard("site-2")
    report = fed.round()
    assert report.verdicts[SERVER]["site-2"]["status"] == "contraindicated"
    assert "measurement" in server.trust.excluded()["site-2"]
    assert server.handler.blocks("site-2")  # now a rejection: manual by default
    assert "site-2" not in fed.round().sites
    assert ("readmission", "site-2") not in _kinds(fed)


def test_rejected_site_is_not_readmitted_automatically(fed):
    server = fed.sites[SERVER]
    heal = _tamper(fed)
    fed.round()
    assert "site-2" in server.trust.excluded()
    heal()  # fixed, but a person must look first
    for _ in range(2):
        assert "site-2" not in fed.round().sites
    assert "site-2" in server.trust.excluded() and not _gate(fed).allowed
    ok, why = fed.register("site-2")  # re-registering does not get around the hold
    assert not ok and "held until an operator lifts" in why


def test_manual_readmit_then_fresh_affirming_evidence_readmits(fed):
    server = fed.sites[SERVER]
    heal = _tamper(fed)
    fed.round()
    heal()
    lifted = server.handler.lift("site-2", "alice")
    assert not lifted.held
    assert "site-2" in server.trust.excluded() and not _gate(fed).allowed  # lifting alone
    fed.round()
    assert not server.trust.excluded() and _gate(fed).allowed
    kinds = [k for k in _kinds(fed) if k[1] == "site-2"]
    assert kinds[-2:] == [("action", "site-2"), ("readmission", "site-2")]  # lift_hold


def test_manual_readmit_without_fresh_affirming_evidence_stays_excluded(fed):
    server = fed.sites[SERVER]
    _tamper(fed)
    fed.round()
    server.handler.lift("site-2", "alice")
    report = fed.round()
    assert "site-2" in report.sites  # it was given its chance ...
    assert "site-2" in server.trust.excluded()  # ... and failed: held again
    assert server.handler.blocks("site-2") and not _gate(fed).allowed
    with pytest.raises(ConfigError, match="not excluded"):
        server.handler.lift("site-1", "alice")


def test_flapping_site_is_held_out_for_a_growing_capped_backoff():
    clock = Clock()
    trust = TrustBook(SERVER)
    effects = RecordingEffects(trust)
    config = ActionConfig(unreachable_grace_seconds=0, flapping=FlappingConfig(
        exclusions=2, window_seconds=1000, backoff_seconds=10, max_backoff_seconds=40))
    handler = FailureHandler(config, effects, clock=clock)
    held = []
    for _ in range(5):
        handler.unreachable("site-2", "down", clock.now)
        assert "site-2" in trust.excluded()
        exclusion = handler.readmissions.get("site-2")
        held.append((exclusion.not_before - clock.now).total_seconds())
        if held[-1]:
            assert "site-2" not in handler.probation()
            assert not handler.affirmed("site-2", "too soon")
            assert "back-off" in handler.blocks("site-2")
            clock.advance(held[-1])
        assert handler.probation() == ["site-2"]
        assert handler.affirmed("site-2", "fresh")
        clock.advance(1)
    assert held == [0, 10, 20, 40, 40]
    clock.advance(2000)  # a quiet window: the count starts again
    handler.unreachable("site-2", "down", clock.now)
    assert handler.blocks("site-2") is None


def test_backoff_keeps_a_flapping_site_out_of_rounds(fed):
    server = fed.sites[SERVER]
    clock = Clock()
    server.handler.clock = clock
    server.handler.readmissions.flapping = FlappingConfig(exclusions=1, backoff_seconds=600)
    fed.transports[SERVER].down.add("site-2")
    fed.round()
    fed.transports[SERVER].down.discard("site-2")
    assert "site-2" not in fed.round().sites
    assert not fed.register("site-2")[0]  # nor may it register during the back-off
    clock.advance(600)
    assert "site-2" in fed.round().sites and not server.trust.excluded()


def test_restarted_client_registers_afresh_and_is_readmitted(fed):
    server = fed.sites[SERVER]
    fed.transports[SERVER].down.add("site-2")
    fed.round()
    fed.transports[SERVER].down.discard("site-2")
    # The restarted client's hello is provisional: it is let in to register, not trusted.
    client = RegistrationClient(fed.sites["site-2"].agent, SERVER, fed.sites["site-2"].trust)
    at = utcnow()
    reply = fed.registration.on_hello("site-2", client.hello(at), at)
    assert ("allow_rejoin", "site-2") in server.effects.actions()
    assert "site-2" in server.trust.excluded() and not server.trust.entry("site-2").definitive
    client.on_reply(reply, at)
    fed.transports["site-2"].request(SERVER, "register.confirm", client.confirm(reply),
                                     timeout=10)
    assert not server.trust.excluded() and _gate(fed).allowed
    assert ("readmission", "site-2") in _kinds(fed)


def test_restarted_client_is_never_trusted_on_its_old_verdict(fed):
    fed.round()
    assert _gate(fed).allowed
    client = RegistrationClient(fed.sites["site-1"].agent, SERVER, fed.sites["site-1"].trust)
    at = utcnow()
    fed.registration.on_hello("site-1", client.hello(at), at)  # it restarted
    assert "only provisionally attested" in _gate(fed).explain()


def test_restarted_site_keeps_what_it_excluded_until_fresh_evidence(fed):
    server = fed.sites[SERVER]
    fed.transports[SERVER].down.add("site-2")
    fed.round()
    _tamper(fed, "site-1")
    fed.round()
    kept = json.loads(json.dumps(server.handler.readmissions.to_wire()))
    # The server restarts: a new trust book and handler, from what it kept.
    trust = TrustBook(SERVER)
    handler = FailureHandler(GRACE0, HostEffects(trust), journal=Journal(None, SERVER))
    assert handler.restore(kept) == ["site-1", "site-2"]
    assert set(trust.excluded()) == {"site-1", "site-2"}
    assert handler.blocks("site-1") and handler.blocks("site-2") is None
    assert handler.affirmed("site-2", "fresh round") and not handler.affirmed("site-1", "x")
    assert set(trust.excluded()) == {"site-1"}
    with pytest.raises(ConfigError, match="unreadable"):
        handler.restore({"excluded": {"x": {"cause": "bored"}}})
    with pytest.raises(ConfigError, match="unreadable"):
        handler.restore({"excluded": {"x": {"cause": "rejected", "since": "soon",
                                            "held": True, "not_before": "now"}}})


def test_client_readmits_a_peer_and_refuses_a_held_server_by_the_same_rules(tmp_path):
    config = ActionConfig(readmit={"rejected": Readmit.AUTO})
    fed = SimulatedFederation.create(2, actions=config, record_dir=tmp_path)
    try:
        heal = _tamper(fed, "site-2")
        fed.round()
        site1 = fed.sites["site-1"]
        assert "site-2" in site1.trust.excluded()  # by its own judgement
        heal()
        fed.round()  # rejected: auto here, so both the server and site-1 re-admit it
        assert not site1.trust.excluded() and not fed.sites[SERVER].trust.excluded()
        assert ("readmission", "site-2") in _kinds(fed, "site-1")
    finally:
        fed.close()
    # A client that excluded its server (held) refuses it at registration until lifted.
    fed = SimulatedFederation.create(1)
    try:
        site = fed.sites["site-1"]
        site.handler.rejected(SERVER, "bad evidence")
        client = RegistrationClient(site.agent, SERVER, site.trust, handler=site.handler)
        at = utcnow()
        reply = fed.registration.on_hello("site-1", client.hello(at), at)
        with pytest.raises(PolicyRejected, match="held until an operator"):
            client.on_reply(reply, at)
        site.handler.lift(SERVER, "the site's operator")
        reply = fed.registration.on_hello("site-1", client.hello(at), at)
        assert client.on_reply(reply, at).affirming
        assert not site.trust.excluded()
    finally:
        fed.close()


def test_readmissions_persistence_and_edges():
    clock = Clock()
    rm = Readmissions(ActionConfig().readmit, FlappingConfig(exclusions=1))
    assert rm.blocks("x", clock.now) is None and rm.readmitted("x", clock.now) is None
    first = rm.exclude("x", "unreachable", clock.now, "down")
    assert first.blocks(clock.now).startswith("held out by the flapping back-off")
    again = rm.exclude("x", "unreachable", clock.now, "still down")
    assert again is first  # the same exclusion, counted once
    worse = rm.exclude("x", "rejected", clock.now, "bad")
    assert worse.held and worse.cause == "rejected" and worse.since == first.since
    assert rm.readmitted("x", clock.now) is None
    copy = Readmissions(ActionConfig().readmit, FlappingConfig())
    assert copy.restore(json.loads(json.dumps(rm.to_wire()))) == ["x"]
    assert copy.get("x") == worse
    assert not copy.lift("x").held and copy.readmitted("x", clock.now) is not None
    with pytest.raises(ConfigError):
        copy.restore([1])
    with pytest.raises(ValueError, match="max_backoff"):
        FlappingConfig(backoff_seconds=10, max_backoff_seconds=5)


def test_a_bare_host_without_trust_hooks_or_journal_still_excludes_and_readmits() -> None:
    """Effects with only the four required methods and no trust book (a simulator): the
    handler keeps its own bookkeeping and tells whoever listens that exclusions changed."""

    class Bare:
        def __init__(self) -> None:
            self.calls: list[tuple[str, str]] = []

        def alert(self, site, cause, detail) -> None:
            self.calls.append(("alert", site))

        def exclude_site(self, site, detail, cause=None) -> None:
            self.calls.append(("exclude_site", site))

        def stop_jobs(self, site, detail) -> None:
            self.calls.append(("stop_jobs", site))

        def shutdown(self, site, detail) -> None:
            self.calls.append(("shutdown", site))

    effects = Bare()
    handler = FailureHandler(GRACE0, effects)
    changes: list[int] = []
    handler.on_change = lambda: changes.append(1)
    handler.unreachable("site-1", "gone", utcnow())
    assert ("exclude_site", "site-1") in effects.calls and changes
    handler.rejoining("site-1")  # no allow_rejoin hook: nothing to call
    assert handler.affirmed("site-1", "fresh round")  # no trust book, no readmit hook
    handler.rejected("site-2", "bad measurement")
    kept = handler.readmissions.to_wire()
    assert handler.lift("site-2", "operator").cause == "rejected"  # no journal
    again = FailureHandler(GRACE0, Bare())
    assert again.restore(kept) == ["site-2"]
