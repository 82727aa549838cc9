import pytest

from ccattest.errors import MalformedEvidence, StaleEvidence
from ccattest.mesh.actions import Action, ActionConfig
from ccattest.mesh.rounds import ATTEST, CONTRIBUTE, VERIFY
from ccattest.mesh.wire import Transcript
from ccattest.testing.federation import SERVER, SimulatedFederation
from ccattest.timeutil import utcnow


@pytest.fixture
def fed():
    federation = SimulatedFederation.create(3)
    for name in ("site-1", "site-2", "site-3"):
        assert federation.register(name)[0]
    yield federation
    federation.close()


def test_round_collects_once_per_site_and_everyone_verifies_everyone(fed):
    before = fed.collections()
    report = fed.round()
    assert report.collections == 4
    assert fed.collections() - before == 4  # N, not N x (N-1)
    assert not report.unreachable
    for verifier, verdicts in report.verdicts.items():
        assert set(verdicts) == set(fed.sites) - {verifier}
        assert all(v["affirming"] for v in verdicts.values())
    cells = fed.sites[SERVER].trust.matrix()
    assert len(cells) == 12


def test_site_rejects_a_transcript_without_its_contribution(fed):
    participant = fed.sites["site-1"].participant
    participant.handle(SERVER, CONTRIBUTE, {"round_id": "r1"})
    forged = Transcript.build("r1", {"site-1": b"\1" * 32}, utcnow())
    with pytest.raises(StaleEvidence, match="contribution is missing"):
        participant.handle(SERVER, ATTEST, {"transcript": forged.to_wire()})
    with pytest.raises(StaleEvidence, match="already started"):
        participant.handle(SERVER, CONTRIBUTE, {"round_id": "r1"})


def test_round_is_verified_only_once(fed):
    p = fed.sites["site-1"].participant
    contribution = bytes.fromhex(p.handle(SERVER, CONTRIBUTE, {"round_id": "r2"})["contribution"])
    from datetime import timedelta

    transcript = Transcript.build("r2", {"site-1": contribution}, utcnow() + timedelta(minutes=1))
    p.handle(SERVER, ATTEST, {"transcript": transcript.to_wire()})
    p.handle(SERVER, VERIFY, {"transcript": transcript.to_wire(), "evidence": {}})
    with pytest.raises(StaleEvidence):
        p.handle(SERVER, VERIFY, {"transcript": transcript.to_wire(), "evidence": {}})


def test_past_deadline_is_refused(fed):
    p = fed.sites["site-1"].participant
    contribution = bytes.fromhex(p.handle(SERVER, CONTRIBUTE, {"round_id": "r3"})["contribution"])
    transcript = Transcript.build("r3", {"site-1": contribution}, utcnow())
    with pytest.raises(StaleEvidence, match="past its deadline"):
        p.handle(SERVER, ATTEST, {"transcript": transcript.to_wire()})


def test_malformed_round_messages(fed):
    p = fed.sites["site-1"].participant
    for topic, body in ((CONTRIBUTE, {"round_id": ""}), (ATTEST, {"transcript": 3}),
                        ("round.bogus", {}), (ATTEST, {"transcript": {"round_id": "x",
                                                                      "contributions": [[1]]}})):
        with pytest.raises(MalformedEvidence):
            p.handle(SERVER, topic, body)


def test_tampered_site_is_excluded_by_default_and_others_keep_running():
    fed = SimulatedFederation.create(3, tampered=["site-2"])
    try:
        report = fed.round()
        assert report.verdicts[SERVER]["site-2"]["status"] == "contraindicated"
        assert fed.sites[SERVER].effects.actions() == [("exclude_site", "site-2")]
        assert "site-2" in fed.sites[SERVER].trust.excluded()
        next_round = fed.round()
        assert "site-2" not in next_round.sites  # excluded sites no longer take part
        assert all(v["affirming"] for v in next_round.verdicts[SERVER].values())
    finally:
        fed.close()


def test_unreachable_site_gets_a_grace_period_then_the_action():
    fed = SimulatedFederation.create(2, actions=ActionConfig(unreachable_grace_seconds=0))
    try:
        fed.transports[SERVER].down.add("site-2")
        report = fed.round()
        assert "site-2" in report.unreachable
        assert ("exclude_site", "site-2") in fed.sites[SERVER].effects.actions()
        assert report.verdicts[SERVER]["site-1"]["affirming"]
    finally:
        fed.close()


def test_shutdown_action_is_applied_once():
    fed = SimulatedFederation.create(2, tampered=["site-1"],
                                     actions=ActionConfig(on_rejected=Action.SHUTDOWN))
    try:
        fed.round()
        fed.round()
        assert fed.sites[SERVER].effects.actions().count(("shutdown", "*")) == 1
    finally:
        fed.close()


def test_non_cc_sites_are_skipped():
    fed = SimulatedFederation.create(2, not_cc=["site-2"])
    try:
        report = fed.round()
        assert "site-2" not in report.sites
        assert fed.sites[SERVER].effects.actions() == []
    finally:
        fed.close()
