"""Valid and broken `nvgpu` evidence from a test NVIDIA-like PKI generated at run time, and
a fake NVML module for the attester.

The test root is not NVIDIA's: the verifier accepts it only when a test passes it
explicitly as `root=` (NvgpuFixture.verifier does). The chain has NVIDIA's shape (Identity
CA, Provisioner ICA, GSP BROM, GSP FMC LF leaf, all ECDSA P-384) and names, so that the
architecture, FWID and every other branch of the verifier can be reached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from ..errors import CollateralUnavailable, MalformedEvidence, VerificationFailed
from ..evidence import Evidence
from ..platforms.nvgpu import CC_STATE_LOG_TYPE, PLATFORM, abi
from ..platforms.nvgpu.abi import (
    GpuEvidence,
    GpuReport,
    MeasurementBlock,
    MeasurementRequest,
    MeasurementResponse,
    OpaqueEntry,
    dump_evidence_list,
)
from ..platforms.nvgpu.certs import BLACKWELL_FWID_OID, HOPPER_FWID_OID
from ..platforms.nvgpu.verify import NvgpuVerifier
from .cases import FIXED_NOW, BrokenCase

if TYPE_CHECKING:  # nvidia_server imports lxml and signxml: only where a test serves OCSP
    from .nvidia_server import OcspResponder

CHIPS = {"HOPPER": "GH100", "BLACKWELL": "GB100"}
SHA384_OID = bytes.fromhex("0609608648016503040202")  # DER of 2.16.840.1.101.3.4.2.2
BLOCK_COUNT = 8


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@dataclasses.dataclass(frozen=True)
class NvgpuKeys:
    root: ec.EllipticCurvePrivateKey
    identity: ec.EllipticCurvePrivateKey
    ica: ec.EllipticCurvePrivateKey
    brom: ec.EllipticCurvePrivateKey
    leaf: ec.EllipticCurvePrivateKey
    rogue: ec.EllipticCurvePrivateKey  # signs what a forger would

    @classmethod
    def generate(cls) -> NvgpuKeys:
        return cls(_key(), _key(), _key(), _key(), _key(), _key())


# --- DER for the two FWID extensions ------------------------------------------------------------

def der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        length = bytes([size])
    elif size < 0x100:
        length = bytes([0x81, size])
    else:
        length = bytes([0x82]) + size.to_bytes(2, "big")
    return bytes([tag]) + length + content


def fwid_element(fwid: bytes) -> bytes:
    return der(0x30, SHA384_OID + der(0x04, fwid))


def hopper_fwid_extension(public_key: ec.EllipticCurvePublicKey, fwid: bytes) -> bytes:
    """NVIDIA's Hopper form: SEQUENCE { version, device key, FWID }."""
    spki = public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    return der(0x30, der(0x02, b"\x01") + spki + fwid_element(fwid))


def dice_tcb_info(fwid: bytes, model: str) -> bytes:
    """DiceTcbInfo with vendor, model, version, svn, layer, index, fwids (two), flags."""
    fields = (der(0x80, b"NVIDIA") + der(0x81, model.encode()) + der(0x82, b"01")
              + der(0x83, b"\x01") + der(0x84, b"\x00") + der(0x85, b"\x00")
              + der(0xA6, fwid_element(fwid) + fwid_element(bytes(48)))
              + der(0x87, b"\x00\x80\x00\x00\x01"))
    return der(0x30, fields)


# --- certificates ----------------------------------------------------------------------------

def nv_name(common_name: str, organization: str = "NVIDIA Corporation") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)])


def make_certificate(subject: str, public_key: Any, issuer: x509.Name,
                     issuer_key: ec.EllipticCurvePrivateKey, now: datetime, *, ca: bool,
                     days: int = 3650, extensions: Sequence[x509.ExtensionType] = ()
                     ) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(nv_name(subject)).issuer_name(issuer)
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(days=1))
               .not_valid_after(now + timedelta(days=days)))
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    for extension in extensions:
        builder = builder.add_extension(extension, False)
    return builder.sign(issuer_key, hashes.SHA384())


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certificates)


# --- the fixture ---------------------------------------------------------------------------------

def _text(value: str, size: int) -> bytes:
    return value.encode("ascii").ljust(size, b"\0")


def default_opaque(arch: str, fwid: bytes, /, **overrides: bytes | None) -> dict[int, bytes]:
    """The opaque entries a GPU sends, by type; an override of None drops that entry."""
    entries = {
        abi.VBIOS_VERSION: abi.vbios_bytes("96.00.9F.00.01" if arch == "HOPPER"
                                           else "97.00.88.00.0F"),
        abi.BOARD_ID: bytes.fromhex("b1030000"),
        abi.CHIP_SKU: _text("882", 9), abi.CHIP_SKU_MOD: _text("0", 5),
        abi.PROJECT: _text("1010", 5), abi.PROJECT_SKU: _text("0200", 5),
        abi.PROJECT_SKU_MOD: bytes(2), abi.DRIVER_VERSION: _text("550.90.07", 10),
        abi.GPU_INFO: bytes.fromhex("8001000000000000"),
        abi.MSRSCNT: b"".join(i.to_bytes(4, "little") for i in range(BLOCK_COUNT)),
        abi.CPR_INFO: bytes.fromhex("00c00100"), abi.NVDEC0_STATUS: b"\x55",
        abi.FWID: fwid, abi.PROTECTED_PCIE_STATUS: b"\x55",
        abi.OPAQUE_DATA_VERSION: b"\x01\x00", abi.FEATURE_FLAG: b"\x00\x00",
    }
    if arch == "BLACKWELL":
        entries[abi.CHIP_INFO] = _text("GB100", 8)
    for name, value in overrides.items():
        kind = getattr(abi, name.upper())
        if value is None:
            entries.pop(kind, None)
        else:
            entries[kind] = value
    return entries


def measurement_blocks(count: int = BLOCK_COUNT) -> tuple[MeasurementBlock, ...]:
    return tuple(MeasurementBlock(index, hashlib.sha384(bytes([index])).digest())
                 for index in range(1, count + 1))


@dataclasses.dataclass
class NvgpuFixture:
    """A test Identity CA -> Provisioner ICA -> BROM -> FMC LF chain and a GPU that signs."""

    arch: str
    keys: NvgpuKeys
    root: x509.Certificate
    identity: x509.Certificate
    ica: x509.Certificate
    brom: x509.Certificate
    leaf: x509.Certificate
    fwid: bytes
    now: datetime

    @classmethod
    def create(cls, arch: str = "HOPPER", *, now: datetime = FIXED_NOW,
               keys: NvgpuKeys | None = None) -> NvgpuFixture:
        keys = keys or NvgpuKeys.generate()
        chip = CHIPS[arch]
        root_name = nv_name("Test Device Identity CA")
        root = make_certificate("Test Device Identity CA", keys.root.public_key(), root_name,
                                keys.root, now, ca=True, days=30 * 365)
        identity = make_certificate(f"NVIDIA {chip} Identity", keys.identity.public_key(),
                                    root.subject, keys.root, now, ca=True)
        ica = make_certificate(f"NVIDIA {chip} Provisioner ICA 1", keys.ica.public_key(),
                               identity.subject, keys.identity, now, ca=True)
        brom = make_certificate(f"{chip} A01 GSP BROM", keys.brom.public_key(), ica.subject,
                                keys.ica, now, ca=True)
        fwid = hashlib.sha384(secrets.token_bytes(16)).digest()
        fixture = cls(arch, keys, root, identity, ica, brom, brom, fwid, now)
        fixture.leaf = fixture.issue_leaf()
        return fixture

    @property
    def chip(self) -> str:
        return CHIPS[self.arch]

    def fwid_extension(self, fwid: bytes | None = None) -> x509.UnrecognizedExtension:
        fwid = fwid or self.fwid
        if self.arch == "BLACKWELL":
            return x509.UnrecognizedExtension(BLACKWELL_FWID_OID,
                                              dice_tcb_info(fwid, f"{self.chip} A01 GSP"))
        return x509.UnrecognizedExtension(HOPPER_FWID_OID,
                                          hopper_fwid_extension(self.keys.leaf.public_key(), fwid))

    def issue_leaf(self, *, key: Any = None, issuer_key: ec.EllipticCurvePrivateKey | None = None,
                   name: str | None = None, extensions: Sequence[x509.ExtensionType] | None = None,
                   days: int = 3650) -> x509.Certificate:
        """The fixture's FMC LF leaf, or a variant of it."""
        usage = x509.KeyUsage(digital_signature=True, content_commitment=False,
                              key_encipherment=False, data_encipherment=False,
                              key_agreement=False, key_cert_sign=False, crl_sign=False,
                              encipher_only=False, decipher_only=False)
        extensions = [usage, self.fwid_extension()] if extensions is None else extensions
        return make_certificate(name or f"{self.chip} A01 GSP FMC LF",
                                (key or self.keys.leaf.public_key()), self.brom.subject,
                                issuer_key or self.keys.brom, self.now, ca=False, days=days,
                                extensions=extensions)

    def chain(self, leaf: x509.Certificate | None = None, *, with_root: bool = True) -> bytes:
        certs = [leaf or self.leaf, self.brom, self.ica, self.identity]
        return pem(*certs, *([self.root] if with_root else []))

    def verifier(self, **kwargs: Any) -> NvgpuVerifier:
        return NvgpuVerifier(root=self.root, **kwargs)

    def ocsp_responders(self, **options: Any) -> list[OcspResponder]:
        """An OCSP responder for each CA-issued certificate the verifier asks about, in chain
        order (for the BROM, the Provisioner ICA, the Identity certificate), each answering
        "good" and signed by that certificate's issuer; `options` (e.g. next_update) go to
        every one. Serve them with testing.nvidia_server.NvidiaServer.add_responder."""
        from .nvidia_server import OcspResponder

        pairs = ((self.brom, self.ica, self.keys.ica),
                 (self.ica, self.identity, self.keys.identity),
                 (self.identity, self.root, self.keys.root))
        return [OcspResponder(issuer, key, **options).set_status(cert, "good")
                for cert, issuer, key in pairs]

    def response(self, nonce: bytes, /, *, blocks: tuple[MeasurementBlock, ...] | None = None,
                 **opaque: bytes | None) -> MeasurementResponse:
        """The GPU's unsigned MEASUREMENTS response; opaque overrides by field name (not
        decoded here, so a test can send fields the parser must reject)."""
        entries = default_opaque(self.arch, self.fwid, **opaque)
        return MeasurementResponse(
            blocks=measurement_blocks() if blocks is None else blocks,
            nonce=hashlib.sha256(b"responder" + nonce).digest(),
            opaque=tuple(OpaqueEntry(kind, value) for kind, value in entries.items()))

    def report(self, nonce: bytes, /, *, blocks: tuple[MeasurementBlock, ...] | None = None,
               padding: int = 0, **opaque: bytes | None) -> GpuReport:
        """An unsigned report as this GPU would fill it."""
        response = self.response(nonce, blocks=blocks, **opaque)
        return GpuReport(MeasurementRequest(nonce), response, padding=padding)

    def sign(self, report: GpuReport, key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
        return self.sign_bytes(report.signed_bytes(), key) + bytes(report.padding)

    def sign_bytes(self, signed: bytes, key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
        """`signed` followed by its raw r||s signature, as the GPU appends it."""
        r, s = decode_dss_signature((key or self.keys.leaf).sign(signed,
                                                                 ec.ECDSA(hashes.SHA384())))
        return signed + r.to_bytes(48, "big") + s.to_bytes(48, "big")

    def evidence(self, nonce: bytes | None = None, /, *, cc_state: Mapping[str, str] | None = None,
                 **opaque: bytes | None) -> tuple[Evidence, bytes]:
        """(evidence, the nonce it answers); cc_state adds an attester's log entry."""
        nonce = nonce or secrets.token_bytes(32)
        raw = self.sign(self.report(nonce, **opaque))
        log = () if cc_state is None else ({"type": CC_STATE_LOG_TYPE, **cc_state},)
        return Evidence(PLATFORM, raw, {"cert_chain": self.chain()}, log=log), nonce

    def entry(self, nonce: bytes) -> GpuEvidence:
        return GpuEvidence(self.arch, self.chain(), self.sign(self.report(nonce)), nonce)

    # --- broken evidence ---------------------------------------------------------------------

    def broken_cases(self) -> list[BrokenCase]:
        evidence, nonce = self.evidence()
        cases = [*self._byte_cases(evidence), *self._resigned_cases(evidence, nonce),
                 *self._chain_cases(evidence), *self._endorsement_cases(evidence)]
        built = [BrokenCase(name, ev, nonce, self.now, error) for name, ev, error in cases]
        other, _ = self.evidence()
        built.append(BrokenCase("wrong_nonce", other, nonce, self.now, VerificationFailed))
        late = self.leaf.not_valid_after_utc + timedelta(days=1)
        built.append(BrokenCase("expired_leaf", evidence, nonce, late, VerificationFailed))
        early = self.now - timedelta(days=2)
        built.append(BrokenCase("not_yet_valid", evidence, nonce, early, VerificationFailed))
        return built

    def _byte_cases(self, evidence: Evidence) -> list[tuple[str, Evidence, type]]:
        raw = evidence.report

        def flipped(offset: int, mask: int = 0x01) -> Evidence:
            data = bytearray(raw)
            data[offset] ^= mask
            return dataclasses.replace(evidence, report=bytes(data))

        first_value = abi.REQUEST_SIZE + 8 + 7  # response header, then the first block's value
        return [
            ("mutated_request_nonce", flipped(4), VerificationFailed),
            ("mutated_measurement", flipped(first_value), VerificationFailed),
            ("mutated_signature", flipped(len(raw) - 1), VerificationFailed),
            ("mutated_responder_nonce", flipped(len(raw) - 96 - 2 - self._opaque_size() - 1),
             VerificationFailed),
            ("truncated", dataclasses.replace(evidence, report=raw[:-1]), MalformedEvidence),
            ("trailing_garbage", dataclasses.replace(evidence, report=raw + b"\x01"),
             MalformedEvidence),
            ("empty", dataclasses.replace(evidence, report=b""), MalformedEvidence),
            ("wrong_spdm_version", flipped(0, 0x30), MalformedEvidence),
            ("wrong_response_code", flipped(abi.REQUEST_SIZE + 1, 0x02), MalformedEvidence),
        ]

    def _opaque_size(self) -> int:
        entries = default_opaque(self.arch, self.fwid)
        return sum(4 + len(value) for value in entries.values())

    def _resigned_cases(self, evidence: Evidence, nonce: bytes
                        ) -> list[tuple[str, Evidence, type]]:
        def resigned(key: ec.EllipticCurvePrivateKey | None = None, **opaque: bytes | None
                     ) -> Evidence:
            signed = MeasurementRequest(nonce).to_bytes() + \
                self.response(nonce, **opaque).unsigned_bytes()
            return dataclasses.replace(evidence, report=self.sign_bytes(signed, key))

        other_chip = "GH100" if self.arch == "BLACKWELL" else "GB100"
        return [
            ("signed_by_another_key", resigned(self.keys.rogue), VerificationFailed),
            ("fwid_differs", resigned(fwid=bytes(48)), VerificationFailed),
            ("chip_info_other_arch", resigned(chip_info=_text(other_chip, 8)),
             VerificationFailed),
            ("bad_opaque_status", resigned(nvdec0_status=b"\x01"), MalformedEvidence),
            ("bad_vbios_size", resigned(vbios_version=b"\x01\x02"), MalformedEvidence),
        ]

    def _chain_cases(self, evidence: Evidence) -> list[tuple[str, Evidence, type]]:
        def chained(data: bytes) -> Evidence:
            return dataclasses.replace(evidence, endorsements={"cert_chain": data})

        rogue_root = make_certificate("Test Device Identity CA", self.keys.rogue.public_key(),
                                      self.root.subject, self.keys.rogue, self.now, ca=True)
        forged_identity = make_certificate(f"NVIDIA {self.chip} Identity",
                                           self.keys.identity.public_key(), rogue_root.subject,
                                           self.keys.rogue, self.now, ca=True)
        not_ca_ica = make_certificate(f"NVIDIA {self.chip} Provisioner ICA 1",
                                      self.keys.ica.public_key(), self.identity.subject,
                                      self.keys.identity, self.now, ca=False)
        no_fwid = self.issue_leaf(extensions=[])
        p256 = self.issue_leaf(key=ec.generate_private_key(ec.SECP256R1()).public_key())
        unnamed = self.issue_leaf(name="Test Accelerator FMC LF")
        garbage = x509.UnrecognizedExtension(x509.oid.ExtensionOID.BASIC_CONSTRAINTS, b"\x05\0")
        return [
            ("leaf_not_issued_by_brom", chained(self.chain(self.issue_leaf(
                issuer_key=self.keys.rogue))), VerificationFailed),
            ("brom_missing", chained(pem(self.leaf, self.ica, self.identity, self.root)),
             VerificationFailed),
            ("leaf_missing", chained(pem(self.brom, self.ica, self.identity, self.root)),
             VerificationFailed),
            ("root_only", chained(pem(self.root)), VerificationFailed),
            ("unpinned_root", chained(pem(self.leaf, self.brom, self.ica, forged_identity,
                                          rogue_root)), VerificationFailed),
            ("issuer_not_ca", chained(pem(self.leaf, self.brom, not_ca_ica, self.identity)),
             VerificationFailed),
            ("leaf_without_fwid", chained(self.chain(no_fwid)), VerificationFailed),
            ("leaf_not_p384", chained(self.chain(p256)), VerificationFailed),
            ("leaf_extension_garbage", chained(self.chain(self.issue_leaf(
                extensions=[garbage]))), MalformedEvidence),
            ("chain_names_no_gpu", chained(pem(unnamed, self.brom_named("Test BROM"), self.ica,
                                               self.identity)), VerificationFailed),
        ]

    def brom_named(self, name: str) -> x509.Certificate:
        """A BROM certificate under another name (the leaf must then be issued by it)."""
        return make_certificate(name, self.keys.brom.public_key(), self.ica.subject,
                                self.keys.ica, self.now, ca=True)

    def _endorsement_cases(self, evidence: Evidence) -> list[tuple[str, Evidence, type]]:
        def endorsed(endorsements: dict[str, bytes]) -> Evidence:
            return dataclasses.replace(evidence, endorsements=endorsements)

        broken_pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        return [
            ("no_chain", endorsed({}), CollateralUnavailable),
            ("chain_not_pem", endorsed({"cert_chain": b"\x30\x03abc"}), MalformedEvidence),
            ("chain_pem_garbage", endorsed({"cert_chain": broken_pem}), MalformedEvidence),
        ]


def multi_evidence(fixtures: Sequence[NvgpuFixture], nonce: bytes,
                   cc_state: Mapping[str, str] | None = None) -> Evidence:
    """Several GPUs' evidence in NVIDIA's serialized JSON, all answering `nonce`."""
    log = () if cc_state is None else ({"type": CC_STATE_LOG_TYPE, **cc_state},)
    report = dump_evidence_list(fixture.entry(nonce) for fixture in fixtures)
    return Evidence(PLATFORM, report, {}, log=log)


# --- a fake NVML (the few pynvml functions the attester and the probe call) -------------------

class FakeNvmlError(Exception):
    """Like pynvml.NVMLError: the NVML return code in `value`."""

    def __init__(self, value: int) -> None:
        self.value = value
        super().__init__(FakeNvml.MESSAGES.get(value, f"NVML error {value}"))


@dataclasses.dataclass
class FakeGpu:
    """One GPU: `report` is fixed bytes (a real sample) or made per nonce (a fixture)."""

    report: bytes | Callable[[bytes], bytes]
    chain: bytes
    arch: int = 9
    name: str = "NVIDIA H100 80GB HBM3"
    vbios: str = "96.00.9F.00.01"

    @classmethod
    def of(cls, fixture: NvgpuFixture) -> FakeGpu:
        return cls(lambda nonce: fixture.sign(fixture.report(nonce)), fixture.chain(),
                   arch=9 if fixture.arch == "HOPPER" else 10)


@dataclasses.dataclass
class _Struct:
    values: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


class FakeNvml:
    """Module-like: `errors` maps a function name to the NVML code it fails with."""

    NVMLError = FakeNvmlError
    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_ERROR_NO_PERMISSION = 4
    NVML_ERROR_DRIVER_NOT_LOADED = 9
    NVML_ERROR_LIBRARY_NOT_FOUND = 12
    NVML_ERROR_FUNCTION_NOT_FOUND = 13
    NVML_ERROR_UNKNOWN = 999
    MESSAGES: ClassVar[Mapping[int, str]] = {
        3: "Not Supported", 9: "Driver Not Loaded", 12: "NVML Shared Library Not Found",
        999: "Unknown Error"}

    def __init__(self, gpus: Sequence[FakeGpu] = (), *, cc_feature: int = 1,
                 devtools: int = 0, environment: int = 2,
                 errors: Mapping[str, int] | None = None) -> None:
        self.gpus = list(gpus)
        self.state = _Struct({"environment": environment, "ccFeature": cc_feature,
                              "devToolsMode": devtools})
        self.errors = dict(errors or {})
        self.calls: list[str] = []
        self.initialized = False

    def _enter(self, name: str) -> None:
        self.calls.append(name)
        if name in self.errors:
            raise FakeNvmlError(self.errors[name])

    def nvmlInit(self) -> None:
        self._enter("nvmlInit")
        self.initialized = True

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown")
        self.initialized = False

    def nvmlSystemGetDriverVersion(self) -> str:
        self._enter("nvmlSystemGetDriverVersion")
        return "580.159.04"

    def nvmlSystemGetConfComputeState(self) -> _Struct:
        self._enter("nvmlSystemGetConfComputeState")
        return self.state

    def nvmlSystemGetConfComputeGpusReadyState(self) -> int:
        self._enter("nvmlSystemGetConfComputeGpusReadyState")
        return 0

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        self._enter("nvmlDeviceGetHandleByIndex")
        return self.gpus[index]

    def nvmlDeviceGetName(self, gpu: FakeGpu) -> str:
        self._enter("nvmlDeviceGetName")
        return gpu.name

    def nvmlDeviceGetVbiosVersion(self, gpu: FakeGpu) -> bytes:
        self._enter("nvmlDeviceGetVbiosVersion")
        return gpu.vbios.encode()

    def nvmlDeviceGetArchitecture(self, gpu: FakeGpu) -> int:
        self._enter("nvmlDeviceGetArchitecture")
        return gpu.arch

    def nvmlDeviceGetConfComputeGpuAttestationReport(self, gpu: FakeGpu, nonce: bytes) -> _Struct:
        self._enter("nvmlDeviceGetConfComputeGpuAttestationReport")
        report = gpu.report(bytes(nonce)) if callable(gpu.report) else gpu.report
        buffer = report.ljust(abi.MAX_REPORT_SIZE, b"\0")  # NVML's fixed buffer
        return _Struct({"attestationReportSize": len(report), "attestationReport": buffer,
                        "isCecAttestationReportPresent": 0})

    def nvmlDeviceGetConfComputeGpuCertificate(self, gpu: FakeGpu) -> _Struct:
        self._enter("nvmlDeviceGetConfComputeGpuCertificate")
        return _Struct({"attestationCertChainSize": len(gpu.chain),
                        "attestationCertChain": gpu.chain.ljust(0x1400, b"\0"),
                        "certChainSize": 0, "certChain": b""})
