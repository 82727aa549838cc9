"""Valid and broken `snp` evidence from a test AMD-like PKI generated at run time.

The test ARK is not AMD's: the verifier accepts it only when a test passes it explicitly as
`roots={product: ark}` (SnpFixture.verifier does). Keys are RSA-2048 for speed; AMD uses
RSA-4096. Certificates are signed with RSA-PSS SHA-384 salt 48 and carry the AMD
extensions, so every branch of the verifier can be reached.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from ..errors import CollateralUnavailable, MalformedEvidence, VerificationFailed
from ..evidence import Evidence, bind
from ..platforms.snp import PLATFORM
from ..platforms.snp.abi import MAX_TRAILING, SnpReport, encode_tcb
from ..platforms.snp.certs import build_cert_table
from ..platforms.snp.verify import SnpVerifier
from .cases import FIXED_NOW, BrokenCase

PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
CPUID = {"Milan": (0x19, 0x01, 1), "Genoa": (0x19, 0x11, 1), "Turin": (0x1A, 0x02, 0)}
DEFAULT_TCB = {
    "Milan": {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115},
    "Genoa": {"bootloader": 10, "tee": 0, "snp": 23, "microcode": 84},
    "Turin": {"fmc": 1, "bootloader": 2, "tee": 3, "snp": 4, "microcode": 9},
}
SPL_OIDS = {"bootloader": "3.1", "tee": "3.2", "snp": "3.3", "microcode": "3.8", "fmc": "3.9"}
KEY_INFO = {"vcek": 0 << 2, "vlek": 1 << 2, "none": 7 << 2}
TEST_GUEST = "snp-test-guest"


@dataclasses.dataclass(frozen=True)
class SnpKeys:
    """The fixture's keys; generate once per test module, RSA is slow to make."""

    ark: rsa.RSAPrivateKey
    intermediate: rsa.RSAPrivateKey
    rogue: rsa.RSAPrivateKey  # signs what a forger would
    leaf: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls, bits: int = 2048) -> SnpKeys:
        def make() -> rsa.RSAPrivateKey:
            return rsa.generate_private_key(public_exponent=65537, key_size=bits)

        return cls(make(), make(), make(), ec.generate_private_key(ec.SECP384R1()))


# --- certificates ------------------------------------------------------------------------

def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    length = bytes([size]) if size < 0x80 else bytes([0x81, size])
    return bytes([tag]) + length + content


def der_integer(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def der_ia5(text: str) -> bytes:
    return _der(0x16, text.encode("ascii"))


def amd_extension(suffix: str, value: bytes) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.3704.1." + suffix), value)


def amd_name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Engineering"),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "Santa Clara"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "CA"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Advanced Micro Devices"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _builder(subject: str, issuer: x509.Name, public_key: Any, now: datetime,
             days: int) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder()
            .subject_name(amd_name(subject)).issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=days)))


def _ca(builder: x509.CertificateBuilder, key: rsa.RSAPrivateKey) -> x509.Certificate:
    builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    return builder.sign(key, hashes.SHA384(), rsa_padding=PSS)


def make_ark(key: rsa.RSAPrivateKey, product: str, now: datetime) -> x509.Certificate:
    name = amd_name(f"ARK-{product}")
    return _ca(_builder(f"ARK-{product}", name, key.public_key(), now, 25 * 365), key)


def make_intermediate(key: rsa.RSAPrivateKey, issuer_key: rsa.RSAPrivateKey,
                      issuer: x509.Certificate, product: str, kind: str,
                      now: datetime) -> x509.Certificate:
    name = f"SEV-VLEK-{product}" if kind == "vlek" else f"SEV-{product}"
    return _ca(_builder(name, issuer.subject, key.public_key(), now, 25 * 365), issuer_key)


def make_leaf(public_key: ec.EllipticCurvePublicKey, issuer_key: rsa.RSAPrivateKey,
              issuer: x509.Certificate, *, kind: str, product_name: str,
              spls: Mapping[str, int], hwid: bytes | None, now: datetime,
              days: int | None = None, hwid_wrapped: bool = False) -> x509.Certificate:
    """A VCEK (hwID) or VLEK (cspID) with AMD's extensions; `hwid_wrapped` DER-wraps hwID."""
    days = days if days is not None else (365 if kind == "vlek" else 7 * 365)
    builder = _builder(f"SEV-{kind.upper()}", issuer.subject, public_key, now, days)
    builder = builder.add_extension(amd_extension("1", der_integer(1)), False)
    builder = builder.add_extension(amd_extension("2", der_ia5(product_name)), False)
    for name, value in spls.items():
        builder = builder.add_extension(amd_extension(SPL_OIDS[name], der_integer(value)), False)
    if hwid is not None:
        raw = _der(0x04, hwid) if hwid_wrapped else hwid
        builder = builder.add_extension(amd_extension("4", raw), False)
    if kind == "vlek":
        builder = builder.add_extension(amd_extension("5", der_ia5("CN=test-csp.example")), False)
    return builder.sign(issuer_key, hashes.SHA384(), rsa_padding=PSS)


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certificates)


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


# --- the fixture ---------------------------------------------------------------------------

@dataclasses.dataclass
class SnpFixture:
    """A test ARK -> ASK (or ASVK) -> VCEK (or VLEK) chain and a guest that signs reports."""

    product: str
    kind: str
    keys: SnpKeys
    ark: x509.Certificate
    intermediate: x509.Certificate
    leaf: x509.Certificate
    chip_id: bytes
    tcb: dict[str, int]
    version: int
    now: datetime

    @classmethod
    def create(cls, product: str = "Milan", *, signing_key: str = "vcek", version: int = 3,
               now: datetime = FIXED_NOW, keys: SnpKeys | None = None,
               tcb: Mapping[str, int] | None = None) -> SnpFixture:
        keys = keys or SnpKeys.generate()
        tcb = dict(tcb or DEFAULT_TCB[product])
        chip_id = bytes(64) if signing_key == "vlek" else secrets.token_bytes(64)
        if product == "Turin" and signing_key == "vcek":
            chip_id = chip_id[:8] + bytes(56)
        ark = make_ark(keys.ark, product, now)
        intermediate = make_intermediate(keys.intermediate, keys.ark, ark, product,
                                         signing_key, now)
        leaf = make_leaf(keys.leaf.public_key(), keys.intermediate, intermediate,
                         kind=signing_key, product_name=_product_name(product, signing_key),
                         spls=tcb, hwid=_hwid(product, signing_key, chip_id), now=now)
        return cls(product, signing_key, keys, ark, intermediate, leaf, chip_id, tcb,
                   version, now)

    @property
    def hwid(self) -> bytes | None:
        return _hwid(self.product, self.kind, self.chip_id)

    @property
    def product_name(self) -> str:
        return _product_name(self.product, self.kind)

    def issue_leaf(self, *, spls: Mapping[str, int] | None = None, hwid: bytes | None = None,
                   issuer: x509.Certificate | None = None,
                   issuer_key: rsa.RSAPrivateKey | None = None,
                   **kwargs: Any) -> x509.Certificate:
        """The fixture's VCEK/VLEK, or a variant of it with the same key."""
        return make_leaf(self.keys.leaf.public_key(), issuer_key or self.keys.intermediate,
                         issuer or self.intermediate, kind=self.kind,
                         product_name=self.product_name, spls=spls or self.tcb,
                         hwid=hwid if hwid is not None else self.hwid, now=self.now,
                         **kwargs)

    def verifier(self, **kwargs: Any) -> SnpVerifier:
        return SnpVerifier(roots={self.product: self.ark}, **kwargs)

    def report(self, report_data: bytes, **changes: Any) -> SnpReport:
        """An unsigned report as this guest's firmware would fill it."""
        family, model, stepping = CPUID[self.product] if self.version >= 3 else (0, 0, 0)
        tcb = encode_tcb(self.tcb, self.product)
        report = SnpReport(
            version=self.version, guest_svn=1, policy=0x30000, vmpl=0,
            current_tcb=tcb, reported_tcb=tcb, committed_tcb=tcb, launch_tcb=tcb,
            platform_info=0x25, key_info=KEY_INFO[self.kind], report_data=report_data,
            measurement=bytes(range(48)), host_data=bytes(32), chip_id=self.chip_id,
            report_id=bytes(range(32)), report_id_ma=b"\xff" * 32,
            cpuid_family=family, cpuid_model=model, cpuid_stepping=stepping,
            current_major=1, current_minor=55, current_build=40,
            committed_major=1, committed_minor=55, committed_build=40,
        )
        return dataclasses.replace(report, **changes)

    def sign(self, report: SnpReport, key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
        signature = (key or self.keys.leaf).sign(report.signed_bytes(), ec.ECDSA(hashes.SHA384()))
        r, s = decode_dss_signature(signature)
        return report.with_signature(r, s).to_bytes()

    def endorsements(self, leaf: x509.Certificate | None = None) -> dict[str, bytes]:
        return {self.kind: der(leaf or self.leaf), "cert_chain": pem(self.intermediate, self.ark)}

    def evidence(self, nonce: bytes | None = None, **changes: Any
                 ) -> tuple[Evidence, bytes, bytes]:
        """(evidence, the report_data it must bind, the nonce)."""
        nonce = nonce or secrets.token_bytes(32)
        report_data = bind(nonce, TEST_GUEST)
        raw = self.sign(self.report(report_data, **changes))
        return Evidence(PLATFORM, raw, self.endorsements()), report_data, nonce

    def auxblob(self) -> bytes:
        """The chain as a configfs-tsm certificate table, PEM entries like real firmware."""
        return build_cert_table({"ark": pem(self.ark), "ask": pem(self.intermediate),
                                 self.kind: pem(self.leaf)})

    def crl(self, revoked: tuple[int, ...] = (), *, key: rsa.RSAPrivateKey | None = None,
            this_update: datetime | None = None, days: int = 30,
            issuer: x509.Certificate | None = None) -> x509.CertificateRevocationList:
        this_update = this_update or self.now - timedelta(days=1)
        builder = (x509.CertificateRevocationListBuilder()
                   .issuer_name((issuer or self.ark).subject)
                   .last_update(this_update).next_update(this_update + timedelta(days=days)))
        for serial in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial)
                .revocation_date(this_update).build())
        return builder.sign(key or self.keys.ark, hashes.SHA384(), rsa_padding=PSS)

    # --- broken evidence -----------------------------------------------------------------

    def broken_cases(self) -> list[BrokenCase]:
        evidence, report_data, _ = self.evidence()
        cases = [*self._byte_cases(evidence), *self._resigned_cases(evidence, report_data),
                 *self._chain_cases(evidence), *self._endorsement_cases(evidence)]
        built = [BrokenCase(name, ev, report_data, self.now, error) for name, ev, error in cases]
        other, _, _ = self.evidence()
        built.append(BrokenCase("wrong_report_data", other, report_data, self.now,
                                VerificationFailed))
        late = self.leaf.not_valid_after_utc + timedelta(days=1)
        built.append(BrokenCase(f"expired_{self.kind}", evidence, report_data, late,
                                VerificationFailed))
        early = self.now - timedelta(days=2)
        built.append(BrokenCase("not_yet_valid", evidence, report_data, early,
                                VerificationFailed))
        return built

    def _byte_cases(self, evidence: Evidence) -> list[tuple[str, Evidence, type]]:
        raw = evidence.report

        def flipped(offset: int, mask: int = 0x01) -> Evidence:
            data = bytearray(raw)
            data[offset] ^= mask
            return dataclasses.replace(evidence, report=bytes(data))

        cases: list[tuple[str, Evidence, type]] = [
            ("bad_signature", flipped(0x2A0), VerificationFailed),
            ("mutated_policy_debug", flipped(0x0A, 0x08), VerificationFailed),
            ("mutated_measurement", flipped(0x90), VerificationFailed),
            ("mutated_report_data", flipped(0x50), VerificationFailed),
            ("mutated_host_data", flipped(0xC0), VerificationFailed),
            ("mutated_reported_tcb", flipped(0x187), VerificationFailed),
            ("mutated_current_tcb", flipped(0x038), VerificationFailed),
            ("mutated_chip_id", flipped(0x1A0), VerificationFailed),
            ("mutated_vmpl", flipped(0x30), VerificationFailed),
            ("truncated", dataclasses.replace(evidence, report=raw[:-1]), MalformedEvidence),
            # up to MAX_TRAILING unsigned bytes after the report are ignored; more is absurd
            ("oversized", dataclasses.replace(evidence, report=raw + bytes(MAX_TRAILING + 1)),
             MalformedEvidence),
            ("empty", dataclasses.replace(evidence, report=b""), MalformedEvidence),
            ("unknown_version", flipped(0x00, 0x70), MalformedEvidence),
            ("reserved_nonzero", flipped(0x4C), MalformedEvidence),
        ]
        return cases

    def _resigned_cases(self, evidence: Evidence, report_data: bytes
                        ) -> list[tuple[str, Evidence, type]]:
        # Signed with the real leaf key: each reaches the one check it is named after.
        def resigned(**changes: Any) -> Evidence:
            return dataclasses.replace(evidence, report=self.sign(self.report(report_data,
                                                                              **changes)))

        other_kind = "vcek" if self.kind == "vlek" else "vlek"
        other_product = "Genoa" if self.product != "Genoa" else "Milan"
        family, model, _ = CPUID[other_product]
        cases = [
            ("signature_algo_not_1", resigned(signature_algo=2), VerificationFailed),
            ("signing_key_mismatch", resigned(key_info=KEY_INFO[other_kind]),
             VerificationFailed),
            ("signing_key_none", resigned(key_info=KEY_INFO["none"]), VerificationFailed),
            ("mask_chip_key", resigned(key_info=KEY_INFO[self.kind] | 0x2), VerificationFailed),
            ("tcb_differs_from_certificate",
             resigned(reported_tcb=encode_tcb({**self.tcb, "snp": self.tcb["snp"] + 1},
                                              self.product)), VerificationFailed),
        ]
        if self.version >= 3:
            cases.append(("product_mismatch", resigned(cpuid_family=family, cpuid_model=model),
                          VerificationFailed))
        if self.kind == "vcek":
            cases.append(("chip_id_differs", resigned(chip_id=bytes([1]) * 64),
                          VerificationFailed))
        return cases

    def _chain_cases(self, evidence: Evidence) -> list[tuple[str, Evidence, type]]:
        def with_leaf(leaf: x509.Certificate, chain: bytes | None = None) -> Evidence:
            endorsements = self.endorsements(leaf)
            if chain is not None:
                endorsements["cert_chain"] = chain
            return dataclasses.replace(evidence, endorsements=endorsements)

        bumped = {**self.tcb, "microcode": self.tcb["microcode"] + 1}
        rogue_ark = make_ark(self.keys.rogue, self.product, self.now)
        rogue_ask = make_intermediate(self.keys.intermediate, self.keys.rogue, rogue_ark,
                                      self.product, self.kind, self.now)
        unsigned_ask = make_intermediate(self.keys.intermediate, self.keys.rogue, self.ark,
                                         self.product, self.kind, self.now)
        cases = [
            ("tcb_extension_mismatch", with_leaf(self.issue_leaf(spls=bumped)),
             VerificationFailed),
            ("leaf_not_signed_by_intermediate", with_leaf(self.issue_leaf(
                issuer_key=self.keys.rogue)), VerificationFailed),
            ("ask_not_signed_by_ark", with_leaf(self.leaf, pem(unsigned_ask, self.ark)),
             VerificationFailed),
            ("unpinned_ark", with_leaf(self.issue_leaf(issuer=rogue_ask),
                                       pem(rogue_ask, rogue_ark)), VerificationFailed),
        ]
        if self.kind == "vcek":
            other_chip = bytes([0xEE]) * len(self.hwid or b"")
            cases.append(("vcek_for_another_chip", with_leaf(self.issue_leaf(hwid=other_chip)),
                          VerificationFailed))
        return cases

    def _endorsement_cases(self, evidence: Evidence) -> list[tuple[str, Evidence, type]]:
        def endorsed(endorsements: dict[str, bytes]) -> Evidence:
            return dataclasses.replace(evidence, endorsements=endorsements)

        chain = pem(self.intermediate, self.ark)
        return [
            ("missing_leaf", endorsed({"cert_chain": chain}), CollateralUnavailable),
            ("missing_intermediate", endorsed({self.kind: der(self.leaf)}),
             CollateralUnavailable),
            ("no_endorsements", endorsed({}), CollateralUnavailable),
            ("garbage_certificate", endorsed({self.kind: b"\x30\x03abc", "cert_chain": chain}),
             MalformedEvidence),
            ("truncated_auxblob", endorsed({"auxblob": self.auxblob()[:20]}), MalformedEvidence),
        ]


def _hwid(product: str, kind: str, chip_id: bytes) -> bytes | None:
    if kind == "vlek":
        return None
    return chip_id[:8] if product == "Turin" else chip_id


def _product_name(product: str, kind: str) -> str:
    return f"{product}-B0" if kind == "vcek" else product
