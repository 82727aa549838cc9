"""The record in a running (in-process) federation: what each site writes, the witnessing of
the server's log, job receipts, and the attacks witnessing exists to catch."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccattest.errors import ConfigError, VerificationFailed
from ccattest.mesh.rounds import RoundCoordinator
from ccattest.record import note
from ccattest.record.audit import audit
from ccattest.record.entry import Entry, decode
from ccattest.record.keys import SiteKeys, merge_jwks
from ccattest.record.log import SiteLog
from ccattest.record.receipt import verify_receipt
from ccattest.record.store import RecordStore
from ccattest.record.witness import Witnessed
from ccattest.testing.federation import SERVER, TAMPERED, SimulatedFederation
from ccattest.testing.software import SoftwareFixture
from ccattest.timeutil import utcnow

CLIENTS = ("site-1", "site-2", "site-3")


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[SimulatedFederation]:
    federation = SimulatedFederation.create(3, record_dir=tmp_path, checkpoint_every=16)
    try:
        for client in CLIENTS:
            assert federation.register(client) == (True, "registered")
        yield federation
    finally:
        federation.close()


def _store(fed: SimulatedFederation, site: str) -> RecordStore:
    fed.flush()  # rounds write behind themselves
    log = fed.sites[site].record.journal.log
    assert log is not None
    return log.store


def _kinds(fed: SimulatedFederation, site: str) -> list[str]:
    return [entry.kind for entry in _store(fed, site).entries()]


def test_every_site_records_and_its_record_audits(fed: SimulatedFederation) -> None:
    for _ in range(4):
        report = fed.round()
        assert report.cosigned == list(CLIENTS) and not report.witness_refused
    server = _kinds(fed, SERVER)
    assert server.count("round") == 4
    assert server.count("registration") == 6  # hello (provisional) and confirm per client
    for site in (SERVER, *CLIENTS):
        store = _store(fed, site)
        keys = fed.sites[site].record.keys
        assert keys is not None
        found = fed.sites[site].record.note_keys
        assert found is not None
        result = audit(store, keys.log.verifier, witnesses=found.witnesses)
        assert result.size == store.size()
    server = _store(fed, SERVER)
    witnessed = [c.size for c in server.checkpoints() if server.cosignatures(c.size)]
    assert len(witnessed) == 4  # one checkpoint a round, cosigned by every client
    assert {c.witness for c in server.cosignatures(witnessed[-1])} == set(CLIENTS)


def test_storage_grows_with_change_not_with_rounds(fed: SimulatedFederation) -> None:
    fed.round()
    sizes = {site: _store(fed, site).size() for site in (SERVER, *CLIENTS)}
    for _ in range(5):
        fed.round()
    for site, before in sizes.items():  # steady state: one round entry a round, no verdicts
        assert _store(fed, site).size() - before == 5, site
        assert _kinds(fed, site)[before:] == ["round"] * 5
    round_entry = decode(_store(fed, SERVER).entries(kind="round")[-1].body)
    assert set(round_entry.data["judged"]) == set(CLIENTS)
    assert all(status == "affirming" and len(digest) == 64
               for status, digest in round_entry.data["judged"].values())
    # A change is recorded: site-2 now runs tampered code.
    site = fed.sites["site-2"]
    assert site.fixture is not None
    tampered = SoftwareFixture.create("site-2", now=utcnow(), root=site.fixture.root,
                                      items=TAMPERED)
    site.attester.inner = tampered.attester  # type: ignore[union-attr]
    fed.round()
    verdicts = [decode(e.body).data for e in _store(fed, SERVER).entries(kind="verdict")]
    assert verdicts[-1]["peer"] == "site-2" and verdicts[-1]["status"] == "contraindicated"
    assert "exclusion" in _kinds(fed, SERVER)


def test_job_receipt_verifies_offline_with_the_federation_keys(fed: SimulatedFederation) -> None:
    fed.round()
    decision, token = fed.admit("job-7", [SERVER, "site-1", "site-2"])
    assert decision.allowed and token is not None
    assert fed.jwks is not None
    report = verify_receipt(token, fed.jwks, now=utcnow())
    assert report.participants == (SERVER, "site-1", "site-2")
    assert report.cosigners == ("site-1", "site-2") and not report.missing_cosigners
    assert report.statuses == {SERVER: "issuer", "site-1": "affirming", "site-2": "affirming"}
    for site in ("site-1", "site-2"):  # each participant keeps its own copy
        kept = [decode(e.body).data for e in _store(fed, site).entries(kind="receipt")]
        assert [r["token"] for r in kept] == [token]
    assert not _store(fed, "site-3").entries(kind="receipt")
    assert fed.admit("job-7", [SERVER, "site-1", "site-2"])[1] is None  # once per job

    head, payload, signature = token.split(".")
    forged = ".".join([head, payload[:-2] + ("A" if payload[-2] != "A" else "B") +
                       payload[-1], signature])
    with pytest.raises(Exception, match=r"signature|decode"):
        verify_receipt(forged, fed.jwks, now=utcnow())
    other = merge_jwks([SiteKeys.generate("other", SERVER).public_jwks(),
                        [k for k in fed.jwks["keys"] if "ccattest_note" not in k]])
    with pytest.raises(ConfigError, match="no key for the log"):
        verify_receipt(token, other, now=utcnow())


def test_closing_receipt_lists_what_happened_during_the_job(fed: SimulatedFederation) -> None:
    fed.round()
    _, token = fed.admit("job-8", [SERVER, "site-1", "site-2"])
    assert token is not None
    fed.sites["site-2"].participant.agent.attesters = []  # site-2 stops presenting evidence
    fed.round()
    closing = fed.sites[SERVER].desk.close("job-8")  # type: ignore[union-attr]
    assert closing is not None and fed.jwks is not None
    report = verify_receipt(closing, fed.jwks, now=utcnow(), min_cosigners=1)
    assert report.phase == "closing"
    assert {e.kind for e in report.events} >= {"exclusion"}
    assert any(e.data.get("site") == "site-2" for e in report.events)


# -- attacks on the log, each caught by an honest witness -----------------------------------

def _replace_server_log(fed: SimulatedFederation, change) -> None:
    """The server rewrites its own database, then carries on signing as if nothing
    happened: a new writer over the altered rows, with the same log key."""
    server = fed.sites[SERVER]
    fed.flush()  # what the last round queued is written to the honest log first
    log = server.record.journal.log
    assert log is not None
    path = Path(log.store.location)
    log.store.close()
    with sqlite3.connect(path) as db:
        change(db)
    store = RecordStore.open(path, origin=log.origin, create=False)
    fresh = SiteLog(store, log.signer, checkpoint_every=log.checkpoint_every)
    server.record.journal.log = fresh
    witnessed = server.record.witnessed
    assert witnessed is not None
    witnessed.log = fresh


def _caught(fed: SimulatedFederation, words: str) -> None:
    report = fed.round()
    assert set(report.witness_refused) == set(CLIENTS), report.witness_refused
    assert all(words in why for why in report.witness_refused.values())
    for client in CLIENTS:
        actions = [decode(e.body).data for e in _store(fed, client).entries(kind="action")]
        assert any(a["cause"] == "witness" and a["site"] == SERVER for a in actions)
        assert ("exclude_site", SERVER) in fed.sites[client].effects.actions()


def test_a_rewritten_entry_is_caught(fed: SimulatedFederation) -> None:
    for _ in range(2):
        fed.round()

    def rewrite(db: sqlite3.Connection) -> None:
        index, body = db.execute("SELECT idx, body FROM entries WHERE kind = 'verdict' "
                                 "ORDER BY idx LIMIT 1").fetchone()
        entry = decode(bytes(body))
        data = {**entry.data, "status": "affirming", "affirming": True, "failures": []}
        changed = Entry(entry.kind, entry.site, entry.at, {**data, "note": "rewritten"})
        from ccattest.record.merkle import leaf_hash

        db.execute("UPDATE entries SET body = ?, leaf_hash = ? WHERE idx = ?",
                   (changed.encode(), leaf_hash(changed.encode()), index))
        db.execute("DELETE FROM cosignatures")
        db.execute("DELETE FROM checkpoints")

    _replace_server_log(fed, rewrite)
    _caught(fed, "does not extend")


def test_a_dropped_tail_is_caught(fed: SimulatedFederation) -> None:
    for _ in range(3):
        fed.round()

    def drop(db: sqlite3.Connection) -> None:
        size = db.execute("SELECT size FROM head").fetchone()[0]
        db.execute("DELETE FROM entries WHERE idx >= ?", (size - 3,))
        db.execute("UPDATE head SET size = ?", (size - 3,))
        db.execute("DELETE FROM cosignatures")
        db.execute("DELETE FROM checkpoints")

    _replace_server_log(fed, drop)
    _caught(fed, "shrank")


def test_a_split_view_is_caught_and_cannot_make_a_receipt(fed: SimulatedFederation,
                                                          tmp_path: Path) -> None:
    fed.round()
    fed.flush()
    server = fed.sites[SERVER]
    log_a = server.record.journal.log
    assert log_a is not None and server.record.witnessed is not None
    # The server copies its log and shows site-2 a different history from here on.
    fork_path = tmp_path / "fork.sqlite3"
    log_a.checkpoint(at=utcnow())
    with sqlite3.connect(log_a.store.location) as source, sqlite3.connect(fork_path) as copy:
        source.backup(copy)
    log_b = SiteLog(RecordStore.open(fork_path, origin=log_a.origin, create=False),
                    log_a.signer, checkpoint_every=log_a.checkpoint_every)
    log_a.append(Entry("action", SERVER, utcnow(), {"site": "site-3", "note": "history A"}))
    log_b.append(Entry("action", SERVER, utcnow(), {"site": "site-3", "note": "history B"}))
    view_b = Witnessed(log_b, server.record.witnessed.witnesses)
    checkpoint_b = log_b.checkpoint(at=utcnow())
    seen = fed.sites["site-2"].record.witness.seen_size()  # type: ignore[union-attr]
    answer = fed.sites["site-2"].participant.cosign(
        SERVER, view_b.view(checkpoint_b, seen, "site-2").to_wire())
    assert "cosignature" in answer  # alone, site-2 cannot tell: history B does extend
    # Back on history A, site-2 is shown a log that does not extend what it cosigned.
    report = fed.round()
    assert "site-2" in report.witness_refused and "site-1" in report.cosigned
    assert "forked" in report.witness_refused["site-2"] or \
        "does not extend" in report.witness_refused["site-2"]
    # And no receipt can carry both witnesses on one checkpoint.
    fed.sites["site-2"].effects.calls.clear()
    _, token = fed.admit("job-9", [SERVER, "site-1", "site-2"])
    assert token is not None and fed.jwks is not None
    with pytest.raises(VerificationFailed, match="cosignatures"):
        verify_receipt(token, fed.jwks, now=utcnow())
    log_b.store.close()


def test_a_cosignature_line_that_does_not_verify_is_not_kept(fed: SimulatedFederation) -> None:
    fed.round()
    witnessed = fed.sites[SERVER].record.witnessed
    assert witnessed is not None
    checkpoint = witnessed.log.checkpoint(at=utcnow())
    impostor = note.Signer.generate("site-1", note.COSIGNATURE_V1)
    line = note.parse(note.cosign(checkpoint, impostor, witnessed.log.signer.verifier,
                                  at=utcnow())).signatures[-1].line()
    good, refused = witnessed.accept(checkpoint, {"site-1": line, "site-9": line,
                                                  "site-2": "garbage"}, at=utcnow())
    assert good == [] and set(refused) == {"site-1", "site-2", "site-9"}


# -- the record failing ---------------------------------------------------------------------

def test_a_failing_record_is_an_alert_and_the_rounds_go_on(fed: SimulatedFederation,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    fed.round()
    journal = fed.sites[SERVER].record.journal
    alerts: list[str] = []
    journal.on_failure = alerts.append
    store = _store(fed, SERVER)
    before = store.size()

    def full(_body: bytes) -> int:
        from ccattest.record.store import StoreError

        raise StoreError("the record could not append the entry", found="database or disk "
                         "is full")

    monkeypatch.setattr(store, "append", full)
    report = fed.round()
    assert report.attested == [SERVER, *CLIENTS] and not report.unreachable
    fed.flush()
    assert journal.failure is not None and "full" in journal.failure
    assert len(alerts) == 1  # once per outage, not once per entry
    assert journal.blocks_jobs() is None  # not required: jobs still run
    journal.required = True
    assert "required" in (journal.blocks_jobs() or "")
    monkeypatch.undo()
    fed.round()
    fed.flush()
    assert journal.healthy and store.size() == before + 1
    audit(store)


def test_a_coordinator_without_a_record_still_runs_rounds() -> None:
    fed = SimulatedFederation.create(2)
    try:
        assert isinstance(fed.coordinator, RoundCoordinator)
        for client in ("site-1", "site-2"):
            fed.register(client)
        report = fed.round()
        assert report.attested == [SERVER, "site-1", "site-2"] and report.cosigned == []
    finally:
        fed.close()


def test_evidence_is_kept_once_per_digest_only_when_asked(fed: SimulatedFederation) -> None:
    journal = fed.sites["site-1"].record.journal
    journal.keep_evidence = True
    fed.round()
    store = _store(fed, "site-1")
    verdicts = [decode(e.body).data for e in store.entries(kind="verdict")]
    rounds = [decode(e.body).data for e in store.entries(kind="round")]
    digests = {digest for _, digest in rounds[-1]["judged"].values()}
    assert len(digests) == 3
    for digest in digests:  # the blob is kept beside the log, not in any entry
        blob = store.get_evidence(bytes.fromhex(digest))
        assert blob is not None and b'"platform":"software"' in blob
    assert verdicts
    bodies = b"".join(e.body for e in store.entries())
    for digest in digests:  # no entry holds the evidence itself
        report = json.loads(store.get_evidence(bytes.fromhex(digest)) or b"{}")["report"]
        assert report.encode() not in bodies
    assert _store(fed, "site-2").get_evidence(bytes.fromhex(digests.pop())) is None


def test_the_record_holds_no_secret(fed: SimulatedFederation) -> None:
    fed.round()
    fed.admit("job-s", [SERVER, "site-1"])
    fed.flush()
    for name, site in fed.sites.items():
        keys = site.record.keys
        assert keys is not None
        secrets = [keys.log.encode(), keys.witness.encode()]
        seeds = [s.split("+", 4)[4] for s in secrets]  # base64 of type and seed
        path = Path(_store(fed, name).location)
        stored = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        found = [secret[:24] for secret in [*secrets, *seeds] if secret.encode() in stored]
        assert not found, (name, found)
        assert b"PRIVATE" not in stored and b"BEGIN EC PRIVATE" not in stored


def test_receipts_issued_during_rounds_never_look_like_an_attack(
        fed: SimulatedFederation) -> None:
    """A receipt's checkpoint is cosigned while rounds run: no witness may ever be shown a
    checkpoint older than one it cosigned, or an honest server looks like it lost its tail."""
    import threading

    stop = threading.Event()
    issued: list[str | None] = []

    def admit_jobs() -> None:
        number = 0
        while not stop.is_set():
            number += 1
            issued.append(fed.admit(f"job-{number}", [SERVER, *CLIENTS])[1])

    worker = threading.Thread(target=admit_jobs)
    worker.start()
    try:
        reports = [fed.round() for _ in range(8)]
    finally:
        stop.set()
        worker.join()
    assert not any(report.witness_refused for report in reports), [
        r.witness_refused for r in reports]
    for client in CLIENTS:
        assert not fed.sites[client].effects.actions()  # nobody excluded the server
    assert issued and all(token is not None for token in issued)
    assert fed.jwks is not None
    for token in issued[-3:]:
        assert verify_receipt(token, fed.jwks, now=utcnow()).cosigners == CLIENTS
