"""The DCAP collateral a TDX quote is verified with, exactly as Intel PCS/PCCS serve it.

TCB Info and QE Identity are signed over the exact bytes of their inner JSON object as
served, so they are kept as bytes here, never re-serialised. Issuer chains come from the
PCS response headers (URL-decoded PEM).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TdxCollateral:
    tcb_info: bytes  # the whole response body: {"tcbInfo": {...}, "signature": "hex"}
    tcb_info_issuer_chain: bytes  # PEM: TCB Signing certificate, then the root
    qe_identity: bytes  # {"enclaveIdentity": {...}, "signature": "hex"}
    qe_identity_issuer_chain: bytes  # PEM
    pck_crl: bytes  # DER (or PEM) CRL from the PCK Platform/Processor CA
    pck_crl_issuer_chain: bytes  # PEM: the PCK CA, then the root
    root_ca_crl: bytes  # DER (or PEM) CRL from the Intel SGX Root CA
    source: str = "given"  # where it came from: a file, a PCS URL, a cache
