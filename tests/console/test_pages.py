"""The dashboard's pages, login and session cookie, and the site and receipt API, on a real
uvicorn server (the browser itself is in tests/e2e/test_console_browser.py)."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from ccattest.console.auth import TOKEN_FILE
from ccattest.console.pages import LOGIN_STYLE_HASH
from ccattest.console.server import ConsoleServer, free_port, port_free, token_path
from ccattest.console.session import COOKIE, SESSION_SECONDS, local_target, new_session, session_ok
from ccattest.console.views import Federation
from ccattest.errors import ConfigError
from tests.console.test_api import _federation

HTML = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ConsoleServer]:
    with ConsoleServer(_federation(tmp_path), port=free_port()) as console:
        yield console


@contextmanager
def _signed_in(console: ConsoleServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=console.url, timeout=10) as client:
        answer = client.post("/login", data={"token": console.token, "next": "/jobs"})
        assert answer.status_code == 303 and answer.headers["location"] == "/jobs"
        yield client


def test_a_signed_out_browser_gets_the_login_form_and_nothing_else(served) -> None:
    with httpx.Client(base_url=served.url, timeout=10) as client:
        for path in ("/", "/timeline", "/jobs", "/sites/site-1"):
            page = client.get(path, headers=HTML)
            assert page.status_code == 401 and page.headers["www-authenticate"] == "Bearer"
            assert '<form method="post" action="/login">' in page.text
            assert f'name="next" value="{path}"' in page.text
            assert "<script" not in page.text  # CSP: no inline script anywhere
            csp = page.headers["content-security-policy"]
            assert f"style-src 'self' {LOGIN_STYLE_HASH}" in csp and "script-src 'self'" in csp
        for path in ("/static/app.js", "/api/v1/status", "/metrics"):  # not pages: JSON 401
            answer = client.get(path, headers=HTML)
            assert answer.status_code == 401 and answer.json()["error"]


def test_the_login_sets_a_strict_httponly_cookie_for_the_right_token_only(served) -> None:
    with httpx.Client(base_url=served.url, timeout=10) as client:
        wrong = client.post("/login", data={"token": "x" * 43, "next": "/jobs"})
        assert wrong.status_code == 401 and "not this console" in wrong.text
        assert COOKIE not in wrong.cookies
        for target, landing in (("/jobs", "/jobs"), ("//evil.example/x", "/"),
                                ("https://evil.example/", "/"), ("", "/")):
            right = client.post("/login", data={"token": served.token, "next": target})
            assert right.status_code == 303 and right.headers["location"] == landing
            cookie = right.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        assert client.post("/login", content=b"\xff" * 100).status_code == 401


def test_a_session_reads_pages_assets_and_the_api(served) -> None:
    with _signed_in(served) as client:
        for path in ("/", "/timeline", "/jobs", "/sites/site-1"):
            page = client.get(path, headers=HTML)
            assert page.status_code == 200 and '<script src="/static/app.js" defer>' in page.text
        for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css"),
                           ("icon.svg", "image/svg+xml")):
            asset = client.get(f"/static/{name}")
            assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind)
        assert client.get("/static/../app.py").status_code == 404
        assert client.get("/static/nope.js").status_code == 404
        assert client.get("/api/v1/status").status_code == 200
        assert client.head("/api/v1/status").status_code in (200, 405)


def test_the_cookie_never_authorises_a_write_and_a_forged_one_nothing(served) -> None:
    with _signed_in(served) as client:
        answer = client.post("/api/v1/challenge", json={})
        assert answer.status_code == 401  # a cross-site form could send the cookie
    forged = {COOKIE: f"9999999999.{'0' * 64}"}
    expired = {COOKIE: new_session(served.token, now=0)}
    other = {COOKIE: new_session("another-token-" + "y" * 30)}
    for cookies in (forged, expired, other, {COOKIE: "garbage"}):
        with httpx.Client(base_url=served.url, timeout=10, cookies=cookies) as client:
            assert client.get("/api/v1/status").status_code == 401


def test_the_session_value() -> None:
    token = "t" * 43
    value = new_session(token, now=1000)
    assert session_ok(value, token, now=1000 + SESSION_SECONDS - 1)
    assert not session_ok(value, token, now=1000 + SESSION_SECONDS)
    for bad in (None, "", "1.2.3", "x.abc", "1" * 13 + ".ab", value.replace(".", ".0")):
        assert not session_ok(bad, token, now=1000)
    assert local_target("/sites/a?b=c") == "/sites/a?b=c"
    for target in (None, "", "relative", "//x", "/\\evil", "http://x/", "javascript:alert(1)"):
        assert local_target(target) == "/"


def test_a_site_page_tells_its_verdicts_and_a_missing_site_is_a_404(served) -> None:
    auth = {"Authorization": f"Bearer {served.token}"}
    with httpx.Client(base_url=served.url, timeout=10, headers=auth) as client:
        site = client.get("/api/v1/sites/site-1").json()
        assert site["role"] == "client" and site["latest"]["status"] == "affirming"
        assert site["latest"]["by"] == "server"
        assert [h["status"] for h in site["history"]] == ["affirming"]
        assert site["judged_by"][0]["verifier"] == "server" and site["collateral"] == []
        server = client.get("/api/v1/sites/server").json()
        assert server["latest"] is None and server["history"] == []  # no client record
        excluded = client.get("/api/v1/sites/site-2")
        assert excluded.status_code == 404  # named only as excluded, not a site here
        missing = client.get("/api/v1/sites/nobody")
        assert missing.status_code == 404 and "no site 'nobody'" in missing.json()["error"]
        assert client.get("/api/v1/sites/site-1", params={"by": "nobody"}).status_code == 404


def test_collateral_comes_from_the_site_status_soonest_first(tmp_path: Path) -> None:
    prod = _federation(tmp_path)
    status_file = prod / "site-1" / "local" / "cc" / "status.json"
    status_file.write_text(json.dumps({"site": "site-1", "telemetry": {"collateral_expiry": [
        {"kind": "crl", "name": "amd-genoa", "not_after": "2099-01-01T00:00:00+00:00"},
        {"kind": "tcb_info", "name": "00606a", "not_after": "2020-01-01T00:00:00+00:00"},
        {"kind": "bad", "name": "x", "not_after": "not a time"}, "not a dict"]}}))
    with ConsoleServer(prod, port=free_port()) as console, httpx.Client(
            base_url=console.url, timeout=10,
            headers={"Authorization": f"Bearer {console.token}"}) as client:
        shown = client.get("/api/v1/sites/site-1").json()["collateral"]
    assert [(c["kind"], c["seconds_left"] < 0) for c in shown] == [("tcb_info", True),
                                                                   ("crl", False)]


def test_a_receipt_is_checked_and_downloaded_by_index(served) -> None:
    auth = {"Authorization": f"Bearer {served.token}"}
    with httpx.Client(base_url=served.url, timeout=10, headers=auth) as client:
        index = client.get("/api/v1/receipts").json()["receipts"][0]["index"]
        checked = client.get(f"/api/v1/receipts/{index}/verify")
        assert checked.status_code == 400 and checked.json()["error"]  # "a.b.c" is no JWT
        download = client.get(f"/api/v1/receipts/{index}/receipt.jwt")
        assert download.text == "a.b.c\n" and download.headers["content-type"] == \
            "application/jwt"
        assert re.search(r'filename="receipt-job-1-admission\.jwt"',
                         download.headers["content-disposition"])
        for path in (f"/api/v1/receipts/{index - 1}/verify", "/api/v1/receipts/99/receipt.jwt"):
            missing = client.get(path)
            assert missing.status_code == 404 and "no receipt at index" in missing.json()["error"]
        assert client.get("/api/v1/receipts/-1/verify").status_code == 422


def test_a_receipt_check_without_a_key_set_says_where_keys_come_from(tmp_path: Path) -> None:
    prod = _federation(tmp_path)
    (prod / "server" / "local" / "cc" / "federation.jwks.json").unlink()
    with ConsoleServer(prod, port=free_port()) as console, httpx.Client(
            base_url=console.url, timeout=10,
            headers={"Authorization": f"Bearer {console.token}"}) as client:
        answer = client.get("/api/v1/receipts/2/verify")
    assert answer.status_code == 404 and "provisioning writes" in answer.json()["hint"]


def test_the_console_server_refuses_a_taken_port_and_places_its_token(tmp_path: Path) -> None:
    prod = _federation(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert not port_free("127.0.0.1", port)
        with pytest.raises(ConfigError, match="port is in use"):
            ConsoleServer(prod, port=port).start()
    assert token_path(Federation.find(prod), prod) == prod / TOKEN_FILE
    kit = prod / "site-1"
    assert token_path(Federation.find(kit), kit) == kit / "local" / "cc" / TOKEN_FILE
    server = ConsoleServer(kit, port=free_port(), server_options={"ssl_certfile": "x"})
    assert server.url.startswith("https://127.0.0.1:")
    assert ConsoleServer(kit, host="::1").url == "http://[::1]:8765/"
    server.stop()  # never started: nothing to stop


def test_every_route_the_app_has_refuses_no_token_and_a_wrong_one(served) -> None:
    """Enumerated from the app itself, so a route added later cannot slip through."""
    from starlette.routing import Route

    from ccattest.console.app import create_app

    app = create_app(served.federation, served.token)
    routes = [(method, route.path) for route in app.routes if isinstance(route, Route)
              for method in sorted(route.methods or ()) if method != "HEAD"]
    assert len(routes) >= 20
    sample = {"{name}": "site-1", "{index}": "2"}
    wrong = {"Authorization": "Bearer " + "w" * 43}
    with httpx.Client(base_url=served.url, timeout=10) as client:
        for method, path in routes:
            for name, value in sample.items():
                path = path.replace(name, value)
            for headers in ({}, wrong, {"Cookie": f"{COOKIE}=1.{'0' * 64}"}):
                answer = client.request(method, path, headers=headers)
                expected = 200 if path in ("/healthz",) else 401
                if path == "/login":  # checks the token in its form
                    assert answer.status_code == 401 and "not this console" in answer.text
                    continue
                assert answer.status_code == expected, (method, path, headers)


def test_the_login_form_is_bounded(served) -> None:
    with httpx.Client(base_url=served.url, timeout=10) as client:
        fields = "&".join(f"f{i}=x" for i in range(10))
        assert client.post("/login", content=fields.encode()).status_code == 401
        chunked = client.post("/login", content=iter([b"token=" + b"x" * 5000]))
        assert chunked.status_code == 413 and "too large" in chunked.text


def test_the_console_server_serves_until_it_ends_or_is_interrupted(tmp_path: Path) -> None:
    import threading

    prod = _federation(tmp_path)
    console = ConsoleServer(prod, port=free_port()).start()
    assert console.attest_site is None  # no cc_config in these kits: the API answers 503
    threading.Timer(0.3, lambda: setattr(console._server, "should_exit", True)).start()
    console.serve_until_interrupted()  # returns when the server ends, then cleans up
    assert console._thread is None
    console = ConsoleServer(prod, port=free_port()).start()

    class Interrupted:
        pressed = False

        def is_alive(self) -> bool:
            return True

        def join(self, timeout: float | None = None) -> None:
            if not self.pressed:  # what Ctrl-C raises in the waiting main thread, once
                self.pressed = True
                raise KeyboardInterrupt

    real, console._thread = console._thread, Interrupted()
    console._server.should_exit = True
    real.join(timeout=10)
    console.serve_until_interrupted()
    assert console._server is None


def test_a_console_whose_server_cannot_run_says_so(tmp_path: Path) -> None:
    prod = _federation(tmp_path)
    broken = ConsoleServer(prod, port=free_port(),
                           server_options={"ssl_certfile": str(tmp_path / "missing.pem")})
    with pytest.raises(ConfigError, match="did not start"):
        broken.start()
