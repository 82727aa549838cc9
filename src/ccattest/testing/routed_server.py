"""A local server that answers GETs from a table of routes: what the local KDS and PCS share.

Routes are matched on the path and the exact set of query parameters. Faults queued with
`fail` (an HTTP status, optionally with Retry-After) or `drop` (close without answering) are
served before any route, whatever the request asks, and every request is recorded, so tests
check what a client asked for and how it coped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit

from .local_server import LocalServer

Query = frozenset[tuple[str, str]]
Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]  # in the order sent
    headers: Headers

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
    headers: Headers = ()


class RoutedServer(LocalServer):
    """Serves GET routes from a background thread; subclasses add their service's paths."""

    owner_attribute = "routed"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _Handler

    def __init__(self) -> None:
        self._routes: dict[tuple[str, Query], _Route] = {}
        self._faults: deque[Fault] = deque()
        self._requests: list[RecordedRequest] = []
        super().__init__()

    def serve(self, path: str, body: bytes, *, query: Mapping[str, object] | None = None,
              headers: Mapping[str, str] | None = None,
              content_type: str = "application/octet-stream") -> None:
        """Answer GET `path` (with exactly these query parameters, in any order) with `body`
        and these extra response headers."""
        key = (path, frozenset((name, str(value)) for name, value in (query or {}).items()))
        with self._lock:
            self._routes[key] = _Route(bytes(body), content_type,
                                       tuple((headers or {}).items()))

    def fail(self, status: int, times: int = 1, *, retry_after: str | None = None,
             body: bytes = b"") -> None:
        """Answer the next `times` requests, whatever they ask, with `status`."""
        with self._lock:
            self._faults.extend([Fault(status, retry_after, body)] * times)

    def drop(self, times: int = 1) -> None:
        """Close the next `times` connections without answering."""
        with self._lock:
            self._faults.extend([Fault(None)] * times)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def targets(self) -> list[str]:
        return [request.target for request in self.requests]

    def _record(self, request: RecordedRequest) -> Fault | _Route | None:
        """Log the request; then its fault, if one is queued, else its route (None: 404)."""
        with self._lock:
            self._requests.append(request)
            if self._faults:
                return self._faults.popleft()
            return self._routes.get((request.path, frozenset(request.query)))


class _Handler(BaseHTTPRequestHandler):
    def version_string(self) -> str:
        return f"ccattest-{self.server.routed.name.lower()}/1"  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        request = RecordedRequest("GET", parts.path, tuple(parse_qsl(parts.query, True)),
                                  tuple(self.headers.items()))
        answer = self.server.routed._record(request)  # type: ignore[attr-defined]
        if isinstance(answer, _Route):
            self._send(200, answer.body, answer.content_type, answer.headers)
        elif isinstance(answer, Fault):
            self._fault(answer)
        else:
            self._send(404, b"Not Found", "text/plain")

    def _fault(self, fault: Fault) -> None:
        if fault.status is None:
            self.close_connection = True
            return
        headers = (("Retry-After", fault.retry_after),) if fault.retry_after else ()
        self._send(fault.status, fault.body, "text/plain", headers)

    def _send(self, status: int, body: bytes, content_type: str, headers: Headers = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read the recorded requests instead."""
