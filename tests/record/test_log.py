"""A site's log and its audit: what the writer signs, what any auditor can check, and each
way of tampering with a stored record that the audit must catch."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ccattest.errors import ConfigError, VerificationFailed
from ccattest.record import merkle, note
from ccattest.record.audit import AuditReport, audit
from ccattest.record.entry import Entry
from ccattest.record.log import RECORD_FILE, SiteLog, locate
from ccattest.record.store import RecordStore

from ..cli_process import ccattest

ORIGIN = "ccattest.example/fed-1/server"
AT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def verdict(number: int, status: str = "affirming") -> Entry:
    return Entry("verdict", "server", AT + timedelta(seconds=number),
                 {"peer": f"site-{number % 3 + 1}", "status": status, "round": number})


@pytest.fixture
def signer() -> note.Signer:
    return note.Signer.generate(ORIGIN)


def written(target: str, signer: note.Signer, count: int = 10) -> None:
    with RecordStore.open(target, origin=ORIGIN) as store:
        log = SiteLog(store, signer, checkpoint_every=4)
        for number in range(count):
            assert log.append(verdict(number)) == number
        log.checkpoint(at=AT + timedelta(minutes=5))  # e.g. at shutdown


def test_checkpoints_every_k_entries_and_on_demand(record_url, signer):
    written(record_url, signer)
    with RecordStore.open(record_url, origin=None, create=False) as store:
        assert [c.size for c in store.checkpoints()] == [4, 8, 10]
        leaves = store.leaf_hashes()
        assert store.latest_checkpoint().root == merkle.root(leaves)
        report = audit(store, signer.verifier)
    assert (report.origin, report.size, report.checkpoints, report.signatures_checked) == (
        ORIGIN, 10, 3, 3)


def test_a_reopened_log_goes_on_where_it_stopped(record_url, signer):
    written(record_url, signer, count=6)
    with RecordStore.open(record_url, origin=ORIGIN) as store:
        log = SiteLog(store, signer, checkpoint_every=4)
        assert log.size == 6
        assert log.append(verdict(6)) == 6
        log.append(verdict(7))  # 8: a checkpoint
        assert [c.size for c in store.checkpoints()] == [4, 6, 8]
        assert audit(store, signer.verifier).size == 8


def test_the_writer_refuses_another_logs_key_and_a_log_grown_behind_it(tmp_path, signer):
    with RecordStore.open(tmp_path / RECORD_FILE, origin=ORIGIN) as store:
        with pytest.raises(VerificationFailed, match="another log"):
            SiteLog(store, note.Signer.generate("someone-else"))
        with pytest.raises(ValueError, match="at least 1"):
            SiteLog(store, signer, checkpoint_every=0)
        log = SiteLog(store, signer)
        store.append(verdict(0).encode())  # a second writer
        with pytest.raises(VerificationFailed, match="behind this writer"):
            log.append(verdict(1))


@pytest.fixture
def record(tmp_path, signer) -> Path:
    path = tmp_path / "local" / "cc" / RECORD_FILE
    path.parent.mkdir(parents=True)
    written(str(path), signer)
    return path


def tamper(path: Path, sql: str, *params: object) -> None:
    with sqlite3.connect(path) as db:
        db.execute(sql, params)


def body_of(path: Path, index: int) -> bytes:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT body FROM entries WHERE idx = ?", (index,)).fetchone()[0]


def audited(path: Path, signer: note.Signer | None = None) -> AuditReport:
    with RecordStore.open(path, origin=None, create=False) as store:
        return audit(store, signer.verifier if signer else None)


def test_a_changed_verdict_is_named(record):
    changed = body_of(record, 5).replace(b"affirming", b"contraindicated")
    tamper(record, "UPDATE entries SET body = ? WHERE idx = 5", changed)
    with pytest.raises(VerificationFailed, match="entry 5 was changed after it was written"):
        audited(record)


def test_a_changed_verdict_with_its_leaf_hash_breaks_the_checkpoint(record, signer):
    changed = body_of(record, 5).replace(b"affirming", b"contraindicated")
    tamper(record, "UPDATE entries SET body = ?, leaf_hash = ? WHERE idx = 5", changed,
           merkle.leaf_hash(changed))
    with pytest.raises(VerificationFailed, match="entries before 8 changed after the "
                                                 "checkpoint of size 8"):
        audited(record, signer)


def test_a_rewritten_history_with_new_checkpoints_fails_the_log_key(record, signer):
    """A keeper who rewrites an entry and re-signs every checkpoint with a key of their own
    passes the unsigned checks, and fails as soon as the log's real key is asked for."""
    changed = body_of(record, 5).replace(b"affirming", b"contraindicated")
    tamper(record, "UPDATE entries SET body = ?, leaf_hash = ? WHERE idx = 5", changed,
           merkle.leaf_hash(changed))
    forger = note.Signer.generate(ORIGIN)
    with sqlite3.connect(record) as db:
        leaves = [bytes(row[0]) for row in db.execute("SELECT leaf_hash FROM entries "
                                                      "ORDER BY idx")]
        for (size,) in db.execute("SELECT size FROM checkpoints").fetchall():
            head = note.Checkpoint(ORIGIN, size, merkle.root(leaves[:size]))
            db.execute("UPDATE checkpoints SET root = ?, note = ? WHERE size = ?",
                       (head.root, note.sign_checkpoint(head, forger).decode(), size))
    assert audited(record).size == 10
    with pytest.raises(VerificationFailed, match="signed by no known key"):
        audited(record, signer)


def test_a_dropped_tail_is_caught(record):
    tamper(record, "DELETE FROM entries WHERE idx >= 9")
    tamper(record, "UPDATE head SET size = 9")
    with pytest.raises(VerificationFailed, match="size 10 names entries the record no longer"):
        audited(record)


def test_indexed_columns_must_agree_with_the_entry(record):
    tamper(record, "UPDATE entries SET site = 'site-9' WHERE idx = 2")
    with pytest.raises(VerificationFailed, match="entry 2's indexed columns"):
        audited(record)


def test_a_checkpoint_note_for_another_size_is_caught(record, signer):
    with sqlite3.connect(record) as db:
        other = db.execute("SELECT note FROM checkpoints WHERE size = 4").fetchone()[0]
        db.execute("UPDATE checkpoints SET note = ? WHERE size = 8", (other,))
    with pytest.raises(VerificationFailed, match="signed note says otherwise"):
        audited(record, signer)


def test_a_non_canonical_entry_is_caught(record):
    spaced = body_of(record, 3).replace(b'","', b'", "', 1)
    tamper(record, "UPDATE entries SET body = ?, leaf_hash = ? WHERE idx = 3", spaced,
           merkle.leaf_hash(spaced))
    with pytest.raises(VerificationFailed, match="entry 3 is not a canonical entry"):
        audited(record)


def test_an_empty_log_with_a_checkpoint_of_size_0(tmp_path, signer):
    with RecordStore.open(tmp_path / RECORD_FILE, origin=ORIGIN) as store:
        SiteLog(store, signer).checkpoint(at=AT)
        assert audit(store, signer.verifier).checkpoints == 1


def test_locate_finds_the_record_in_a_site_folder(record):
    workspace = record.parents[2]
    assert locate(workspace) == str(record)
    assert locate(record.parent) == str(record)
    assert locate(record) == str(record)
    assert locate("postgresql://db/records") == "postgresql://db/records"
    assert locate(workspace / "nothing") == str(workspace / "nothing")




@pytest.mark.slow
def test_audit_verify_command(record, signer):
    workspace = record.parents[2]
    intact = ccattest("audit", "verify", str(workspace), "--key", str(signer.verifier),
                      cwd=workspace)
    assert intact.returncode == 0, intact.stderr
    assert intact.stdout.splitlines() == [f"record of {ORIGIN}: intact",
                                          "  10 entries, 3 checkpoints, 3 signatures checked"]
    unsigned = ccattest("audit", "verify", str(record), cwd=workspace)
    assert "signatures not checked: pass --key" in unsigned.stdout
    changed = body_of(record, 5).replace(b"affirming", b"contraindicated")
    tamper(record, "UPDATE entries SET body = ? WHERE idx = 5", changed)
    tampered = ccattest("audit", "verify", str(workspace), cwd=workspace)
    assert tampered.returncode == 1
    assert tampered.stderr.startswith("error: entry 5 was changed after it was written")
    missing = ccattest("audit", "verify", str(workspace / "elsewhere"), cwd=workspace)
    assert missing.returncode == 2 and missing.stderr.startswith("error: ")
    bad_key = ccattest("audit", "verify", str(record), "--key", "not-a-key", cwd=workspace)
    assert bad_key.returncode == 2 and bad_key.stderr.startswith("error: ")


def test_an_auditor_cannot_create_a_record(tmp_path):
    with pytest.raises(ConfigError):
        RecordStore.open(tmp_path / "new.sqlite3", origin=None, create=True)
