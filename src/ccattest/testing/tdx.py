"""Valid and broken `tdx` evidence from a test Intel-like PKI generated at run time.

The test root is not Intel's: the verifier accepts it only when a test passes it explicitly
(`TdxFixture.verifier` does). Everything else is built the way Intel builds it: a root, a PCK
CA, a PCK certificate with the SGX extensions (FMSPC, TCB, PCE-ID), a TCB Signing certificate,
TCB Info and QE Identity signed over the exact bytes of their inner JSON object, CRLs, a QE
report signed by the PCK key that vouches for an attestation key, and quotes signed by it.
All keys are ECDSA P-256, as Intel's are, so every branch of the verifier can be reached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from ..errors import CollateralUnavailable, MalformedEvidence, VerificationFailed
from ..evidence import Evidence, bind
from ..platforms.tdx import PLATFORM
from ..platforms.tdx.abi import (
    CERT_PCK_CHAIN,
    QUOTE_V4,
    QUOTE_V5,
    EnclaveReport,
    QeCertification,
    Quote,
    QuoteHeader,
    TdQuoteBody,
)
from ..platforms.tdx.certs import SGX_OID
from ..platforms.tdx.collateral import TdxCollateral
from ..platforms.tdx.collateral_json import collateral_to_json
from ..platforms.tdx.verify import TdxVerifier
from .cases import FIXED_NOW, BrokenCase

TEST_GUEST = "tdx-test-guest"
QE_MRSIGNER = bytes.fromhex("dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5")
QE_ATTRIBUTES = bytes.fromhex("11000000000000000000000000000000")
QE_ATTRIBUTES_MASK = bytes.fromhex("fbffffffffffffff0000000000000000")
QE_PROD_ID = 2
DEFAULT_SGX_SVNS = (3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0)
DEFAULT_TEE_TCB_SVN = bytes([6, 1, 3]) + bytes(13)  # module 1.6, microcode 3
DEFAULT_FMSPC = bytes.fromhex("b0c06f000000")
SIGNER_SEAM = bytes(48)  # Intel's TDX modules carry an all-zero MRSIGNER_SEAM


@dataclasses.dataclass(frozen=True)
class TdxKeys:
    """The fixture's keys; P-256 keys are cheap, but one set per module keeps tests fast."""

    root: ec.EllipticCurvePrivateKey
    ca: ec.EllipticCurvePrivateKey
    pck: ec.EllipticCurvePrivateKey
    tcb_signer: ec.EllipticCurvePrivateKey
    attestation: ec.EllipticCurvePrivateKey
    rogue: ec.EllipticCurvePrivateKey  # signs what a forger would

    @classmethod
    def generate(cls) -> TdxKeys:
        return cls(*(ec.generate_private_key(ec.SECP256R1()) for _ in range(6)))


# --- DER for the SGX extension ---------------------------------------------------------------

def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        length = bytes([size])
    else:
        raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def der_oid(dotted: str) -> bytes:
    arcs = [int(part) for part in dotted.split(".")]
    content = b""
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | arc & 0x7F)
            arc >>= 7
        content += bytes(reversed(chunk))
    return _der(0x06, content)


def der_integer(value: int, tag: int = 0x02) -> bytes:
    return _der(tag, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def der_sequence(*items: bytes) -> bytes:
    return _der(0x30, b"".join(items))


def _pair(suffix: str, value: bytes) -> bytes:
    return der_sequence(der_oid(f"{SGX_OID}.{suffix}"), value)


def sgx_extension(*, fmspc: bytes, sgx_svns: Sequence[int], pce_svn: int, cpu_svn: bytes,
                  pce_id: bytes = bytes(2), ppid: bytes = bytes(range(16)),
                  sgx_type: int = 0, drop: str | None = None) -> bytes:
    """The DER value of the SGX extension; `drop` leaves one entry out (by OID suffix)."""
    tcb = [_pair(f"2.{n + 1}", der_integer(svn)) for n, svn in enumerate(sgx_svns)]
    tcb += [_pair("2.17", der_integer(pce_svn)), _pair("2.18", _der(0x04, cpu_svn))]
    entries = {"1": _pair("1", _der(0x04, ppid)), "2": _pair("2", der_sequence(*tcb)),
               "3": _pair("3", _der(0x04, pce_id)), "4": _pair("4", _der(0x04, fmspc)),
               "5": _pair("5", der_integer(sgx_type, 0x0A))}
    return der_sequence(*(value for key, value in entries.items() if key != drop))


# --- certificates --------------------------------------------------------------------------

def intel_name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ccattest test PKI"),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
    ])


def make_cert(subject: str, issuer: x509.Name, public_key: Any,
              issuer_key: ec.EllipticCurvePrivateKey, now: datetime, *, days: int,
              ca: bool, extension: bytes | None = None,
              not_before: datetime | None = None) -> x509.Certificate:
    builder = (x509.CertificateBuilder()
               .subject_name(intel_name(subject)).issuer_name(issuer)
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(not_before or now - timedelta(days=1))
               .not_valid_after(now + timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), True))
    if extension is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(
            x509.ObjectIdentifier(SGX_OID), extension), False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_root(key: ec.EllipticCurvePrivateKey, now: datetime) -> x509.Certificate:
    name = intel_name("Test SGX Root CA")
    return make_cert("Test SGX Root CA", name, key.public_key(), key, now, days=25 * 365,
                     ca=True)


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certificates)


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def raw_signature(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def raw_public_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    point = key.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)
    return point[1:]


# --- TCB Info and QE Identity -----------------------------------------------------------------

def _date(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def tcb_level(status: str, *, sgx: Sequence[int], pce_svn: int, tdx: Sequence[int],
              date: datetime, advisories: Sequence[str] = ()) -> dict[str, Any]:
    level: dict[str, Any] = {
        "tcb": {"sgxtcbcomponents": [{"svn": svn} for svn in sgx], "pcesvn": pce_svn,
                "tdxtcbcomponents": [{"svn": svn} for svn in tdx]},
        "tcbDate": _date(date), "tcbStatus": status,
    }
    if advisories:
        level["advisoryIDs"] = list(advisories)
    return level


def isv_level(status: str, isv_svn: int, date: datetime,
              advisories: Sequence[str] = ()) -> dict[str, Any]:
    level: dict[str, Any] = {"tcb": {"isvsvn": isv_svn}, "tcbDate": _date(date),
                             "tcbStatus": status}
    if advisories:
        level["advisoryIDs"] = list(advisories)
    return level


def module_identity(major: int, levels: Sequence[Mapping[str, Any]],
                    mrsigner: bytes = SIGNER_SEAM) -> dict[str, Any]:
    return {"id": f"TDX_{major:02X}", "mrsigner": mrsigner.hex(), "attributes": "0000000000000000",
            "attributesMask": "FFFFFFFFFFFFFFFF", "tcbLevels": list(levels)}


def signed_body(name: str, inner: Mapping[str, Any], key: ec.EllipticCurvePrivateKey, *,
                indent: int | None = None) -> bytes:
    """`{"<name>": {...}, "signature": "..."}` signed over the inner bytes as written."""
    body = json.dumps(inner, separators=(",", ":"), indent=indent).encode()
    signature = raw_signature(key, body).hex()
    return b'{"' + name.encode() + b'":' + body + b',"signature":"' + signature.encode() + b'"}'


# --- the fixture -----------------------------------------------------------------------------

@dataclasses.dataclass
class TdxFixture:
    """A test root -> PCK CA -> PCK chain, a TCB Signing certificate and one TD platform."""

    keys: TdxKeys
    root: x509.Certificate
    ca: x509.Certificate
    pck: x509.Certificate
    tcb_signer: x509.Certificate
    now: datetime
    fmspc: bytes
    sgx_svns: tuple[int, ...]
    pce_svn: int
    tee_tcb_svn: bytes
    version: int
    tdx15: bool
    qe_isv_svn: int = 6
    _default: TdxCollateral | None = dataclasses.field(default=None, repr=False, compare=False)

    @classmethod
    def create(cls, *, version: int = QUOTE_V4, tdx15: bool = False,
               tee_tcb_svn: bytes = DEFAULT_TEE_TCB_SVN, now: datetime = FIXED_NOW,
               keys: TdxKeys | None = None, fmspc: bytes = DEFAULT_FMSPC,
               sgx_svns: Sequence[int] = DEFAULT_SGX_SVNS, pce_svn: int = 11) -> TdxFixture:
        if tdx15 and version != QUOTE_V5:
            raise ValueError("a TDX 1.5 body needs a version 5 quote")
        keys = keys or TdxKeys.generate()
        root = make_root(keys.root, now)
        ca = make_cert("Test SGX PCK Platform CA", root.subject, keys.ca.public_key(),
                       keys.root, now, days=15 * 365, ca=True)
        tcb_signer = make_cert("Test SGX TCB Signing", root.subject,
                               keys.tcb_signer.public_key(), keys.root, now, days=7 * 365,
                               ca=False)
        fixture = cls(keys, root, ca, ca, tcb_signer, now, fmspc, tuple(sgx_svns), pce_svn,
                      tee_tcb_svn, version, tdx15)
        fixture.pck = fixture.issue_pck()
        return fixture

    @property
    def cpu_svn(self) -> bytes:
        return bytes(self.sgx_svns)

    def issue_pck(self, *, issuer_key: ec.EllipticCurvePrivateKey | None = None,
                  issuer: x509.Certificate | None = None, days: int = 7 * 365,
                  fmspc: bytes | None = None, extension: bytes | None = None,
                  key: ec.EllipticCurvePrivateKey | None = None) -> x509.Certificate:
        """The fixture's PCK certificate, or a variant of it."""
        value = extension if extension is not None else sgx_extension(
            fmspc=fmspc or self.fmspc, sgx_svns=self.sgx_svns, pce_svn=self.pce_svn,
            cpu_svn=self.cpu_svn)
        return make_cert("Test SGX PCK Certificate", (issuer or self.ca).subject,
                         (key or self.keys.pck).public_key(), issuer_key or self.keys.ca,
                         self.now, days=days, ca=False, extension=value)

    def verifier(self, collateral: TdxCollateral | None = None, **kwargs: Any) -> TdxVerifier:
        return TdxVerifier(collateral, root=self.root, **kwargs)

    # --- the quote ----------------------------------------------------------------------------

    def body(self, report_data: bytes, **changes: Any) -> TdQuoteBody:
        body = TdQuoteBody(
            tee_tcb_svn=self.tee_tcb_svn, mr_seam=bytes(range(48)), mr_signer_seam=SIGNER_SEAM,
            td_attributes=bytes.fromhex("0000001000000000"),
            xfam=bytes.fromhex("e702060000000000"), mr_td=bytes([0x11]) * 48,
            rtmr0=bytes([0x20]) * 48, rtmr1=bytes([0x21]) * 48, rtmr2=bytes([0x22]) * 48,
            report_data=report_data,
            tee_tcb_svn_2=self.tee_tcb_svn if self.tdx15 else None,
            mr_servicetd=bytes(48) if self.tdx15 else None,
        )
        return dataclasses.replace(body, **changes)

    def qe_report(self, attestation_key: bytes, auth_data: bytes, **changes: Any
                  ) -> EnclaveReport:
        digest = hashlib.sha256(attestation_key + auth_data).digest()
        report = EnclaveReport(cpu_svn=self.cpu_svn, attributes=QE_ATTRIBUTES,
                               mr_enclave=bytes([0x0E]) * 32, mr_signer=QE_MRSIGNER,
                               isv_prod_id=QE_PROD_ID, isv_svn=self.qe_isv_svn,
                               report_data=digest + bytes(32))
        return dataclasses.replace(report, **changes)

    def qe_certification(self, *, attestation_key: bytes | None = None,
                         auth_data: bytes = bytes(range(32)), chain: bytes | None = None,
                         chain_type: int = CERT_PCK_CHAIN,
                         signer: ec.EllipticCurvePrivateKey | None = None,
                         **report_changes: Any) -> QeCertification:
        key = attestation_key if attestation_key is not None else raw_public_key(
            self.keys.attestation)
        report = self.qe_report(key, auth_data, **report_changes)
        signature = raw_signature(signer or self.keys.pck, report.to_bytes())
        if chain is None:
            chain = pem(self.pck, self.ca, self.root) + b"\0"  # NUL-terminated like real QEs
        return QeCertification(report, signature, auth_data, chain_type, chain)

    def quote(self, report_data: bytes, *, qe: QeCertification | None = None,
              header: Mapping[str, Any] | None = None,
              key: ec.EllipticCurvePrivateKey | None = None, **body_changes: Any) -> Quote:
        """A quote signed by `key` (the attestation key by default)."""
        quote = Quote(
            header=dataclasses.replace(QuoteHeader(version=self.version), **(header or {})),
            body=self.body(report_data, **body_changes),
            attestation_key=raw_public_key(self.keys.attestation),
            qe=qe or self.qe_certification(),
        )
        return quote.with_signature(raw_signature(key or self.keys.attestation,
                                                  quote.signed_bytes()))

    def evidence(self, nonce: bytes | None = None, *, collateral: bytes | None = None,
                 **body_changes: Any) -> tuple[Evidence, bytes, bytes]:
        """(evidence with its collateral as an endorsement, the report_data, the nonce)."""
        nonce = nonce or secrets.token_bytes(32)
        report_data = bind(nonce, TEST_GUEST)
        raw = self.quote(report_data, **body_changes).to_bytes()
        endorsement = collateral if collateral is not None else collateral_to_json(
            self.collateral())
        return Evidence(PLATFORM, raw, {"collateral": endorsement}), report_data, nonce

    # --- collateral ---------------------------------------------------------------------------

    def tdx_components(self, *, lower: int = 0) -> list[int]:
        svns = list(self.tee_tcb_svn)
        if svns[1]:
            svns[0] = svns[1] = 0  # matched through the module identity instead
        svns[2] = max(svns[2] - lower, 0)
        return svns

    def default_levels(self) -> list[dict[str, Any]]:
        day = timedelta(days=1)
        return [
            tcb_level("UpToDate", sgx=self.sgx_svns, pce_svn=self.pce_svn,
                      tdx=self.tdx_components(), date=self.now - 30 * day),
            tcb_level("OutOfDate", sgx=[0] * 16, pce_svn=0, tdx=[0] * 16,
                      date=self.now - 400 * day, advisories=["INTEL-SA-00001"]),
        ]

    def default_modules(self) -> list[dict[str, Any]]:
        major, minor = self.tee_tcb_svn[1], self.tee_tcb_svn[0]
        day = timedelta(days=1)
        return [module_identity(major, [
            isv_level("UpToDate", minor, self.now - 30 * day),
            isv_level("OutOfDate", 0, self.now - 400 * day, ["INTEL-SA-00002"]),
        ])] if major else []

    def tcb_info(self, *, levels: Sequence[Mapping[str, Any]] | None = None,
                 modules: Sequence[Mapping[str, Any]] | None = None,
                 key: ec.EllipticCurvePrivateKey | None = None, fmspc: bytes | None = None,
                 issued: datetime | None = None, days: int = 30, indent: int | None = None,
                 **changes: Any) -> bytes:
        issued = issued or self.now - timedelta(days=1)
        inner: dict[str, Any] = {
            "id": "TDX", "version": 3, "issueDate": _date(issued),
            "nextUpdate": _date(issued + timedelta(days=days)),
            "fmspc": (fmspc or self.fmspc).hex().upper(), "pceId": "0000", "tcbType": 0,
            "tcbEvaluationDataNumber": 17,
            "tdxModule": {"mrsigner": SIGNER_SEAM.hex(), "attributes": "0000000000000000",
                          "attributesMask": "FFFFFFFFFFFFFFFF"},
            "tdxModuleIdentities": list(self.default_modules() if modules is None else modules),
            "tcbLevels": list(self.default_levels() if levels is None else levels),
        }
        inner.update(changes)
        return signed_body("tcbInfo", inner, key or self.keys.tcb_signer, indent=indent)

    def qe_identity(self, *, levels: Sequence[Mapping[str, Any]] | None = None,
                    key: ec.EllipticCurvePrivateKey | None = None,
                    issued: datetime | None = None, days: int = 30, **changes: Any) -> bytes:
        issued = issued or self.now - timedelta(days=1)
        day = timedelta(days=1)
        inner: dict[str, Any] = {
            "id": "TD_QE", "version": 2, "issueDate": _date(issued),
            "nextUpdate": _date(issued + timedelta(days=days)), "tcbEvaluationDataNumber": 17,
            "miscselect": "00000000", "miscselectMask": "FFFFFFFF",
            "attributes": QE_ATTRIBUTES.hex().upper(),
            "attributesMask": QE_ATTRIBUTES_MASK.hex().upper(),
            "mrsigner": QE_MRSIGNER.hex().upper(), "isvprodid": QE_PROD_ID,
            "tcbLevels": list(levels) if levels is not None else [
                isv_level("UpToDate", self.qe_isv_svn, self.now - 30 * day),
                isv_level("OutOfDate", 0, self.now - 400 * day)],
        }
        inner.update(changes)
        return signed_body("enclaveIdentity", inner, key or self.keys.tcb_signer)

    def crl(self, *, root: bool = False, revoked: Sequence[int] = (),
            key: ec.EllipticCurvePrivateKey | None = None, this_update: datetime | None = None,
            days: int = 30, issuer: x509.Certificate | None = None) -> bytes:
        issuer = issuer or (self.root if root else self.ca)
        this_update = this_update or self.now - timedelta(days=1)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(issuer.subject)
                   .last_update(this_update).next_update(this_update + timedelta(days=days)))
        for serial in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial)
                .revocation_date(this_update).build())
        signer = key or (self.keys.root if root else self.keys.ca)
        return builder.sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def collateral(self, **items: bytes) -> TdxCollateral:
        """Valid collateral (the same object each time), or a copy with `items` replaced."""
        if self._default is None:
            self._default = self._fresh_collateral()
        return dataclasses.replace(self._default, **items) if items else self._default

    def _fresh_collateral(self) -> TdxCollateral:
        chain = pem(self.tcb_signer, self.root)
        values = {
            "tcb_info": self.tcb_info(), "tcb_info_issuer_chain": chain,
            "qe_identity": self.qe_identity(), "qe_identity_issuer_chain": chain,
            "pck_crl": self.crl(), "pck_crl_issuer_chain": pem(self.ca, self.root),
            "root_ca_crl": self.crl(root=True),
        }
        return TdxCollateral(**values, source="test")

    # --- broken evidence --------------------------------------------------------------------

    def broken_cases(self) -> list[BrokenCase]:
        evidence, report_data, _ = self.evidence()
        cases = [*self._byte_cases(evidence), *self._quote_cases(evidence, report_data),
                 *self._chain_cases(evidence, report_data),
                 *self._collateral_cases(evidence)]
        built = [BrokenCase(name, ev, report_data, self.now, error) for name, ev, error in cases]
        other, _, _ = self.evidence()
        built.append(BrokenCase("wrong_report_data", other, report_data, self.now,
                                VerificationFailed))
        late = self.pck.not_valid_after_utc + timedelta(days=1)
        built.append(BrokenCase("expired_pck", evidence, report_data, late, VerificationFailed))
        early = self.now - timedelta(days=2)
        built.append(BrokenCase("not_yet_valid", evidence, report_data, early,
                                VerificationFailed))
        built.append(BrokenCase("expired_collateral", evidence, report_data,
                                self.now + timedelta(days=40), VerificationFailed))
        return built

    def _byte_cases(self, evidence: Evidence) -> list[tuple[str, Evidence, type]]:
        raw = evidence.report
        body_start = 48 + (6 if self.version == QUOTE_V5 else 0)
        signature_start = body_start + (648 if self.tdx15 else 584) + 4

        def flipped(offset: int, mask: int = 0x01) -> Evidence:
            data = bytearray(raw)
            data[offset] ^= mask
            return dataclasses.replace(evidence, report=bytes(data))

        def cut(data: bytes) -> Evidence:
            return dataclasses.replace(evidence, report=data)

        return [
            ("bad_signature", flipped(signature_start), VerificationFailed),
            ("mutated_td_attributes_debug", flipped(body_start + 120), VerificationFailed),
            ("mutated_mr_td", flipped(body_start + 136), VerificationFailed),
            ("mutated_rtmr0", flipped(body_start + 328), VerificationFailed),
            ("mutated_report_data", flipped(body_start + 520), VerificationFailed),
            ("mutated_tee_tcb_svn", flipped(body_start + 2), VerificationFailed),
            ("mutated_qe_report", flipped(signature_start + 134 + 70), VerificationFailed),
            ("mutated_qe_report_signature", flipped(signature_start + 134 + 384),
             VerificationFailed),
            ("truncated", cut(raw[:-1]), MalformedEvidence),
            ("empty", cut(b""), MalformedEvidence),
            ("unknown_version", flipped(0, 0x07), MalformedEvidence),
            ("not_tdx", flipped(4, 0x81), MalformedEvidence),
            ("signature_data_too_long", flipped(signature_start - 2, 0x10), MalformedEvidence),
        ]

    def _quote_cases(self, evidence: Evidence, report_data: bytes
                     ) -> list[tuple[str, Evidence, type]]:
        def quoted(**changes: Any) -> Evidence:
            return dataclasses.replace(evidence,
                                       report=self.quote(report_data, **changes).to_bytes())

        other_key = raw_public_key(self.keys.rogue)
        bound_elsewhere = self.qe_certification(attestation_key=other_key)
        return [
            ("signed_by_another_key", quoted(key=self.keys.rogue), VerificationFailed),
            ("qe_vouches_for_another_key", quoted(qe=bound_elsewhere), VerificationFailed),
            ("qe_report_data_wrong",
             quoted(qe=self.qe_certification(report_data=bytes(64))), VerificationFailed),
            ("qe_report_signed_by_rogue", quoted(qe=self.qe_certification(
                signer=self.keys.rogue)), VerificationFailed),
            ("non_intel_qe_vendor", quoted(header={"qe_vendor_id": bytes(16)}),
             VerificationFailed),
            ("qe_mrsigner_differs", quoted(qe=self.qe_certification(mr_signer=bytes(32))),
             VerificationFailed),
            ("qe_prod_id_differs", quoted(qe=self.qe_certification(isv_prod_id=1)),
             VerificationFailed),
            ("qe_attributes_differ", quoted(qe=self.qe_certification(attributes=bytes(16))),
             VerificationFailed),
            ("qe_miscselect_differs", quoted(qe=self.qe_certification(misc_select=1)),
             VerificationFailed),
            ("module_signer_differs", quoted(mr_signer_seam=bytes([1]) * 48),
             VerificationFailed),
        ]

    def _chain_cases(self, evidence: Evidence, report_data: bytes
                     ) -> list[tuple[str, Evidence, type]]:
        def chained(chain: bytes, chain_type: int = CERT_PCK_CHAIN) -> Evidence:
            qe = self.qe_certification(chain=chain, chain_type=chain_type)
            return dataclasses.replace(evidence, report=self.quote(report_data, qe=qe)
                                       .to_bytes())

        rogue_root = make_root(self.keys.rogue, self.now)
        rogue_ca = make_cert("Test SGX PCK Platform CA", rogue_root.subject,
                             self.keys.ca.public_key(), self.keys.rogue, self.now, days=3650,
                             ca=True)
        unsigned_ca = make_cert("Test SGX PCK Platform CA", self.root.subject,
                                self.keys.ca.public_key(), self.keys.rogue, self.now,
                                days=3650, ca=True)
        forged_pck = self.issue_pck(issuer_key=self.keys.rogue)
        return [
            ("pck_not_signed_by_ca", chained(pem(forged_pck, self.ca, self.root)),
             VerificationFailed),
            ("ca_not_signed_by_root", chained(pem(self.pck, unsigned_ca, self.root)),
             VerificationFailed),
            ("unpinned_root", chained(pem(self.issue_pck(issuer=rogue_ca), rogue_ca,
                                          rogue_root)), VerificationFailed),
            ("missing_pck_ca", chained(pem(self.pck, self.root)), CollateralUnavailable),
            ("missing_pck", chained(pem(self.ca, self.root)), VerificationFailed),
            ("garbage_chain", chained(b"\x30\x03abc"), MalformedEvidence),
            ("no_pck_chain", chained(bytes(16), chain_type=3), CollateralUnavailable),
        ]

    def _collateral_cases(self, evidence: Evidence) -> list[tuple[str, Evidence, type]]:
        def endorsed(**items: bytes) -> Evidence:
            collateral = collateral_to_json(self.collateral(**items))
            return dataclasses.replace(evidence, endorsements={"collateral": collateral})

        info = json.loads(self.tcb_info())["tcbInfo"]
        reserialised = json.dumps({"tcbInfo": info, "signature": json.loads(
            self.tcb_info())["signature"]}, indent=2).encode()
        pretty = json.dumps(info, indent=2)
        pretty_json = json.loads(collateral_to_json(self.collateral()))
        pretty_json["tcb_info"] = pretty
        cases: list[tuple[str, Evidence, type]] = [
            ("tcb_info_signed_by_rogue", endorsed(tcb_info=self.tcb_info(key=self.keys.rogue)),
             VerificationFailed),
            ("tcb_info_reserialised", endorsed(tcb_info=reserialised), VerificationFailed),
            ("tcb_info_pretty_printed", dataclasses.replace(evidence, endorsements={
                "collateral": json.dumps(pretty_json).encode()}), VerificationFailed),
            ("qe_identity_signed_by_rogue",
             endorsed(qe_identity=self.qe_identity(key=self.keys.rogue)), VerificationFailed),
            ("tcb_info_for_another_fmspc", endorsed(tcb_info=self.tcb_info(fmspc=bytes(6))),
             VerificationFailed),
            ("pck_revoked", endorsed(pck_crl=self.crl(revoked=[self.pck.serial_number])),
             VerificationFailed),
            ("pck_ca_revoked", endorsed(root_ca_crl=self.crl(
                root=True, revoked=[self.ca.serial_number])), VerificationFailed),
            ("pck_crl_signed_by_rogue", endorsed(pck_crl=self.crl(key=self.keys.rogue)),
             VerificationFailed),
            ("tcb_info_issued_later", endorsed(tcb_info=self.tcb_info(
                issued=self.now + timedelta(days=1))), VerificationFailed),
            ("tcb_signer_not_from_root", endorsed(tcb_info_issuer_chain=pem(make_cert(
                "Test SGX TCB Signing", self.root.subject, self.keys.tcb_signer.public_key(),
                self.keys.rogue, self.now, days=365, ca=False), self.root)),
             VerificationFailed),
            ("no_collateral", dataclasses.replace(evidence, endorsements={}),
             CollateralUnavailable),
            ("collateral_not_json", dataclasses.replace(evidence, endorsements={
                "collateral": b"{not json"}), MalformedEvidence),
            ("tcb_info_not_tdx", endorsed(tcb_info=self.tcb_info(id="SGX")), MalformedEvidence),
        ]
        if self.tee_tcb_svn[1]:
            cases.append(("module_identity_missing", endorsed(tcb_info=self.tcb_info(
                modules=[])), VerificationFailed))
        return cases
