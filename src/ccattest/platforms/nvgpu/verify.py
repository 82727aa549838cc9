"""The NVIDIA GPU verifier: device chain to the pinned NVIDIA Device Identity CA, FWID,
report signature, nonce, and (through a caller's OCSP checker) revocation.

Returns claims, never judges them: which architectures, driver and VBIOS versions and
measurements are acceptable is the policy's business (policy/nvgpu.py). A RIM comparison
(rim.py), given as `rim=`, adds its verdict to `measurements` for evidence that verified.

What a GPU report proves, and what it does not. A report that verifies proves that a genuine
NVIDIA Hopper or Blackwell GPU (its device key certified up to the NVIDIA Device Identity CA,
which ccattest pins) signed these measurements in answer to our nonce, so just now; compared
with NVIDIA's signed driver and VBIOS RIMs, it proves the GPU runs the firmware NVIDIA
published for the versions it reports. As the driver gives no report with CC mode off, a
signed report also means CC mode or DevTools mode, but not which: nothing the GPU signs says
whether DevTools mode (debugging and profiling; GPU memory not confidential) is on. So the
attester reads the CC and DevTools state from NVML and sends it beside the report (an
evidence log entry); the verifier passes it on as the claims `cc_mode`, `devtools` and
`cc_environment`, with `cc_state` = "attester-declared (NVML), unsigned": it is only as
trustworthy as the host that collected it. Without that entry, `cc_state` is "not reported"
and a policy requiring CC mode can only warn. A report does not show either which CPU TEE
the GPU serves (binding both to one challenge does, see evidence.bind) nor, without an OCSP
check, that no device certificate was revoked.

A verdict lasts no longer than what it rested on (VerifiedClaims.valid_until): the earliest
of the device chain's notAfter dates (the pinned root included), each OCSP answer's nextUpdate
and the notAfter of every certificate in the RIM signing chains the comparison used, over
every GPU.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ...errors import CollateralUnavailable, ConfigError, MalformedEvidence, VerificationFailed
from ...evidence import Evidence
from ...result import Reason
from ...timeutil import require_aware
from ..base import VerifiedClaims, earliest
from . import (
    ARCHITECTURES,
    CC_STATE_DECLARED,
    CC_STATE_LOG_TYPE,
    CC_STATE_NOT_REPORTED,
    PLATFORM,
)
from .abi import (
    NONCE_SIZE,
    SIGNATURE_SIZE,
    GpuEvidence,
    GpuReport,
    is_evidence_list,
    parse_evidence_list,
    parse_report,
    report_bytes,
)
from .certs import (
    PARSE_ERRORS,
    arch_from_name,
    certificate_fwid,
    common_name,
    load_chain,
    pinned_root,
)

CHAIN_ENDORSEMENT = "cert_chain"
REVOCATION_STATES = ("good", "revoked", "unknown", "on_hold")
_ECDSA_SHA384 = ec.ECDSA(hashes.SHA384())


class OcspChecker(Protocol):
    def status(self, cert: x509.Certificate, issuer: x509.Certificate, at: datetime) -> Any:
        """"good", "revoked", "unknown" or "on_hold" (certificateHold) for `cert` at `at`, or
        an answer with `status` and `next_update` (as ocsp.OcspResult)."""
        ...


class OcspResultSource(Protocol):
    def check(self, cert: x509.Certificate, issuer: x509.Certificate, at: datetime) -> Any:
        """An answer with `status` and `next_update` (ocsp.OcspClient.check's OcspResult);
        preferred over status() where a checker has both, as it says how long it holds."""
        ...


OcspSource = (OcspResultSource | OcspChecker
              | Callable[[x509.Certificate, x509.Certificate, datetime], Any])
# Compares a verified report's measurements with reference values (e.g. rim.compare on the
# driver and VBIOS RIMs the claims name); its result is merged into claims["measurements"],
# except RIM_VALIDITY (see there).
RimComparison = Callable[[GpuReport, Mapping[str, Any], datetime], Mapping[str, Any]]
# Under this key a RimComparison may return (name, end of validity) pairs for what the
# comparison rested on (the RIM signing certificates' notAfter): the verifier takes them out
# of the mapping for VerifiedClaims.valid_until; they never become claims.
RIM_VALIDITY = "_valid_until"
Bounds: TypeAlias = tuple[tuple[str, datetime], ...]


@dataclass(frozen=True)
class _Cert:
    """What verification needs from one certificate, extracted once per distinct DER."""

    certificate: x509.Certificate
    der: bytes
    name: str
    subject: str
    serial: str
    not_before: datetime
    not_after: datetime
    fingerprint: str
    public_key: Any
    self_signed: bool
    is_ca: bool

    @property
    def window(self) -> str:
        return f"{self.not_before.isoformat()} .. {self.not_after.isoformat()}"


# Parsing and chain signatures are pure functions of the bytes, so they are cached (bounded):
# a verifier re-checks the same GPUs every round. Validity times are checked on every call.
@functools.lru_cache(maxsize=1024)
def _cert(der: bytes) -> _Cert:
    certificate = x509.load_der_x509_certificate(der)
    try:  # cryptography parses names, times, keys and extensions lazily
        return _Cert(
            certificate=certificate, der=der, name=common_name(certificate),
            subject=certificate.subject.rfc4514_string(),
            serial=f"{certificate.serial_number:x}",
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            fingerprint=certificate.fingerprint(hashes.SHA256()).hex(),
            public_key=certificate.public_key(),
            self_signed=certificate.subject == certificate.issuer,
            is_ca=_is_ca(certificate),
        )
    except PARSE_ERRORS as exc:
        raise MalformedEvidence("GPU certificate does not parse", found=str(exc)) from None


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


@functools.lru_cache(maxsize=256)
def _chain(pem: bytes) -> tuple[_Cert, ...]:
    return tuple(_cert(_der(certificate)) for certificate in load_chain(pem))


@functools.lru_cache(maxsize=1024)
def _issued_by(child_der: bytes, issuer_der: bytes) -> bool:
    """Issuer name and ECDSA signature; the result is cached, the failure reason is not."""
    try:
        _cert(child_der).certificate.verify_directly_issued_by(_cert(issuer_der).certificate)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


@functools.lru_cache(maxsize=1024)
def _fwid(der: bytes) -> tuple[str, bytes] | None:
    return certificate_fwid(_cert(der).certificate)


def _load_root(value: x509.Certificate | bytes) -> _Cert:
    if not isinstance(value, x509.Certificate | bytes | bytearray):
        raise ConfigError("GPU root does not parse", expected="a certificate or its PEM/DER",
                          found=type(value).__name__)
    try:
        if isinstance(value, x509.Certificate):
            root = _cert(_der(value))
        elif b"-----BEGIN" in value:
            root = _cert(_der(load_chain(bytes(value))[0]))
        else:
            root = _cert(bytes(value))
    except (MalformedEvidence, *PARSE_ERRORS) as exc:
        raise ConfigError("GPU root does not parse", found=str(exc)) from None
    if not root.self_signed or not isinstance(root.public_key, ec.EllipticCurvePublicKey):
        raise ConfigError("GPU root must be a self-signed ECDSA certificate", found=root.subject)
    return root


@dataclass(frozen=True)
class _DeviceChain:
    device: tuple[_Cert, ...]  # leaf first, without any root
    root: _Cert
    arch: str
    supplied_root: str  # what became of the root the GPU sent

    @property
    def leaf(self) -> _Cert:
        return self.device[0]

    def links(self) -> list[tuple[_Cert, _Cert]]:
        return list(zip(self.device, (*self.device[1:], self.root), strict=True))


@dataclass(frozen=True)
class _Outcome:
    claims: dict[str, Any]
    checks: tuple[Reason, ...]
    collateral: dict[str, Any]
    bounds: Bounds  # (name, end of validity) of what this GPU's verdict rested on


class NvgpuVerifier:
    platform: ClassVar[str] = PLATFORM

    def __init__(self, *, root: x509.Certificate | bytes | None = None,
                 ocsp: OcspSource | None = None, rim: RimComparison | None = None) -> None:
        self.root = _load_root(pinned_root() if root is None else root)
        self.root_source = "pinned" if root is None else "configured"
        self.ocsp = ocsp
        self.rim = rim

    def verify(self, evidence: Evidence, *, report_data: bytes, at: datetime) -> VerifiedClaims:
        at = require_aware(at, "verification time")
        if evidence.platform != PLATFORM:
            raise MalformedEvidence("evidence is for another platform",
                                    expected=PLATFORM, found=evidence.platform)
        if not isinstance(report_data, bytes | bytearray) or len(report_data) != NONCE_SIZE:
            raise ConfigError("the expected GPU nonce must be 32 bytes", expected=NONCE_SIZE,
                              found=len(report_data) if isinstance(report_data, bytes |
                                                                  bytearray) else report_data)
        state = local_cc_state(evidence.log)
        if is_evidence_list(evidence.report):
            return self._verify_list(evidence, bytes(report_data), at, state)
        chain = evidence.endorsements.get(CHAIN_ENDORSEMENT)
        if not chain:
            raise CollateralUnavailable("no GPU certificate chain in the evidence",
                                        expected=f"endorsement {CHAIN_ENDORSEMENT!r}",
                                        hint="pass the chain NVML returned with --certs")
        outcome = self._verify_one(evidence.report, bytes(chain), bytes(report_data), at)
        valid_until, source = earliest(outcome.bounds)
        return VerifiedClaims(platform=PLATFORM, claims={**outcome.claims, **state},
                              checks=(*outcome.checks, _cc_state_check(state)),
                              collateral=outcome.collateral, valid_until=valid_until,
                              valid_until_source=source)

    # --- one GPU ----------------------------------------------------------------------------

    def _verify_one(self, report: bytes | str, chain_pem: bytes, nonce: bytes, at: datetime,
                    entry: GpuEvidence | None = None) -> _Outcome:
        raw = report_bytes(report)
        parsed = parse_report(raw)
        if entry is not None:
            _check_entry(entry, parsed)
        chain = self._device_chain(chain_pem, at)
        if entry is not None and entry.arch.upper() != chain.arch:
            raise VerificationFailed("the evidence entry names another architecture than its "
                                     "certificates", expected=chain.arch, found=entry.arch)
        _check_chip_info(parsed, chain)
        fwid_note = _check_fwid(parsed, chain)
        _check_signature(raw, parsed, chain)
        if not hmac.compare_digest(parsed.nonce, nonce):
            raise VerificationFailed("the report answers another nonce",
                                     expected=nonce.hex(), found=parsed.nonce.hex(),
                                     hint="wrong nonce, or a replayed report")
        revocation, statuses, ocsp_bounds = self._revocation(chain, at)
        claims = _claims(parsed, chain, revocation)
        checks = _checks(chain, fwid_note, revocation)
        rim_bounds: Bounds = ()
        if self.rim is not None:  # only for evidence that verified: RIMs cost fetches
            compared = dict(self.rim(parsed, claims, at))
            rim_bounds = _rim_bounds(compared.pop(RIM_VALIDITY, ()))
            claims["measurements"] = {**claims["measurements"], **compared}
            verdict = {True: "they match", False: "they differ"}.get(
                claims["measurements"].get("matched"), "no verdict")
            checks += (Reason("rim", True, "measurements compared with the reference values: "
                              + verdict),)
        # the most telling first: earliest() gives a tie to the first name
        bounds = (*ocsp_bounds, *rim_bounds,
                  *((f"{cert.name} notAfter", cert.not_after)
                    for cert in (*chain.device, chain.root)))
        return _Outcome(claims=claims, checks=checks,
                        collateral=self._collateral(chain, statuses), bounds=bounds)

    def _device_chain(self, pem: bytes, at: datetime) -> _DeviceChain:
        supplied = list(_chain(pem))
        note = "the GPU sent no root"
        if supplied and supplied[-1].self_signed:
            sent = supplied.pop()
            note = ("the GPU's copy of the root equals the pinned one" if sent.der == self.root.der
                    else f"the GPU's root ({sent.name}) was replaced by the pinned one")
        if not supplied:
            raise VerificationFailed("the GPU certificate chain holds no device certificate",
                                     expected="leaf, BROM, Provisioner ICA, Identity CA, root",
                                     found=f"{len(supplied) + 1} self-signed certificate")
        chain = _DeviceChain(tuple(supplied), self.root, _arch(supplied), note)
        _check_links(chain)
        for cert in (*chain.device, chain.root):
            if not cert.not_before <= at <= cert.not_after:
                raise VerificationFailed(f"{cert.name} is not valid at the verification time",
                                         expected=cert.window, found=at.isoformat())
        return chain

    # --- revocation ---------------------------------------------------------------------------

    def _revocation(self, chain: _DeviceChain, at: datetime
                    ) -> tuple[str, list[dict[str, Any]], Bounds]:
        """OCSP for every CA-issued certificate. The leaf is left out: the GPU's BROM key
        issues it at boot, so no responder knows it (NVIDIA's verifiers skip it too).
        Returns the overall state, each answer, and the nextUpdate of those that have one."""
        if self.ocsp is None:
            return "not_checked", [], ()
        check = (getattr(self.ocsp, "check", None) or getattr(self.ocsp, "status", None)
                 or self.ocsp)
        statuses: list[dict[str, Any]] = []
        bounds: list[tuple[str, datetime]] = []
        for cert, issuer in chain.links()[1:]:
            status, next_update = _ocsp_answer(check(cert.certificate, issuer.certificate, at))
            if status == "revoked":
                raise VerificationFailed(f"{cert.name} is revoked", found=f"serial {cert.serial}")
            statuses.append({"subject": cert.subject, "serial": cert.serial, "status": status,
                             "next_update": None if next_update is None
                             else next_update.isoformat()})
            if next_update is not None:  # an answer without nextUpdate bounds nothing
                bounds.append((f"OCSP {cert.name} nextUpdate", next_update))
        found = {item["status"] for item in statuses}
        for state in ("on_hold", "unknown"):
            if state in found:
                return state, statuses, tuple(bounds)
        return "good", statuses, tuple(bounds)

    def _collateral(self, chain: _DeviceChain, statuses: list[dict[str, Any]]) -> dict[str, Any]:
        collateral: dict[str, Any] = {
            "root": {"source": self.root_source, "subject": chain.root.subject,
                     "sha256": chain.root.fingerprint},
            "device_chain": {"source": "evidence:cert_chain", "length": len(chain.device),
                             "supplied_root": chain.supplied_root},
        }
        if self.ocsp is not None:
            collateral["ocsp"] = statuses
        return collateral

    # --- several GPUs -------------------------------------------------------------------------

    def _verify_list(self, evidence: Evidence, nonce: bytes, at: datetime,
                     state: Mapping[str, Any]) -> VerifiedClaims:
        entries = parse_evidence_list(evidence.report)
        outcomes = []
        for number, entry in enumerate(entries):
            if entry.arch.upper() not in ARCHITECTURES:
                raise MalformedEvidence(f"evidence entry {number} is not from a GPU",
                                        expected=" or ".join(ARCHITECTURES), found=entry.arch)
            try:
                outcomes.append(self._verify_one(entry.evidence, entry.certificate, nonce, at,
                                                 entry))
            except (MalformedEvidence, VerificationFailed, CollateralUnavailable) as error:
                raise type(error)(f"GPU {number}: {error.message}", expected=error.expected,
                                  found=error.found, hint=error.hint) from None
        checks = tuple(Reason(f"gpu{number}:{reason.check}", reason.passed, reason.message)
                       for number, outcome in enumerate(outcomes) for reason in outcome.checks)
        checks += (_cc_state_check(state),)
        claims = {"gpu_count": len(outcomes), "nonce": nonce.hex(),
                  "gpus": [outcome.claims for outcome in outcomes], **state}
        valid_until, source = earliest((f"GPU {number}: {name}", end)
                                       for number, outcome in enumerate(outcomes)
                                       for name, end in outcome.bounds)
        return VerifiedClaims(platform=PLATFORM, claims=claims, checks=checks,
                              collateral={"gpus": [outcome.collateral for outcome in outcomes]},
                              valid_until=valid_until, valid_until_source=source)


# --- checks ------------------------------------------------------------------------------------

def _arch(device: Sequence[_Cert]) -> str:
    for cert in device[:2]:  # the leaf and the BROM certificate name the chip
        arch = arch_from_name(cert.name)
        if arch is not None:
            return arch
    raise VerificationFailed("the certificates name no supported GPU",
                             expected="a GH100 (Hopper) or GB100 (Blackwell) device certificate",
                             found=device[0].subject)


def _check_links(chain: _DeviceChain) -> None:
    if chain.leaf.is_ca:
        raise VerificationFailed("the chain's first certificate is a CA, not the GPU's "
                                 "attestation key", expected="a GSP FMC LF leaf certificate",
                                 found=chain.leaf.name, hint="the leaf is missing from the chain")
    for child, issuer in chain.links():
        if not issuer.is_ca:
            raise VerificationFailed(f"{issuer.name} is not a CA but issues {child.name}",
                                     expected="basicConstraints CA:TRUE")
        if not _issued_by(child.der, issuer.der):
            raise VerificationFailed(f"{child.name} is not issued by {issuer.name}",
                                     expected=f"issuer {issuer.subject}, ECDSA signature by "
                                              "its key",
                                     found=f"issuer {child.certificate.issuer.rfc4514_string()}",
                                     hint="a certificate is missing from the chain, or forged"
                                     if child.certificate.issuer != issuer.certificate.subject
                                     else "signature does not verify")
    key = chain.leaf.public_key
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        raise VerificationFailed("the GPU's attestation key is not ECDSA P-384",
                                 found=getattr(getattr(key, "curve", None), "name",
                                               type(key).__name__))


def _check_entry(entry: GpuEvidence, report: GpuReport) -> None:
    if entry.nonce != report.nonce:
        raise MalformedEvidence("the entry's nonce disagrees with its report",
                                expected=report.nonce.hex(), found=entry.nonce.hex())


def _check_chip_info(report: GpuReport, chain: _DeviceChain) -> None:
    info = report.fields.chip_info
    named = arch_from_name(info) if info else None
    if named is not None and named != chain.arch:
        raise VerificationFailed("the report's chip info names another architecture",
                                 expected=chain.arch, found=info)


def _check_fwid(report: GpuReport, chain: _DeviceChain) -> str:
    reported = report.fields.fwid
    certified = _fwid(chain.leaf.der)
    if reported is None:
        return "the report carries no FWID (older driver): nothing to compare"
    if certified is None:
        raise VerificationFailed("the report has an FWID but the leaf certifies none",
                                 expected="extension 2.23.133.5.4.1 or 2.23.133.5.4.1.1",
                                 found=chain.leaf.name)
    kind, value = certified
    if not hmac.compare_digest(value, reported):
        raise VerificationFailed("the report's FWID differs from the leaf certificate's",
                                 expected=value.hex(), found=reported.hex())
    return f"FWID equals the leaf's {kind.title()} FWID extension"


def _check_signature(raw: bytes, report: GpuReport, chain: _DeviceChain) -> None:
    end = len(raw) - report.padding - SIGNATURE_SIZE
    r, s = report.signature_rs
    try:
        chain.leaf.public_key.verify(encode_dss_signature(r, s), raw[:end], _ECDSA_SHA384)
    except InvalidSignature:
        raise VerificationFailed("report signature does not verify with the GPU's key",
                                 expected=f"ECDSA P-384 signature by {chain.leaf.name}",
                                 found=report.response.signature[:12].hex() + "...") from None


def _ocsp_answer(answer: Any) -> tuple[str, datetime | None]:
    """(status, nextUpdate) from a checker's answer: a status (text or enum), or an object
    with `status` and `next_update` (ocsp.OcspResult)."""
    next_update = getattr(answer, "next_update", None)
    status = getattr(answer, "status", answer)
    status = str(getattr(status, "value", status))
    if status not in REVOCATION_STATES:
        raise ConfigError("the OCSP checker answered an unknown status",
                          expected=" or ".join(REVOCATION_STATES), found=status)
    if next_update is not None:
        next_update = require_aware(next_update, "OCSP nextUpdate")
    return status, next_update


def _rim_bounds(value: object) -> Bounds:
    """The RIM hook's (name, end of validity) pairs, checked: a hook that gets this wrong
    must not silently leave a verdict unbounded."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ConfigError(f"the RIM comparison's {RIM_VALIDITY} must be (name, datetime) "
                          "pairs", found=type(value).__name__)
    bounds = []
    for item in value:
        if (not isinstance(item, tuple | list) or len(item) != 2
                or not isinstance(item[0], str)):
            raise ConfigError(f"the RIM comparison's {RIM_VALIDITY} must be (name, datetime) "
                              "pairs", found=repr(item)[:80])
        bounds.append((item[0], require_aware(item[1], f"{item[0]} (RIM hook)")))
    return tuple(bounds)


def local_cc_state(log: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """The CC state an attester read from NVML (unsigned side data), as claims; `cc_state`
    says where it came from, or that the evidence carries none."""
    entries = [entry for entry in log if entry.get("type") == CC_STATE_LOG_TYPE]
    if not entries:
        return {"cc_state": CC_STATE_NOT_REPORTED}
    if len(entries) > 1:
        raise MalformedEvidence("evidence log holds more than one GPU CC state")
    entry = entries[0]
    flags = {name: entry.get(name) for name in ("cc_mode", "devtools")}
    if not all(value in ("on", "off") for value in flags.values()):
        raise MalformedEvidence("GPU CC state in the evidence log is not on/off",
                                found=flags)
    return {"cc_mode": flags["cc_mode"], "devtools": flags["devtools"] == "on",
            "cc_environment": entry.get("environment", "unknown"),
            "cc_state": CC_STATE_DECLARED}


def _cc_state_check(state: Mapping[str, Any]) -> Reason:
    if state["cc_state"] == CC_STATE_NOT_REPORTED:
        return Reason("cc_state", True, "CC mode not reported: the evidence carries no CC "
                      "state, and the signed report shows CC or DevTools mode, not which")
    devtools = "on" if state["devtools"] else "off"
    return Reason("cc_state", True, f"CC mode {state['cc_mode']}, DevTools {devtools}, as the "
                  "attester declared it from NVML (not signed by the GPU)")


# --- output ------------------------------------------------------------------------------------

def _claims(report: GpuReport, chain: _DeviceChain, revocation: str) -> dict[str, Any]:
    fields = report.fields
    blocks = report.measurements()
    claims: dict[str, Any] = {
        "arch": chain.arch,
        "nonce": report.nonce.hex(),
        "driver_version": fields.driver_version,
        "vbios_version": fields.vbios_version,
        "fwid": fields.fwid.hex() if fields.fwid is not None else None,
        "chip_sku": fields.chip_sku,
        "chip_sku_mod": fields.chip_sku_mod,
        "project": fields.project,
        "project_sku": fields.project_sku,
        "project_sku_mod": fields.project_sku_mod,
        "measurements": {"count": len(blocks),
                         "blocks": {index: value.hex() for index, value in blocks.items()}},
        "nvdec0_enabled": fields.nvdec0_enabled,
        "opaque_data_version": fields.opaque_data_version,
        "revocation": revocation,
        "cert_chain": [{"subject": cert.subject, "serial": cert.serial}
                       for cert in (*chain.device, chain.root)],
    }
    if fields.feature_flag is not None:
        claims["feature_flag"] = fields.feature_name
    if fields.ppcie_enabled is not None:
        claims["ppcie"] = fields.ppcie_enabled
    if fields.chip_info is not None:
        claims["chip_info"] = fields.chip_info
    if fields.board_id is not None:
        claims["board_id"] = fields.board_id.hex()
    return claims


def _checks(chain: _DeviceChain, fwid_note: str, revocation: str) -> tuple[Reason, ...]:
    names = " <- ".join(cert.name for cert in chain.device)
    return (
        Reason("chain", True, f"{names} <- pinned {chain.root.name} (ECDSA P-384), valid at "
                              f"the given time; {chain.supplied_root}"),
        Reason("arch", True, f"{chain.arch.title()} GPU, named by its device certificates"),
        Reason("fwid", True, fwid_note),
        Reason("signature", True, f"report signature verifies with {chain.leaf.name}'s key"),
        Reason("binding", True, "the report's requester nonce is the expected one"),
        Reason("revocation", True, "no OCSP checker given: revocation not checked"
               if revocation == "not_checked" else f"OCSP for the CA-issued certificates: "
               f"{revocation}"),
    )
