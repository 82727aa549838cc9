"""The TDX verifier: quote and QE report signatures, the attestation-key binding, the PCK chain
to the pinned Intel SGX Root CA, CRLs, TCB Info and QE Identity, TCB status, nonce binding.

Returns claims, never judges them: which TCB statuses, measurements and attributes are
acceptable is the policy's business (policy/tdx.py). Parsing and signature checks are pure
functions of their bytes and cached (bounded); validity times are checked on every call.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sized
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ...errors import CollateralUnavailable, ConfigError, MalformedEvidence, VerificationFailed
from ...evidence import Evidence
from ...result import Reason
from ...timeutil import require_aware
from ..base import VerifiedClaims, earliest
from . import PCS_URL, PLATFORM
from .abi import (
    CERT_PCK_CHAIN,
    INTEL_QE_VENDOR_ID,
    EnclaveReport,
    QeCertification,
    Quote,
    decode_td_attributes,
    parse_quote,
)
from .certs import (
    PARSE_ERRORS,
    PckExtensions,
    common_name,
    load_certificates,
    load_crl,
    pck_extensions,
    pinned_root,
    sgx_extension_value,
)
from .collateral import TdxCollateral
from .collateral_json import collateral_from_json
from .tcb import (
    QeIdentity,
    TcbInfo,
    TcbResult,
    Verdict,
    match_qe,
    match_tcb,
    parse_qe_identity,
    parse_tcb_info,
)

COLLATERAL_ENDORSEMENT = "collateral"
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


# --- certificates and signatures (cached by their bytes) ---------------------------------------

@dataclass(frozen=True)
class _Cert:
    certificate: x509.Certificate
    der: bytes
    subject: bytes  # DER names, compared byte for byte
    issuer: bytes
    name: str
    not_before: datetime
    not_after: datetime
    fingerprint: str
    public_key: Any

    @property
    def self_signed(self) -> bool:
        return self.subject == self.issuer

    @property
    def window(self) -> str:
        return f"{self.not_before.isoformat()} .. {self.not_after.isoformat()}"

    def spki(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)


@functools.lru_cache(maxsize=1024)
def _cert(der: bytes) -> _Cert:
    try:  # cryptography parses names, times and keys lazily: any of them may fail here
        certificate = x509.load_der_x509_certificate(der)
        return _Cert(certificate=certificate, der=der,
                     subject=certificate.subject.public_bytes(),
                     issuer=certificate.issuer.public_bytes(),
                     name=common_name(certificate.subject),
                     not_before=certificate.not_valid_before_utc,
                     not_after=certificate.not_valid_after_utc,
                     fingerprint=certificate.fingerprint(hashes.SHA256()).hex(),
                     public_key=certificate.public_key())
    except PARSE_ERRORS as exc:
        raise MalformedEvidence("certificate does not parse", found=str(exc)) from None


def _cert_of(certificate: x509.Certificate) -> _Cert:
    return _cert(certificate.public_bytes(serialization.Encoding.DER))


@functools.lru_cache(maxsize=256)
def _certs(data: bytes, what: str) -> tuple[_Cert, ...]:
    return tuple(_cert_of(cert) for cert in load_certificates(data, what))


@functools.lru_cache(maxsize=1024)
def _issued_by(child_der: bytes, issuer_der: bytes) -> bool:
    """Issuer name and signature (ECDSA, as Intel signs) of `child` by `issuer`."""
    try:
        _cert(child_der).certificate.verify_directly_issued_by(_cert(issuer_der).certificate)
    except (ValueError, TypeError, InvalidSignature, *PARSE_ERRORS):
        return False
    return True


def _ecdsa_valid(public_key: Any, raw_signature: bytes, data: bytes) -> bool:
    """ECDSA P-256 SHA-256 with a raw big-endian r||s signature."""
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or len(raw_signature) != 64:
        return False
    signature = encode_dss_signature(int.from_bytes(raw_signature[:32], "big"),
                                     int.from_bytes(raw_signature[32:], "big"))
    try:
        public_key.verify(signature, data, _ECDSA_SHA256)
    except InvalidSignature:
        return False
    return True


@functools.lru_cache(maxsize=1024)
def _signed_by_cert(signer_der: bytes, raw_signature: bytes, data: bytes) -> bool:
    return _ecdsa_valid(_cert(signer_der).public_key, raw_signature, data)


@functools.lru_cache(maxsize=256)
def _crl_signed_by(crl_der: bytes, issuer_der: bytes) -> bool:
    crl = x509.load_der_x509_crl(crl_der)
    issuer = _cert(issuer_der)
    # The issuer's key is ECDSA: the chain (or the root's loading) has checked that.
    return crl.issuer.public_bytes() == issuer.subject and crl.is_signature_valid(
        issuer.public_key)


def _check_validity(cert: _Cert, at: datetime, what: str) -> None:
    if not cert.not_before <= at <= cert.not_after:
        raise VerificationFailed(f"{what} ({cert.name}) is not valid at the verification time",
                                 expected=cert.window, found=at.isoformat())


def _load_root(value: x509.Certificate | bytes | None) -> _Cert:
    if value is None:
        return _cert_of(pinned_root())
    if not isinstance(value, x509.Certificate | bytes | bytearray):
        raise ConfigError("root does not parse", expected="a certificate or its PEM/DER bytes",
                          found=type(value).__name__)
    try:
        root = _cert_of(value) if isinstance(value, x509.Certificate) else _certs(
            bytes(value), "root")[0]
    except MalformedEvidence as exc:
        raise ConfigError("root does not parse", found=exc.found) from None
    if not root.self_signed or not isinstance(root.public_key, ec.EllipticCurvePublicKey):
        raise ConfigError("the TDX root must be a self-signed ECDSA certificate", found=root.name)
    return root


# --- the PCK chain -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Pck:
    leaf: _Cert
    extensions: PckExtensions
    ca: _Cert  # the PCK Platform or Processor CA


@functools.lru_cache(maxsize=1024)
def _extensions(der: bytes) -> PckExtensions:
    return pck_extensions(_cert(der).certificate)


def _pck_certificates(qe: QeCertification) -> tuple[_Cert, ...]:
    if qe.certification_type != CERT_PCK_CHAIN:
        raise CollateralUnavailable(
            "the quote carries no PCK certificate chain",
            expected=f"certification data type {CERT_PCK_CHAIN}",
            found=f"type {qe.certification_type}",
            hint="collect the quote with the PCK chain (configfs-tsm and Intel's QPL do)")
    return _certs(qe.certification, "PCK certificate chain")


def _select_pck(certs: tuple[_Cert, ...], root: _Cert) -> tuple[_Cert, _Cert]:
    leaf = next((cert for cert in certs if sgx_extension_value(cert.certificate) is not None),
                None)
    if leaf is None:
        raise VerificationFailed("the quote's certificate chain has no PCK certificate",
                                 expected="a certificate with the SGX extension",
                                 found=[cert.name for cert in certs])
    _check_supplied_roots(certs, root)
    ca = next((cert for cert in certs if cert.subject == leaf.issuer and not cert.self_signed),
              None)
    if ca is None:
        raise CollateralUnavailable("the quote's certificate chain has no PCK CA",
                                    expected=leaf.certificate.issuer.rfc4514_string(),
                                    found=[cert.name for cert in certs])
    return leaf, ca


def _check_supplied_roots(certs: Iterable[_Cert], root: _Cert) -> None:
    # A chain-supplied root never replaces the pinned one; one that differs is an error.
    for cert in certs:
        if cert.self_signed and cert.der != root.der and cert.spki() != root.spki():
            raise VerificationFailed("the chain ends at a root that is not the pinned "
                                     f"{root.name}", expected=root.fingerprint,
                                     found=f"{cert.name} {cert.fingerprint}")


def _verify_pck(qe: QeCertification, root: _Cert, at: datetime) -> _Pck:
    leaf, ca = _select_pck(_pck_certificates(qe), root)
    if not _issued_by(ca.der, root.der):
        raise VerificationFailed(f"{ca.name} is not signed by the pinned {root.name}",
                                 expected=f"ECDSA signature by {root.fingerprint[:16]}...",
                                 found=ca.certificate.issuer.rfc4514_string())
    if not _issued_by(leaf.der, ca.der):
        raise VerificationFailed(f"the PCK certificate is not signed by {ca.name}",
                                 found=f"PCK {leaf.fingerprint[:16]}...")
    for cert, what in ((root, "root"), (ca, "PCK CA"), (leaf, "PCK certificate")):
        _check_validity(cert, at, what)
    return _Pck(leaf, _extensions(leaf.der), ca)


# --- quote and QE report ------------------------------------------------------------------------

def _qe_of(quote: Quote) -> QeCertification:
    if quote.qe is None:
        raise VerificationFailed("unsupported certification data in the quote",
                                 expected="type 6 (QE report certification data)",
                                 found=f"type {quote.certification_type}")
    if quote.header.qe_vendor_id != INTEL_QE_VENDOR_ID:
        raise VerificationFailed("the quote comes from a non-Intel quoting enclave",
                                 expected=INTEL_QE_VENDOR_ID.hex(),
                                 found=quote.header.qe_vendor_id.hex())
    return quote.qe


@functools.lru_cache(maxsize=1024)
def _qe_report_signed(pck_der: bytes, report: EnclaveReport, signature: bytes) -> bool:
    # One QE report serves every quote of its attestation key: worth caching. The key is the
    # report's every field (to_bytes() gives back the exact bytes it was parsed from).
    return _ecdsa_valid(_cert(pck_der).public_key, signature, report.to_bytes())


def _check_qe_report(quote: Quote, qe: QeCertification, pck: _Pck) -> None:
    if not _qe_report_signed(pck.leaf.der, qe.report, qe.report_signature):
        raise VerificationFailed("QE report signature does not verify with the PCK key",
                                 found=f"PCK {pck.leaf.fingerprint[:16]}...")
    expected = hashlib.sha256(quote.attestation_key + qe.auth_data).digest() + bytes(32)
    if not hmac.compare_digest(qe.report.report_data, expected):
        raise VerificationFailed("the QE report does not vouch for the attestation key",
                                 expected="report_data = SHA-256(attestation key || QE auth "
                                          "data) || 32 zero bytes",
                                 found=qe.report.report_data.hex())


def _check_quote_signature(quote: Quote, raw: bytes) -> None:
    """Over the bytes as received (parse_quote round-trips them, so they are signed_bytes())."""
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), b"\x04" + quote.attestation_key)
    except ValueError:
        raise VerificationFailed("the attestation key is not a P-256 point",
                                 found=quote.attestation_key.hex()[:32] + "...") from None
    if not _ecdsa_valid(key, quote.signature, raw[:quote.signed_size]):
        raise VerificationFailed("quote signature does not verify with the attestation key",
                                 found=quote.signature.hex()[:32] + "...")


# --- collateral ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Crl:
    """What verification needs from one CRL, extracted once (names convert slowly)."""

    crl: x509.CertificateRevocationList
    der: bytes
    issuer: str
    last_update: datetime
    next_update: datetime | None


def _crl(data: bytes, what: str) -> _Crl:
    crl = load_crl(data, what)
    return _Crl(crl, crl.public_bytes(serialization.Encoding.DER), crl.issuer.rfc4514_string(),
                crl.last_update_utc, crl.next_update_utc)


@dataclass(frozen=True, eq=False)
class _Parsed:
    """One per distinct collateral (its parse is cached by the collateral's exact bytes), so
    it compares by identity: the caches below key on it at the cost of a pointer, and hold it
    while they do (a later parse of the same bytes is a new key, never a stale one)."""

    source: str
    tcb_info: TcbInfo
    tcb_signer: tuple[_Cert, ...]  # the issuer chain as given
    qe_identity: QeIdentity
    qe_signer: tuple[_Cert, ...]
    pck_crl: _Crl
    root_crl: _Crl


@functools.lru_cache(maxsize=64)
def _parse_collateral(collateral: TdxCollateral) -> _Parsed:
    _certs(collateral.pck_crl_issuer_chain, "PCK CRL issuer chain")  # must at least parse
    return _Parsed(
        source=collateral.source,
        tcb_info=parse_tcb_info(collateral.tcb_info),
        tcb_signer=_certs(collateral.tcb_info_issuer_chain, "TCB Info issuer chain"),
        qe_identity=parse_qe_identity(collateral.qe_identity),
        qe_signer=_certs(collateral.qe_identity_issuer_chain, "QE Identity issuer chain"),
        pck_crl=_crl(collateral.pck_crl, "PCK CRL"),
        root_crl=_crl(collateral.root_ca_crl, "root CA CRL"),
    )


@functools.lru_cache(maxsize=64)
def _endorsed_collateral(data: bytes) -> TdxCollateral:
    """The dcap-qvl JSON a peer attaches, decoded once per exact bytes (a peer sends the same
    collateral with every quote until Intel issues new)."""
    return collateral_from_json(data, source="evidence:collateral")


class _Expiry:
    """Collects collateral that is past its next update at `at`, and every item's end of
    validity (the verdict lasts no longer than the first); refuses collateral issued after
    `at` (nothing issued later can speak for that moment)."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self.expired: list[str] = []
        self.ends: list[tuple[str, datetime | None]] = []

    def check(self, what: str, start: datetime, end: datetime | None, *,
              end_name: str = "nextUpdate") -> None:
        self.ends.append((f"{what} {end_name}", end))
        if self.at < start:
            raise VerificationFailed(f"{what} was issued after the verification time",
                                     expected=f"issued before {self.at.isoformat()}",
                                     found=start.isoformat())
        if end is None or self.at > end:
            self.expired.append(f"{what} (until {end.isoformat() if end else 'unknown'})")


def _signer(chain: tuple[_Cert, ...], root: _Cert, what: str) -> _Cert:
    """The certificate that signs TCB Info or QE Identity, checked against the pinned root."""
    _check_supplied_roots(chain, root)
    signer = next((cert for cert in chain if not cert.self_signed), None)
    if signer is None or not _issued_by(signer.der, root.der):
        raise VerificationFailed(f"the {what} issuer chain does not lead to the pinned "
                                 f"{root.name}", expected="a TCB Signing certificate issued "
                                 "by the pinned root",
                                 found=[cert.name for cert in chain])
    return signer


def _check_signed(signer: _Cert, body: bytes, signature: bytes, what: str) -> None:
    if not _signed_by_cert(signer.der, signature, body):
        raise VerificationFailed(f"{what} signature does not verify with {signer.name}",
                                 hint="the body must be the exact bytes Intel served")


def _check_crl(crl: _Crl, issuer: _Cert, what: str, revocable: Iterable[_Cert]) -> None:
    """Signature and revocation; its validity window is checked per call (_Expiry)."""
    if not _crl_signed_by(crl.der, issuer.der):
        raise VerificationFailed(f"{what} is not signed by {issuer.name}", found=crl.issuer)
    for cert in revocable:
        serial = cert.certificate.serial_number
        if crl.crl.get_revoked_certificate_by_serial_number(serial) is not None:
            raise VerificationFailed(f"{cert.name} is revoked ({what})",
                                     found=f"serial {serial:#x}")


# (what, start of validity, end of validity, the end's name): checked against `at` per call.
_Window = tuple[str, datetime, datetime | None, str]


@functools.lru_cache(maxsize=256)
def _collateral_windows(parsed: _Parsed, leaf_der: bytes, ca_der: bytes,
                        root_der: bytes) -> tuple[_Window, ...]:
    """What in the collateral does not depend on the time, for one PCK chain: signers lead to
    the root, signatures verify, CRLs are signed and revoke none of the chain, TCB Info is for
    this platform. Raises on any failure (an exception is never cached); returns the validity
    windows, which every call checks against its own `at`."""
    pck = _Pck(_cert(leaf_der), _extensions(leaf_der), _cert(ca_der))
    root = _cert(root_der)
    info, identity = parsed.tcb_info, parsed.qe_identity
    windows: list[_Window] = []
    signers = []
    for chain, signed, what, start, end in (
        (parsed.tcb_signer, info.signed, "TCB Info", info.issue_date, info.next_update),
        (parsed.qe_signer, identity.signed, "QE Identity", identity.issue_date,
         identity.next_update),
    ):
        signer = _signer(chain, root, what)
        _check_signed(signer, signed.body, signed.signature, what)
        windows.append((what, start, end, "nextUpdate"))
        windows.append((f"{what} signing certificate", signer.not_before, signer.not_after,
                        "notAfter"))
        signers.append(signer)
    for crl, issuer, what, revocable in (
            (parsed.root_crl, root, "root CA CRL", (pck.ca, *signers)),
            (parsed.pck_crl, pck.ca, "PCK CRL", (pck.leaf,))):
        _check_crl(crl, issuer, what, revocable)
        windows.append((what, crl.last_update, crl.next_update, "nextUpdate"))
    _check_platform(info, pck)
    return tuple(windows)


def _check_collateral(parsed: _Parsed, pck: _Pck, root: _Cert, at: datetime) -> _Expiry:
    """Every collateral signature and revocation; returns what has expired at `at` and when
    each item ends."""
    expiry = _Expiry(at)
    for what, start, end, end_name in _collateral_windows(parsed, pck.leaf.der, pck.ca.der,
                                                          root.der):
        expiry.check(what, start, end, end_name=end_name)
    return expiry


def _check_platform(info: TcbInfo, pck: _Pck) -> None:
    if info.fmspc != pck.extensions.fmspc:
        raise VerificationFailed("TCB Info is for another platform (FMSPC)",
                                 expected=pck.extensions.fmspc.hex(), found=info.fmspc.hex(),
                                 hint=_pcs_hint(pck))
    if info.pce_id != pck.extensions.pce_id:
        raise VerificationFailed("TCB Info is for another PCE", expected=pck.extensions.pce_id
                                 .hex(), found=info.pce_id.hex())


def _pcs_hint(pck: _Pck) -> str:
    ca = "processor" if "Processor" in pck.ca.name else "platform"
    return (f"fetch {PCS_URL}/tdx/certification/v4/tcb?fmspc={pck.extensions.fmspc.hex()}, "
            f"{PCS_URL}/tdx/certification/v4/qe/identity and "
            f"{PCS_URL}/sgx/certification/v4/pckcrl?ca={ca}&encoding=der, "
            "or pass them with `ccattest verify --collateral PATH`")


# --- the verifier -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Outcome:
    tcb: TcbResult
    qe: Verdict | None
    expired: list[str]
    valid_until: datetime | None
    valid_until_source: str | None


class TdxVerifier:
    platform: ClassVar[str] = PLATFORM

    def __init__(self, collateral: TdxCollateral | None = None, *,
                 root: x509.Certificate | bytes | None = None,
                 allow_expired_collateral: bool = False) -> None:
        self.root = _load_root(root)
        self.pinned = root is None
        if collateral is not None and not isinstance(collateral, TdxCollateral):
            raise ConfigError("collateral must be a TdxCollateral",
                              found=type(collateral).__name__)
        if collateral is not None:
            try:
                _parse_collateral(collateral)  # fail early on collateral that cannot work
            except MalformedEvidence as exc:
                raise ConfigError("TDX collateral does not parse", found=exc.message) from None
        self.collateral = collateral
        self.allow_expired_collateral = allow_expired_collateral

    def verify(self, evidence: Evidence, *, report_data: bytes, at: datetime) -> VerifiedClaims:
        at = require_aware(at, "verification time")
        if evidence.platform != PLATFORM:
            raise MalformedEvidence("evidence is for another platform", expected=PLATFORM,
                                    found=evidence.platform)
        if not isinstance(report_data, bytes | bytearray | memoryview) or len(report_data) != 64:
            size = len(report_data) if isinstance(report_data, Sized) else "?"
            raise ConfigError("expected report_data must be 64 bytes", expected=64,
                              found=f"{type(report_data).__name__} of length {size}")
        quote = parse_quote(evidence.report)  # checks the type before bytes() may convert it
        raw = bytes(evidence.report)
        qe = _qe_of(quote)
        pck = _verify_pck(qe, self.root, at)
        _check_qe_report(quote, qe, pck)
        _check_quote_signature(quote, raw)
        if not hmac.compare_digest(quote.body.report_data, bytes(report_data)):
            raise VerificationFailed("report_data does not bind the expected challenge",
                                     expected=bytes(report_data).hex(),
                                     found=quote.body.report_data.hex(),
                                     hint="wrong nonce, wrong identity, or a replayed quote")
        parsed = self._collateral(evidence, pck)
        outcome = self._appraise_collateral(parsed, quote, qe, pck, at)
        return VerifiedClaims(
            platform=PLATFORM,
            claims=_claims(quote, pck, parsed, outcome, at),
            checks=_checks(quote, pck, self.root, outcome),
            attester=None,
            collateral=_describe(parsed, pck, self.root, self.pinned),
            valid_until=outcome.valid_until,
            valid_until_source=outcome.valid_until_source,
        )

    def _collateral(self, evidence: Evidence, pck: _Pck) -> _Parsed:
        if self.collateral is not None:
            return _parse_collateral(self.collateral)
        data = evidence.endorsements.get(COLLATERAL_ENDORSEMENT)
        if data is None:
            raise CollateralUnavailable("no TDX collateral (TCB Info, QE Identity, CRLs)",
                                        expected="collateral given to the verifier or an "
                                                 f"evidence endorsement {COLLATERAL_ENDORSEMENT!r}",
                                        found=f"FMSPC {pck.extensions.fmspc.hex()}",
                                        hint=_pcs_hint(pck))
        if not isinstance(data, bytes | bytearray | memoryview):
            raise MalformedEvidence("the collateral endorsement must be bytes",
                                    found=type(data).__name__)
        return _parse_collateral(_endorsed_collateral(bytes(data)))

    def _appraise_collateral(self, parsed: _Parsed, quote: Quote, qe: QeCertification,
                             pck: _Pck, at: datetime) -> _Outcome:
        expiry = _check_collateral(parsed, pck, self.root, at)
        if expiry.expired and not self.allow_expired_collateral:
            raise VerificationFailed("TDX collateral has expired at the verification time",
                                     found="; ".join(expiry.expired), hint=_pcs_hint(pck))
        body = quote.body
        tcb, qe_verdict = _tcb_outcome(parsed, pck.leaf.der, body.tee_tcb_svn,
                                       body.mr_signer_seam, body.seam_attributes, qe.report)
        valid_until, source = earliest((
            *expiry.ends,
            ("PCK certificate notAfter", pck.leaf.not_after),
            (f"{pck.ca.name} notAfter", pck.ca.not_after),
            (f"{self.root.name} notAfter", self.root.not_after)))
        return _Outcome(tcb, qe_verdict, expiry.expired, valid_until, source)


@dataclass(frozen=True)
class _TcbFields:
    """The only fields of the quote body that TCB matching reads (tcb.match_tcb): the cache
    below keys on exactly these bytes. A field match_tcb starts reading and this lacks fails
    loudly (AttributeError), never silently."""

    tee_tcb_svn: bytes
    mr_signer_seam: bytes
    seam_attributes: bytes


@functools.lru_cache(maxsize=256)  # each entry holds its collateral's parse
def _tcb_outcome(parsed: _Parsed, pck_der: bytes, tee_tcb_svn: bytes, mr_signer_seam: bytes,
                 seam_attributes: bytes, qe_report: EnclaveReport
                 ) -> tuple[TcbResult, Verdict | None]:
    """TCB level and QE Identity matching: pure functions of the collateral, the PCK's SVNs
    and these bytes, identical for every quote of one TD's platform. Failures raise (and are
    not cached)."""
    extensions = _extensions(pck_der)
    body = _TcbFields(tee_tcb_svn, mr_signer_seam, seam_attributes)
    tcb = match_tcb(parsed.tcb_info, extensions.sgx_svns, extensions.pce_svn,
                    body)  # type: ignore[arg-type]
    return tcb, match_qe(parsed.qe_identity, qe_report)


# --- output -------------------------------------------------------------------------------------

def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _claims(quote: Quote, pck: _Pck, parsed: _Parsed, outcome: _Outcome,
            at: datetime) -> dict[str, Any]:
    body, tcb = quote.body, outcome.tcb
    claims: dict[str, Any] = {
        "quote_version": quote.version,
        "body_type": body.body_type,
        "tee_tcb_svn": body.tee_tcb_svn.hex(),
        "mr_seam": body.mr_seam.hex(),
        "mr_signer_seam": body.mr_signer_seam.hex(),
        "seam_attributes": body.seam_attributes.hex(),
        "mr_td": body.mr_td.hex(),
        "mr_config_id": body.mr_config_id.hex(),
        "mr_owner": body.mr_owner.hex(),
        "mr_owner_config": body.mr_owner_config.hex(),
        **{f"rtmr{index}": value.hex() for index, value in enumerate(body.rtmrs)},
        "report_data": body.report_data.hex(),
        "td_attributes": decode_td_attributes(body.td_attributes),
        "xfam": body.xfam.hex(),
        "fmspc": pck.extensions.fmspc.hex(),
        "pce_id": pck.extensions.pce_id.hex(),
        "pce_svn": pck.extensions.pce_svn,
        "cpu_svn": pck.extensions.cpu_svn.hex(),
        "tcb_status": tcb.status,
        "tcb_date": _iso(tcb.tcb_date),
        "advisory_ids": list(tcb.advisory_ids),
        "tdx_module": _module_claim(tcb),
        "qe_tcb_status": "NoMatchingTcbLevel" if outcome.qe is None else outcome.qe.status,
        "qe_tcb_date": None if outcome.qe is None else _iso(outcome.qe.tcb_date),
        "qe_advisory_ids": [] if outcome.qe is None else list(outcome.qe.advisory_ids),
        "tcb_evaluation_data_number": parsed.tcb_info.evaluation_number,
        "collateral_expired": bool(outcome.expired),
        "verified_at": at.isoformat(),
    }
    if body.tee_tcb_svn_2 is not None and body.mr_servicetd is not None:
        claims["tee_tcb_svn_2"] = body.tee_tcb_svn_2.hex()
        claims["mr_servicetd"] = body.mr_servicetd.hex()
    return claims


def _module_claim(tcb: TcbResult) -> dict[str, Any] | None:
    if tcb.module is None:
        return None
    verdict = tcb.module.verdict
    return {"id": tcb.module.id,
            "status": "NoMatchingTcbLevel" if verdict is None else verdict.status,
            "tcb_date": None if verdict is None else _iso(verdict.tcb_date)}


def _checks(quote: Quote, pck: _Pck, root: _Cert, outcome: _Outcome) -> tuple[Reason, ...]:
    checks = [
        Reason("chain", True, f"PCK <- {pck.ca.name} <- pinned {root.name} (ECDSA), valid "
                              "at the given time"),
        Reason("qe_report", True, "QE report signed by the PCK key and binding the "
                                  "attestation key"),
        Reason("signature", True, "ECDSA P-256 quote signature verifies with the attestation "
                                  "key"),
        Reason("binding", True, "report_data binds the expected challenge"),
        Reason("collateral", True, "TCB Info and QE Identity signed by Intel's TCB Signing "
                                   "key; CRLs signed; PCK and CAs not revoked"),
        Reason("tcb", True, f"TCB status {outcome.tcb.status}, QE "
                            f"{'no matching level' if outcome.qe is None else outcome.qe.status}"),
    ]
    if outcome.expired:
        checks.append(Reason("collateral_expiry", False, "expired collateral accepted by the "
                             "verifier's configuration", found="; ".join(outcome.expired)))
    if quote.trailing:
        checks.append(Reason("trailing_bytes", True, f"{len(quote.trailing)} unsigned bytes "
                             "after the quote were ignored"))
    return tuple(checks)


def _describe(parsed: _Parsed, pck: _Pck, root: _Cert, pinned: bool) -> dict[str, Any]:
    info, identity = parsed.tcb_info, parsed.qe_identity
    return {
        "root": {"source": "pinned" if pinned else "configured", "subject": root.name,
                 "sha256": root.fingerprint},
        "pck": {"source": "evidence:quote", "subject": pck.leaf.name, "issuer": pck.ca.name,
                "sha256": pck.leaf.fingerprint, "not_after": pck.leaf.not_after.isoformat()},
        "tcb_info": {"source": parsed.source, "fmspc": info.fmspc.hex(),
                     "issue_date": info.issue_date.isoformat(),
                     "next_update": info.next_update.isoformat(),
                     "tcb_evaluation_data_number": info.evaluation_number},
        "qe_identity": {"source": parsed.source, "issue_date": identity.issue_date.isoformat(),
                        "next_update": identity.next_update.isoformat()},
        "crl": [{"source": parsed.source, "issuer": crl.issuer,
                 "next_update": _iso(crl.next_update)}
                for crl in (parsed.pck_crl, parsed.root_crl)],
    }


def verify_quote_chain(quote_bytes: bytes, *, at: datetime,
                       root: x509.Certificate | bytes | None = None) -> Mapping[str, Any]:
    """The collateral-free part of verification: quote and QE report signatures, key binding
    and the PCK chain to the root. For tools and tests on quotes whose collateral is gone;
    a verifier always goes on to the TCB (TdxVerifier.verify)."""
    at = require_aware(at, "verification time")
    quote = parse_quote(quote_bytes)
    raw = bytes(quote_bytes)
    qe = _qe_of(quote)
    pck = _verify_pck(qe, _load_root(root), at)
    _check_qe_report(quote, qe, pck)
    _check_quote_signature(quote, raw)
    return {"fmspc": pck.extensions.fmspc.hex(), "pce_svn": pck.extensions.pce_svn,
            "cpu_svn": pck.extensions.cpu_svn.hex(), "pck_ca": pck.ca.name,
            "qe_isv_svn": qe.report.isv_svn, "report_data": quote.body.report_data.hex()}


def collateral_request(quote_bytes: bytes) -> tuple[str, str]:
    """(FMSPC hex, "platform" or "processor"): which TCB Info and PCK CRL a quote needs, read
    from its PCK certificate without verifying anything (for fetching collateral)."""
    qe = _qe_of(parse_quote(quote_bytes))
    leaf = next((cert for cert in _pck_certificates(qe)
                 if sgx_extension_value(cert.certificate) is not None), None)
    if leaf is None:
        raise VerificationFailed("the quote's certificate chain has no PCK certificate")
    issuer = common_name(leaf.certificate.issuer)
    return _extensions(leaf.der).fmspc.hex(), "processor" if "Processor" in issuer else "platform"
