"""The journal's own rules: values made canonical, the writer thread (order, failures, a full
queue), and what it answers for receipts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ccattest.mesh import journal as journal_module
from ccattest.mesh.agent import SiteVerdict
from ccattest.mesh.journal import Journal, _plain
from ccattest.record.entry import decode
from ccattest.record.keys import SiteKeys, origin_for
from ccattest.record.log import SiteLog
from ccattest.record.store import RecordStore, StoreError

AT = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    keys = SiteKeys.generate("fed", "site-1")
    store = RecordStore.open(tmp_path / "record.sqlite3", origin=origin_for("fed", "site-1"),
                             create=True)
    alerts: list[str] = []
    made = Journal(SiteLog(store, keys.log, checkpoint_every=4), "site-1",
                   on_failure=alerts.append)
    made.alerts = alerts  # type: ignore[attr-defined]
    yield made
    made.close()
    store.close()


def _kinds(journal: Journal) -> list[str]:
    journal.flush()
    assert journal.log is not None
    return [entry.kind for entry in journal.log.store.entries()]


def test_values_become_canonical() -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd"

    assert _plain({1: b"\x01\xff", "s": {3}, "t": (1, 2.5), "at": AT, "o": Odd(),
                   "n": None, "b": True}) == {
        "1": "01ff", "s": [3], "t": [1, "2.5"], "at": AT.isoformat(), "o": "odd",
        "n": None, "b": True}


def test_a_journal_without_a_log_writes_nothing() -> None:
    nothing = Journal(None, "site-1")
    ran: list[int] = []
    nothing.later(lambda: ran.append(1))
    assert ran == [] and nothing.now(lambda: 7) == 7
    assert nothing.checkpoint() is None and nothing.gate("j", [], allowed=True, reasons=[]) \
        is None
    assert nothing.config(config_digest="x", platforms=[], record={}) is None
    nothing.flush()
    nothing.close()


def test_writes_keep_their_order_and_indices(journal: Journal) -> None:
    journal.later(lambda: journal.exclusion("site-2", "queued first"))
    index = journal.readmission("site-2", "written after what was queued")
    assert index == 1 and _kinds(journal) == ["exclusion", "readmission"]
    assert journal.events_since(0, ["site-2"]) == [0]
    assert journal.events_since(1, ["site-2"]) == [] and journal.events_since(0, ["x"]) == []


def test_a_failing_write_is_an_alert_and_the_writer_goes_on(journal: Journal) -> None:
    def broken() -> None:
        raise RuntimeError("a bug in one write")

    journal.later(broken)
    journal.flush()
    assert journal.failure == "RuntimeError: a bug in one write"
    assert journal.alerts == [journal.failure]  # type: ignore[attr-defined]
    journal.action("site-2", "rejected", "alert", "next write works")
    assert journal.healthy and _kinds(journal) == ["action"]
    with pytest.raises(ValueError, match="handed back"):
        journal.now(lambda: (_ for _ in ()).throw(ValueError("handed back")))


def test_a_full_queue_drops_the_entry_and_says_so(journal: Journal,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    monkeypatch.setattr(journal_module, "QUEUE_WAIT_S", 0.05)
    monkeypatch.setattr(journal_module, "MAX_QUEUED", 1)
    journal = Journal(journal.log, "site-1")  # its queue holds one write
    journal.later(gate.wait)  # the writer is busy with this one
    journal.later(lambda: None)  # ... and this one fills the queue
    journal.later(lambda: None)  # no room: dropped, an alert
    assert journal.failure is not None and "behind" in journal.failure
    assert journal.now(lambda: "ran here") == "ran here"  # the queue is full: run inline
    gate.set()
    journal.close()


def test_checkpoint_config_and_evidence_failures_are_alerts(journal: Journal,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture
                                                             ) -> None:
    assert journal.log is not None
    store = journal.log.store

    def fail(*_args: object, **_kwargs: object) -> None:
        raise StoreError("the record could not do it", found="disk I/O error")

    monkeypatch.setattr(journal.log, "checkpoint", fail)
    assert journal.checkpoint() is None and "checkpoint" in (journal.failure or "")
    monkeypatch.setattr(store, "entries", fail)
    assert journal.config(config_digest="c", platforms=["software"], record={}) is None
    monkeypatch.setattr(store, "put_evidence", fail)
    journal.keep_evidence = True
    from ccattest.testing.software import SoftwareFixture

    fixture = SoftwareFixture.create("site-2")
    evidence, _, _ = fixture.evidence(b"\x00" * 32)
    journal.verdict(SiteVerdict("site-2", AT), [evidence], context="round", definitive=True)
    assert "could not be written: evidence: StoreError" in caplog.text
    assert journal.healthy  # the verdict itself was written: the record works again


def test_what_a_receipt_relies_on(journal: Journal) -> None:
    assert journal.relied_on("site-2") is None
    verdict = SiteVerdict("site-2", AT)  # no results: not affirming, but definitive
    index = journal.verdict(verdict, [], context="registration/confirm", definitive=True)
    journal.round(round_id="r1", transcript="00", coordinator="server",
                  participants=["server", "site-2"], missing={},
                  judged={"site-2": ("affirming", None)}, at=AT)
    journal.flush()
    assert journal.relied_on("site-2") == {"verdict": index, "round": index + 1}
    journal.round(round_id="r2", transcript="00", coordinator="server",
                  participants=["server", "site-2"], missing={"site-3": "no answer"},
                  judged={"site-2": ("contraindicated", None)}, at=AT)
    journal.flush()
    assert journal.relied_on("site-2") == {"verdict": index, "round": None}
    assert journal.events_since(0, ["site-3"]) == [index + 2]
    assert journal.log is not None
    last = decode(journal.log.store.entries(kind="round")[-1].body)
    assert last.data["missing"] == {"site-3": "no answer"}
