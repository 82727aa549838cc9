"""Opening a provisioned site's record, and every way that can fail without stopping the site:
a foreign or corrupt file, another federation's record, a database that does not answer, a
missing key, a full disk."""

from __future__ import annotations

import socket
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import event

from ccattest.mesh.agent import SiteVerdict
from ccattest.mesh.config import build_agent, load_cc_config
from ccattest.mesh.recording import SiteRecord, open_site_record
from ccattest.provisioning import FederationRequest, SiteRequest, provision
from ccattest.record.audit import audit
from ccattest.record.entry import decode
from ccattest.record.keys import LOG_KEY_FILE
from ccattest.timeutil import utcnow

SITES = ("server", "site-1")


def _federation(folder: Path, name: str = "") -> dict[str, Path]:
    bundles = {site: folder / site / "local" / "cc" for site in SITES}
    provision(FederationRequest([SiteRequest(site) for site in SITES], federation=name),
              bundles, folder / "root", utcnow())
    return bundles


def _open(bundle: Path, alerts: list[str] | None = None, **changes: object) -> SiteRecord:
    config, base = load_cc_config(bundle / "cc_config.yaml")
    if changes:
        assert config.record is not None
        config = config.model_copy(update={"record": config.record.model_copy(update=changes)})
    agent = build_agent(config, base)
    return open_site_record(config, base, agent, server="server",
                            is_server=config.site == "server",
                            config_text=(bundle / "cc_config.yaml").read_bytes(),
                            on_failure=None if alerts is None else alerts.append)


def test_a_provisioned_site_opens_its_record_and_notes_config_changes(tmp_path: Path) -> None:
    bundles = _federation(tmp_path, "fed-a")
    server = _open(bundles["server"])
    assert server.journal.enabled and server.witnessed is not None
    assert server.result_key is not None
    assert set(server.witnessed.witnesses) == {"site-1"}
    assert server.location == str(bundles["server"] / "record.sqlite3")
    server.close()
    again = _open(bundles["server"])  # same config: no second config entry
    assert again.journal.log is not None
    assert [e.kind for e in again.journal.log.store.entries()] == ["config"]
    again.close()
    policy = bundles["server"] / "policy.yaml"
    policy.write_text(policy.read_text().replace("min_svn: 0", "min_svn: 1"))
    changed = _open(bundles["server"])
    assert changed.journal.log is not None
    configs = [decode(e.body).data for e in changed.journal.log.store.entries(kind="config")]
    assert len(configs) == 2 and configs[0]["policy"]["digest"] != configs[1]["policy"]["digest"]
    assert audit(changed.journal.log.store).size == 2
    changed.close()
    client = _open(bundles["site-1"])
    assert client.witness is not None and client.witness.origin.endswith("/fed-a/server")
    client.close()


def _fails_but_the_site_goes_on(record: SiteRecord, alerts: list[str], words: str) -> None:
    assert not record.journal.enabled
    assert record.journal.failure is not None and words in record.journal.failure
    assert alerts == [record.journal.failure]
    # Writing is a no-op, the site keeps judging, and jobs run unless the record is required.
    assert record.journal.verdict(SiteVerdict("site-1", utcnow()), [], context="round",
                                  definitive=True) is None
    assert record.journal.blocks_jobs() is None
    record.journal.required = True
    assert "required" in (record.journal.blocks_jobs() or "")


def test_another_sites_record_is_refused(tmp_path: Path) -> None:
    bundles = _federation(tmp_path, "fed-a")
    _open(bundles["site-1"]).close()
    (bundles["site-1"] / "record.sqlite3").replace(bundles["server"] / "record.sqlite3")
    alerts: list[str] = []
    _fails_but_the_site_goes_on(_open(bundles["server"], alerts), alerts, "another log")


def test_another_federations_record_is_refused(tmp_path: Path) -> None:
    ours = _federation(tmp_path / "a", "fed-a")
    theirs = _federation(tmp_path / "b", "fed-b")
    _open(theirs["server"]).close()
    (theirs["server"] / "record.sqlite3").replace(ours["server"] / "record.sqlite3")
    alerts: list[str] = []
    record = _open(ours["server"], alerts)
    _fails_but_the_site_goes_on(record, alerts, "fed-b")


@pytest.mark.parametrize("content", [b"not a database at all" * 100,
                                     b"SQLite format 3\x00" + bytes(range(256)) * 16])
def test_a_corrupt_file_is_refused(tmp_path: Path, content: bytes) -> None:
    bundles = _federation(tmp_path)
    (bundles["server"] / "record.sqlite3").write_bytes(content)
    alerts: list[str] = []
    _fails_but_the_site_goes_on(_open(bundles["server"], alerts), alerts, "record")


def test_a_database_that_does_not_answer(tmp_path: Path) -> None:
    bundles = _federation(tmp_path)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    alerts: list[str] = []
    started = time.monotonic()
    record = _open(bundles["server"], alerts,
                   url=f"postgresql://ccattest@127.0.0.1:{port}/record")
    assert time.monotonic() - started < 30
    _fails_but_the_site_goes_on(record, alerts, "Connection refused")
    assert "@127.0.0.1" in record.location and "password" not in record.journal.failure


def test_a_missing_key_says_how_to_get_one(tmp_path: Path) -> None:
    bundles = _federation(tmp_path)
    (bundles["server"] / "keys" / LOG_KEY_FILE).unlink()
    alerts: list[str] = []
    _fails_but_the_site_goes_on(_open(bundles["server"], alerts), alerts, "log key")


def test_a_full_disk_is_an_alert_and_earlier_entries_stay(tmp_path: Path) -> None:
    bundles = _federation(tmp_path)
    alerts: list[str] = []
    record = _open(bundles["server"], alerts)
    log = record.journal.log
    assert log is not None
    with log.store.engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()

    def cap(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")  # the file cannot grow

    log.store.engine.dispose()
    event.listen(log.store.engine, "connect", cap)
    for n in range(40):
        record.journal.action(f"site-{n}", "rejected", "alert", "x" * 4000)
    assert record.journal.failure is not None and "full" in record.journal.failure
    assert len(alerts) == 1
    size = log.size
    record.close()
    event.remove(log.store.engine, "connect", cap)
    reopened = _open(bundles["server"])
    assert reopened.journal.log is not None and reopened.journal.log.size == size
    assert audit(reopened.journal.log.store).size == size
    reopened.close()


def test_a_config_without_a_record_section_keeps_none(tmp_path: Path) -> None:
    bundles = _federation(tmp_path)
    config, base = load_cc_config(bundles["site-1"] / "cc_config.yaml")
    bare = config.model_copy(update={"record": None})
    record = open_site_record(bare, base, build_agent(bare, base), server="server",
                              is_server=False)
    assert not record.journal.enabled and record.journal.failure is None
    assert record.location == "" and record.witness is None
    record.close()


def test_a_log_key_of_another_federation_is_refused(tmp_path: Path) -> None:
    ours = _federation(tmp_path / "a", "fed-a")
    theirs = _federation(tmp_path / "b", "fed-b")
    (theirs["server"] / "keys" / LOG_KEY_FILE).replace(ours["server"] / "keys" / LOG_KEY_FILE)
    alerts: list[str] = []
    _fails_but_the_site_goes_on(_open(ours["server"], alerts), alerts, "named after another")


def test_a_record_with_a_hole_is_refused_and_left_closed(tmp_path: Path) -> None:
    bundles = _federation(tmp_path)
    first = _open(bundles["server"])
    for n in range(3):
        first.journal.action(f"site-{n}", "rejected", "alert", "x")
    first.close()
    with sqlite3.connect(bundles["server"] / "record.sqlite3") as db:
        db.execute("DELETE FROM entries WHERE idx = 1")
    alerts: list[str] = []
    _fails_but_the_site_goes_on(_open(bundles["server"], alerts), alerts, "not dense")


def test_an_unreadable_receipt_key_is_refused(tmp_path: Path) -> None:
    bundles = _federation(tmp_path)
    (bundles["server"] / "keys" / "result.key.pem").unlink()
    alerts: list[str] = []
    _fails_but_the_site_goes_on(_open(bundles["server"], alerts), alerts, "receipt signing key")
