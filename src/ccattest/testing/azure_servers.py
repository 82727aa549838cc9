"""Local stand-ins for Azure services: real HTTP servers on 127.0.0.1 for tests and demos.

- `MaaInstanceServer` serves a JWKS at GET /certs (an MAA instance's key endpoint).
- `SkrSidecarServer` answers POST /attest/maa with {"token": ...} and POST /attest/raw with
  {"report": "<hex>"}, as the SKR sidecar of a confidential container group does. The
  token is made by a callable from the decoded runtime data, so tests can mint a token that
  echoes what the attester sent.

Both can be told to answer the next requests with an HTTP error, with a body that is not
JSON, or to drop the connection, and both record every request (method, path, body).

    with MaaInstanceServer(jwks) as maa, SkrSidecarServer(token=..., report=raw) as skr:
        ...
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from .local_server import LocalServer


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Answer:
    """One response: status and body; status None drops the connection."""

    status: int | None
    body: bytes = b""
    content_type: str = "application/json"


def json_answer(value: Any, status: int = 200) -> Answer:
    return Answer(status, json.dumps(value).encode())


class _LocalServer(LocalServer):
    """A local server with a fault queue and a request log."""

    def __init__(self) -> None:
        super().__init__()
        self._faults: deque[Answer] = deque()
        self._requests: list[Recorded] = []

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _Handler

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def fail(self, status: int, times: int = 1, *, body: bytes = b'{"error": "injected"}'
             ) -> None:
        """Answer the next `times` requests with `status`."""
        with self._lock:
            self._faults.extend([Answer(status, body)] * times)

    def drop(self, times: int = 1) -> None:
        with self._lock:
            self._faults.extend([Answer(None)] * times)

    def garble(self, times: int = 1) -> None:
        """Answer the next `times` requests with 200 and a body that is not JSON."""
        with self._lock:
            self._faults.extend([Answer(200, b"<html>not json", "text/html")] * times)

    def _handle(self, request: Recorded) -> Answer:
        with self._lock:
            self._requests.append(request)
            fault = self._faults.popleft() if self._faults else None
        return fault if fault is not None else self.route(request)

    def route(self, request: Recorded) -> Answer:  # pragma: no cover - overridden
        raise NotImplementedError


class MaaInstanceServer(_LocalServer):
    """GET /certs -> the JWKS (replaceable with `serve_jwks`, to test key rotation)."""

    name = "maa"

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        super().__init__()
        self.jwks = dict(jwks)

    def serve_jwks(self, jwks: Mapping[str, Any]) -> None:
        self.jwks = dict(jwks)

    def route(self, request: Recorded) -> Answer:
        if request.method == "GET" and request.path == "/certs":
            return json_answer(self.jwks)
        return json_answer({"error": "not found"}, 404)


class SkrSidecarServer(_LocalServer):
    """The SKR sidecar's attestation API. `token(runtime_data: bytes, maa_endpoint: str)`
    makes the MAA token; `report` is the raw SNP report served (hex) by /attest/raw, with
    `extra` members added to that answer (e.g. a certificate chain)."""

    name = "skr"

    def __init__(self, *, token: Callable[[bytes, str], str] | None = None,
                 report: bytes | None = None, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.token, self.report, self.extra = token, report, dict(extra or {})

    def route(self, request: Recorded) -> Answer:
        if request.method != "POST":
            return json_answer({"error": "method not allowed"}, 405)
        try:
            body = request.json()
            runtime = _b64(body["runtime_data"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            return json_answer({"error": "bad request"}, 400)
        if request.path == "/attest/maa" and self.token is not None:
            endpoint = body.get("maa_endpoint")
            if not isinstance(endpoint, str) or not endpoint:
                return json_answer({"error": "maa_endpoint missing"}, 400)
            return json_answer({"token": self.token(runtime, endpoint)})
        if request.path == "/attest/raw" and self.report is not None:
            return json_answer({"report": self.report.hex(), **self.extra})
        return json_answer({"error": "not found"}, 404)


def _b64(value: Any) -> bytes:
    return base64.b64decode(value, validate=True)


class _Handler(BaseHTTPRequestHandler):
    server_version = "ccattest-azure/1"

    def do_GET(self) -> None:
        self._serve("GET", b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._serve("POST", self.rfile.read(min(length, 1 << 20)))

    def _serve(self, method: str, body: bytes) -> None:
        owner: _LocalServer = self.server.owner  # type: ignore[attr-defined]
        answer = owner._handle(Recorded(method, self.path.split("?", 1)[0], body))
        if answer.status is None:
            self.close_connection = True
            return
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read the recorded requests instead."""


__all__ = ["Answer", "MaaInstanceServer", "Recorded", "SkrSidecarServer", "json_answer"]
