"""The software verifier: chain to a configured root, signature, identity and binding.

Returns claims, never judges them: whether `software` is acceptable at all, and which
measurements, SVNs and identities are, is the policy's business.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from ...errors import ConfigError, MalformedEvidence, VerificationFailed
from ...evidence import Evidence
from ...result import Reason
from ...timeutil import require_aware
from ..base import VerifiedClaims
from . import PLATFORM
from .abi import SoftwareReport, parse_report
from .collect import key_id
from .measure import MeasuredItem, replay
from .pki import fingerprint


@dataclass(frozen=True)
class _Cert:
    """What verification needs from a certificate, extracted once per distinct certificate."""

    certificate: x509.Certificate
    der: bytes
    subject: str
    issuer: bytes  # DER of the issuer name, to find the root
    not_before: datetime
    not_after: datetime
    is_ca: bool
    fingerprint: str

    @property
    def window(self) -> str:
        return f"{self.not_before.isoformat()} .. {self.not_after.isoformat()}"


@dataclass(frozen=True)
class _SiteCert:
    cert: _Cert
    identity: str
    public_key: ed25519.Ed25519PublicKey
    key_id: bytes


# What cryptography raises for a certificate it cannot read (names, keys and extensions are
# decoded lazily, on first access).
_PARSE_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion,
                 x509.DuplicateExtension)


def _describe(cert: x509.Certificate) -> dict[str, Any]:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = constraints.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return {
        "certificate": cert, "der": cert.public_bytes(serialization.Encoding.DER),
        "subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.public_bytes(),
        "not_before": cert.not_valid_before_utc, "not_after": cert.not_valid_after_utc,
        "is_ca": is_ca, "fingerprint": fingerprint(cert),
    }


# Parsing and signature checks are pure functions of the bytes, so they are cached (bounded):
# a verifier re-checks the same peers every round. Validity times are checked on every call.
@functools.lru_cache(maxsize=1024)
def _site_cert(data: bytes) -> _SiteCert:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            cert = x509.load_pem_x509_certificate(data)
        else:
            cert = x509.load_der_x509_certificate(data)
        described = _describe(cert)
        public_key = cert.public_key()  # decoded only when asked: an unknown key type raises
    except _PARSE_ERRORS as exc:
        raise MalformedEvidence("site certificate does not parse", found=str(exc)) from None
    if not isinstance(public_key, ed25519.Ed25519PublicKey):
        raise VerificationFailed("site key is not Ed25519", found=type(public_key).__name__)
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _SiteCert(_Cert(**described), _common_name(cert), public_key, key_id(raw))


@functools.lru_cache(maxsize=1024)
def _signed_by(cert_der: bytes, root_der: bytes) -> bool:
    cert = x509.load_der_x509_certificate(cert_der)
    root = x509.load_der_x509_certificate(root_der)
    try:
        cert.verify_directly_issued_by(root)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1:
        raise VerificationFailed("site certificate must carry exactly one common name",
                                 found=len(names))
    value = names[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _check_validity(cert: _Cert, at: datetime, what: str) -> None:
    if not cert.not_before <= at <= cert.not_after:
        raise VerificationFailed(f"{what} is not valid at the verification time",
                                 expected=cert.window, found=at.isoformat())


class SoftwareVerifier:
    platform: ClassVar[str] = PLATFORM

    def __init__(self, roots: Iterable[x509.Certificate]) -> None:
        self.roots: dict[bytes, _Cert] = {}
        for root in roots:
            described = _Cert(**_describe(root))
            if not described.is_ca:
                raise ConfigError("a software root must be a CA certificate",
                                  found=described.subject)
            self.roots[root.subject.public_bytes()] = described
        if not self.roots:
            raise ConfigError("no software root configured",
                              hint="pass --root PEM or --key-dir DIR")

    def _chain(self, cert: _Cert, at: datetime) -> _Cert:
        root = self.roots.get(cert.issuer)
        if root is None:
            raise VerificationFailed(
                "site certificate was not issued by a configured software root",
                expected=" or ".join(r.subject for r in self.roots.values()),
                found=cert.certificate.issuer.rfc4514_string(),
            )
        if not _signed_by(cert.der, root.der):
            raise VerificationFailed("site certificate signature does not verify with the root",
                                     found=f"root {root.fingerprint[:16]}...")
        _check_validity(root, at, "software root")
        _check_validity(cert, at, "site certificate")
        if cert.is_ca:
            raise VerificationFailed("site certificate is a CA certificate", expected="CA:FALSE")
        return root

    def verify(self, evidence: Evidence, *, report_data: bytes, at: datetime) -> VerifiedClaims:
        at = require_aware(at, "verification time")
        if evidence.platform != PLATFORM:
            raise MalformedEvidence("evidence is for another platform",
                                    expected=PLATFORM, found=evidence.platform)
        report = parse_report(evidence.report)
        cert_bytes = evidence.endorsements.get("site_cert")
        if cert_bytes is None:
            raise MalformedEvidence("software evidence carries no site certificate",
                                    expected="endorsements.site_cert")
        site = _site_cert(bytes(cert_bytes))
        root = self._chain(site.cert, at)
        if report.key_id != site.key_id:
            raise VerificationFailed("report names another signing key than the certificate's",
                                     expected=site.key_id.hex(), found=report.key_id.hex())
        try:
            site.public_key.verify(report.signature, report.signed_bytes())
        except InvalidSignature:
            raise VerificationFailed("report signature does not verify with the site key",
                                     found=f"signature {report.signature[:8].hex()}...") from None
        identity = site.identity
        if report.identity != identity:
            raise VerificationFailed("report identity differs from the certificate's",
                                     expected=identity, found=report.identity)
        if evidence.attester is not None and evidence.attester != identity:
            raise VerificationFailed("envelope names another attester than the certificate",
                                     expected=identity, found=evidence.attester)
        if not hmac.compare_digest(report.report_data, report_data):
            raise VerificationFailed("report_data does not bind the expected challenge",
                                     expected=report_data.hex(), found=report.report_data.hex(),
                                     hint="wrong nonce, wrong identity, or a replayed report")
        items = self._replayed_log(evidence, report.measurement)
        return VerifiedClaims(
            platform=PLATFORM,
            claims=self._claims(report, site.cert, root, items),
            checks=(
                Reason("chain", True, "site certificate chains to the configured software root"),
                Reason("signature", True, "Ed25519 report signature verifies with the site key"),
                Reason("identity", True, f"report identity matches the certificate: {identity}"),
                Reason("binding", True, "report_data binds the expected challenge"),
                Reason("measurement_log", True,
                       f"measurement log replays to the signed measurement ({len(items)} items)"
                       if items else "no measurement log supplied"),
            ),
            attester=identity,
            collateral={"software_root": {"fingerprint_sha256": root.fingerprint,
                                          "source": "configured"}},
        )

    @staticmethod
    def _replayed_log(evidence: Evidence, measurement: bytes) -> tuple[MeasuredItem, ...]:
        if not evidence.log:
            return ()
        items = tuple(MeasuredItem.from_log(entry) for entry in evidence.log)
        replayed = replay(items)
        if not hmac.compare_digest(replayed, measurement):
            raise VerificationFailed("measurement log does not replay to the signed measurement",
                                     expected=measurement.hex(), found=replayed.hex())
        return items

    @staticmethod
    def _claims(report: SoftwareReport, cert: _Cert, root: _Cert,
                items: tuple[MeasuredItem, ...]) -> dict[str, Any]:
        return {
            "version": report.version,
            "identity": report.identity,
            "measurement": report.measurement.hex(),
            "report_data": report.report_data.hex(),
            "debug": report.debug,
            "svn": report.svn,
            "measured_items": [item.to_log() for item in items],
            "hardware_guarantee": False,
            "signer": {
                "subject": cert.subject,
                "serial": format(cert.certificate.serial_number, "x"),
                "not_after": cert.not_after.isoformat(),
                "root_sha256": root.fingerprint,
            },
        }
