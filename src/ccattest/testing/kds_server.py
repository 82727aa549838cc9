"""A local stand-in for AMD KDS: a real HTTP server on 127.0.0.1 for tests and demos.

It serves whatever certificates and CRLs it is given at KDS's paths, can be told to answer
the next requests with an error (429 with Retry-After, 500, ...) or to drop the connection,
and records every request it gets. Start and stop it with `with KdsServer() as kds:`.

    with KdsServer() as kds:
        kds.serve_vcek("Milan", chip_id, {"blSPL": 3, "teeSPL": 0, "snpSPL": 8,
                                          "ucodeSPL": 115}, vcek_der)
        kds.serve_chain("Milan", ask_ark_pem)
        kds.fail(429, times=1, retry_after="2")
        client = KdsClient(kds.url, ...)

Paths are built here independently of the client, so tests check what the client asks for.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit

from .local_server import LocalServer

Query = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]  # in the order sent
    headers: tuple[tuple[str, str], ...]

    @property
    def target(self) -> str:
        """Path and query, as sent."""
        if not self.query:
            return self.path
        return self.path + "?" + "&".join(f"{name}={value}" for name, value in self.query)

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)


@dataclass(frozen=True)
class Fault:
    """How to answer one request instead of serving it: an HTTP status, or a dropped
    connection (status None)."""

    status: int | None
    retry_after: str | None = None
    body: bytes = b""


@dataclass(frozen=True)
class _Route:
    body: bytes
    content_type: str


class KdsServer(LocalServer):
    """A KDS on 127.0.0.1 with an OS-chosen port, served from a background thread."""

    name = "KDS"
    owner_attribute = "kds"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _Handler

    def __init__(self) -> None:
        self._routes: dict[tuple[str, Query], _Route] = {}
        self._faults: deque[Fault] = deque()
        self._requests: list[RecordedRequest] = []
        super().__init__()

    # --- what it serves -------------------------------------------------------------------

    def serve(self, path: str, body: bytes, *, query: Mapping[str, object] | None = None,
              content_type: str = "application/octet-stream") -> None:
        """Answer GET `path` (with exactly these query parameters, in any order) with `body`."""
        key = (path, frozenset((name, str(value)) for name, value in (query or {}).items()))
        with self._lock:
            self._routes[key] = _Route(bytes(body), content_type)

    def serve_vcek(self, product: str, hwid: bytes, spls: Mapping[str, int],
                   der: bytes) -> None:
        """A VCEK at /vcek/v1/{product}/{hwid hex}?{spls}; `spls` uses KDS's parameter names
        (blSPL, teeSPL, snpSPL, ucodeSPL, and fmcSPL for Turin)."""
        self.serve(f"/vcek/v1/{product}/{bytes(hwid).hex()}", der, query=spls,
                   content_type="application/x-x509-ca-cert")

    def serve_chain(self, product: str, pem: bytes, key: str = "vcek") -> None:
        self.serve(f"/{key}/v1/{product}/cert_chain", pem, content_type="application/x-pem-file")

    def serve_crl(self, product: str, der: bytes, key: str = "vcek") -> None:
        self.serve(f"/{key}/v1/{product}/crl", der, content_type="application/pkix-crl")

    def fail(self, status: int, times: int = 1, *, retry_after: str | None = None,
             body: bytes = b"") -> None:
        """Answer the next `times` requests, whatever they ask, with `status`."""
        with self._lock:
            self._faults.extend([Fault(status, retry_after, body)] * times)

    def drop(self, times: int = 1) -> None:
        """Close the next `times` connections without answering."""
        with self._lock:
            self._faults.extend([Fault(None)] * times)

    # --- what it saw ----------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def targets(self) -> list[str]:
        return [request.target for request in self.requests]

    # --- used by the handler ----------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> Fault | _Route | None:
        """Log the request; then its fault, if one is queued, else its route (None: 404)."""
        with self._lock:
            self._requests.append(request)
            if self._faults:
                return self._faults.popleft()
            return self._routes.get((request.path, frozenset(request.query)))


class _Handler(BaseHTTPRequestHandler):
    server_version = "ccattest-kds/1"

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        request = RecordedRequest("GET", parts.path, tuple(parse_qsl(parts.query, True)),
                                  tuple(self.headers.items()))
        answer = self.server.kds._record(request)  # type: ignore[attr-defined]
        if isinstance(answer, _Route):
            self._send(200, answer.body, answer.content_type)
        elif isinstance(answer, Fault):
            self._fault(answer)
        else:
            self._send(404, b"Not Found", "text/plain")

    def _fault(self, fault: Fault) -> None:
        if fault.status is None:
            self.close_connection = True
            return
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        self._send(fault.status, fault.body, "text/plain", headers)

    def _send(self, status: int, body: bytes, content_type: str,
              headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read the recorded requests instead."""
