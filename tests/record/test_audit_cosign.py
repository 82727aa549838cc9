"""The audit checks stored witness cosignatures, and proves a record extends a checkpoint
someone kept. `Federation` and `build` make a realistic record (every entry kind, a server
log cosigned by its clients) for the export and CLI tests too."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ccattest.errors import ConfigError, VerificationFailed
from ccattest.record import merkle, note
from ccattest.record.audit import audit, check_consistency
from ccattest.record.entry import Entry
from ccattest.record.keys import SiteKeys, merge_jwks
from ccattest.record.log import SiteLog
from ccattest.record.store import RecordStore

FEDERATION = "fed-1"
AT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
DIGEST = "ab12cd34" * 8
ROUND = "3f2a9b7c" * 8


def event(number: int, status: str = "affirming") -> Entry:
    """Entry `number` of a federation's life: each documented kind in turn."""
    at = AT + timedelta(seconds=number)
    peer = f"site-{number % 3 + 1}"
    round_id = f"{number:08x}" + ROUND[8:]
    data: dict[str, dict[str, Any]] = {
        "config": {"policy": {"id": "fed", "digest": DIGEST}, "config": DIGEST,
                   "platforms": ["software"], "record": {"checkpoint_every": 4,
                                                         "keep_evidence": False}},
        "registration": {"peer": peer, "stage": "hello", "definitive": True,
                         "status": status, "verdict": number - 1},
        "verdict": {"peer": peer, "context": "round", "round": round_id, "definitive": True,
                    "status": status, "affirming": status == "affirming",
                    "policy": {"id": "fed", "digest": DIGEST},
                    "results": [{"platform": "software", "status": status,
                                 "trust_vector": {}, "evidence": DIGEST, "claims": {},
                                 "expires": "2026-12-06T12:00:00Z"}], "failures": []},
        "round": {"round": round_id, "transcript": DIGEST, "coordinator": "server",
                  "participants": ["site-1", "site-2", "site-3"],
                  "missing": {"site-3": "no answer"},
                  "judged": {"site-1": ["affirming", DIGEST]}},
        "gate": {"job": f"job-{number}", "participants": ["site-1", "site-2"],
                 "allowed": number % 2 == 0, "reasons": [] if number % 2 == 0 else
                 ["site-3 is not affirming"], "byoc": False},
        "receipt": {"job": f"job-{number}", "phase": "admission", "issuer": "server",
                    "token": "eyJhbGciOiJFUzI1NiJ9.e30." + "A" * 86},
        "action": {"site": "site-3", "cause": "rejected", "action": "exclude",
                   "detail": "contraindicated twice"},
        "exclusion": {"site": "site-3", "detail": "contraindicated"},
        "readmission": {"site": "site-3", "detail": "affirming again"},
    }
    kind = list(data)[number % len(data)]
    return Entry(kind, "server", at, data[kind])


@dataclass
class Federation:
    server: SiteKeys = field(default_factory=lambda: SiteKeys.generate(FEDERATION, "server"))
    clients: list[SiteKeys] = field(default_factory=lambda: [
        SiteKeys.generate(FEDERATION, f"site-{n}") for n in (1, 2)])

    @property
    def origin(self) -> str:
        return self.server.log.name

    @property
    def log_key(self) -> note.Verifier:
        return self.server.log.verifier

    def witnesses(self) -> dict[str, note.Verifier]:
        return {c.witness.name: c.witness.verifier for c in self.clients}

    def jwks(self) -> dict[str, list[Any]]:
        return merge_jwks(site.public_jwks() for site in [self.server, *self.clients])


def cosignature_line(federation: Federation, signed: str, witness: note.Signer,
                     at: datetime) -> tuple[str, int]:
    """A witness's cosignature line of a checkpoint note, as a site stores it."""
    cosigned = note.cosign(signed.encode(), witness, federation.log_key, at=at)
    line = next(s for s in note.parse(cosigned).signatures if s.name == witness.name)
    return line.line().rstrip("\n"), note.cosignature_timestamp(line.signature)


def build(target: str | Path, federation: Federation, count: int = 10, *,
          checkpoint_every: int = 4, start: int = 0, status: str = "affirming") -> None:
    """Append entries `start` .. `start + count - 1`, sign a final checkpoint, and have
    every client cosign every checkpoint not yet cosigned."""
    with RecordStore.open(target, origin=federation.origin) as store:
        log = SiteLog(store, federation.server.log, checkpoint_every=checkpoint_every)
        for number in range(start, start + count):
            log.append(event(number, status))
        log.checkpoint(at=AT + timedelta(minutes=5))
        for checkpoint in store.checkpoints():
            if store.cosignatures(checkpoint.size):
                continue
            lines = [(client.witness.name,
                      *cosignature_line(federation, checkpoint.note, client.witness,
                                        AT + timedelta(minutes=checkpoint.size)))
                     for client in federation.clients]
            store.add_cosignatures(checkpoint.size, lines)


@pytest.fixture(scope="module")
def federation() -> Federation:
    return Federation()


def audited(target: str | Path, federation: Federation, **kwargs: Any):
    with RecordStore.open(target, origin=None, create=False) as store:
        return audit(store, federation.log_key, **kwargs)


# -- cosignatures -------------------------------------------------------------------------

def test_every_cosignature_by_a_known_witness_is_checked(record_url, federation):
    build(record_url, federation)
    report = audited(record_url, federation, witnesses=federation.witnesses(),
                     now=AT + timedelta(days=1))
    assert (report.size, report.checkpoints, report.signatures_checked) == (10, 3, 3)
    assert (report.cosignatures_checked, report.cosignatures_unchecked) == (6, 0)
    assert report.unknown_witnesses == ()


def test_cosignatures_of_unknown_witnesses_are_counted_not_checked(record_url, federation):
    build(record_url, federation)
    one = {"site-1": federation.witnesses()["site-1"]}
    report = audited(record_url, federation, witnesses=one)
    assert (report.cosignatures_checked, report.cosignatures_unchecked) == (3, 3)
    assert report.unknown_witnesses == ("site-2",)
    plain = audited(record_url, federation)  # as before: no witness keys, nothing judged
    assert (plain.cosignatures_checked, plain.cosignatures_unchecked) == (0, 6)


def test_a_cosignature_of_another_checkpoint_is_tampering(record_url, federation):
    build(record_url, federation)
    with RecordStore.open(record_url, origin=None, create=False) as store:
        four = store.checkpoint(4)
        line, timestamp = cosignature_line(federation, four.note,
                                           federation.clients[1].witness, AT + timedelta(days=1))
        assert store.add_cosignature(8, "site-2", line, timestamp=timestamp)  # the newest
    with pytest.raises(VerificationFailed) as caught:
        audited(record_url, federation, witnesses=federation.witnesses())
    assert caught.value.message == ("the cosignature by site-2 of the checkpoint of size 8 "
                                    "does not verify")


def test_a_cosignature_must_state_the_time_it_is_filed_under(tmp_path, federation):
    path = tmp_path / "record.sqlite3"
    build(path, federation)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE cosignatures SET timestamp = timestamp + 1 WHERE checkpoint_size = 4"
                   " AND witness = 'site-1'")
    with pytest.raises(VerificationFailed, match="by site-1 of the checkpoint of size 4 "
                                                 "states another time"):
        audited(path, federation, witnesses=federation.witnesses())


def test_a_garbled_line_or_the_wrong_key_is_caught(tmp_path, federation):
    path = tmp_path / "record.sqlite3"
    build(path, federation)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE cosignatures SET line = 'not a line' WHERE checkpoint_size = 10 "
                   "AND witness = 'site-2'")
    with pytest.raises(VerificationFailed, match="by site-2 of the checkpoint of size 10"):
        audited(path, federation, witnesses=federation.witnesses())
    impostor = SiteKeys.generate(FEDERATION, "site-1").witness.verifier  # same name, new key
    with pytest.raises(VerificationFailed, match="by site-1 of the checkpoint of size 4") as e:
        audited(path, federation, witnesses={"site-1": impostor})
    assert "no cosignature by site-1" in str(e.value.found)


def test_a_cosignature_from_the_future_is_refused_only_against_a_clock(tmp_path, federation):
    path = tmp_path / "record.sqlite3"
    build(path, federation)  # cosigned at AT + size minutes
    assert audited(path, federation, witnesses=federation.witnesses()).cosignatures_checked == 6
    with pytest.raises(VerificationFailed, match="does not verify") as caught:
        audited(path, federation, witnesses=federation.witnesses(), now=AT)
    assert "dated in the future" in str(caught.value.found)


# -- consistency with a kept checkpoint ---------------------------------------------------

def kept(federation: Federation, target: str | Path, size: int) -> note.Checkpoint:
    with RecordStore.open(target, origin=None, create=False) as store:
        return note.Checkpoint.parse(note.parse(store.checkpoint(size).note.encode()).text)


def consistency(target: str | Path, old: note.Checkpoint):
    with RecordStore.open(target, origin=None, create=False) as store:
        return check_consistency(store, old)


def test_a_grown_record_extends_what_was_kept(record_url, federation):
    build(record_url, federation, count=6)
    old = kept(federation, record_url, 6)
    build(record_url, federation, count=7, start=6)
    report = consistency(record_url, old)
    assert (report.old_size, report.size, report.proof_length) == (6, 13, 4)
    assert consistency(record_url, kept(federation, record_url, 13)).proof_length == 0
    empty = note.Checkpoint(federation.origin, 0, merkle.root([]))
    assert consistency(record_url, empty).proof_length == 0


def test_a_dropped_tail_a_rewrite_and_a_fork_do_not_extend(tmp_path, federation):
    path = tmp_path / "record.sqlite3"
    build(path, federation, count=10)
    old = kept(federation, path, 8)
    with pytest.raises(VerificationFailed, match="entries from 10 were dropped"):
        consistency(path, note.Checkpoint(federation.origin, 12, old.root))
    forked = note.Checkpoint(federation.origin, 8, merkle.leaf_hash(b"another history"))
    with pytest.raises(VerificationFailed, match="the log forked"):
        consistency(path, forked)
    with pytest.raises(VerificationFailed, match="entries before 7 were rewritten"):
        consistency(path, note.Checkpoint(federation.origin, 7, old.root))
    with pytest.raises(VerificationFailed, match="other than the empty tree"):
        consistency(path, note.Checkpoint(federation.origin, 0, old.root))
    with pytest.raises(ConfigError, match="another log"):
        consistency(path, note.Checkpoint("someone-else", 8, old.root))


def test_consistency_rehashes_the_entries(tmp_path, federation):
    path = tmp_path / "record.sqlite3"
    build(path, federation, count=10)
    old = kept(federation, path, 8)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE entries SET body = CAST(replace(CAST(body AS TEXT), 'affirming', "
                   "'warning') AS BLOB) "
                   "WHERE idx = 3")
    with pytest.raises(VerificationFailed, match="entry 3 was changed after it was written"):
        consistency(path, old)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM entries WHERE idx = 1")
    with pytest.raises(VerificationFailed, match="the record has a hole"):
        consistency(path, old)
