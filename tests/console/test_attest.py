"""The console's attestation API on a real uvicorn server on 127.0.0.1: a provisioned
federation (server and site-1 kits), site-1's own software TEE answering the server's
challenge, and the server's verdict as an EAR that the federation's JWKS verifies."""

from __future__ import annotations

import base64
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.requests import Request

from ccattest.console.app import create_app
from ccattest.console.attest import MAX_ATTEST_BYTES, header_token_only
from ccattest.console.auth import TOKEN_FILE, load_or_create_token
from ccattest.console.desk import (
    AttestDesk,
    cc_config_path,
    desk_or_reason,
    open_desk,
    verifying_kit,
)
from ccattest.console.ratelimit import RateLimiter
from ccattest.console.session import COOKIE, new_session
from ccattest.console.views import Federation
from ccattest.errors import CCAttestError, ConfigError
from ccattest.evidence import Evidence
from ccattest.mesh.agent import SiteAgent
from ccattest.mesh.config import build_agent, load_cc_config
from ccattest.nvflare.kits import RESOURCES_FILE, configure_kits, find_kit
from ccattest.provisioning import FederationRequest, SiteRequest
from ccattest.testing import SoftwareFixture
from ccattest.timeutil import utcnow
from ccattest.tokens import load_jwks, verify_token

SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def _kits(root: Path, clients: tuple[str, ...] = ("site-1",), server: bool = True) -> Path:
    prod = root / "prod"
    kits = []
    if server:
        (prod / "server" / "startup").mkdir(parents=True)
        (prod / "server" / "startup" / "fed_server.json").write_text(
            '{"servers": [{"identity": "server"}]}')
        kits.append(find_kit(prod / "server"))
    for name in clients:
        (prod / name / "startup").mkdir(parents=True)
        (prod / name / "startup" / "fed_client.json").write_text("{}")
        kits.append(find_kit(prod / name))
    request = FederationRequest([SiteRequest(kit.name) for kit in kits])
    configure_kits(kits, request, root / "root", datetime.now(UTC))
    return prod


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _kits(tmp_path_factory.mktemp("fed"))


@pytest.fixture(scope="module")
def site1(prod: Path) -> SiteAgent:
    return build_agent(*load_cc_config(prod / "site-1" / "local" / "cc" / "cc_config.yaml"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _serving(prod: Path, desk: AttestDesk | CCAttestError | None) -> Iterator[httpx.Client]:
    """The console as `ccattest serve` runs it (no proxy headers), and a client with the
    token."""
    token = load_or_create_token(prod / TOKEN_FILE)
    port = _free_port()
    app = create_app(Federation.find(prod), token, desk)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", proxy_headers=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the console did not start"
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def served(prod: Path) -> Iterator[tuple[httpx.Client, AttestDesk]]:
    # Generous: these tests send hundreds of requests (the limit has its own tests).
    desk = open_desk(Federation.find(prod), limiter=RateLimiter(rate=1e6, burst=10**6))
    with _serving(prod, desk) as client:
        yield client, desk


def _answer(site: SiteAgent, challenge: dict[str, Any]) -> list[dict[str, Any]]:
    """What site-1's CC manager would send: its evidence bound to the challenge."""
    nonce = bytes.fromhex(challenge["nonce"])
    return [e.to_dict() for e in site.collect(nonce, challenge["binding"]["context"])]


def _jwks(prod: Path) -> dict[str, Any]:
    return load_jwks(prod / "server" / "local" / "cc" / "federation.jwks.json")


def _error(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert isinstance(body["error"], str) and "Traceback" not in answer.text
    return dict(body)


def test_an_attester_answers_the_challenge(served: tuple[httpx.Client, AttestDesk],
                                           site1: SiteAgent, prod: Path) -> None:
    client, desk = served
    challenge = client.post("/api/v1/challenge", json={"attester": "site-1"}).json()
    assert challenge["verifier"] == "server" and len(bytes.fromhex(challenge["nonce"])) == 32
    assert challenge["binding"]["context"] == "ccattest/api/server|"
    nonce = bytes.fromhex(challenge["nonce"])
    assert challenge["report_data"]["software"] == site1.collect_report_data(
        nonce, challenge["binding"]["context"], "software").hex()
    body = {"nonce": challenge["nonce"], "evidence": _answer(site1, challenge)}
    answer = client.post("/api/v1/attest", json=body)
    assert answer.status_code == 200, answer.text
    verdict = answer.json()["verdict"]
    assert verdict["status"] == "affirming" and verdict["affirming"], verdict["failures"]
    assert verdict["attester"] == "site-1" and verdict["failures"] == []
    assert verdict["trust_vector"]["executables"] == 2
    claims = verify_token(answer.json()["ear"], _jwks(prod), at=utcnow(), nonce=nonce)
    assert claims["sub"] == "site-1" and set(claims["submods"]) == {"software"}
    assert claims["submods"]["software"]["ear.status"] == "affirming"
    assert answer.json()["kid"] == desk.key.kid
    replay = _error(client.post("/api/v1/attest", json=body), 409)
    assert "already used" in replay["error"] and "new one" in replay["hint"]


def test_a_context_is_part_of_the_challenge(served: tuple[httpx.Client, AttestDesk],
                                            site1: SiteAgent) -> None:
    client, _ = served
    challenge = client.post("/api/v1/challenge", json={"context": "job-7"}).json()
    assert challenge["binding"]["context"] == "ccattest/api/server|job-7"
    assert "report_data" not in challenge  # no attester named: nothing to precompute
    body = {"nonce": challenge["nonce"], "evidence": _answer(site1, challenge)}
    _error(client.post("/api/v1/attest", json=body), 409)  # the context is missing
    answer = client.post("/api/v1/attest", json={**body, "context": "job-7",
                                                 "attester": "site-1"})
    assert answer.json()["verdict"]["status"] == "affirming", answer.text
    single = client.post("/api/v1/challenge").json()  # no body at all is fine too
    one = _answer(site1, single)[0]
    answer = client.post("/api/v1/attest", json={"nonce": single["nonce"], "evidence": one})
    assert answer.json()["verdict"]["affirming"], answer.text


def test_tampered_and_misbound_evidence_is_contraindicated(
        served: tuple[httpx.Client, AttestDesk], site1: SiteAgent, prod: Path) -> None:
    client, _ = served
    challenge = client.post("/api/v1/challenge").json()
    evidence = _answer(site1, challenge)
    report = bytearray(base64.b64decode(evidence[0]["report"]))
    report[-1] ^= 1
    evidence[0]["report"] = base64.b64encode(bytes(report)).decode()
    answer = client.post("/api/v1/attest", json={"nonce": challenge["nonce"],
                                                 "evidence": evidence})
    assert answer.status_code == 200, answer.text
    verdict = answer.json()["verdict"]
    assert verdict["status"] in ("contraindicated", "none") and not verdict["affirming"]
    assert verdict["failures"] and verdict["results"][0]["reasons"][0]["passed"] is False
    claims = verify_token(answer.json()["ear"], _jwks(prod), at=utcnow(),
                          nonce=bytes.fromhex(challenge["nonce"]))
    assert claims["submods"]["software"]["ear.status"] != "affirming"
    assert claims["submods"]["site"]["ear.status"] == "contraindicated"
    assert claims["submods"]["site"]["ccattest.reasons"]

    # Evidence that answers another nonce (a replay of an older attestation).
    fresh = client.post("/api/v1/challenge").json()
    stale = [e.to_dict() for e in site1.collect(os.urandom(32), fresh["binding"]["context"])]
    answer = client.post("/api/v1/attest", json={"nonce": fresh["nonce"], "evidence": stale})
    verdict = answer.json()["verdict"]
    assert answer.status_code == 200 and verdict["status"] == "contraindicated"
    assert any("report_data" in f or "binding" in f for f in verdict["failures"]), verdict


def test_evidence_from_outside_the_federation(served: tuple[httpx.Client, AttestDesk],
                                              site1: SiteAgent) -> None:
    client, _ = served
    challenge = client.post("/api/v1/challenge").json()
    stranger = SoftwareFixture.create("site-1", now=utcnow())  # another root: not trusted
    nonce = bytes.fromhex(challenge["nonce"])
    evidence, _, _ = stranger.evidence(nonce, challenge["binding"]["context"])
    answer = client.post("/api/v1/attest", json={"nonce": challenge["nonce"],
                                                 "evidence": [evidence.to_dict()]})
    assert answer.json()["verdict"]["status"] == "contraindicated", answer.text
    # Evidence naming another site than the one that asks to be judged.
    challenge = client.post("/api/v1/challenge").json()
    body = {"nonce": challenge["nonce"], "evidence": _answer(site1, challenge),
            "attester": "server"}
    verdict = client.post("/api/v1/attest", json=body).json()["verdict"]
    assert verdict["status"] == "contraindicated"
    assert any(r["check"] == "identity" for r in verdict["reasons"]), verdict


def test_unknown_and_expired_challenges(prod: Path, site1: SiteAgent) -> None:
    clock = Clock(utcnow())
    desk = open_desk(Federation.find(prod), clock=clock, ttl=timedelta(seconds=30))
    with _serving(prod, desk) as client:
        unknown = {"nonce": os.urandom(32).hex(), "evidence": _answer(
            site1, {"nonce": os.urandom(32).hex(), "binding": {"context": "x"}})}
        assert "unknown" in _error(client.post("/api/v1/attest", json=unknown), 409)["error"]
        challenge = client.post("/api/v1/challenge").json()
        body = {"nonce": challenge["nonce"], "evidence": _answer(site1, challenge)}
        clock.now += timedelta(seconds=31)
        assert "expired" in _error(client.post("/api/v1/attest", json=body), 409)["error"]
        _error(client.post("/api/v1/attest", json=body), 409)  # consumed even so


def test_input_the_site_cannot_use(served: tuple[httpx.Client, AttestDesk],
                                   site1: SiteAgent) -> None:
    client, _ = served
    challenge = client.post("/api/v1/challenge").json()
    evidence = _answer(site1, challenge)
    nonce = challenge["nonce"]
    tdx = Evidence("tdx", b"\0" * 64, attester="site-1").to_dict()
    refused = _error(client.post("/api/v1/attest", json={"nonce": nonce, "evidence": [tdx]}),
                     422)
    assert "no verifier for tdx" in refused["error"] and refused["expected"] == "software"
    cases: list[tuple[Any, str]] = [
        ({"nonce": nonce, "evidence": [{"format": "other"}]}, "not a ccattest evidence"),
        ({"nonce": nonce, "evidence": []}, "no evidence"),
        ({"nonce": nonce, "evidence": evidence * 2}, "two evidence envelopes"),
        ({"nonce": nonce, "evidence": evidence * 9}, "evidence list is malformed"),
        ({"nonce": nonce, "evidence": [{**evidence[0], "report": "%%"}]}, "base64"),
        ({"nonce": nonce, "evidence": [{**evidence[0], "attester": None}]}, "names no attester"),
        ({"nonce": nonce[:-1], "evidence": evidence}, "does not parse"),
        ({"nonce": 7, "evidence": evidence}, "does not parse"),
        ({"evidence": evidence}, "does not parse"),
        ({"nonce": nonce, "evidence": evidence, "extra": 1}, "does not parse"),
        ({"nonce": nonce, "evidence": evidence, "context": "c" * 257}, "does not parse"),
        ([1, 2], "does not parse"),
        ("text", "does not parse"),
    ]
    for body, message in cases:
        found = _error(client.post("/api/v1/attest", json=body), 400)
        assert message in found["error"], (body, found)
    assert "not JSON" in _error(client.post("/api/v1/attest", content=b"{nope"), 400)["error"]
    assert "not JSON" in _error(client.post("/api/v1/challenge", content=b"\xff\xfe"),
                                400)["error"]
    deep = b"[" * 100_000 + b"]" * 100_000
    _error(client.post("/api/v1/attest", content=deep), 400)
    _error(client.post("/api/v1/challenge", json={"attester": ""}), 400)
    # The rejected requests did not use the challenge up.
    answer = client.post("/api/v1/attest", json={"nonce": nonce, "evidence": evidence})
    assert answer.json()["verdict"]["affirming"], answer.text


def test_bodies_are_capped_with_or_without_a_length(
        served: tuple[httpx.Client, AttestDesk]) -> None:
    client, _ = served
    over = b"x" * (MAX_ATTEST_BYTES + 1)
    assert "too large" in _error(client.post("/api/v1/attest", content=over), 413)["error"]

    def chunks(total: int) -> Iterator[bytes]:
        for _ in range(total // 4096 + 1):
            yield b" " * 4096

    streamed = client.post("/api/v1/attest", content=chunks(MAX_ATTEST_BYTES + 8192))
    assert "chunked" in streamed.request.headers.get("transfer-encoding", "")
    assert _error(streamed, 413)["expected"] == f"at most {MAX_ATTEST_BYTES} bytes"
    _error(client.post("/api/v1/challenge", content=chunks(70 * 1024)), 413)
    _error(client.post("/api/v1/challenge", content=b" " * (65 * 1024)), 413)
    # Between the two limits: evidence may be larger than any other body.
    padded = b" " * (200 * 1024) + b"{}"
    assert "does not parse" in _error(client.post("/api/v1/attest", content=padded),
                                      400)["error"]
    assert client.post("/api/v1/challenge", content=chunks(8 * 1024)).status_code == 200


def test_garbage_never_breaks_the_console(served: tuple[httpx.Client, AttestDesk],
                                          site1: SiteAgent) -> None:
    client, _ = served
    challenge = client.post("/api/v1/challenge").json()
    valid = json.dumps({"nonce": challenge["nonce"],
                        "evidence": _answer(site1, challenge)}).encode()
    rng = random.Random(1234)
    bodies = [valid[:cut] for cut in range(0, len(valid), max(1, len(valid) // 60))]
    for _ in range(150):
        mutated = bytearray(valid)
        for _ in range(rng.randint(1, 8)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        bodies.append(bytes(mutated))
    bodies += [rng.randbytes(rng.randint(0, 2000)) for _ in range(60)]
    bodies += [b"null", b"0", b"[]", b'{"nonce": null, "evidence": null}', b'"\\ud800"',
               b"1e999999", b"9" * 5000]
    for body in bodies:
        for route in ("/api/v1/attest", "/api/v1/challenge"):
            answer = client.post(route, content=body)
            assert answer.status_code < 500, (route, body[:80], answer.text)
            assert isinstance(answer.json(), dict)


def test_the_token_goes_in_the_header_only(served: tuple[httpx.Client, AttestDesk],
                                           prod: Path) -> None:
    client, _ = served
    token = load_or_create_token(prod / TOKEN_FILE)
    base = str(client.base_url)
    with httpx.Client(base_url=base, timeout=10) as anonymous:
        for route in ("/api/v1/challenge", "/api/v1/attest"):
            for headers in ({}, {"Authorization": "Bearer " + "x" * 43},
                            {"Authorization": token}):
                assert _error(anonymous.post(route, json={}, headers=headers), 401)
            anonymous.cookies.set(COOKIE, new_session(token))
            assert anonymous.get("/api/v1/sites").status_code == 200  # the cookie reads
            refused = _error(anonymous.post(route, json={}), 401)  # but never acts
            assert "bearer token" in refused["error"]
            anonymous.cookies.clear()


def test_the_routes_check_the_header_themselves() -> None:
    """Whatever the middleware in front lets through, a cookie alone is refused."""
    def request(headers: list[tuple[bytes, bytes]]) -> Request:
        return Request({"type": "http", "method": "POST", "path": "/api/v1/attest",
                        "headers": headers})

    token = "t" * 43
    cookie = (b"cookie", f"{COOKIE}={new_session(token)}".encode())
    refused = header_token_only(request([cookie]), token)
    assert refused is not None and refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert header_token_only(request([(b"authorization", f"Bearer {token}".encode())]),
                             token) is None


def test_each_client_has_its_bucket(prod: Path, site1: SiteAgent) -> None:
    desk = open_desk(Federation.find(prod), limiter=RateLimiter(
        rate=0.001, burst=3, clock=lambda: 100.0))
    with _serving(prod, desk) as client:
        for _ in range(3):  # a forged X-Forwarded-For does not make another client
            assert client.post("/api/v1/challenge",
                               headers={"X-Forwarded-For": f"10.0.0.{_}"}).status_code == 200
        limited = client.post("/api/v1/attest", json={})
        assert _error(limited, 429)["error"] == "too many requests"
        assert int(limited.headers["retry-after"]) == 1000
        other = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=str(client.base_url), transport=other, timeout=10,
                          headers=dict(client.headers)) as elsewhere:
            assert elsewhere.post("/api/v1/challenge").status_code == 200


def test_without_a_cc_config_the_routes_say_why(tmp_path: Path) -> None:
    prod = _kits(tmp_path)
    (prod / "server" / "local" / "cc" / "cc_config.yaml").unlink()
    reason = desk_or_reason(Federation.find(prod))
    assert isinstance(reason, ConfigError) and "no CC config" in reason.message
    with _serving(prod, reason) as client:
        for route in ("/api/v1/challenge", "/api/v1/attest"):
            down = _error(client.post(route, json={}), 503)
            assert "no CC config" in down["found"] and "nvflare configure" in down["hint"]
        assert client.get("/api/v1/sites").status_code == 200
    with _serving(prod, None) as client:
        assert "does not verify" in _error(client.post("/api/v1/attest"), 503)["error"]


def test_which_kit_verifies(tmp_path: Path) -> None:
    two = _kits(tmp_path / "two", ("site-1", "site-2"), server=False)
    with pytest.raises(ConfigError, match="no server kit"):
        verifying_kit(Federation.find(two))
    one = _kits(tmp_path / "one", ("site-1",), server=False)
    kit = verifying_kit(Federation.find(one / "site-1"))
    assert kit.name == "site-1" and open_desk(Federation.find(one / "site-1")).site == "site-1"
    assert cc_config_path(kit) == kit.local / "cc" / "cc_config.yaml"

    resources = kit.local / RESOURCES_FILE
    config = kit.local / "cc" / "cc_config.yaml"
    config.rename(kit.local / "cc" / "other.yaml")
    resources.write_text(json.dumps({"components": [
        {"id": "x", "path": "elsewhere.Thing"},
        {"id": "ccattest", "path": "ccattest.nvflare.CCManager",
         "args": {"cc_config": "cc/other.yaml"}}]}))
    assert cc_config_path(kit) == kit.local / "cc" / "other.yaml"
    assert open_desk(Federation.find(one / "site-1")).site == "site-1"
    for broken in ("{", "[]", '{"components": {}}', '{"components": [{"path": '
                   '"ccattest.nvflare.CCManager", "args": []}]}'):
        resources.write_text(broken)
        assert cc_config_path(kit) == kit.local / "cc" / "cc_config.yaml", broken


def test_a_config_that_cannot_verify(tmp_path: Path) -> None:
    prod = _kits(tmp_path)
    bundle = prod / "server" / "local" / "cc"
    federation = Federation.find(prod)
    (bundle / "keys" / "result.key.pem").unlink()
    with pytest.raises(ConfigError, match="cannot read the result key"):
        open_desk(federation)
    text = (bundle / "cc_config.yaml").read_text()
    without_record = text[:text.index("record:")]
    (bundle / "cc_config.yaml").write_text(without_record)
    with pytest.raises(ConfigError, match="no record section"):
        open_desk(federation)
    (bundle / "cc_config.yaml").write_text(without_record.replace("verify:", "verify: {}\n"
                                                                  "old_verify:"))
    with pytest.raises(ConfigError, match="invalid CC config"):
        open_desk(federation)
    config, _ = load_cc_config(prod / "site-1" / "local" / "cc" / "cc_config.yaml")
    data = config.model_dump(mode="json")
    data["verify"] = {}
    import yaml

    (bundle / "cc_config.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="verifies no platform"):
        open_desk(federation)


def test_not_cc_sites_and_site_reasons_are_signed_too(prod: Path, site1: SiteAgent) -> None:
    """A verdict without a platform result still gets an EAR, never an affirming one."""
    desk = open_desk(Federation.find(prod))
    from ccattest.mesh.roster import Roster, SiteSpec

    desk.agent.roster = Roster([SiteSpec("site-1", cc_enabled=False)])
    challenge = desk.challenge({"attester": "site-1"})
    answer = desk.attest({"nonce": challenge["nonce"], "evidence": _answer(site1, challenge)})
    assert answer["verdict"]["status"] == "not-cc"
    claims = verify_token(answer["ear"], _jwks(prod), at=utcnow())
    assert set(claims["submods"]) == {"site"}
    assert claims["submods"]["site"]["ear.status"] == "contraindicated"


def test_serve_builds_the_desk(prod: Path, site1: SiteAgent, tmp_path: Path) -> None:
    """`ccattest serve` itself: the attest API verifies as the server, and the client
    address comes from the connection, not from X-Forwarded-For."""
    port = _free_port()
    env = {**os.environ, "HOME": str(tmp_path), "NO_COLOR": "1", "COLUMNS": "200",
           "PYTHONPATH": str(SRC)}
    process = subprocess.Popen([sys.executable, "-m", "ccattest", "serve", str(prod),
                                "--port", str(port)], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        token = load_or_create_token(prod / TOKEN_FILE)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.get("/healthz")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and process.poll() is None
                    time.sleep(0.1)
            challenge = client.post("/api/v1/challenge").json()
            body = {"nonce": challenge["nonce"], "evidence": _answer(site1, challenge)}
            assert client.post("/api/v1/attest", json=body).json()["verdict"]["affirming"]
            statuses = [client.post("/api/v1/challenge",
                                    headers={"X-Forwarded-For": f"10.1.{i}.1"}).status_code
                        for i in range(20)]
            assert 429 in statuses
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert "attestation API: verifying as server" in output
