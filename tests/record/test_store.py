"""record.store against both backends (the record_url fixture: SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, Table, create_engine, delete, insert, select, update
from sqlalchemy import MetaData as SAMetaData

from ccattest.errors import ConfigError, MalformedEvidence, VerificationFailed
from ccattest.record import merkle, store
from ccattest.record.entry import Entry
from ccattest.record.store import RecordStore, StoreError

from .conftest import ORIGIN

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def body(n: int, *, site: str = "site-1", kind: str = "verdict",
         at: datetime | None = None) -> bytes:
    return Entry(kind, site, at or T0 + timedelta(minutes=n), {"n": n}).encode()


@pytest.fixture
def record(record_url: str) -> Iterator[RecordStore]:
    with RecordStore.open(record_url, origin=ORIGIN) as opened:
        yield opened


def fill(record: RecordStore, count: int) -> list[bytes]:
    bodies = [body(n, site=f"site-{n % 3}", kind=("verdict", "round")[n % 2])
              for n in range(count)]
    assert [record.append(b) for b in bodies] == list(range(count))
    return bodies


# -- entries ---------------------------------------------------------------------------------

def test_append_is_dense_and_keeps_bodies_and_leaf_hashes(record: RecordStore) -> None:
    assert record.size() == 0
    assert record.leaf_hashes() == []
    bodies = fill(record, 7)
    assert record.size() == 7
    assert record.leaf_hashes() == [merkle.leaf_hash(b) for b in bodies]
    assert record.leaf_hashes(2, 5) == [merkle.leaf_hash(b) for b in bodies[2:5]]
    stored = record.entries()
    assert [e.index for e in stored] == list(range(7))
    assert [e.body for e in stored] == bodies
    assert stored[4].site == "site-1" and stored[4].kind == "verdict"
    assert stored[4].at == T0 + timedelta(minutes=4)
    assert stored[4].leaf_hash == merkle.leaf_hash(bodies[4])
    assert record.verify() == 7


def test_append_refuses_non_canonical_bytes_and_writes_nothing(record: RecordStore) -> None:
    fill(record, 1)
    loose = body(1).replace(b'"n":1', b'"n": 1')
    with pytest.raises(MalformedEvidence, match="canonical"):
        record.append(loose)
    with pytest.raises(MalformedEvidence):
        record.append(b"not json")
    assert record.size() == 1
    assert record.append(body(1)) == 1


def test_entries_filter_by_site_kind_time_and_range(record: RecordStore) -> None:
    fill(record, 9)
    assert [e.index for e in record.entries(site="site-1")] == [1, 4, 7]
    assert [e.index for e in record.entries(kind="round")] == [1, 3, 5, 7]
    assert [e.index for e in record.entries(site="site-1", kind="round")] == [1, 7]
    since, until = T0 + timedelta(minutes=2), T0 + timedelta(minutes=5)
    assert [e.index for e in record.entries(since=since)] == list(range(2, 9))
    assert [e.index for e in record.entries(until=until)] == list(range(5))
    # Another zone names the same instant.
    plus2 = timezone(timedelta(hours=2))
    assert [e.index for e in record.entries(since=since.astimezone(plus2),
                                            until=until.astimezone(plus2))] == [2, 3, 4]
    assert [e.index for e in record.entries(3, 6)] == [3, 4, 5]
    assert [e.index for e in record.entries(3, 6, kind="verdict")] == [4]
    assert record.entries(9) == []
    with pytest.raises(ConfigError, match="naive"):
        record.entries(since=datetime(2026, 1, 1))


@pytest.mark.parametrize(("start", "end"), [(-1, None), (3, 2), (0, 10), (10, None)])
def test_ranges_outside_the_log_are_refused(record: RecordStore, start: int,
                                            end: int | None) -> None:
    fill(record, 3)
    with pytest.raises(ValueError, match="not within the log of 3"):
        record.leaf_hashes(start, end)
    with pytest.raises(ValueError, match="not within"):
        record.entries(start, end)


def test_concurrent_appenders_leave_no_gap_or_duplicate(record_url: str) -> None:
    # Two stores (as two processes would have), two threads each: 40 appends in all.
    stores = [RecordStore.open(record_url, origin=ORIGIN) for _ in range(2)]
    got: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(opened: RecordStore, worker: int) -> None:
        try:
            for n in range(10):
                index = opened.append(body(worker * 100 + n, site=f"w{worker}"))
                with lock:
                    got.append(index)
        except BaseException as error:  # surfaced below: a thread's failure fails the test
            errors.append(error)

    threads = [threading.Thread(target=work, args=(stores[w % 2], w)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        assert errors == []
        assert sorted(got) == list(range(40))
        assert stores[0].size() == 40
        assert stores[1].verify() == 40
        for worker in range(4):  # each writer's entries in its own order
            mine = [e.body for e in stores[0].entries(site=f"w{worker}")]
            assert mine == [body(worker * 100 + n, site=f"w{worker}") for n in range(10)]
    finally:
        for opened in stores:
            opened.close()


def test_verify_finds_holes_short_logs_and_altered_bodies(record: RecordStore) -> None:
    fill(record, 5)
    with record.engine.begin() as conn:
        conn.execute(update(store.entries).where(store.entries.c.idx == 3)
                     .values(body=body(99)))
    with pytest.raises(VerificationFailed, match="leaf hash is not its entry's"):
        record.verify()
    with record.engine.begin() as conn:
        conn.execute(delete(store.entries).where(store.entries.c.idx >= 3))
    with pytest.raises(VerificationFailed, match="shorter than its head"):
        record.verify(batch=2)
    with record.engine.begin() as conn:
        conn.execute(delete(store.entries).where(store.entries.c.idx == 1))
    with pytest.raises(VerificationFailed, match="has a hole"):
        record.verify()
    with pytest.raises(VerificationFailed, match="not dense"):
        record.leaf_hashes()
    assert record.leaf_hashes(2, 3) == [merkle.leaf_hash(body(2, site="site-2"))]


def test_a_failing_database_is_a_store_error(record: RecordStore) -> None:
    with record.engine.begin() as conn:
        store.head.drop(conn)
    with pytest.raises(StoreError, match="could not read its size") as caught:
        record.size()
    assert caught.value.hint is None
    assert "head" in str(caught.value.found)
    with pytest.raises(StoreError, match="could not append"):
        record.append(body(0))


# -- checkpoints and cosignatures ------------------------------------------------------------

def test_checkpoints_must_match_the_stored_leaves(record: RecordStore) -> None:
    assert record.latest_checkpoint() is None
    assert record.checkpoints() == []
    assert record.add_checkpoint(0, merkle.EMPTY_ROOT, "empty", at=T0)
    bodies = fill(record, 5)
    leaves = [merkle.leaf_hash(b) for b in bodies]
    root3, root5 = merkle.root(leaves[:3]), merkle.root(leaves)
    assert record.add_checkpoint(5, root5, "five", at=T0 + timedelta(hours=1))
    assert record.add_checkpoint(3, root3, "three", at=T0 + timedelta(hours=2))
    assert not record.add_checkpoint(5, root5, "five", at=T0 + timedelta(hours=3))
    latest = record.latest_checkpoint()
    assert latest is not None
    assert (latest.size, latest.root, latest.note) == (5, root5, "five")
    assert latest.created_at == T0 + timedelta(hours=1)
    assert [(c.size, c.note) for c in record.checkpoints()] == [(0, "empty"), (3, "three"),
                                                                 (5, "five")]
    with pytest.raises(VerificationFailed, match="another checkpoint of size 5"):
        record.add_checkpoint(5, root5, "five, signed again differently", at=T0)
    with pytest.raises(VerificationFailed, match="not that of the first 4") as caught:
        record.add_checkpoint(4, root5, "four", at=T0)
    assert caught.value.expected == merkle.root(leaves[:4]).hex()
    with pytest.raises(VerificationFailed, match="beyond the log"):
        record.add_checkpoint(6, root5, "six", at=T0)
    with pytest.raises(VerificationFailed, match="beyond the log"):
        record.add_checkpoint(-1, root5, "minus one", at=T0)
    with pytest.raises(ConfigError, match="naive"):
        record.add_checkpoint(5, root5, "five", at=datetime(2026, 1, 1))
    assert len(record.checkpoints()) == 3


def test_cosignatures_keep_the_newest_per_witness(record: RecordStore) -> None:
    bodies = fill(record, 2)
    root = merkle.root([merkle.leaf_hash(b) for b in bodies])
    with pytest.raises(VerificationFailed, match="never made"):
        record.add_cosignature(2, "witness.example/w1", "— w1 AAAA", timestamp=10)
    record.add_checkpoint(2, root, "two", at=T0)
    assert record.cosignatures(2) == []
    assert record.add_cosignature(2, "witness.example/w2", "— w2 BBBB", timestamp=10)
    assert record.add_cosignature(2, "witness.example/w1", "— w1 AAAA", timestamp=10)
    assert not record.add_cosignature(2, "witness.example/w1", "— w1 AAAA", timestamp=10)
    assert not record.add_cosignature(2, "witness.example/w1", "— w1 OLD", timestamp=9)
    assert record.add_cosignature(2, "witness.example/w1", "— w1 NEW", timestamp=11)
    got = record.cosignatures(2)
    assert [(c.size, c.witness, c.line, c.timestamp) for c in got] == [
        (2, "witness.example/w1", "— w1 NEW", 11), (2, "witness.example/w2", "— w2 BBBB", 10)]
    assert record.cosignatures(1) == []


# -- evidence --------------------------------------------------------------------------------

def test_evidence_is_kept_once_under_its_digest(record: RecordStore) -> None:
    blob = b"\x00report bytes\xff" * 10
    digest = hashlib.sha256(blob).digest()
    assert record.get_evidence(digest) is None
    assert record.put_evidence(digest, blob)
    assert not record.put_evidence(digest, blob)
    assert record.get_evidence(digest) == blob
    with pytest.raises(VerificationFailed, match="not the digest"):
        record.put_evidence(digest, blob + b"!")
    with record.engine.connect() as conn:
        assert conn.execute(select(store.evidence.c.digest)).scalars().all() == [digest]


# -- opening ---------------------------------------------------------------------------------

def test_reopening_keeps_the_log_and_refuses_another_origin(record_url: str) -> None:
    with RecordStore.open(record_url, origin=ORIGIN) as first:
        bodies = fill(first, 3)
    with RecordStore.open(record_url, origin=ORIGIN, create=False) as again:
        assert again.leaf_hashes() == [merkle.leaf_hash(b) for b in bodies]
        assert again.append(body(3)) == 3
        assert again.origin == ORIGIN
    with pytest.raises(ConfigError, match="is another log") as caught:
        RecordStore.open(record_url, origin="ccattest.example/federation-b/site-1")
    assert caught.value.found == f"origin {ORIGIN!r}"


@pytest.mark.parametrize("origin", ["", "two\nlines", "tab\there"])
def test_an_origin_is_one_printable_line(record_url: str, origin: str) -> None:
    with pytest.raises(ConfigError, match="origin"):
        RecordStore.open(record_url, origin=origin)


def foreign_engine(url: str) -> Engine:
    """An engine on the same database, without the store's checks."""
    return create_engine(store._url(url, True))


def test_a_database_of_another_program_is_refused(record_url: str) -> None:
    other = SAMetaData()
    users = Table("users", other, *[store.Column("name", store.Text)])
    engine = foreign_engine(record_url)
    with engine.begin() as conn:
        other.create_all(conn)
        conn.execute(insert(users).values(name="alice"))
    engine.dispose()
    with pytest.raises(ConfigError, match="not a ccattest record") as caught:
        RecordStore.open(record_url, origin=ORIGIN)
    assert "users" in str(caught.value.found)
    assert caught.value.hint


def test_an_empty_database_without_create_is_refused(record_url: str) -> None:
    engine = foreign_engine(record_url)  # makes the (empty) SQLite file or nothing
    with engine.begin() as conn:
        conn.exec_driver_sql("SELECT 1")
    engine.dispose()
    with pytest.raises(ConfigError, match="no record at"):
        RecordStore.open(record_url, origin=ORIGIN, create=False)


@pytest.mark.parametrize(("key", "value"), [("format", "something-else"),
                                            ("format_version", "2")])
def test_another_format_or_version_is_refused(record_url: str, key: str, value: str) -> None:
    RecordStore.open(record_url, origin=ORIGIN).close()
    engine = foreign_engine(record_url)
    with engine.begin() as conn:
        conn.execute(update(store.meta).where(store.meta.c.key == key).values(value=value))
    engine.dispose()
    with pytest.raises(ConfigError, match="not a ccattest record of this version"):
        RecordStore.open(record_url, origin=ORIGIN)


def test_a_newer_schema_is_refused(record_url: str) -> None:
    RecordStore.open(record_url, origin=ORIGIN).close()
    engine = foreign_engine(record_url)
    with engine.begin() as conn:
        conn.execute(insert(store.migrations).values(version=99, description="future"))
    engine.dispose()
    with pytest.raises(ConfigError, match="newer ccattest") as caught:
        RecordStore.open(record_url, origin=ORIGIN)
    assert caught.value.found == "version 99"


def test_pending_migrations_run_once_at_open(record_url: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with RecordStore.open(record_url, origin=ORIGIN) as first:
        fill(first, 2)
    calls: list[int] = []
    extra = Table("extra", SAMetaData(), store.Column("x", store.Integer))

    latest = store.MIGRATIONS[-1].version
    nxt = latest + 1

    def later(conn: store.Connection) -> None:
        calls.append(nxt)
        extra.create(conn)

    monkeypatch.setattr(store, "MIGRATIONS",
                        (*store.MIGRATIONS, store.Migration(nxt, "an extra table", later)))
    for _ in range(2):
        with RecordStore.open(record_url, origin=ORIGIN) as again:
            assert again.size() == 2
            with again.engine.connect() as conn:
                versions = conn.execute(select(store.migrations.c.version)
                                        .order_by(store.migrations.c.version)).scalars().all()
                assert versions == list(range(1, nxt + 1))
                assert conn.execute(select(extra.c.x)).all() == []
    assert calls == [nxt]

