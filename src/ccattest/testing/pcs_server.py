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
The request log and faults are those every routed test server has (testing.routed_server).
"""

from __future__ import annotations

from urllib.parse import quote

from .routed_server import Fault, RecordedRequest, RoutedServer

TCB_PATH = "/tdx/certification/v4/tcb"
QE_IDENTITY_PATH = "/tdx/certification/v4/qe/identity"
PCK_CRL_PATH = "/sgx/certification/v4/pckcrl"
ROOT_CA_CRL_PATH = "/sgx/certification/v4/rootcacrl"  # PCCS; PCS uses Intel's CRL DP URL

__all__ = ["PCK_CRL_PATH", "QE_IDENTITY_PATH", "ROOT_CA_CRL_PATH", "TCB_PATH", "Fault",
           "PcsServer", "RecordedRequest", "encode_chain"]


def encode_chain(pem: bytes) -> str:
    """An issuer chain as PCS puts it in a header: the PEM, percent-encoded."""
    return quote(bytes(pem), safe="")


class PcsServer(RoutedServer):
    """A PCS (or PCCS) on 127.0.0.1 with an OS-chosen port, served from a background thread."""

    name = "PCS"

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
