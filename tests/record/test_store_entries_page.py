"""RecordStore.entries' `limit` and `newest_first`, on SQLite and PostgreSQL (record_url):
a page is the query's, so the console reads only the rows it answers with."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from ccattest.record.entry import Entry
from ccattest.record.store import RecordStore, StoredEntry

from .conftest import ORIGIN

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def record(record_url: str) -> Iterator[RecordStore]:
    with RecordStore.open(record_url, origin=ORIGIN) as opened:
        for n in range(10):  # kinds alternate, sites cycle over three, a minute apart
            opened.append(Entry(("verdict", "round")[n % 2], f"site-{n % 3}",
                                T0 + timedelta(minutes=n), {"n": n}).encode())
        yield opened


def indices(stored: list[StoredEntry]) -> list[int]:
    return [e.index for e in stored]


def test_without_a_limit_or_an_order_nothing_changes(record: RecordStore) -> None:
    assert indices(record.entries()) == list(range(10))
    assert indices(record.entries(3, 7, kind="round")) == [3, 5]


def test_a_limit_takes_the_first_matching_entries(record: RecordStore) -> None:
    assert indices(record.entries(limit=3)) == [0, 1, 2]
    assert indices(record.entries(4, limit=2)) == [4, 5]
    assert indices(record.entries(kind="round", limit=2)) == [1, 3]
    assert indices(record.entries(site="site-1", limit=2)) == [1, 4]
    assert indices(record.entries(since=T0 + timedelta(minutes=6), limit=10)) == [6, 7, 8, 9]
    assert record.entries(limit=0) == []
    with pytest.raises(ValueError, match="limit"):
        record.entries(limit=-1)


def test_newest_first_takes_the_last_ones(record: RecordStore) -> None:
    assert indices(record.entries(newest_first=True)) == list(range(9, -1, -1))
    assert indices(record.entries(newest_first=True, limit=3)) == [9, 8, 7]
    assert indices(record.entries(0, 6, newest_first=True, limit=2)) == [5, 4]
    assert indices(record.entries(kind="verdict", newest_first=True, limit=2)) == [8, 6]
    assert indices(record.entries(site="site-0", until=T0 + timedelta(minutes=7),
                                  newest_first=True, limit=5)) == [6, 3, 0]
    newest = record.entries(newest_first=True, limit=1)[0]
    assert newest.kind == "round" and newest.at == T0 + timedelta(minutes=9)
