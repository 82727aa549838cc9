"""record.store on SQLite: durability settings, a kill -9 mid-write, a full disk, files that
are not records, and the paths and URLs open() accepts."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event

from ccattest.errors import ConfigError, VerificationFailed
from ccattest.record import merkle
from ccattest.record.entry import Entry
from ccattest.record.store import RecordStore, StoreError

from .conftest import ORIGIN

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def body(n: int, pad: int = 0) -> bytes:
    return Entry("verdict", "site-1", T0 + timedelta(seconds=n), {"n": n, "pad": "x" * pad}
                 ).encode()


def check_file(path: Path) -> int:
    """What a reopened record must satisfy after any failure; returns its size."""
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = raw.execute("SELECT idx, body, leaf_hash FROM entries ORDER BY idx").fetchall()
        (size,) = raw.execute("SELECT size FROM head").fetchone()
    finally:
        raw.close()
    assert [row[0] for row in rows] == list(range(len(rows)))
    assert all(merkle.leaf_hash(row[1]) == row[2] for row in rows)
    assert size == len(rows)
    with RecordStore.open(path, origin=ORIGIN, create=False) as reopened:
        assert reopened.verify() == size
    return size


def test_wal_with_full_sync_and_no_trusted_schema(tmp_path: Path) -> None:
    with RecordStore.open(tmp_path / "record.sqlite3", origin=ORIGIN) as record, \
            record.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA trusted_schema").scalar() == 0
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


CHILD = """
import sys
from datetime import UTC, datetime, timedelta
from ccattest.record.entry import Entry
from ccattest.record.store import RecordStore

record = RecordStore.open(sys.argv[1], origin=sys.argv[2])
n = record.size()
print("ready", flush=True)
while True:
    at = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(seconds=n)
    pad = "x" * (2000 + 997 * (n % 40))  # 2 to 41 KB: a write spans many pages
    n = record.append(Entry("verdict", "site-1", at, {"n": n, "pad": pad}).encode()) + 1
    print(n - 1, flush=True)
"""


@pytest.mark.slow
def test_kill_9_mid_append_loses_at_most_the_entry_being_written(tmp_path: Path) -> None:
    seed = int(os.environ.get("CCATTEST_KILL_SEED", random.SystemRandom().randrange(2**32)))
    rng = random.Random(seed)
    path = tmp_path / "record.sqlite3"
    size, rounds, unreported = 0, 0, 0
    deadline = time.monotonic() + 15  # bounded: at most 6 kills, at most ~15 s
    while rounds < 6 and time.monotonic() < deadline:
        rounds += 1
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), ORIGIN],
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        watchdog = threading.Timer(20, child.kill)  # a hung child cannot hang the test
        watchdog.start()
        try:
            assert child.stdout.readline() == "ready\n", f"seed {seed}"
            lines = [child.stdout.readline() for _ in range(rng.randint(1, 25))]
            assert all(lines), f"seed {seed}: the child died on its own"
            time.sleep(rng.uniform(0, 0.005))  # lands anywhere in (or between) appends
            child.send_signal(signal.SIGKILL)
            child.wait(10)
            lines += child.stdout.read().splitlines()
        finally:
            watchdog.cancel()
            child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        reported = [int(line) for line in lines]
        assert reported == list(range(size, size + len(reported))), f"seed {seed}"
        acknowledged = size + len(reported)
        size = check_file(path)
        # Every index the child was given survives; at most one more (committed, the kill
        # came before its print) does; the entry being written is whole or absent.
        assert acknowledged <= size <= acknowledged + 1, f"seed {seed}"
        unreported += size - acknowledged
    assert rounds >= 3, "too few kill rounds ran in the time box"
    print(f"kill test: seed {seed}, {rounds} kills, {size} entries, {unreported} committed "
          "but unreported")
    with RecordStore.open(path, origin=ORIGIN) as record:
        assert record.append(body(size)) == size  # and the log goes on


def test_a_full_disk_fails_the_append_and_keeps_earlier_entries(tmp_path: Path) -> None:
    path = tmp_path / "record.sqlite3"
    record = RecordStore.open(path, origin=ORIGIN)
    for n in range(3):
        record.append(body(n))
    with record.engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()

    def cap(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")  # the file cannot grow

    def fill_up() -> None:
        for n in range(3, 50):
            record.append(body(n, pad=20_000))

    record.engine.dispose()
    event.listen(record.engine, "connect", cap)
    with pytest.raises(StoreError, match="could not append") as caught:
        fill_up()
    assert "full" in str(caught.value.found)
    assert caught.value.hint and "free disk space" in caught.value.hint
    record.close()
    assert check_file(path) == 3
    with RecordStore.open(path, origin=ORIGIN) as again:
        assert again.append(body(3, pad=20_000)) == 3


@pytest.mark.parametrize("size", [10, 100, 4096, 20_000])
def test_random_bytes_are_not_a_record(tmp_path: Path, size: int) -> None:
    path = tmp_path / "record.sqlite3"
    junk = random.Random(size).randbytes(size)
    path.write_bytes(junk)
    with pytest.raises(ConfigError, match="cannot open the record") as caught:
        RecordStore.open(path, origin=ORIGIN)
    assert caught.value.found == "file is not a database"
    assert caught.value.hint and "backup" in caught.value.hint
    assert path.read_bytes() == junk  # and it was left alone


def test_a_sqlite_file_of_another_program_is_not_a_record(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE settings (k TEXT, v TEXT)")
    raw.commit()
    raw.close()
    with pytest.raises(ConfigError, match="not a ccattest record") as caught:
        RecordStore.open(path, origin=ORIGIN)
    assert caught.value.found == "tables settings"


def test_a_foreign_meta_table_is_refused(tmp_path: Path) -> None:
    # A table named meta, but not ours: its columns do not even match.
    path = tmp_path / "other.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE meta (name TEXT)")
    raw.execute("CREATE TABLE migrations (id INTEGER)")
    raw.commit()
    raw.close()
    with pytest.raises(ConfigError, match="cannot open the record") as caught:
        RecordStore.open(path, origin=ORIGIN)
    assert "no such column" in str(caught.value.found)


def test_paths_and_sqlite_urls(tmp_path: Path) -> None:
    path = tmp_path / "record.sqlite3"
    with RecordStore.open(f"sqlite:///{path}", origin=ORIGIN) as record:
        record.append(body(0))
        assert record.location == str(path)
    assert path.is_file()
    with RecordStore.open(str(path), origin=ORIGIN, create=False) as record:
        assert record.size() == 1
    with RecordStore.open(f"sqlite+pysqlite:///{path}", origin=ORIGIN) as record:
        assert record.size() == 1
    with pytest.raises(ConfigError, match="takes no options") as caught:
        RecordStore.open(f"sqlite:///{path}?mode=ro&cache=shared", origin=ORIGIN)
    assert caught.value.found == "?cache&mode"
    odd = tmp_path / "odd?name#1.sqlite3"  # as a path, '?' and '#' are part of the name
    with RecordStore.open(odd, origin=ORIGIN) as record:
        assert record.location == str(odd)
    assert odd.is_file()


@pytest.mark.parametrize(("target", "match"), [
    ("sqlite://", "must be a file"),
    (":memory:", "must be a file"),
    ("", "must be a file"),
    ("mysql://user@127.0.0.1/record", "SQLite or PostgreSQL"),
    ("postgresql+psycopg2://user@127.0.0.1/record", "SQLite or PostgreSQL"),
    ("postgresql+psycopg://user:s3cret@host:notaport/db", "not a database URL"),
    ("x://", "SQLite or PostgreSQL"),
    ("://nothing", "not a database URL"),
])
def test_targets_that_are_not_a_record(target: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as caught:
        RecordStore.open(target, origin=ORIGIN)
    assert "s3cret" not in str(caught.value)


def test_missing_files_and_folders(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no record at this path"):
        RecordStore.open(tmp_path / "none.sqlite3", origin=ORIGIN, create=False)
    assert not (tmp_path / "none.sqlite3").exists()
    with pytest.raises(ConfigError, match="folder does not exist"):
        RecordStore.open(tmp_path / "no" / "record.sqlite3", origin=ORIGIN)


def test_a_version_1_record_is_migrated_to_version_2(tmp_path: Path) -> None:
    path = tmp_path / "record.sqlite3"
    with RecordStore.open(path, origin=ORIGIN) as first:
        for n in range(3):
            first.append(body(n))
    with sqlite3.connect(path) as db:  # as ccattest before schema version 2 left it
        db.execute("DROP TABLE witnessed")
        db.execute("DELETE FROM migrations WHERE version = 2")
    with RecordStore.open(path, origin=ORIGIN) as again:
        assert again.size() == 3 and again.witnessed("other") is None
        again.set_witnessed("other", 5, b"\x01" * 32, "note", at=datetime.now(UTC))
        assert again.witnessed("other").size == 5  # type: ignore[union-attr]
        with pytest.raises(VerificationFailed, match="backwards"):
            again.set_witnessed("other", 4, b"\x02" * 32, "note", at=datetime.now(UTC))
    with sqlite3.connect(path) as db:
        assert [v for (v,) in db.execute("SELECT version FROM migrations ORDER BY 1")] == [1, 2]
