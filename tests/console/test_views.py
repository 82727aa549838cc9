"""The console's reads: event pages pushed into the store's query, the metrics' running
tally of each record (against a full recount), and the status files parsed once until they
change."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from ccattest.console import tally
from ccattest.console.app import create_app
from ccattest.console.metrics import render_metrics
from ccattest.console.tally import BATCH, Counts, RecordTally, entry_data
from ccattest.console.views import Federation
from ccattest.record.entry import Entry, decode
from ccattest.record.keys import origin_for
from ccattest.record.store import RecordStore
from tests.console.test_api import AT, _federation

RECORD = Path("server") / "local" / "cc" / "record.sqlite3"
STATUS = Path("server") / "local" / "cc" / "status.json"


def append(prod: Path, *entries: Entry, origin: str = origin_for("fed", "server")) -> None:
    with RecordStore.open(prod / RECORD, origin=origin) as store:
        for entry in entries:
            store.append(entry.encode(), entry)


def recount(federation: Federation, site: str = "server") -> Counts:
    """What the scrape counted before the tally: every entry, read and decoded again."""
    kit = federation.kit(site)
    assert kit is not None
    with federation.record(kit) as store:
        assert store is not None
        stored = store.entries()
    kinds = Counter(e.kind for e in stored)
    verdicts: Counter[tuple[str, str]] = Counter()
    missing = 0
    for e in stored:
        data = entry_data(e.body) or {}
        if e.kind == "verdict":
            for result in data.get("results") or [{"platform": "none"}]:
                verdicts[(str(result.get("platform")), str(data.get("status")))] += 1
        elif e.kind == "round":
            missing += len(data.get("missing") or {})
    return Counts(len(stored), dict(kinds), dict(verdicts), missing)


def mixed(n: int, *, site: str = "server") -> list[Entry]:
    """n entries of several kinds, an hour apart from AT + 1h."""
    out = []
    for i in range(n):
        at = AT + timedelta(hours=i + 1)
        if i % 3 == 0:
            out.append(Entry("verdict", site, at, {"status": ("affirming", "warning")[i % 2],
                                                   "results": [{"platform": "snp"}]}))
        elif i % 3 == 1:
            out.append(Entry("round", site, at, {"round": f"r{i}",
                                                 "missing": {f"site-{i}": "gone"}}))
        else:
            out.append(Entry("action", site, at, {"site": f"site-{i}"}))
    return out


@pytest.fixture
def prod(tmp_path: Path) -> Path:
    return _federation(tmp_path)


# -- events ----------------------------------------------------------------------------------

def test_events_pages_by_index_time_and_order(prod: Path) -> None:
    append(prod, *mixed(9))  # indices 3..11, at AT + 1h .. AT + 9h
    fed = Federation.find(prod)
    assert [e["index"] for e in fed.events()] == list(range(12))
    assert [e["index"] for e in fed.events(limit=4)] == [0, 1, 2, 3]
    assert [e["index"] for e in fed.events(after=5, limit=2)] == [6, 7]
    assert [e["index"] for e in fed.events(newest_first=True, limit=3)] == [11, 10, 9]
    assert [e["index"] for e in fed.events(newest_first=True, before=9, limit=3)] == [8, 7, 6]
    assert [e["index"] for e in fed.events(after=2, before=6)] == [3, 4, 5]
    assert fed.events(after=8, before=4) == []  # an empty window, not an error
    assert fed.events(before=99, limit=1)[0]["index"] == 0  # before beyond the end: all
    verdicts = fed.events(kind="verdict", newest_first=True, limit=2)
    assert [e["index"] for e in verdicts] == [9, 6]
    assert verdicts[0]["data"]["status"] == "affirming"
    since = fed.events(since=AT + timedelta(hours=7))
    assert [e["index"] for e in since] == [9, 10, 11]
    window = fed.events(since=AT + timedelta(hours=2), until=AT + timedelta(hours=4))
    assert [e["at"] for e in window] == [(AT + timedelta(hours=h)).isoformat() for h in (2, 3)]
    assert fed.events("site-1") == []  # a kit without a record


def test_the_events_route_takes_order_before_and_until(prod: Path) -> None:
    append(prod, *mixed(6))  # indices 3..8
    client = TestClient(create_app(Federation.find(prod), "t" * 43))
    client.headers["Authorization"] = "Bearer " + "t" * 43
    page = client.get("/api/v1/events", params={"order": "desc", "limit": 2}).json()
    assert [e["index"] for e in page["events"]] == [8, 7] and page["next"] == 7
    older = client.get("/api/v1/events", params={"order": "desc", "limit": 2,
                                                 "before": page["next"]}).json()
    assert [e["index"] for e in older["events"]] == [6, 5]
    timed = client.get("/api/v1/events", params={
        "order": "desc", "since": (AT + timedelta(hours=2)).isoformat(),
        "until": (AT + timedelta(hours=4)).isoformat()}).json()
    assert [e["index"] for e in timed["events"]] == [5, 4] and timed["next"] is None
    asc = client.get("/api/v1/events", params={"after": 4, "limit": 2}).json()
    assert [e["index"] for e in asc["events"]] == [5, 6] and asc["next"] == 6
    for bad in ({"order": "newest"}, {"before": -1}):
        assert client.get("/api/v1/events", params=bad).status_code == 422
    assert client.get("/api/v1/events", params={"until": "soon"}).status_code == 400
    receipts = client.get("/api/v1/receipts").json()["receipts"]
    assert [r["data"]["job"] for r in receipts] == ["job-1"]


def test_an_unreadable_entry_is_shown_without_data() -> None:
    assert entry_data(b'{"not": "an entry"}') is None


# -- the metrics' tally ----------------------------------------------------------------------

def test_the_tally_reads_only_new_entries_and_matches_a_full_recount(
        prod: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fed = Federation.find(prod)
    kit = fed.server
    assert kit is not None
    assert fed.tally(kit) == recount(fed)
    read: list[tuple[int, int | None]] = []
    original = RecordStore.entries

    def spy(self: RecordStore, start: int = 0, end: int | None = None,
            **options: Any) -> Any:
        read.append((start, end))
        return original(self, start, end, **options)

    monkeypatch.setattr(RecordStore, "entries", spy)
    assert fed.tally(kit) == recount(fed)  # nothing new: no entries read by the tally
    assert read == [(0, None)]  # (the recount's own read)
    read.clear()
    append(prod, *mixed(7))
    counts = fed.tally(kit)
    assert counts == recount(fed) and counts.entries == 10
    assert read[0] == (3, 10)  # only the appended entries
    assert counts.missing == 1 + 2 and counts.kinds["action"] == 2
    assert counts.verdicts[("snp", "affirming")] == 2
    assert counts.verdicts[("snp", "warning")] == 1
    assert fed.tally(fed.kit("site-1")) is None  # type: ignore[arg-type]


def test_the_tally_reads_a_long_record_in_batches(prod: Path) -> None:
    append(prod, *mixed(BATCH + 5))
    fed = Federation.find(prod)
    kit = fed.server
    assert kit is not None
    assert fed.tally(kit) == recount(fed)
    assert fed.tally(kit).entries == BATCH + 8  # type: ignore[union-attr]


def test_the_tally_starts_over_when_the_record_is_another(prod: Path, tmp_path: Path) -> None:
    fed = Federation.find(prod)
    kit = fed.server
    assert kit is not None
    tally = fed._cache.tallies  # the cache is what is under test
    assert fed.tally(kit) == recount(fed)
    # Replaced by another log (another origin), with more entries than were counted.
    (prod / RECORD).unlink()
    append(prod, *mixed(5, site="other"), origin="another/log")
    assert fed.tally(kit) == recount(fed)
    assert tally[kit.path].restarts == 1 and tally[kit.path].origin == "another/log"
    # Restored from an older copy: fewer entries than counted.
    backup = tmp_path / "backup.sqlite3"
    shutil.copy(prod / RECORD, backup)
    append(prod, *mixed(3, site="other"), origin="another/log")
    assert fed.tally(kit) == recount(fed) and fed.tally(kit).entries == 8  # type: ignore[union-attr]
    shutil.copy(backup, prod / RECORD)
    assert fed.tally(kit) == recount(fed) and tally[kit.path].restarts == 2
    # The same origin and at least as long, but other entries where the counted ones were.
    (prod / RECORD).unlink()
    append(prod, *reversed(mixed(7, site="other")), origin="another/log")
    assert fed.tally(kit) == recount(fed) and tally[kit.path].restarts == 3
    # Gone: no figures, and a new record later is counted from its start.
    (prod / RECORD).unlink()
    assert fed.tally(kit) is None
    append(prod, *mixed(2))
    assert fed.tally(kit) == recount(fed)


def test_a_record_with_a_hole_at_its_end_is_counted_as_far_as_it_goes() -> None:
    class Holed:
        origin = "o"

        def size(self) -> int:
            return 5

        def entries(self, *_args: Any, **_options: Any) -> list[Any]:
            return []

    counts = RecordTally().update(Holed())  # type: ignore[arg-type]
    assert counts == Counts(0, {}, {}, 0)


def test_metrics_count_what_was_appended_between_scrapes(prod: Path) -> None:
    fed = Federation.find(prod)
    first = render_metrics(fed)[0].decode()
    assert 'ccattest_record_entries{site="server"} 3.0' in first
    append(prod, *mixed(4))
    second = render_metrics(fed)[0].decode()
    assert 'ccattest_record_entries{site="server"} 7.0' in second
    assert 'ccattest_round_missing_contributions_total{site="server"} 2.0' in second
    assert ('ccattest_verdict_changes_total{platform="snp",site="server",'
            'status="affirming"} 1.0') in second
    assert 'ccattest_record_appends_total{kind="action",site="server"} 1.0' in second
    # a fresh console (nothing cached) answers the same
    assert render_metrics(Federation.find(prod))[0].decode() == second


# -- status files ----------------------------------------------------------------------------

def rewrite(path: Path, data: dict[str, Any]) -> None:
    """As CCManager does: a new file moved over the old one."""
    temporary = path.with_name(".status.tmp.json")
    temporary.write_text(json.dumps(data))
    os.replace(temporary, path)


def test_status_files_are_parsed_again_only_when_they_change(
        prod: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fed = Federation.find(prod)
    parsed: list[str] = []
    import ccattest.console.views as views

    original = views.read_status

    def spy(kit: Any) -> Any:
        parsed.append(kit.name)
        return original(kit)

    monkeypatch.setattr(views, "read_status", spy)
    first = fed.view()
    assert sorted(parsed) == ["server", "site-1"]  # site-1 has no file: read each time
    parsed.clear()
    assert fed.view() is first and parsed == ["site-1"]
    data = json.loads((prod / STATUS).read_text())
    data["matrix"][0]["status"] = "warning"
    rewrite(prod / STATUS, data)
    parsed.clear()
    changed = fed.view()
    assert "server" in parsed and changed["matrix"][0]["status"] == "warning"
    assert fed.view() is changed
    # A client starts writing its status file: it is read and kept too.
    rewrite(prod / "site-1" / "local" / "cc" / "status.json", {
        "site": "site-1", "role": "client", "matrix": [], "excluded": {}})
    assert fed.view()["sites"]["site-1"]["state"] == "reporting"
    parsed.clear()
    fed.view()
    assert parsed == []
    # Removed: no status again.
    (prod / STATUS).unlink()
    assert fed.view()["sites"]["server"]["state"] == "no status"


# -- the events answer, written from the entries' own JSON -----------------------------------

def test_the_events_answer_is_what_the_serializer_writes(prod: Path) -> None:
    tricky = "quote \" backslash \\ slash / tab \t nl \n \x01 \x7f é \u2028 😀"
    append(prod, Entry("action", tricky, AT, {"z": tricky, "a": [1, -2, 2**70, True, None]}),
           *mixed(3))
    raw = sqlite3.connect(prod / RECORD)  # one entry no longer canonical: its data is null
    with raw:
        raw.execute("UPDATE entries SET body = CAST(? AS BLOB) WHERE idx = 4",
                    (b'{"at": "2026-12-01T01:00:00Z", "data": {}, "kind": "round"}',))
    raw.close()
    fed = Federation.find(prod)
    client = TestClient(create_app(fed, "t" * 43))
    client.headers["Authorization"] = "Bearer " + "t" * 43
    serializer = TypeAdapter(dict[str, Any])
    for params, query in (({}, {}), ({"order": "desc", "limit": 2},
                                     {"newest_first": True, "limit": 2})):
        for _ in range(2):  # the first checks each body, the second reuses the check
            answer = client.get("/api/v1/events", params=params)
            found = fed.events(**query)  # type: ignore[arg-type]
            expected = {"events": found,
                        "next": found[-1]["index"] if len(found) == query.get("limit") else None}
            assert answer.content == serializer.dump_json(expected)
            assert answer.headers["content-type"] == "application/json"
    assert [e["data"] for e in fed.events(after=2, limit=2)] == [
        {"z": tricky, "a": [1, -2, 2**70, True, None]}, None]
    assert fed.events()[3]["site"] == tricky


def test_a_body_is_checked_once_then_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    body = Entry("round", "s", AT, {"missing": {"a": "b"}}).encode()
    assert entry_data(body) == {"missing": {"a": "b"}}

    def refuse(_body: bytes) -> Any:
        raise AssertionError("decoded again")

    monkeypatch.setattr(tally, "decode", refuse)
    assert entry_data(body) == {"missing": {"a": "b"}}
    assert tally.data_json(body) == b'{"missing":{"a":"b"}}'
    monkeypatch.setattr(tally, "decode", decode)
    monkeypatch.setattr(tally, "MAX_CHECKED", len(tally._checked))  # full: forgets
    assert entry_data(Entry("round", "s", AT, {"n": 1}).encode()) == {"n": 1}
    assert len(tally._checked) == 1


def test_events_about_a_site_scan_a_bounded_window_and_say_where_to_go_on(
        prod: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ccattest.console import views

    # 3 entries from _federation, then 60 naming site-<i> (actions) or no site at all.
    append(prod, *[Entry("action", "server", AT + timedelta(hours=i + 1),
                         {"site": "site-7" if i % 10 == 0 else f"other-{i}"})
                   for i in range(60)])
    federation = Federation.find(prod)
    found, cursor = federation.events_about_json("site-7", limit=50, newest_first=True)
    assert [json.loads(item)["index"] for item in found] == [3 + i for i in range(50, -1, -10)]
    assert cursor is None  # the whole record was read
    found, cursor = federation.events_about_json("site-7", limit=2, newest_first=False)
    assert [json.loads(item)["index"] for item in found] == [3, 13] and cursor == 13
    assert federation.events_about_json("site-1", limit=5, newest_first=False)[0]  # a verdict
    monkeypatch.setattr(views, "MAX_SCAN", 25)
    monkeypatch.setattr(views, "SCAN_PAGE", 10)
    found, cursor = federation.events_about_json("site-7", limit=50, newest_first=True)
    assert [json.loads(item)["index"] for item in found] == [53, 43, 33] and cursor == 33
    with TestClient(create_app(federation, "t" * 43)) as client:
        answer = client.get("/api/v1/events", params={"about": "site-7", "order": "desc",
                                                      "before": cursor},
                            headers={"Authorization": "Bearer " + "t" * 43}).json()
    assert [e["index"] for e in answer["events"]] == [23, 13, 3] and answer["next"] == 3


def test_warming_tallies_every_record_and_survives_a_broken_one(prod: Path) -> None:
    federation = Federation.find(prod)
    broken = prod / "site-1" / "local" / "cc" / "record.sqlite3"
    broken.write_bytes(b"not a database")
    federation.warm()
    server = federation.kit("server")
    assert server is not None
    tally = federation._cache.tallies[server.path]  # what warm() filled
    assert tally.read == 3


def test_a_site_history_pages_back_from_the_end_of_the_record(
        prod: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ccattest.console import detail
    from ccattest.timeutil import utcnow

    append(prod, *[Entry("verdict", "server", AT + timedelta(hours=i + 1),
                         {"peer": "site-1" if i % 3 == 0 else "other", "status": "warning",
                          "results": []}) for i in range(30)])
    monkeypatch.setattr(detail, "PAGE", 4)
    monkeypatch.setattr(detail, "HISTORY", 5)
    site = detail.site_detail(Federation.find(prod), "site-1", now=utcnow())
    indices = [h["at"] for h in site["history"]]
    assert len(indices) == 5 and indices == sorted(indices, reverse=True)
    monkeypatch.setattr(detail, "HISTORY", 50)
    everything = detail.site_detail(Federation.find(prod), "site-1", now=utcnow())
    assert len(everything["history"]) == 11  # 10 appended and the fixture's one
