"""A local stand-in for Intel PCS / PCCS: a real HTTP server on 127.0.0.1 for tests and demos.

It serves TDX collateral at the PCS API v4 paths with the issuer-chain response headers
(URL-encoded PEM, as Intel sends them), can be told to answer the next requests with an error
(429 with Retry-After, 500, ...) or to drop the connection, and records every request it gets.

    with PcsServer() as pcs:
        pcs.serve_tcb_info(fmspc, tcb_info_body, tcb_chain_pem)
        pcs.serve_qe_identity(qe_identity_body, qe_chain_pem)
        pcs.serve_pck_crl("platform", pck_crl_der, pck_crl_chain_pem)
        pcs.serve_root_ca_crl(root_crl_der)          # at the PCCS rootcacrl path
        pcs.fail(429, times=1, retry_after="2")
        client = PcsClient(pcs.url, ...)

Paths are written here independently of the client, so tests check what the client asks for.
The request log and faults are those of the local KDS (ccattest.testing.kds_server).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, quote, urlsplit

from .kds_server import Fault, RecordedRequest
from .local_server import LocalServer

TCB_PATH = "/tdx/certification/v4/tcb"
QE_IDENTITY_PATH = "/tdx/certification/v4/qe/identity"
PCK_CRL_PATH = "/sgx/certification/v4/pckcrl"
ROOT_CA_CRL_PATH = "/sgx/certification/v4/rootcacrl"  # PCCS; PCS uses Intel's CRL DP URL

Query = frozenset[tuple[str, str]]

__all__ = ["PCK_CRL_PATH", "QE_IDENTITY_PATH", "ROOT_CA_CRL_PATH", "TCB_PATH", "Fault",
           "PcsServer", "RecordedRequest", "encode_chain"]


def encode_chain(pem: bytes) -> str:
    """An issuer chain as PCS puts it in a header: the PEM, percent-encoded."""
    return quote(bytes(pem), safe="")


@dataclass(frozen=True)
class _Route:
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = field(default=())


class PcsServer(LocalServer):
    """A PCS (or PCCS) on 127.0.0.1 with an OS-chosen port, served from a background thread."""

    name = "PCS"
    owner_attribute = "pcs"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _Handler

    def __init__(self) -> None:
        self._routes: dict[tuple[str, Query], _Route] = {}
        self._faults: deque[Fault] = deque()
        self._requests: list[RecordedRequest] = []
        super().__init__()

    # --- what it serves -------------------------------------------------------------------

    def serve(self, path: str, body: bytes, *, query: Mapping[str, object] | None = None,
              headers: Mapping[str, str] | None = None,
              content_type: str = "application/octet-stream") -> None:
        """Answer GET `path` (with exactly these query parameters, in any order) with `body`
        and these extra response headers."""
        key = (path, frozenset((name, str(value)) for name, value in (query or {}).items()))
        with self._lock:
            self._routes[key] = _Route(bytes(body), content_type,
                                       tuple((headers or {}).items()))

    def serve_tcb_info(self, fmspc: bytes | str, body: bytes, issuer_chain: bytes, *,
                       header: str = "TCB-Info-Issuer-Chain") -> None:
        """TCB Info at /tdx/certification/v4/tcb?fmspc=...; `fmspc` as bytes (sent as
        lower-case hex) or the exact text of the query value. `header` names the chain's
        header (older PCS: SGX-TCB-Info-Issuer-Chain)."""
        value = fmspc if isinstance(fmspc, str) else bytes(fmspc).hex()
        self.serve(TCB_PATH, body, query={"fmspc": value},
                   headers={header: encode_chain(issuer_chain)},
                   content_type="application/json")

    def serve_qe_identity(self, body: bytes, issuer_chain: bytes, *,
                          header: str = "SGX-Enclave-Identity-Issuer-Chain") -> None:
        self.serve(QE_IDENTITY_PATH, body, headers={header: encode_chain(issuer_chain)},
                   content_type="application/json")

    def serve_pck_crl(self, ca: str, crl: bytes, issuer_chain: bytes, *,
                      encoding: str | None = "der") -> None:
        """A PCK CRL at /sgx/certification/v4/pckcrl?ca=...&encoding=... (no encoding
        parameter when `encoding` is None)."""
        query = {"ca": ca} if encoding is None else {"ca": ca, "encoding": encoding}
        self.serve(PCK_CRL_PATH, crl, query=query,
                   headers={"SGX-PCK-CRL-Issuer-Chain": encode_chain(issuer_chain)},
                   content_type="application/pkix-crl")

    def serve_root_ca_crl(self, crl: bytes, *, path: str = ROOT_CA_CRL_PATH) -> None:
        """The root CA CRL, by default where a PCCS serves it; give `path` to serve it where
        the root certificate's CRL distribution point says (e.g. /IntelSGXRootCA.der)."""
        self.serve(path, crl, content_type="application/pkix-crl")

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
    server_version = "ccattest-pcs/1"

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        request = RecordedRequest("GET", parts.path, tuple(parse_qsl(parts.query, True)),
                                  tuple(self.headers.items()))
        answer = self.server.pcs._record(request)  # type: ignore[attr-defined]
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

    def _send(self, status: int, body: bytes, content_type: str,
              headers: tuple[tuple[str, str], ...] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read the recorded requests instead."""
