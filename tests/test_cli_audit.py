"""`ccattest audit` through the real CLI: verify, log, export and consistency, each exit
status (0 intact or extends, 1 tampered or does not, 2 unusable) and the log's layout."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from ccattest.record import merkle, note
from ccattest.record.entry import Entry
from ccattest.record.keys import SiteKeys
from ccattest.record.log import RECORD_FILE, SiteLog
from ccattest.record.store import RecordStore

from .cli_process import ccattest
from .record.test_audit_cosign import AT, Federation, build

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def federation() -> Federation:
    return Federation()


@pytest.fixture
def workspace(tmp_path: Path, federation: Federation) -> Path:
    """A site's workspace with its record (10 entries, 3 checkpoints, all cosigned) and the
    federation's key set beside it."""
    record = tmp_path / "local" / "cc" / RECORD_FILE
    record.parent.mkdir(parents=True)
    build(record, federation)
    (tmp_path / "federation.jwks.json").write_text(json.dumps(federation.jwks()))
    return tmp_path


def record_of(workspace: Path) -> Path:
    return workspace / "local" / "cc" / RECORD_FILE


def change_status(record: Path, index: int, status: str = "contraindicated") -> None:
    """Edit one verdict in place, as someone with the database file could."""
    with sqlite3.connect(record) as db:
        body = db.execute("SELECT body FROM entries WHERE idx = ?", (index,)).fetchone()[0]
        entry = json.loads(body)
        assert entry["kind"] == "verdict"
        entry["data"]["status"] = status
        changed = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
        db.execute("UPDATE entries SET body = ? WHERE idx = ?", (changed, index))


def keep_checkpoint(workspace: Path, size: int) -> Path:
    with RecordStore.open(record_of(workspace), origin=None, create=False) as store:
        kept = workspace / f"checkpoint-{size}.txt"
        kept.write_text(store.checkpoint(size).note)
    return kept


# -- verify -------------------------------------------------------------------------------

def test_verify_checks_signatures_and_cosignatures(workspace, federation):
    jwks = str(workspace / "federation.jwks.json")
    intact = ccattest("audit", "verify", str(workspace), "--jwks", jwks, cwd=workspace,
                      check=0)
    assert intact.stdout.splitlines() == [
        f"record of {federation.origin}: intact",
        "  10 entries, 3 checkpoints, 3 signatures checked",
        "  cosignatures: 6 checked, 0 unchecked"]
    unsigned = ccattest("audit", "verify", str(workspace), cwd=workspace, check=0)
    assert unsigned.stdout.splitlines()[2] == ("  cosignatures: 0 checked, 6 unchecked (pass "
                                               "--jwks to check them)")


def test_verify_names_the_changed_entry_of_a_tampered_copy(workspace):
    copy = workspace / "copy.sqlite3"
    shutil.copy(record_of(workspace), copy)
    change_status(copy, 2)
    tampered = ccattest("audit", "verify", str(copy), cwd=workspace, check=1)
    assert tampered.stderr.startswith("error: entry 2 was changed after it was written")
    assert tampered.stdout == ""


def test_verify_what_cannot_be_used(workspace, federation):
    jwks = workspace / "federation.jwks.json"
    other = workspace / "other.jwks.json"
    other.write_text(json.dumps({"keys": SiteKeys.generate("fed-2", "server").public_jwks()}))
    garbled = workspace / "garbled.json"
    garbled.write_text("{not json")
    for args, message in [
        (["--jwks", str(other)], "error: the key set has no key for the log "
                                 f"{federation.origin}"),
        (["--jwks", str(garbled)], "error: "),
        (["--jwks", str(workspace / "none.json")], "error: key set not found"),
        (["--jwks", str(jwks), "--key", str(federation.log_key)], "error: give the log's key "
                                                                   "or"),
    ]:
        unusable = ccattest("audit", "verify", str(workspace), *args, cwd=workspace, check=2)
        assert unusable.stderr.startswith(message), unusable.stderr
    missing = ccattest("audit", "verify", str(workspace / "elsewhere"), cwd=workspace, check=2)
    assert missing.stderr.startswith("error: ")


def test_verify_an_export(workspace, federation):
    jwks = str(workspace / "federation.jwks.json")
    out = workspace / "site.export.jsonl"
    made = ccattest("audit", "export", str(workspace), "-o", str(out), cwd=workspace, check=0)
    assert made.stdout.strip() == f"exported 10 entries of {federation.origin} to {out}"
    intact = ccattest("audit", "verify", str(out), "--jwks", jwks, cwd=workspace, check=0)
    assert "intact\n  10 entries, 3 checkpoints, 3 signatures checked" in intact.stdout
    again = ccattest("audit", "export", str(workspace), "-o", str(out), cwd=workspace, check=2)
    assert again.stderr.startswith(f"error: {out} exists")
    ccattest("audit", "export", str(workspace), "-o", str(out), "--force", cwd=workspace,
             check=0)
    lines = out.read_text().splitlines()
    entry = json.loads(json.loads(lines[3])["entry"])
    entry["data"]["status"] = "contraindicated"
    lines[3] = json.dumps({"index": 2, "entry": json.dumps(entry, sort_keys=True,
                                                           separators=(",", ":"))})
    out.write_text("\n".join(lines) + "\n")
    tampered = ccattest("audit", "verify", str(out), cwd=workspace, check=1)
    assert tampered.stderr.startswith("error: entries before 4 changed after the checkpoint")
    out.write_text("\n".join(lines[:5]) + "\n")
    cut = ccattest("audit", "verify", str(out), cwd=workspace, check=2)
    assert cut.stderr.startswith("error: the export's header says 10 entries, the file "
                                 "holds 4")
    ccattest("audit", "export", str(workspace / "nothing"), "-o", str(workspace / "x.jsonl"),
             cwd=workspace, check=2)


# -- log ----------------------------------------------------------------------------------

def summaries(lines: list[str]) -> list[str]:
    """Each entry's summary, its wrapped lines joined again."""
    joined: list[list[str]] = []
    for line in lines:
        if line.startswith("#"):
            joined.append([])
        elif joined and line.startswith("    "):  # a long header goes on at 2 spaces
            joined[-1].append(line.strip())
    return [" ".join(parts) for parts in joined]


def test_log_reads_at_80_columns(workspace):
    shown = ccattest("audit", "log", str(workspace), cwd=workspace, check=0).stdout
    lines = shown.splitlines()
    assert all(len(line) <= 80 for line in lines), [ln for ln in lines if len(ln) > 80]
    heads = [line for line in lines if line.startswith("#")]
    assert [head.split()[0] for head in heads] == [f"#{n}" for n in range(10)]
    assert heads[2] == "#2  2026-12-05T12:00:02Z  verdict  server"
    assert summaries(lines)[1:9] == [
        "peer site-2: hello, affirming, definitive (verdict #0)",
        "peer site-3: affirming (round 00000002…, definitive) policy fed@ab12cd34…; "
        "software affirming",
        "round 00000003…: 3 participants, 1 missing (site-3: no answer); coordinator server",
        "job job-4: admitted",
        "job job-5: admission receipt by server",
        "site site-3: exclude (rejected): contraindicated twice",
        "site site-3 excluded: contraindicated",
        "site site-3 readmitted: affirming again"]
    narrow = ccattest("audit", "log", str(workspace), cwd=workspace, columns=50, check=0)
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 50


def test_log_filters_and_json(workspace, federation):
    verdicts = ccattest("audit", "log", str(workspace), "--kind", "verdict", "--site",
                        "server", "--json", cwd=workspace, check=0)
    rows = [json.loads(line) for line in verdicts.stdout.splitlines()]
    assert [row["index"] for row in rows] == [2]
    assert set(rows[0]) == {"index", "kind", "site", "at", "data"}
    assert rows[0]["at"] == "2026-12-05T12:00:02Z"
    assert rows[0]["data"]["policy"]["digest"] == "ab12cd34" * 8  # whole, not shortened
    later = ccattest("audit", "log", str(workspace), "--since", "2026-12-05T12:00:08Z",
                     cwd=workspace, check=0)
    assert [line.split()[0] for line in later.stdout.splitlines()
            if line.startswith("#")] == ["#8", "#9"]
    none = ccattest("audit", "log", str(workspace), "--since", "2026-12-06", cwd=workspace,
                    check=0)
    assert none.stdout == "no entries match\n"
    typo = ccattest("audit", "log", str(workspace), "--kind", "verdicts", cwd=workspace,
                    check=2)
    assert typo.stderr.startswith("error: unknown entry kind 'verdicts': did you mean "
                                  "'verdict'?")
    ccattest("audit", "log", str(workspace), "--since", "yesterday", cwd=workspace, check=2)
    out = workspace / "x.jsonl"
    ccattest("audit", "export", str(workspace), "-o", str(out), cwd=workspace, check=0)
    from_export = ccattest("audit", "log", str(out), "--kind", "verdict", "--json",
                           cwd=workspace, check=0)
    assert from_export.stdout == verdicts.stdout


def test_log_shows_any_shape(tmp_path, federation):
    record = tmp_path / RECORD_FILE
    with RecordStore.open(record, origin=federation.origin) as store:
        empty = ccattest("audit", "log", str(record), cwd=tmp_path, check=0)
        assert empty.stdout == "the record has no entries\n"
        log = SiteLog(store, federation.server.log)
        long_site = "site-" + "x" * 120
        for data in ({"weird": 1, "shape": [2]}, {"peer": "site-1"}, {}):
            log.append(Entry("verdict", long_site, AT, data))
        log.append(Entry("gate", "server", AT, {"job": "j", "allowed": False,
                                                "reasons": ["a " * 60]}))
        log.append(Entry("config", "server", AT + timedelta(seconds=1), {"record": 3}))
    with sqlite3.connect(record) as db:
        db.execute("UPDATE entries SET body = CAST('{}' AS BLOB) WHERE idx = 2")
    shown = ccattest("audit", "log", str(record), cwd=tmp_path, check=0).stdout.splitlines()
    assert all(len(line) <= 80 for line in shown)
    assert shown[1] == "  " + "x" * 78
    assert summaries(shown) == ["data: shape, weird", "data: peer",
                                "(not a canonical entry: see audit verify)",
                                "job j: refused (" + "a " * 59 + "a )", "data: record"]
    assert json.loads(ccattest("audit", "log", str(record), "--json", cwd=tmp_path,
                               check=0).stdout.splitlines()[2])["data"] is None


# -- consistency --------------------------------------------------------------------------

def test_consistency_with_a_kept_checkpoint(workspace, federation):
    jwks = str(workspace / "federation.jwks.json")
    kept = keep_checkpoint(workspace, 4)
    build(record_of(workspace), federation, count=6, start=10)  # the log grew since
    extends = ccattest("audit", "consistency", str(kept), str(workspace), "--jwks", jwks,
                       cwd=workspace, check=0)
    assert extends.stdout.splitlines() == [
        f"record of {federation.origin}: extends the kept checkpoint",
        "  size 4 to 16, a proof of 2 hashes; its signature checked"]
    unsigned = ccattest("audit", "consistency", str(kept), str(workspace), cwd=workspace,
                        check=0)
    assert "its signature not checked: pass --jwks" in unsigned.stdout


def test_consistency_against_a_rewritten_or_forked_log(workspace, federation, tmp_path):
    kept = keep_checkpoint(workspace, 8)
    rewritten = workspace / "rewritten.sqlite3"
    shutil.copy(record_of(workspace), rewritten)
    change_status(rewritten, 2)
    with sqlite3.connect(rewritten) as db:  # leaf hash too: only the tree can tell
        body = db.execute("SELECT body FROM entries WHERE idx = 2").fetchone()[0]
        db.execute("UPDATE entries SET leaf_hash = ? WHERE idx = 2", (merkle.leaf_hash(body),))
    failed = ccattest("audit", "consistency", str(kept), str(rewritten), cwd=workspace,
                      check=1)
    assert failed.stderr.startswith("error: the record does not extend the kept checkpoint: "
                                    "entries before 8 were rewritten")
    fork = tmp_path / "fork" / RECORD_FILE
    fork.parent.mkdir()
    build(fork, federation, count=9, status="warning")  # same log key, another history
    forked = ccattest("audit", "consistency", str(kept), str(fork), cwd=workspace, check=1)
    assert forked.stderr.startswith("error: the log forked: the record's own checkpoint of "
                                    "size 8")
    newer = keep_checkpoint(workspace, 10)
    dropped = ccattest("audit", "consistency", str(newer), str(fork), cwd=workspace, check=1)
    assert "entries from 9 were dropped" in dropped.stderr


def test_consistency_what_cannot_be_used(workspace, federation):
    jwks = str(workspace / "federation.jwks.json")
    kept = keep_checkpoint(workspace, 4)
    stranger = SiteKeys.generate("fed-1", "server").log  # same name, not the log's key
    head = note.Checkpoint.parse(note.parse(kept.read_bytes()).text)
    forged = workspace / "forged.txt"
    forged.write_bytes(note.sign_checkpoint(head, stranger))
    other = workspace / "other.txt"
    other.write_bytes(note.sign_checkpoint(note.Checkpoint("elsewhere", 4, head.root),
                                           note.Signer.generate("elsewhere")))
    garbled = workspace / "garbled.txt"
    garbled.write_text("not a note\n")
    for path, message in [
        (forged, "error: the kept checkpoint is not signed by the log's key"),
        (other, "error: the kept checkpoint is of another log"),
        (garbled, "error: signed note has no blank line"),
        (workspace / "none.txt", "error: checkpoint not found"),
    ]:
        unusable = ccattest("audit", "consistency", str(path), str(workspace), "--jwks", jwks,
                            cwd=workspace, check=2)
        assert unusable.stderr.startswith(message), unusable.stderr
