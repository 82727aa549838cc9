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

from collections.abc import Mapping

from .routed_server import Fault, RecordedRequest, RoutedServer

__all__ = ["Fault", "KdsServer", "RecordedRequest"]


class KdsServer(RoutedServer):
    """A KDS on 127.0.0.1 with an OS-chosen port, served from a background thread."""

    name = "KDS"

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
