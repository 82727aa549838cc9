"""The console's API on a real uvicorn server on 127.0.0.1: every route refuses a request
without the bearer token or with another one, and answers JSON (never a traceback)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn

from ccattest.console.app import create_app
from ccattest.console.auth import TOKEN_FILE, bearer_ok, load_or_create_token
from ccattest.console.views import Federation
from ccattest.errors import ConfigError
from ccattest.record.entry import Entry
from ccattest.record.keys import SiteKeys, merge_jwks, origin_for
from ccattest.record.log import SiteLog
from ccattest.record.store import RecordStore
from tests.cli_process import ccattest

AT = datetime(2026, 12, 1, tzinfo=UTC)
ROUTES = ["/api/v1/status", "/api/v1/matrix", "/api/v1/sites", "/api/v1/events",
          "/api/v1/receipts", "/api/v1/jwks", "/metrics", "/api/v1/openapi.json"]


def _federation(root: Path) -> Path:
    """A prod folder: a server and a client kit, status files, the server's record."""
    prod = root / "prod"
    (prod / "server" / "startup").mkdir(parents=True)
    (prod / "server" / "startup" / "fed_server.json").write_text(
        '{"servers": [{"identity": "server"}]}')
    (prod / "site-1" / "startup").mkdir(parents=True)
    (prod / "site-1" / "startup" / "fed_client.json").write_text("{}")
    for site in ("server", "site-1"):
        (prod / site / "local" / "cc").mkdir(parents=True)
    stamp = datetime.now(UTC).isoformat()
    cell = {"verifier": "server", "peer": "site-1", "status": "affirming", "at": stamp,
            "last_good": stamp}
    (prod / "server" / "local" / "cc" / "status.json").write_text(json.dumps({
        "site": "server", "role": "server", "updated": stamp, "matrix": [cell],
        "excluded": {"site-2": "measurement matches no reference value"}, "rounds": 1,
        "last_round": None, "recent_rounds": [], "events": []}))
    keys = SiteKeys.generate("fed", "server")
    store = RecordStore.open(prod / "server" / "local" / "cc" / "record.sqlite3",
                             origin=origin_for("fed", "server"), create=True)
    log = SiteLog(store, keys.log, checkpoint_every=2)
    log.append(Entry("verdict", "server", AT, {
        "peer": "site-1", "status": "affirming", "results": [{"platform": "software"}]}))
    log.append(Entry("round", "server", AT, {"round": "r1", "missing": {"site-2": "gone"}}))
    log.append(Entry("receipt", "server", AT, {"job": "job-1", "phase": "admission",
                                                "issuer": "server", "token": "a.b.c"}))
    store.close()
    (prod / "server" / "local" / "cc" / "federation.jwks.json").write_text(
        json.dumps(merge_jwks([keys.public_jwks()])))
    return prod


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[str, str]]:
    with _serving(_federation(tmp_path)) as served:
        yield served


@contextmanager
def _serving(prod: Path) -> Iterator[tuple[str, str]]:
    token = load_or_create_token(prod / TOKEN_FILE)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(Federation.find(prod), token),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the console did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_every_route_needs_the_token(console: tuple[str, str]) -> None:
    base, token = console
    with httpx.Client(base_url=base, timeout=10) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        for route in ROUTES:
            for headers in ({}, {"Authorization": "Bearer " + "x" * 43},
                            {"Authorization": token}, {"Authorization": f"Basic {token}"}):
                answer = client.get(route, headers=headers)
                assert answer.status_code == 401, (route, headers)
                assert answer.json()["error"] == "a bearer token is required"
                assert answer.headers["www-authenticate"] == "Bearer"
            ok = client.get(route, headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200, (route, ok.text)
            assert ok.headers["cache-control"] == "no-store"
            assert "script-src 'self'" in ok.headers["content-security-policy"]
            assert ok.headers["x-content-type-options"] == "nosniff"


def test_what_the_api_answers(console: tuple[str, str]) -> None:
    base, token = console
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, timeout=10, headers=auth) as client:
        status = client.get("/api/v1/status").json()
        assert set(status["sites"]) == {"server", "site-1"}
        assert client.get("/api/v1/matrix").json()["matrix"][0]["status"] == "affirming"
        assert client.get("/api/v1/sites").json()["sites"] == [
            {"name": "server", "role": "server"}, {"name": "site-1", "role": "client"}]
        events = client.get("/api/v1/events").json()
        assert [e["kind"] for e in events["events"]] == ["verdict", "round", "receipt"]
        page = client.get("/api/v1/events", params={"after": 0, "limit": 1}).json()
        assert [e["index"] for e in page["events"]] == [1] and page["next"] == 1
        assert client.get("/api/v1/events", params={"after": 99}).json()["events"] == []
        assert client.get("/api/v1/events", params={"site": "site-1"}).json()["events"] == []
        receipts = client.get("/api/v1/receipts", params={"job": "job-1"}).json()["receipts"]
        assert [r["data"]["token"] for r in receipts] == ["a.b.c"]
        assert client.get("/api/v1/receipts", params={"job": "other"}).json() == {
            "receipts": []}
        keys = client.get("/api/v1/jwks").json()["keys"]
        assert {k["ccattest_note"] for k in keys} == {"log", "witness"}
        metrics = client.get("/metrics").text
        assert 'ccattest_trust{peer="site-1",status="affirming",verifier="server"} 1.0' in \
            metrics
        assert 'ccattest_record_entries{site="server"} 3.0' in metrics
        assert 'ccattest_excluded{by="server",site="site-2"} 1.0' in metrics
        assert ('ccattest_verdict_changes_total{platform="software",site="server",'
                'status="affirming"} 1.0') in metrics
        assert 'ccattest_round_missing_contributions_total{site="server"} 1.0' in metrics
        assert client.get("/api/v1/openapi.json").json()["info"]["title"] == "ccattest console"


def test_bad_requests_are_json_errors(console: tuple[str, str]) -> None:
    base, token = console
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, timeout=10, headers=auth) as client:
        unknown = client.get("/api/v1/events", params={"site": "site-9"})
        assert unknown.status_code == 400 and "no site 'site-9'" in unknown.json()["error"]
        bad = client.get("/api/v1/events", params={"limit": 0})
        assert bad.status_code == 422 and bad.json()["error"] == "the request does not parse"
        when = client.get("/api/v1/events", params={"since": "yesterday-ish"})
        assert when.status_code == 400 and "error" in when.json()
        assert client.get("/api/v1/nothing").status_code == 404
        huge = client.post("/api/v1/status", content=b"x" * (70 * 1024))
        assert huge.status_code == 413 and "too large" in huge.json()["error"]
        assert client.post("/api/v1/status").status_code == 405
        for answer in (unknown, bad, when, huge):
            assert "Traceback" not in answer.text


def test_the_token_file(tmp_path: Path) -> None:
    path = tmp_path / TOKEN_FILE
    token = load_or_create_token(path)
    assert path.stat().st_mode & 0o777 == 0o600 and len(token) >= 32
    assert load_or_create_token(path) == token  # kept across starts
    assert bearer_ok(f"Bearer {token}", token) and not bearer_ok(None, token)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        load_or_create_token(path)
    path.chmod(0o600)
    path.write_text("short\n")
    with pytest.raises(ConfigError, match="too short"):
        load_or_create_token(path)
    with pytest.raises(ConfigError, match="cannot create"):
        load_or_create_token(tmp_path / "missing" / TOKEN_FILE)


def test_serve_refuses_what_is_not_a_federation(tmp_path: Path) -> None:
    result = ccattest("serve", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert result.returncode == 2 and "is not a folder" in result.stderr
    result = ccattest("serve", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "no server or client startup kit" in result.stderr


def test_a_federation_without_its_key_set(tmp_path: Path) -> None:
    prod = _federation(tmp_path)
    keys = prod / "server" / "local" / "cc" / "federation.jwks.json"
    keys.write_text("{not json")
    assert Federation.find(prod).jwks() is None
    keys.write_text("[1, 2]")
    assert Federation.find(prod).jwks() is None
    keys.unlink()
    federation = Federation.find(prod)
    assert federation.jwks() is None and federation.kit("site-9") is None
    with _serving(prod) as (base, token):
        answer = httpx.get(f"{base}/api/v1/jwks", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 404 and "no federation key set" in answer.json()["error"]
