"""A local stand-in for NVIDIA's Remote Attestation Service: a real HTTP server on 127.0.0.1.

`POST /v4/attest/gpu` answers a detached EAT made by an NrasFixture for the request's nonce
and number of evidence items, with the `x-nvidia-overall-att-result` header, as NRAS does
(HTTP 200 whether or not the attestation passed). `GET /.well-known/jwks.json` serves the
fixture's JWKS. It can be told to answer the next requests with an error (429 with
Retry-After, 500, ...), to drop the connection, or to answer a canned body; it records
every request. It appraises nothing: the verdict is whatever the test sets.

    with NrasServer() as nras:
        nras.verdict = False                      # the next answers report a failure
        with NrasClient(nras.url, retries=0) as client:
            text, header = client.attest(evidence_list, nonce, "HOPPER")
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from ..platforms.nvgpu.nras import ATTEST_PATH, JWKS_PATH, RESULT_HEADER
from .local_server import LocalServer
from .nras import NrasFixture

MAX_REQUEST_BYTES = 1 << 20


@dataclass(frozen=True)
class NrasRequest:
    """One request as the server saw it."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    """An answer: status, body, headers. A fault with status None drops the connection."""

    status: int | None
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"


class NrasServer(LocalServer):
    """An NRAS on 127.0.0.1 with an OS-chosen port, served from a background thread."""

    name = "NRAS"
    owner_attribute = "nras"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _Handler

    def __init__(self, fixture: NrasFixture | None = None) -> None:
        self.fixture = fixture or NrasFixture.create()
        self.verdict = True  # what generated answers report
        self.header: str | None = "auto"  # "auto": the verdict; None: no header; else as set
        self._canned: Reply | None = None
        self._jwks: bytes | None = None
        self._faults: deque[Reply] = deque()
        self._requests: list[NrasRequest] = []
        super().__init__()

    # --- what it answers ----------------------------------------------------------------------

    def respond_with(self, body: bytes | str, *, header: str | None = None,
                     status: int = 200) -> None:
        """Answer every attest request with exactly this body (and header, if any)."""
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        headers = () if header is None else ((RESULT_HEADER, header),)
        with self._lock:
            self._canned = Reply(status, data, headers)

    def serve_jwks(self, jwks: Mapping[str, Any] | bytes) -> None:
        """Serve this JWKS instead of the fixture's."""
        data = jwks if isinstance(jwks, bytes) else json.dumps(dict(jwks)).encode()
        with self._lock:
            self._jwks = data

    def fail(self, status: int, times: int = 1, *, retry_after: str | None = None,
             body: bytes = b"") -> None:
        """Answer the next `times` requests, whatever they ask, with `status`."""
        headers = () if retry_after is None else (("Retry-After", retry_after),)
        with self._lock:
            self._faults.extend([Reply(status, body, headers, "text/plain")] * times)

    def drop(self, times: int = 1) -> None:
        """Close the next `times` connections without answering."""
        with self._lock:
            self._faults.extend([Reply(None)] * times)

    # --- what it saw --------------------------------------------------------------------------

    @property
    def requests(self) -> list[NrasRequest]:
        with self._lock:
            return list(self._requests)

    # --- used by the handler ------------------------------------------------------------------

    def _reply(self, request: NrasRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
            if self._faults:
                return self._faults.popleft()
            canned, jwks = self._canned, self._jwks
        if request.method == "GET" and request.path == JWKS_PATH:
            return Reply(200, jwks or json.dumps(self.fixture.jwks()).encode())
        if request.method == "POST" and request.path == ATTEST_PATH:
            return canned or self._attest(request.body)
        return Reply(404, b'{"error": "not found"}')

    def _attest(self, body: bytes) -> Reply:
        try:
            request = json.loads(body)
            nonce = bytes.fromhex(request["nonce"])
            count = len(request["evidence_list"])
            if request["arch"] not in ("HOPPER", "BLACKWELL") or not 1 <= count <= 64:
                raise ValueError("bad arch or evidence list")
        except (ValueError, KeyError, TypeError) as exc:
            return Reply(400, json.dumps({"error": f"bad request: {exc}"}).encode())
        verdict = self.verdict
        eat = self.fixture.eat(count, nonce=nonce, failing=() if verdict else (0,),
                               result=verdict)
        header = str(verdict).lower() if self.header == "auto" else self.header
        headers = () if header is None else ((RESULT_HEADER, header),)
        return Reply(200, eat.encode("utf-8"), headers)


class _Handler(BaseHTTPRequestHandler):
    server_version = "ccattest-nras/1"

    def do_GET(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_REQUEST_BYTES:
            self._send(Reply(413, b'{"error": "request too large"}'))
            return
        self._handle(self.rfile.read(length))

    def _handle(self, body: bytes) -> None:
        request = NrasRequest(self.command, urlsplit(self.path).path,
                              tuple(self.headers.items()), body)
        reply = self.server.nras._reply(request)  # type: ignore[attr-defined]
        if reply.status is None:
            self.close_connection = True
            return
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status or 500)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read the recorded requests instead."""


__all__ = ["NrasRequest", "NrasServer", "Reply"]
