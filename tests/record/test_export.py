"""record.export: a record as one JSON-lines file, read back strictly and audited like the
database it came from."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from ccattest.errors import ConfigError, MalformedEvidence, VerificationFailed
from ccattest.record import export
from ccattest.record.audit import audit
from ccattest.record.entry import canonical
from ccattest.record.export import is_export, read_export, write_export
from ccattest.record.store import RecordStore

from ..cli_process import ccattest
from .test_audit_cosign import AT, Federation, build, cosignature_line


@pytest.fixture(scope="module")
def federation() -> Federation:
    return Federation()


@pytest.fixture
def exported(tmp_path: Path, federation: Federation) -> Path:
    record = tmp_path / "record.sqlite3"
    build(record, federation)
    path = tmp_path / "record.export.jsonl"
    with RecordStore.open(record, origin=None, create=False) as store:
        assert write_export(store, path) == 10
    return path


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def rewrite(path: Path, lines: list[dict]) -> None:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines),
                    encoding="utf-8")


def test_round_trip_on_both_backends(record_url, federation, tmp_path):
    build(record_url, federation)
    path = tmp_path / "export.jsonl"
    with RecordStore.open(record_url, origin=None, create=False) as store:
        assert write_export(store, path) == 10
        back = read_export(path)
        assert back.origin == store.origin and back.size == 10
        assert back.entries() == store.entries()
        assert [(c.size, c.root, c.note) for c in back.checkpoints()] == [
            (c.size, c.root, c.note) for c in store.checkpoints()]
        for checkpoint in store.checkpoints():
            assert back.cosignatures(checkpoint.size) == store.cosignatures(checkpoint.size)
        keys = {"witnesses": federation.witnesses(), "now": AT + timedelta(days=1)}
        assert audit(back, federation.log_key, **keys) == audit(store, federation.log_key,
                                                                **keys)
    header, first = lines_of(path)[:2]
    assert header == {"format": "ccattest-record-export", "version": 1,
                      "origin": federation.origin, "size": 10}
    assert first["index"] == 0 and first["entry"].encode() == back.entries()[0].body
    assert is_export(path)
    assert back.cosignatures(3) == []


@pytest.mark.slow
def test_the_commands_take_a_database_url_or_path(record_url, federation, tmp_path):
    build(record_url, federation)
    jwks = tmp_path / "federation.jwks.json"
    jwks.write_text(json.dumps(federation.jwks()))
    out = tmp_path / "export.jsonl"
    made = ccattest("audit", "export", record_url, "-o", str(out), cwd=tmp_path, check=0)
    assert made.stdout.startswith("exported 10 entries")
    for source in (record_url, str(out)):
        checked = ccattest("audit", "verify", source, "--jwks", str(jwks), cwd=tmp_path,
                           check=0)
        assert "cosignatures: 6 checked, 0 unchecked" in checked.stdout


def test_an_empty_record_exports(tmp_path, federation):
    record = tmp_path / "record.sqlite3"
    build(record, federation, count=0)  # one checkpoint, of size 0
    path = tmp_path / "empty.jsonl"
    with RecordStore.open(record, origin=None, create=False) as store:
        assert write_export(store, path) == 0
        assert not is_export(record) and not is_export(tmp_path / "nothing")
    report = audit(read_export(path), federation.log_key, witnesses=federation.witnesses())
    assert (report.size, report.checkpoints, report.cosignatures_checked) == (0, 1, 2)


def test_an_existing_file_is_kept_unless_overwriting(exported, tmp_path):
    before = exported.read_bytes()
    source = read_export(exported)
    with pytest.raises(ConfigError, match="exists"):
        write_export(source, exported)
    assert write_export(source, exported, overwrite=True) == 10
    assert exported.read_bytes() == before  # an export of an export is the same file
    with pytest.raises(ConfigError, match="cannot write"):
        write_export(source, tmp_path / "no-such-folder" / "x.jsonl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.export.jsonl",
                                                           "record.sqlite3"]


def test_a_damaged_record_cannot_be_exported(tmp_path, federation):
    record = tmp_path / "record.sqlite3"
    build(record, federation)
    with sqlite3.connect(record) as db:
        db.execute("UPDATE entries SET body = X'FF' WHERE idx = 4")
    with RecordStore.open(record, origin=None, create=False) as store, pytest.raises(
            MalformedEvidence, match="entry 4 is not UTF-8"):
        write_export(store, tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_an_export_keeps_the_checkpoint_that_betrays_a_dropped_tail(tmp_path, federation):
    record = tmp_path / "record.sqlite3"
    build(record, federation)
    with sqlite3.connect(record) as db:
        db.execute("DELETE FROM entries WHERE idx = 9")
        db.execute("UPDATE head SET size = 9")
    path = tmp_path / "out.jsonl"
    with RecordStore.open(record, origin=None, create=False) as store:
        assert write_export(store, path) == 9
    with pytest.raises(VerificationFailed, match="size 10 names entries the record no "
                                                 "longer has"):
        audit(read_export(path))


def test_a_race_for_the_name_is_lost_cleanly(exported, tmp_path, monkeypatch):
    target = tmp_path / "raced.jsonl"
    real_link = os.link

    def racing_link(source: str, destination: Path) -> None:
        destination.write_text("someone else's\n")
        real_link(source, destination)

    monkeypatch.setattr(export.os, "link", racing_link)
    with pytest.raises(ConfigError, match="exists"):
        write_export(read_export(exported), target)
    assert target.read_text() == "someone else's\n"


# -- audit over an export -----------------------------------------------------------------

def test_audit_over_an_export_finds_a_changed_entry(exported, federation):
    lines = lines_of(exported)
    entry = json.loads(lines[3]["entry"])  # entry 2: a verdict
    assert entry["kind"] == "verdict"
    entry["data"]["status"] = "contraindicated"
    lines[3]["entry"] = canonical(entry).decode()
    rewrite(exported, lines)
    with pytest.raises(VerificationFailed, match="entries before 4 changed after the "
                                                 "checkpoint of size 4"):
        audit(read_export(exported))


def test_audit_over_an_export_finds_a_dropped_tail_and_a_moved_cosignature(exported,
                                                                           federation):
    lines = lines_of(exported)
    cut = [{**lines[0], "size": 9}, *lines[1:10], *lines[11:]]
    rewrite(exported, cut)
    with pytest.raises(VerificationFailed, match="size 10 names entries the record no "
                                                 "longer has"):
        audit(read_export(exported))
    lines[-1]["cosignatures"][0] = lines[-2]["cosignatures"][0]  # size 8's, filed under 10
    rewrite(exported, lines)
    with pytest.raises(VerificationFailed, match="by site-1 of the checkpoint of size 10 "
                                                 "does not verify"):
        audit(read_export(exported), witnesses=federation.witnesses())


# -- strictness ---------------------------------------------------------------------------

def mutate(path: Path, change) -> None:
    lines = lines_of(path)
    change(lines)
    rewrite(path, lines)


def entry_text(lines: list[dict], index: int, **changes: object) -> str:
    entry = json.loads(lines[index + 1]["entry"])
    entry.update(changes)
    return json.dumps(entry)


STRICT = {
    "header format": (lambda ls: ls[0].update(format="other"), "line 1: not a ccattest"),
    "header extra key": (lambda ls: ls[0].update(extra=1), "line 1: not a ccattest"),
    "version 2": (lambda ls: ls[0].update(version=2), "line 1: unsupported export version"),
    "version true": (lambda ls: ls[0].update(version=True), "line 1: unsupported"),
    "origin with a space": (lambda ls: ls[0].update(origin="a b"), "line 1: the origin"),
    "origin not a string": (lambda ls: ls[0].update(origin=7), "line 1: the origin"),
    "negative size": (lambda ls: ls[0].update(size=-1), "line 1: the size"),
    "size as text": (lambda ls: ls[0].update(size="10"), "line 1: the size"),
    "size too large": (lambda ls: ls[0].update(size=11), "header says 11 entries, the file "
                                                         "holds 10"),
    "size too small": (lambda ls: ls[0].update(size=9), "header says 9 entries, the file "
                                                        "holds 10"),
    "index skipped": (lambda ls: ls[3].update(index=3), "line 4: entry indices must be dense"),
    "index a boolean": (lambda ls: ls[2].update(index=True), "line 3: entry indices"),
    "entry not a string": (lambda ls: ls[2].update(entry={"v": 1}), "line 3: an entry is a "
                                                                    "string"),
    "entry not canonical": (lambda ls: ls[2].update(entry=entry_text(ls, 1)),
                            "line 3: entry 1: record entry is not in canonical form"),
    "entry a lone surrogate": (lambda ls: ls[2].update(entry="\ud800"),
                               "line 3: entry 1 is not UTF-8"),
    "entry after a checkpoint": (lambda ls: ls.append(ls[1]), "line 15: neither an entry nor"),
    "unknown line": (lambda ls: ls.insert(11, {"comment": "x"}), "line 12: neither an entry"),
    "note not a note": (lambda ls: ls[11].update(checkpoint="hello\n"),
                        "line 12: the checkpoint is not a signed checkpoint note"),
    "note a lone surrogate": (lambda ls: ls[11].update(checkpoint="\ud800"),
                              "line 12: the checkpoint is not"),
    "cosignatures not a list": (lambda ls: ls[11].update(cosignatures="— a b"),
                                "line 12: a checkpoint is a note and a list"),
    "cosignature not text": (lambda ls: ls[11].update(cosignatures=[1]),
                             "line 12: a checkpoint is a note and a list"),
    "cosignature two lines": (lambda ls: ls[11]["cosignatures"].append("— a AAAA\n— b BBBB"),
                              "line 12: cosignature 3 is more than one line"),
    "cosignature garbled": (lambda ls: ls[11]["cosignatures"].append("garbage"),
                            "line 12: cosignature 3 is not a cosignature line"),
    "cosignature too short": (lambda ls: ls[11]["cosignatures"].append("— w AAAAAAAA"),
                              "line 12: cosignature 3 is not a cosignature line"),
    "cosignature twice": (lambda ls: ls[11]["cosignatures"].append(
        ls[12]["cosignatures"][0]), "line 12: cosignature 3 repeats the witness site-1"),
    "checkpoints out of order": (lambda ls: ls.append(ls[11]),
                                 "line 15: checkpoints must be in increasing size"),
}


@pytest.mark.parametrize("change", list(STRICT.values()), ids=list(STRICT))
def test_every_line_is_checked(exported, change):
    mutation, message = change
    mutate(exported, mutation)
    with pytest.raises(MalformedEvidence) as caught:
        read_export(exported)
    assert message in caught.value.message


BYTES = {
    "empty": (b"", "the export is empty"),
    "not JSON": (b"SQLite format 3\n", "line 1: not a JSON line"),
    "a blank line": (b"\n", "line 1: not a JSON line"),
    "an array": (b"[1]\n", "line 1: not a JSON object"),
    "not UTF-8": (b'{"format": "\xff"}\n', "line 1: not a JSON line"),
    "a float": (b'{"format": "ccattest-record-export", "version": 1.0}\n', "line 1: not a "
                                                                            "JSON line"),
    "NaN": (b'{"format": NaN}\n', "line 1: not a JSON line"),
    "a repeated key": (b'{"format": 1, "format": 2}\n', "line 1: not a JSON line"),
    "too deep": (b"[" * 100_000 + b"]" * 100_000 + b"\n", "line 1: not a JSON line"),
    "no final newline": (b'{"format": 1}', "line 1: the file ends inside a line"),
}


@pytest.mark.parametrize("content", list(BYTES.values()), ids=list(BYTES))
def test_bytes_that_are_no_export(tmp_path, content):
    data, message = content
    path = tmp_path / "bad.jsonl"
    path.write_bytes(data)
    with pytest.raises(MalformedEvidence) as caught:
        read_export(path)
    assert message in caught.value.message


def test_a_cut_short_export_is_refused(exported):
    data = exported.read_bytes()
    exported.write_bytes(data[:len(data) // 2])
    with pytest.raises(MalformedEvidence, match="the file ends inside a line"):
        read_export(exported)


def test_sizes_are_bounded(exported, monkeypatch):
    monkeypatch.setattr(export, "MAX_LINE_BYTES", 200)
    with pytest.raises(MalformedEvidence, match="line 2: line too long"):
        read_export(exported)
    monkeypatch.setattr(export, "MAX_LINE_BYTES", 1 << 20)
    monkeypatch.setattr(export, "MAX_EXPORT_BYTES", 1000)
    with pytest.raises(MalformedEvidence, match="export file too large"):
        read_export(exported)
    # A file that grows while it is read (or a pipe, whose size is 0) is cut off too.
    monkeypatch.setattr(export.os, "fstat", lambda fd: SimpleNamespace(st_size=0))
    with pytest.raises(MalformedEvidence, match="the export is too large"):
        read_export(exported)


def test_what_is_not_a_file(tmp_path):
    with pytest.raises(ConfigError, match="export not found"):
        read_export(tmp_path / "nothing.jsonl")
    with pytest.raises(ConfigError, match="is a folder"):
        read_export(tmp_path)


def test_cosignature_lines_travel_as_stored(exported, federation):
    """A stored line is the witness's own: the export keeps it byte for byte."""
    record = read_export(exported)
    checkpoint = record.checkpoints()[0]
    line, timestamp = cosignature_line(federation, checkpoint.note,
                                       federation.clients[0].witness,
                                       AT + timedelta(minutes=checkpoint.size))
    assert record.cosignatures(checkpoint.size)[0].line == line
    assert record.cosignatures(checkpoint.size)[0].timestamp == timestamp
