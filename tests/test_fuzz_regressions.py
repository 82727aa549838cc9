"""Inputs `make fuzz` (fuzz/) found escaping a parser as something other than a
CCAttestError, each kept here with the typed error it must now raise."""

from __future__ import annotations

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ccattest.errors import ConfigError, MalformedEvidence, VerificationFailed
from ccattest.evidence import Evidence
from ccattest.platforms.azure.maa import load_maa_jwks
from ccattest.testing.maa import MaaFixture
from ccattest.testing.software import SoftwareFixture


def test_maa_jwks_x5c_certificate_whose_key_does_not_decode() -> None:
    # fuzz_maa_token: cryptography decodes a certificate's key lazily, so a certificate that
    # loads can still raise ValueError from public_key(); it escaped load_maa_jwks.
    der = MaaFixture.create().certificate.public_bytes(Encoding.DER)
    spki = der.index(bytes.fromhex("0382010f003082010a"))  # BIT STRING { SEQUENCE { n, e } }
    broken = der[:spki + 5] + b"\xa0" + der[spki + 6:]  # the SEQUENCE tag turned into [0]
    x509.load_der_x509_certificate(broken)  # still a certificate
    jwks = {"keys": [{"kid": "k", "kty": "RSA", "x5c": [base64.b64encode(broken).decode()]}]}
    with pytest.raises(ConfigError, match="x5c certificate's key does not parse"):
        load_maa_jwks(jwks)


def test_software_site_certificate_with_an_unknown_key_type() -> None:
    # fuzz_software_report: public_key() raises UnsupportedAlgorithm for an unknown key OID;
    # it escaped SoftwareVerifier.verify.
    fixture = SoftwareFixture.create()
    evidence, report_data, _ = fixture.evidence(bytes(32))
    site_cert = evidence.endorsements["site_cert"]
    der = (x509.load_pem_x509_certificate(site_cert).public_bytes(Encoding.DER)
           if site_cert.startswith(b"-----") else site_cert)
    spki = der.index(bytes.fromhex("300506032b6570032100")) + 2  # Ed25519 SPKI's OID
    broken = der[:spki] + bytes.fromhex("06032b6579") + der[spki + 5:]  # OID 1.3.101.121
    forged = Evidence(evidence.platform, evidence.report, {"site_cert": broken})
    with pytest.raises(MalformedEvidence, match="site certificate does not parse"):
        fixture.verifier().verify(forged, report_data=report_data, at=fixture.now)


def test_software_site_certificate_with_an_invalid_version() -> None:
    # fuzz_software_report: x509.InvalidVersion is no ValueError; it escaped
    # SoftwareVerifier.verify (found from a one-bit change of the version field).
    fixture = SoftwareFixture.create()
    evidence, report_data, _ = fixture.evidence(bytes(32))
    site_cert = evidence.endorsements["site_cert"]
    der = (x509.load_pem_x509_certificate(site_cert).public_bytes(Encoding.DER)
           if site_cert.startswith(b"-----") else site_cert)
    version = der.index(bytes.fromhex("a003020102"))  # [0] { INTEGER 2 } (v3)
    broken = der[:version + 4] + b"\x0a" + der[version + 5:]
    forged = Evidence(evidence.platform, evidence.report, {"site_cert": broken})
    with pytest.raises(MalformedEvidence, match="site certificate does not parse"):
        fixture.verifier().verify(forged, report_data=report_data, at=fixture.now)


def test_maa_runtime_nonce_with_non_ascii_text() -> None:
    # fuzz_maa_token: hmac.compare_digest raises TypeError for a non-ASCII str; a signed
    # token whose x-ms-runtime nonce held one escaped MaaVerifier.verify_token.
    maa = MaaFixture.create()
    report_data = b"\x01" * 64
    token = maa.token(report_data, **{"x-ms-runtime": {"nonce": "é" + "00" * 63}})
    with pytest.raises(VerificationFailed, match="does not bind the expected report_data"):
        maa.verifier().verify_token(token, report_data=report_data, at=maa.now)
