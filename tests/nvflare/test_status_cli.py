"""`ccattest status` over hand-written status files, as CCManager writes them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ccattest.errors import ConfigError
from ccattest.nvflare.status import NOT_STARTED, federation_view, find_kits, read_status

from ..cli_process import ccattest


def _stamp(seconds_ago: float) -> str:
    # From the moment the file is written, not the module's import: in a full suite the two
    # are minutes apart.
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat()


def _cell(verifier: str, peer: str, status: str = "affirming", ago: float = 5) -> dict:
    return {"verifier": verifier, "peer": peer, "status": status, "at": _stamp(ago),
            "last_good": _stamp(ago) if status == "affirming" else None}


def _round(round_id: str, ago: float, unreachable: dict | None = None) -> dict:
    return {"round_id": round_id, "at": _stamp(ago), "seconds": 0.25,
            "sites": ["server", "site-1", "site-2"], "attested": ["server", "site-1"],
            "unreachable": unreachable or {}}


def _federation(root: Path) -> Path:
    """server and site-1 reporting; site-2 never started; site-3 with a broken file."""
    prod = root / "poc" / "example_project" / "prod_00"
    (prod / "server" / "startup").mkdir(parents=True)
    (prod / "server" / "startup" / "fed_server.json").write_text(
        '{"servers": [{"identity": "server"}]}')
    for client in ("site-1", "site-2", "site-3"):
        (prod / client / "startup").mkdir(parents=True)
        (prod / client / "startup" / "fed_client.json").write_text("{}")
        (prod / client / "local" / "cc").mkdir(parents=True)
    (prod / "admin@nvidia.com" / "startup").mkdir(parents=True)
    (prod / "server" / "local" / "cc").mkdir(parents=True)
    server = {"site": "server", "role": "server", "updated": _stamp(2),
              "matrix": [_cell("server", "site-1"), _cell("server", "site-2", "contraindicated"),
                         _cell("site-1", "server", ago=30)],
              "excluded": {"site-2": "measurement matches no reference value"},
              "rounds": 3, "last_round": _round("c3", 5),
              "recent_rounds": [_round("a1", 125), _round("b2", 65),
                                _round("c3", 5, {"site-2": "no answer"})],
              "events": [], "record": {"location": "record.sqlite3", "size": 42,
                                       "healthy": True, "failure": None}}
    site1 = {"site": "site-1", "role": "client", "updated": _stamp(3),
             "matrix": [_cell("site-1", "server", ago=4), _cell("site-1", "site-2", "warning")],
             "excluded": {}, "rounds": 3, "last_round": None, "events": [],
             "record": {"location": "record.sqlite3", "size": 7, "healthy": False,
                        "failure": "database or disk is full"}}
    (prod / "server" / "local" / "cc" / "status.json").write_text(json.dumps(server))
    (prod / "site-1" / "local" / "cc" / "status.json").write_text(json.dumps(site1))
    (prod / "site-3" / "local" / "cc" / "status.json").write_text("{not json")
    return prod




def test_view_merges_the_sites_files(tmp_path):
    prod = _federation(tmp_path)
    kits = find_kits([tmp_path])  # the POC workspace root: kits four folders down
    assert [k.name for k in kits] == ["server", "site-1", "site-2", "site-3"]
    assert find_kits([prod, prod / "site-1"]) == kits  # named twice, listed once
    view = federation_view([read_status(k) for k in kits])
    assert view["sites"]["site-2"]["problem"] == NOT_STARTED
    assert "not JSON" in view["sites"]["site-3"]["problem"]
    assert view["sites"]["site-1"]["rounds"] == 3
    cells = {(c["verifier"], c["peer"]): c for c in view["matrix"]}
    site1 = json.loads((prod / "site-1" / "local" / "cc" / "status.json").read_text())
    # the newer of the two copies: site-1's own (4 s old), not the server's (30 s)
    assert cells[("site-1", "server")]["at"] == site1["matrix"][0]["at"]
    assert cells[("site-1", "site-2")]["status"] == "warning"
    assert [r["round_id"] for r in view["rounds"]] == ["c3", "b2", "a1"]
    assert view["excluded"] == {"site-2": {"server": "measurement matches no reference value"}}


def test_status_human_view_at_80_columns(tmp_path):
    _federation(tmp_path)
    proc = ccattest("status", "--poc", "poc", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    # Ages count from the test's start: a loaded machine may take seconds to get here.
    assert re.search(r"server \(server\): updated \d+s ago, ran 3 rounds; record: 42 "
                     r"entries", text)
    assert re.search(r"site-1 \(client\): updated \d+s ago, judged peers in 3 rounds; "
                     r"record failing: database or disk is full", text)
    assert f"site-2 (client): {NOT_STARTED}" in text
    assert "site-3 (client): status file is not JSON" in text
    assert "trust matrix" in text and "contraindicated" in text and "pending" in text
    assert "* site-2 excluded by server: measurement matches no reference value" in text
    assert "last rounds" in text and "c3" in text and re.search(r"\dm ago", text)
    table_lines = [line for line in text.splitlines() if line.startswith(("┃", "│", "┏", "└"))]
    assert table_lines and all(len(line) <= 80 for line in table_lines)
    assert "True" not in text and "None" not in text and "Traceback" not in proc.stderr


def test_status_json(tmp_path):
    prod = _federation(tmp_path)
    proc = ccattest("status", str(prod), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {"sites", "matrix", "rounds"} <= set(data)
    assert data["sites"]["server"]["state"] == "reporting"
    assert data["sites"]["site-2"]["state"] == "no status"
    assert data["rounds"][0]["unreachable"] == {"site-2": "no answer"}


def test_status_before_any_site_started(tmp_path):
    prod = _federation(tmp_path)
    for site in ("server", "site-1", "site-3"):
        (prod / site / "local" / "cc" / "status.json").unlink()
    proc = ccattest("status", cwd=prod)  # default: the current folder
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(NOT_STARTED) == 4 and "trust matrix" not in proc.stdout


def test_status_without_kits_is_a_clean_error(tmp_path):
    proc = ccattest("status", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and "no server or client startup kit found" in proc.stderr
    proc = ccattest("status", "missing", cwd=tmp_path)
    assert proc.returncode == 2 and "not a folder: missing" in proc.stderr


def test_odd_status_files_are_reported_not_fatal(tmp_path):
    prod = _federation(tmp_path)
    (prod / "site-3" / "local" / "cc" / "status.json").write_text("[]")
    server = prod / "server" / "local" / "cc" / "status.json"
    data = json.loads(server.read_text())
    data["matrix"].append({"verifier": "x"})  # incomplete cells are skipped
    del data["recent_rounds"]  # a file from before recent_rounds: last_round stands in
    server.write_text(json.dumps(data))
    view = federation_view([read_status(k) for k in find_kits([prod])])
    assert view["sites"]["site-3"]["problem"] == "status file is not a JSON object"
    assert [r["round_id"] for r in view["rounds"]] == ["c3"]
    assert all(c["verifier"] != "x" for c in view["matrix"])


@pytest.mark.parametrize("damage", ["folder", "binary"])
def test_unreadable_status_file(tmp_path, damage):
    """A status file that cannot be read as text (a folder in its place, bytes that are not
    UTF-8) is reported for that site. (chmod 0 proves nothing: CI runs as root.)"""
    prod = _federation(tmp_path)
    path = prod / "site-1" / "local" / "cc" / "status.json"
    path.unlink()
    if damage == "folder":
        path.mkdir()
    else:
        path.write_bytes(b"\xff\xfe\x00garbage")
    status = read_status(find_kits([prod / "site-1"])[0])
    assert status.data is None and "unreadable" in str(status.problem)


def test_find_kits_refuses_a_file(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigError, match="not a folder"):
        find_kits([tmp_path / "f"])
