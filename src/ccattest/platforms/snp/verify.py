"""The SNP verifier: report signature, AMD chain to a pinned ARK, TCB, chip, CRL, binding.

Returns claims, never judges them: which measurements, TCB levels, policies and chips are
acceptable is the policy's business (policy/snp.py).
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ...errors import (
    CollateralUnavailable,
    ConfigError,
    MalformedEvidence,
    VerificationFailed,
)
from ...evidence import Evidence
from ...result import Reason
from ...timeutil import require_aware
from ..base import VerifiedClaims, earliest
from . import PLATFORM, PRODUCTS
from .abi import (
    SIGNATURE_ALGO_ECDSA_P384_SHA384,
    SIGNED_SIZE,
    GuestPolicy,
    SnpReport,
    decode_platform_info,
    decode_tcb,
    parse_report,
    split_report,
)
from .certs import (
    PARSE_ERRORS,
    AmdExtensions,
    amd_extensions,
    bundled_intermediates,
    common_name,
    der_bytes,
    load_certificates,
    parse_cert_table,
    pinned_arks,
)

CERT_ENDORSEMENTS = ("vcek", "vlek", "ask", "asvk", "ark", "cert_chain")
TABLE_ENDORSEMENT = "auxblob"
_LEAF_NAMES = {"SEV-VCEK": "vcek", "SEV-VLEK": "vlek"}
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
_KDS_QUERY = {"bootloader": "blSPL", "tee": "teeSPL", "snp": "snpSPL", "microcode": "ucodeSPL",
              "fmc": "fmcSPL"}


@dataclass(frozen=True)
class _Cert:
    """What verification needs from one certificate, extracted once per distinct DER."""

    certificate: x509.Certificate
    der: bytes
    subject: bytes  # DER names, compared byte for byte
    issuer: bytes
    name: str  # subject common name
    not_before: datetime
    not_after: datetime
    fingerprint: str
    public_key: Any

    @property
    def self_signed(self) -> bool:
        return self.subject == self.issuer

    @functools.cached_property  # the key never changes; ABC isinstance checks are slow
    def is_rsa(self) -> bool:
        return isinstance(self.public_key, rsa.RSAPublicKey)

    @functools.cached_property
    def is_ec(self) -> bool:
        return isinstance(self.public_key, ec.EllipticCurvePublicKey)

    @property
    def window(self) -> str:
        return f"{self.not_before.isoformat()} .. {self.not_after.isoformat()}"

    def spki(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class _Sourced:
    cert: _Cert
    source: str


# Parsing and chain signatures are pure functions of the bytes, so they are cached (bounded):
# a verifier re-checks the same peers every round. Validity times are checked on every call.
@functools.lru_cache(maxsize=1024)
def _cert(der: bytes) -> _Cert:
    certificate = load_certificates(der)[0]
    try:  # cryptography parses names, times and keys lazily: any of them may fail here
        return _Cert(
            certificate=certificate, der=der, subject=certificate.subject.public_bytes(),
            issuer=certificate.issuer.public_bytes(), name=common_name(certificate),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            fingerprint=certificate.fingerprint(hashes.SHA256()).hex(),
            public_key=certificate.public_key(),
        )
    except PARSE_ERRORS as exc:
        raise MalformedEvidence("certificate does not parse", found=str(exc)) from None


def _cert_of(certificate: x509.Certificate) -> _Cert:
    return _cert(der_bytes(certificate))


@functools.lru_cache(maxsize=256)
def _certs_in(key: str, data: bytes) -> tuple[_Sourced, ...]:
    if key == TABLE_ENDORSEMENT:
        table = parse_cert_table(data)
        return tuple(_Sourced(_cert_of(cert), f"evidence:{key}/{name}")
                     for name, blob in table.items() for cert in load_certificates(blob))
    return tuple(_Sourced(_cert_of(cert), f"evidence:{key}") for cert in load_certificates(data))


@functools.lru_cache(maxsize=1024)
def _extensions(der: bytes) -> AmdExtensions:
    return amd_extensions(_cert(der).certificate)


@functools.lru_cache(maxsize=256)
def _pss_signed(child_der: bytes, issuer_der: bytes) -> bool:
    """AMD signs with RSASSA-PSS, SHA-384, salt 48; PKCS#1 v1.5 would not verify."""
    child, issuer = _cert(child_der), _cert(issuer_der)
    return _pss_valid(issuer.public_key, child.certificate.signature,
                      child.certificate.tbs_certificate_bytes)


def _pss_valid(public_key: Any, signature: bytes, data: bytes) -> bool:
    if not isinstance(public_key, rsa.RSAPublicKey):
        return False
    try:
        public_key.verify(signature, data, _PSS, hashes.SHA384())
    except (InvalidSignature, ValueError):
        return False
    return True


def _gather(endorsements: Mapping[str, bytes]) -> list[_Sourced]:
    """Every certificate the evidence carries, in any of the accepted shapes, deduplicated."""
    seen: dict[bytes, _Sourced] = {}
    for key in (*CERT_ENDORSEMENTS, TABLE_ENDORSEMENT):
        data = endorsements.get(key)
        if not data:
            continue
        if not isinstance(data, bytes | bytearray | memoryview):
            raise MalformedEvidence(f"endorsement {key!r} must be bytes",
                                    found=type(data).__name__)
        for item in _certs_in(key, bytes(data)):
            seen.setdefault(item.cert.der, item)
    return list(seen.values())


def _leaf_kind(cert: _Cert) -> str | None:
    return _LEAF_NAMES.get(cert.name) if cert.is_ec else None


def _load_root(product: str, value: x509.Certificate | bytes) -> _Cert:
    if product not in PRODUCTS:
        raise ConfigError("unknown SNP product for a root", expected=f"one of {PRODUCTS}",
                          found=product)
    if not isinstance(value, x509.Certificate | bytes | bytearray):
        raise ConfigError(f"ARK for {product} does not parse",
                          expected="a certificate or its PEM/DER bytes",
                          found=type(value).__name__)
    try:
        certificate = value if isinstance(value, x509.Certificate) else load_certificates(value)[0]
        root = _cert_of(certificate)
    except MalformedEvidence as exc:
        raise ConfigError(f"ARK for {product} does not parse", found=exc.message) from None
    if not root.self_signed or not root.is_rsa:
        raise ConfigError(f"ARK for {product} must be a self-signed RSA certificate",
                          found=root.name)
    return root


def _load_crl(value: x509.CertificateRevocationList | bytes) -> x509.CertificateRevocationList:
    if isinstance(value, x509.CertificateRevocationList):
        return value
    data = bytes(value)
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except PARSE_ERRORS as exc:
        raise ConfigError("CRL does not parse", found=str(exc)) from None


@dataclass(frozen=True, eq=False)
class _Crl:
    """What verification needs from one CRL, extracted once per distinct bytes (its issuer
    name alone takes tens of microseconds to convert, every time it is asked for)."""

    crl: x509.CertificateRevocationList
    der: bytes
    issuer: bytes  # DER name, compared byte for byte with certificates' subjects
    issuer_name: str  # its common name, for people
    issuer_rfc4514: str
    last_update: datetime
    next_update: datetime | None


@functools.lru_cache(maxsize=64)
def _crl_of(data: bytes) -> _Crl:
    """A CRL from its PEM or DER bytes; ConfigError (never cached) when it does not parse."""
    crl = _load_crl(data)
    try:  # names and times are parsed lazily: any of them may fail here
        names = crl.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return _Crl(crl, crl.public_bytes(serialization.Encoding.DER),
                    crl.issuer.public_bytes(),
                    str(names[0].value) if names else crl.issuer.rfc4514_string(),
                    crl.issuer.rfc4514_string(), crl.last_update_utc, crl.next_update_utc)
    except PARSE_ERRORS as exc:
        raise ConfigError("CRL does not parse", found=str(exc)) from None


def _crl_info(value: x509.CertificateRevocationList | bytes) -> _Crl:
    if isinstance(value, x509.CertificateRevocationList):
        return _crl_of(value.public_bytes(serialization.Encoding.DER))
    return _crl_of(bytes(value))


@functools.lru_cache(maxsize=256)
def _crl_signed(crl_der: bytes, issuer_der: bytes) -> bool:
    """The CRL's RSA-PSS signature by the issuer: a pure function of the two byte strings.
    Its window and the revoked serials are checked on every call."""
    crl = _crl_of(crl_der).crl
    return _pss_valid(_cert(issuer_der).public_key, crl.signature, crl.tbs_certlist_bytes)


def _check_validity(cert: _Cert, at: datetime, what: str) -> None:
    if not cert.not_before <= at <= cert.not_after:
        raise VerificationFailed(f"{what} ({cert.name}) is not valid at the verification time",
                                 expected=cert.window, found=at.isoformat())


@dataclass(frozen=True)
class _Chain:
    leaf: _Sourced
    kind: str  # "vcek" or "vlek"
    extensions: AmdExtensions
    intermediate: _Sourced
    ark: _Cert
    product: str


class SnpVerifier:
    platform: ClassVar[str] = PLATFORM

    def __init__(self, roots: Mapping[str, x509.Certificate | bytes] | None = None, *,
                 crls: Iterable[x509.CertificateRevocationList | bytes] = (),
                 allow_missing_crl: bool = True) -> None:
        self._bundled = roots is None  # AMD's intermediates only go with AMD's roots
        source = pinned_arks() if roots is None else roots
        self.roots = {product: _load_root(product, value) for product, value in source.items()}
        if not self.roots:
            raise ConfigError("no ARK configured", hint="leave roots unset for AMD's ARKs")
        self.crls = tuple(_load_crl(crl) for crl in crls)
        self._crls = tuple(_crl_info(crl) for crl in self.crls)
        self.allow_missing_crl = allow_missing_crl

    def verify(self, evidence: Evidence, *, report_data: bytes, at: datetime) -> VerifiedClaims:
        at = require_aware(at, "verification time")
        if evidence.platform != PLATFORM:
            raise MalformedEvidence("evidence is for another platform",
                                    expected=PLATFORM, found=evidence.platform)
        if len(report_data) != 64:
            raise ConfigError("expected report_data must be 64 bytes", expected=64,
                              found=len(report_data))
        raw, trailing = split_report(evidence.report)
        report = parse_report(raw)  # never the trailing bytes: nothing signs them
        _check_signing_fields(report)
        chain = self._chain(report, _gather(evidence.endorsements), at)
        _check_tcb(report, chain)
        chip_note = _check_chip(report, chain)
        _check_signature(raw, report, chain)
        if not hmac.compare_digest(report.report_data, report_data):
            raise VerificationFailed("report_data does not bind the expected challenge",
                                     expected=report_data.hex(), found=report.report_data.hex(),
                                     hint="wrong nonce, wrong identity, or a replayed report")
        revocation, crls = self._revocation(chain, at, _evidence_crls(evidence))
        checks = _checks(chain, chip_note, revocation)
        if trailing:
            checks += (Reason("trailing_bytes", True, f"{len(trailing)} unsigned bytes after "
                              "the report were ignored"),)
        valid_until, source = _valid_until(chain, crls)
        return VerifiedClaims(
            platform=PLATFORM,
            claims=_claims(report, chain, revocation),
            checks=checks,
            attester=None,
            collateral=_collateral(chain, crls),
            valid_until=valid_until,
            valid_until_source=source,
        )

    # --- chain ------------------------------------------------------------------------------

    def _chain(self, report: SnpReport, certs: list[_Sourced], at: datetime) -> _Chain:
        leaf, kind = _select_leaf(report, certs)
        extensions = _extensions(leaf.cert.der)
        product = _product(report, extensions)
        ark = self.roots.get(product)
        if ark is None:
            raise VerificationFailed(f"no pinned ARK for {product}",
                                     expected=f"one of {sorted(self.roots)}", found=product)
        intermediate = self._intermediate(leaf.cert, kind, certs)
        _check_supplied_arks(certs, intermediate.cert, ark, product)
        if not _pss_signed(intermediate.cert.der, ark.der):
            raise VerificationFailed(
                f"{intermediate.cert.name} is not signed by the pinned {ark.name}",
                expected=f"RSA-PSS SHA-384 signature by ARK {ark.fingerprint[:16]}...",
                found=f"issuer {intermediate.cert.certificate.issuer.rfc4514_string()}")
        if not _pss_signed(leaf.cert.der, intermediate.cert.der):
            raise VerificationFailed(f"{kind.upper()} is not signed by {intermediate.cert.name}",
                                     expected="RSA-PSS SHA-384 signature by the intermediate",
                                     found=f"{kind.upper()} {leaf.cert.fingerprint[:16]}...")
        for cert, what in ((ark, "ARK"), (intermediate.cert, "intermediate"),
                           (leaf.cert, kind.upper())):
            _check_validity(cert, at, what)
        return _Chain(leaf, kind, extensions, intermediate, ark, product)

    def _intermediate(self, leaf: _Cert, kind: str, certs: list[_Sourced]) -> _Sourced:
        candidates = [item for item in certs
                      if item.cert.is_rsa and not item.cert.self_signed
                      and item.cert.subject == leaf.issuer]
        if not candidates and self._bundled:
            candidates = [_Sourced(_cert_of(cert), "bundled") for cert in bundled_intermediates()
                          if cert.subject.public_bytes() == leaf.issuer]
        if not candidates:
            wanted = "ASVK" if kind == "vlek" else "ASK"
            raise CollateralUnavailable(
                f"no {wanted} for the {kind.upper()} in the evidence",
                expected=f"a certificate named {leaf.certificate.issuer.rfc4514_string()}",
                hint="pass the product's cert_chain from AMD KDS with --certs")
        chosen = candidates[0]
        is_asvk = chosen.cert.name.startswith("SEV-VLEK")
        if is_asvk != (kind == "vlek"):
            raise VerificationFailed(f"{kind.upper()} issued by the wrong kind of intermediate",
                                     expected="ASVK for a VLEK, ASK for a VCEK",
                                     found=chosen.cert.name)
        return chosen

    # --- revocation -------------------------------------------------------------------------

    def _revocation(self, chain: _Chain, at: datetime, extra: tuple[_Crl, ...] = ()
                    ) -> tuple[str, list[_Crl]]:
        used = []
        pairs = ((chain.intermediate.cert, chain.ark), (chain.leaf.cert, chain.intermediate.cert))
        for cert, issuer in pairs:
            for crl in (*self._crls, *extra):
                if crl.issuer == issuer.subject:
                    _check_crl(crl, issuer, cert, at)
                    used.append(crl)
        # The ARK's CRL is the one AMD publishes; without it the intermediate is unchecked.
        checked = any(crl.issuer == chain.ark.subject for crl in used)
        if not checked and not self.allow_missing_crl:
            raise VerificationFailed(f"no CRL from {chain.ark.name} was given",
                                     expected="a current CRL signed by the ARK",
                                     hint=f"fetch https://kdsintf.amd.com/vcek/v1/"
                                          f"{chain.product}/crl")
        return ("checked" if checked else "not_checked"), used


def _valid_until(chain: _Chain, crls: list[_Crl]) -> tuple[datetime | None, str | None]:
    """The first end among the CRLs used (each checked current, so each has a nextUpdate)
    and the chain's certificates."""
    kind = chain.kind.upper()
    return earliest((
        *((f"CRL from {crl.issuer_name} nextUpdate", crl.next_update) for crl in crls),
        (f"{kind} notAfter", chain.leaf.cert.not_after),
        (f"{chain.intermediate.cert.name} notAfter", chain.intermediate.cert.not_after),
        (f"{chain.ark.name} notAfter", chain.ark.not_after)))


def _evidence_crls(evidence: Evidence) -> tuple[_Crl, ...]:
    """A CRL carried as an endorsement (e.g. fetched from AMD KDS with the VCEK); it is
    trusted only after its signature checks out against the pinned chain."""
    data = evidence.endorsements.get("crl")
    if data is None:
        return ()
    try:
        return (_crl_of(bytes(data)),)
    except ConfigError as error:
        raise MalformedEvidence("the CRL endorsement does not parse", found=error.found) from None


def _check_crl(crl: _Crl, issuer: _Cert, cert: _Cert, at: datetime) -> None:
    if not _crl_signed(crl.der, issuer.der):
        raise VerificationFailed(f"CRL is not signed by {issuer.name}",
                                 expected="RSA-PSS SHA-384 signature by the issuer")
    next_update = crl.next_update
    if next_update is None or not crl.last_update <= at <= next_update:
        window = f"{crl.last_update.isoformat()} .. {next_update and next_update.isoformat()}"
        raise VerificationFailed(f"CRL from {issuer.name} is not current", expected=window,
                                 found=at.isoformat())
    if crl.crl.get_revoked_certificate_by_serial_number(
            cert.certificate.serial_number) is not None:
        raise VerificationFailed(f"{cert.name} is revoked by {issuer.name}",
                                 found=f"serial {cert.certificate.serial_number:#x}")


# --- checks on the report and its leaf ---------------------------------------------------------

def _check_signing_fields(report: SnpReport) -> None:
    if report.signature_algo != SIGNATURE_ALGO_ECDSA_P384_SHA384:
        raise VerificationFailed("unsupported report signature algorithm",
                                 expected="1 (ECDSA P-384 with SHA-384)",
                                 found=report.signature_algo)
    if report.signing_key not in ("vcek", "vlek") or report.mask_chip_key:
        raise VerificationFailed("report is not signed by a VCEK or VLEK",
                                 expected="signing_key vcek or vlek, MASK_CHIP_KEY clear",
                                 found=f"signing_key {report.signing_key}, "
                                       f"mask_chip_key {report.mask_chip_key}")


def _select_leaf(report: SnpReport, certs: list[_Sourced]) -> tuple[_Sourced, str]:
    leaves = [item for item in certs if item.cert.is_ec]
    if not leaves:
        raise CollateralUnavailable("no VCEK or VLEK in the evidence",
                                    expected="endorsements vcek, vlek, cert_chain or auxblob",
                                    hint=_kds_hint(report))
    wanted = report.signing_key
    matching = [item for item in leaves if _leaf_kind(item.cert) == wanted]
    if not matching:
        raise VerificationFailed(f"report names a {wanted.upper()} as its signer, "
                                 "the evidence carries none",
                                 expected=f"SEV-{wanted.upper()}",
                                 found=", ".join(item.cert.name for item in leaves))
    # Several leaves (e.g. certificate table and KDS copy): prefer one for this chip.
    matching.sort(key=lambda item: not _for_chip(_extensions(item.cert.der), report.chip_id))
    return matching[0], wanted


def _for_chip(extensions: AmdExtensions, chip_id: bytes) -> bool:
    # Turin hwIDs are the first 8 bytes of chip_id; others all 64.
    return extensions.hwid is not None and chip_id.startswith(extensions.hwid)


def _kds_hint(report: SnpReport) -> str:
    product = report.product
    hwid = report.chip_id[:8] if product == "Turin" else report.chip_id
    query = "&".join(f"{_KDS_QUERY[name]}={value}"
                     for name, value in report.tcb("reported_tcb", product).items())
    return (f"pass the VCEK with --certs, or fetch it from AMD KDS: https://kdsintf.amd.com/"
            f"vcek/v1/{product or '<Milan|Genoa|Turin>'}/{hwid.hex()}?{query}")


def _product(report: SnpReport, extensions: AmdExtensions) -> str:
    from_cpuid, from_cert = report.product, extensions.product
    if from_cpuid and from_cert and from_cpuid != from_cert:
        raise VerificationFailed("report and certificate name different products",
                                 expected=f"{from_cpuid} (report cpuid)",
                                 found=f"{extensions.product_name} (certificate)")
    product = from_cpuid or from_cert
    if product is None:
        raise VerificationFailed("cannot tell the product of this report",
                                 expected=f"one of {PRODUCTS} from cpuid or productName",
                                 found=f"cpuid {report.cpuid_family:#x}/{report.cpuid_model:#x},"
                                       f" productName {extensions.product_name!r}")
    return product


def _check_supplied_arks(certs: list[_Sourced], intermediate: _Cert, pinned: _Cert,
                         product: str) -> None:
    # A chain-supplied ARK never replaces the pinned one; one that differs is an error.
    for item in certs:
        supplied = item.cert
        if not supplied.self_signed or supplied.subject != intermediate.issuer:
            continue
        if supplied.der != pinned.der and supplied.spki() != pinned.spki():
            raise VerificationFailed(f"the evidence's ARK is not the pinned {product} ARK",
                                     expected=pinned.fingerprint, found=supplied.fingerprint)


def _check_tcb(report: SnpReport, chain: _Chain) -> None:
    reported = report.tcb("reported_tcb", chain.product)
    certified = {name: chain.extensions.spls.get(name) for name in reported}
    if certified != reported:
        raise VerificationFailed(f"reported TCB differs from the {chain.kind.upper()}'s SPLs",
                                 expected=reported, found=certified,
                                 hint="fetch the VCEK for the reported TCB from AMD KDS")


def _check_chip(report: SnpReport, chain: _Chain) -> str:
    hwid = chain.extensions.hwid
    if chain.kind == "vlek":
        if hwid is not None:
            raise VerificationFailed("VLEK carries a hwID", expected="no hwID extension")
        return "VLEK: no chip identity (cloud-provider key)"
    if hwid is None:
        raise VerificationFailed("VCEK carries no hwID", expected="hwID extension")
    expected = report.chip_id[:8] if chain.product == "Turin" else report.chip_id
    if not any(report.chip_id):
        return f"chip_id masked in the report; VCEK hwID {hwid.hex()}"
    if not hmac.compare_digest(hwid, expected):
        raise VerificationFailed("VCEK is for another chip", expected=expected.hex(),
                                 found=hwid.hex())
    return "VCEK hwID equals the report's chip_id"


def _check_signature(raw: bytes, report: SnpReport, chain: _Chain) -> None:
    public_key = chain.leaf.cert.public_key
    if not isinstance(public_key.curve, ec.SECP384R1):
        raise VerificationFailed(f"{chain.kind.upper()} key is not on P-384",
                                 found=public_key.curve.name)
    signature = encode_dss_signature(report.signature_r, report.signature_s)
    try:
        public_key.verify(signature, raw[:SIGNED_SIZE], ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise VerificationFailed(f"report signature does not verify with the "
                                 f"{chain.kind.upper()}",
                                 found=f"r {report.signature_r:x}"[:24] + "...") from None


# --- output ---------------------------------------------------------------------------------

def _claims(report: SnpReport, chain: _Chain, revocation: str) -> dict[str, Any]:
    product = chain.product
    claims: dict[str, Any] = {
        "version": report.version,
        "guest_svn": report.guest_svn,
        "policy": dict(_policy_claim(report.policy)),
        "vmpl": report.vmpl,
        "measurement": report.measurement.hex(),
        "report_data": report.report_data.hex(),
        "host_data": report.host_data.hex(),
        "chip_id": report.chip_id.hex(),
        "product": product,
        "product_name": chain.extensions.product_name,
        "signing_key": chain.kind,
        "id_key_digest": report.id_key_digest.hex(),
        "author_key_digest": report.author_key_digest.hex(),
        "author_key_en": report.author_key_en,
        "platform_info": dict(_platform_info_claim(report.platform_info)),
        "family_id": report.family_id.hex(),
        "image_id": report.image_id.hex(),
        "report_id": report.report_id.hex(),
        "report_id_ma": report.report_id_ma.hex(),
        "firmware": {"current": report.current_firmware,
                     "committed": report.committed_firmware},
        "revocation": revocation,
        "cpuid": ({"family": report.cpuid_family, "model": report.cpuid_model,
                   "stepping": report.cpuid_stepping} if report.has_cpuid else None),
    }
    for name in ("reported_tcb", "current_tcb", "committed_tcb", "launch_tcb"):
        claims[name] = dict(_tcb_claim(getattr(report, name), product))
    if report.version >= 5:
        claims["launch_mit_vector"] = report.launch_mit_vector
        claims["current_mit_vector"] = report.current_mit_vector
    if chain.extensions.csp_id is not None:
        claims["csp_id"] = chain.extensions.csp_id
    return claims


# Decoded bit fields, one per distinct raw value; each call gets its own copy of the dict.
@functools.lru_cache(maxsize=256)
def _policy_claim(raw: int) -> Mapping[str, Any]:
    return GuestPolicy(raw).to_dict()


@functools.lru_cache(maxsize=256)
def _platform_info_claim(raw: int) -> Mapping[str, Any]:
    return decode_platform_info(raw)


@functools.lru_cache(maxsize=256)
def _tcb_claim(raw: int, product: str | None) -> Mapping[str, int]:
    return decode_tcb(raw, product)


def _checks(chain: _Chain, chip_note: str, revocation: str) -> tuple[Reason, ...]:
    return _checks_of(chain.kind, chain.intermediate.cert.name, chain.ark.name, chain.product,
                      chip_note, revocation)


@functools.lru_cache(maxsize=256)
def _checks_of(kind: str, intermediate: str, ark: str, product: str, chip_note: str,
               revocation: str) -> tuple[Reason, ...]:
    """The same words for every report of one chain (Reasons are immutable)."""
    kind = kind.upper()
    return (
        Reason("chain", True, f"{kind} <- {intermediate} <- pinned "
                              f"{ark} (RSA-PSS SHA-384), valid at the given time"),
        Reason("signature", True, f"ECDSA P-384 report signature verifies with the {kind}"),
        Reason("tcb", True, f"reported TCB equals the {kind}'s SPLs"),
        Reason("chip", True, chip_note),
        Reason("product", True, f"product {product} consistent across report and chain"),
        Reason("binding", True, "report_data binds the expected challenge"),
        Reason("revocation", True,
               "ASK/ASVK checked against the ARK's CRL" if revocation == "checked"
               else "no CRL given: revocation not checked"),
    )


def _collateral(chain: _Chain, crls: list[_Crl]) -> dict[str, Any]:
    def describe(cert: _Cert, source: str) -> dict[str, str]:
        return {"source": source, "subject": cert.name, "sha256": cert.fingerprint,
                "not_after": cert.not_after.isoformat()}

    intermediate = "asvk" if chain.kind == "vlek" else "ask"
    collateral: dict[str, Any] = {
        "ark": describe(chain.ark, "pinned"),
        intermediate: describe(chain.intermediate.cert, chain.intermediate.source),
        chain.kind: describe(chain.leaf.cert, chain.leaf.source),
    }
    if crls:
        collateral["crl"] = [{"source": "configured", "issuer": crl.issuer_rfc4514,
                              "next_update": str(crl.next_update)} for crl in crls]
    return collateral
