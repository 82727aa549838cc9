"""The receipt desk's edges: who it asks, what it does when they do not answer or refuse,
and what a client accepts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ccattest.errors import MalformedEvidence, VerificationFailed
from ccattest.mesh import receipts as receipts_module
from ccattest.mesh.journal import Journal
from ccattest.mesh.receipts import ReceiptDesk
from ccattest.mesh.recording import SiteRecord
from ccattest.mesh.rounds import COSIGN
from ccattest.mesh.transport import PeerUnreachable
from ccattest.record.entry import decode
from ccattest.record.receipt import verify_receipt
from ccattest.testing.federation import SERVER, SimulatedFederation
from ccattest.timeutil import utcnow

CLIENTS = ("site-1", "site-2")


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[SimulatedFederation]:
    federation = SimulatedFederation.create(2, record_dir=tmp_path, checkpoint_every=16)
    try:
        for client in CLIENTS:
            federation.register(client)
        federation.round()
        yield federation
    finally:
        federation.close()


def _desk(fed: SimulatedFederation) -> ReceiptDesk:
    desk = fed.sites[SERVER].desk
    assert desk is not None
    return desk


class Scripted:
    """A transport whose answers the test writes, per site and topic."""

    def __init__(self, real: Any, answers: dict[tuple[str, str], list[Any]]) -> None:
        self.real, self.answers, self.asked = real, answers, []

    def request(self, site: str, topic: str, body: dict[str, Any], *, timeout: float
                ) -> dict[str, Any]:
        self.asked.append((site, topic))
        queued = self.answers.get((site, topic))
        if queued:
            answer = queued.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        return self.real.request(site, topic, body, timeout=timeout)


def test_nothing_to_issue_without_a_record() -> None:
    desk = ReceiptDesk(SiteRecord(Journal(None, SERVER)), SERVER, None,  # type: ignore[arg-type]
                       lambda: None)
    assert desk.admit("job", [SERVER]) is None and desk.close("job") is None


def test_a_job_closed_without_admission_has_no_receipt(fed: SimulatedFederation) -> None:
    assert _desk(fed).close("never-admitted") is None


def test_open_jobs_are_bounded(fed: SimulatedFederation, monkeypatch: pytest.MonkeyPatch
                               ) -> None:
    monkeypatch.setattr(receipts_module, "MAX_OPEN_JOBS", 2)
    for job in ("a", "b", "c"):
        assert _desk(fed).admit(job, [SERVER, "site-1"]) is not None
    assert _desk(fed).close("a") is None  # forgotten: the oldest open job made room
    assert _desk(fed).close("c") is not None


def test_witnesses_that_fail_to_answer_are_left_out(fed: SimulatedFederation) -> None:
    desk = _desk(fed)
    real = fed.transports[SERVER]
    scripted = Scripted(real, {
        ("site-1", COSIGN): [PeerUnreachable("site-1 did not answer")],
        ("site-2", COSIGN): [{"witness_error": "no", "witnessed": "not a size"}],
    })
    desk.transport = lambda: scripted  # type: ignore[assignment,return-value]
    token = desk.admit("job-q", [SERVER, *CLIENTS])
    assert token is not None and fed.jwks is not None
    report = verify_receipt(token, fed.jwks, now=utcnow(), min_cosigners=0)
    assert report.cosigners == () and report.missing_cosigners == CLIENTS
    with pytest.raises(VerificationFailed, match="cosignatures"):
        verify_receipt(token, fed.jwks, now=utcnow())


def test_a_witness_that_needs_another_starting_point_is_asked_again(
        fed: SimulatedFederation) -> None:
    desk = _desk(fed)
    witnessed = fed.sites[SERVER].record.witnessed
    assert witnessed is not None
    witnessed.seen.clear()  # as after a server restart: it no longer knows what they saw
    scripted = Scripted(fed.transports[SERVER], {})
    desk.transport = lambda: scripted  # type: ignore[assignment,return-value]
    token = desk.admit("job-r", [SERVER, *CLIENTS])
    assert token is not None and fed.jwks is not None
    assert verify_receipt(token, fed.jwks, now=utcnow()).cosigners == CLIENTS
    assert scripted.asked.count(("site-1", COSIGN)) == 2  # once from 0, once from its size


def test_a_bad_cosignature_line_is_refused_and_delivery_failures_are_logged(
        fed: SimulatedFederation, caplog: pytest.LogCaptureFixture) -> None:
    desk = _desk(fed)
    scripted = Scripted(fed.transports[SERVER], {
        ("site-1", COSIGN): [{"cosignature": "— site-1 AAAA\n"}],
        ("site-2", receipts_module.RECEIPT): [PeerUnreachable("gone")],
    })
    desk.transport = lambda: scripted  # type: ignore[assignment,return-value]
    assert desk.admit("job-s", [SERVER, *CLIENTS]) is not None
    assert "cosignature of site-1 refused" in caplog.text
    assert "could not send the receipt to site-2" in caplog.text


def test_no_receipt_when_signing_fails_and_it_is_recorded(fed: SimulatedFederation,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    def refuse(*_args: object, **_kwargs: object) -> str:
        raise VerificationFailed("a receipt cites an entry its checkpoint does not cover")

    monkeypatch.setattr(receipts_module, "issue_receipt", refuse)
    assert _desk(fed).admit("job-t", [SERVER, "site-1"]) is None
    fed.flush()
    log = fed.sites[SERVER].record.journal.log
    assert log is not None
    actions = [decode(e.body).data for e in log.store.entries(kind="action")]
    assert any("no admission receipt for job job-t" in a["detail"] for a in actions)


def test_no_checkpoint_no_receipt(fed: SimulatedFederation,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    journal = fed.sites[SERVER].record.journal
    monkeypatch.setattr(journal, "checkpoint", lambda *_a, **_k: None)
    assert _desk(fed).admit("job-u", [SERVER, "site-1"]) is None
    monkeypatch.setattr(journal, "gate", lambda *_a, **_k: None)
    assert _desk(fed).admit("job-v", [SERVER, "site-1"]) is None


def test_a_client_accepts_only_receipts_meant_for_it(fed: SimulatedFederation) -> None:
    token = _desk(fed).admit("job-w", [SERVER, "site-1"])
    assert token is not None
    site2 = fed.sites["site-2"].desk
    site1 = fed.sites["site-1"].desk
    assert site1 is not None and site2 is not None
    with pytest.raises(VerificationFailed, match="not meant for this site"):
        site2.on_receipt(SERVER, {"token": token})  # site-2 is no participant
    with pytest.raises(VerificationFailed, match="not meant for this site"):
        site1.on_receipt("site-2", {"token": token})  # nor is site-2 the issuer
    for body in (None, {}, {"token": 7}):
        with pytest.raises(MalformedEvidence, match="no receipt"):
            site1.on_receipt(SERVER, body)
    assert site1.on_receipt(SERVER, {"token": token}) == {
        "recorded": True, "job": "job-w", "phase": "admission"}


def test_without_a_transport_the_receipt_has_no_cosignature(fed: SimulatedFederation) -> None:
    desk = _desk(fed)
    desk.transport = lambda: None  # type: ignore[assignment,return-value]
    token = desk.admit("job-x", [SERVER, *CLIENTS])
    assert token is not None and fed.jwks is not None
    assert verify_receipt(token, fed.jwks, now=utcnow(), min_cosigners=0).cosigners == ()


def test_a_witness_asked_twice_from_the_wrong_size_gives_up(fed: SimulatedFederation) -> None:
    desk = _desk(fed)
    wrong = {"witness_error": "another size", "witnessed": 1}
    scripted = Scripted(fed.transports[SERVER], {("site-1", COSIGN): [wrong, dict(wrong)]})
    desk.transport = lambda: scripted  # type: ignore[assignment,return-value]
    token = desk.admit("job-y", [SERVER, "site-1"])
    assert token is not None and fed.jwks is not None
    assert verify_receipt(token, fed.jwks, now=utcnow(), min_cosigners=0).cosigners == ()
    assert scripted.asked.count(("site-1", COSIGN)) == 2
