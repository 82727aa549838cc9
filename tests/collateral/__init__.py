"""Shared material for the collateral tests: AMD's real Milan VCEK and chain from the
vectors (virtee/sev, go-sev-guest; Apache-2.0) and CRLs named like AMD's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ccattest.testing.snp import amd_name

AT = datetime(2025, 6, 1, tzinfo=UTC)
VIRTEE = "sev-snp/virtee-sev/tests/certs_data/"
MILAN_CHIP = ("d49554ec717f4e5b0fe6b143bcf0405bd7ae304727edf46603f2a76aef6a3abc15d7af38db7570"
              "39029f0efacfd08e244324884738c72b082e2f87a44d541eb6")
VCEK_KEY = ("Milan", MILAN_CHIP, "blSPL=3,teeSPL=0,snpSPL=8,ucodeSPL=115")
CHAIN_KEY = ("Milan", "vcek")
VLEK_CHAIN_KEY = ("Milan", "vlek")
CRL_KEY = ("Milan", "vcek")
SOURCE = "https://kdsintf.amd.com/vcek/v1/Milan/"


@dataclass(frozen=True)
class Material:
    vcek: bytes
    chain: bytes
    vlek_chain: bytes
    report_hex: str


def material(vectors: Path) -> Material:
    return Material(
        vcek=(vectors / VIRTEE / "vcek_milan.der").read_bytes(),
        chain=(vectors / VIRTEE / "cert_chain_milan").read_bytes(),
        vlek_chain=(vectors / "sev-snp/go-sev-guest/verify/trust/ask_ark_milan_vlek.pem")
        .read_bytes(),
        report_hex=(vectors / VIRTEE / "report_milan.hex").read_text(),
    )


def make_crl(last: datetime = datetime(2025, 5, 1, tzinfo=UTC),
             next_: datetime = datetime(2025, 7, 1, tzinfo=UTC), issuer: str = "ARK-Milan"
             ) -> bytes:
    """A DER CRL named like AMD's; the cache checks its shape and window, not its signer."""
    key = ec.generate_private_key(ec.SECP256R1())
    crl = (x509.CertificateRevocationListBuilder().issuer_name(amd_name(issuer))
           .last_update(last).next_update(next_).sign(key, hashes.SHA256()))
    return crl.public_bytes(serialization.Encoding.DER)
