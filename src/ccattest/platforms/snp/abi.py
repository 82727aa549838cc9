"""The SEV-SNP ATTESTATION_REPORT: bytes <-> typed record. No cryptography here.

Layout: AMD SEV-SNP Firmware ABI (#56860), "ATTESTATION_REPORT Structure"; summarised in
FORMATS.md. 0x4A0 bytes, little-endian; the signature covers bytes 0x000-0x29F. Reserved
byte ranges must be zero; bit fields (policy, key info, platform info) keep unknown bits
and expose them, because firmware adds flags there without changing the report's size.

Bytes after the report (a report cut from an Azure HCL report carries the start of the
runtime-data header; go-sev-guest accepts them) are split off by `split_report` and never
read: nothing signs them. Up to MAX_TRAILING of them, so absurd input is still refused.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ...errors import MalformedEvidence

REPORT_SIZE = 0x4A0
MAX_TRAILING = 64 * 1024  # the HCL report's runtime-data bound (azure/hcl.py)
SIGNED_SIZE = 0x2A0
SUPPORTED_VERSIONS = frozenset({1, 2, 3, 5})
CPUID_VERSION = 3  # first version that carries cpuid family/model/stepping
SIGNATURE_ALGO_ECDSA_P384_SHA384 = 1
COMPONENT_SIZE = 72  # r and s are 72-byte little-endian integers

# The layout as (field, struct code); None marks a reserved range that must be zero.
_FIELDS: tuple[tuple[str | None, str], ...] = (
    ("version", "I"), ("guest_svn", "I"), ("policy", "Q"), ("family_id", "16s"),
    ("image_id", "16s"), ("vmpl", "I"), ("signature_algo", "I"), ("current_tcb", "Q"),
    ("platform_info", "Q"), ("key_info", "I"), (None, "4s"), ("report_data", "64s"),
    ("measurement", "48s"), ("host_data", "32s"), ("id_key_digest", "48s"),
    ("author_key_digest", "48s"), ("report_id", "32s"), ("report_id_ma", "32s"),
    ("reported_tcb", "Q"), ("cpuid_family", "B"), ("cpuid_model", "B"),
    ("cpuid_stepping", "B"), (None, "21s"), ("chip_id", "64s"), ("committed_tcb", "Q"),
    ("current_build", "B"), ("current_minor", "B"), ("current_major", "B"), (None, "B"),
    ("committed_build", "B"), ("committed_minor", "B"), ("committed_major", "B"), (None, "B"),
    ("launch_tcb", "Q"), ("launch_mit_vector", "Q"), ("current_mit_vector", "Q"),
    (None, "152s"), ("signature_r", "72s"), ("signature_s", "72s"), (None, "368s"),
)
_LAYOUT = struct.Struct("<" + "".join(code for _, code in _FIELDS))
_SIGNATURE_FIELDS = ("signature_r", "signature_s")
_BYTE_FIELDS = {
    "family_id": 16, "image_id": 16, "report_data": 64, "measurement": 48, "host_data": 32,
    "id_key_digest": 48, "author_key_digest": 48, "report_id": 32, "report_id_ma": 32,
    "chip_id": 64,
}
_U8_FIELDS = ("cpuid_family", "cpuid_model", "cpuid_stepping", "current_build",
              "current_minor", "current_major", "committed_build", "committed_minor",
              "committed_major")
_U32_FIELDS = ("version", "guest_svn", "vmpl", "signature_algo", "key_info")
_U64_FIELDS = ("policy", "current_tcb", "platform_info", "reported_tcb", "committed_tcb",
               "launch_tcb", "launch_mit_vector", "current_mit_vector")

POLICY_FLAGS = {
    "smt": 16, "reserved_bit17": 17, "migrate_ma": 18, "debug": 19, "single_socket": 20,
    "cxl_allow": 21, "mem_aes_256_xts": 22, "rapl_dis": 23, "ciphertext_hiding": 24,
    "page_swap_disable": 25,
}
_POLICY_KNOWN = 0xFFFF | sum(1 << bit for bit in POLICY_FLAGS.values())
PLATFORM_INFO_FLAGS = {
    "smt_enabled": 0, "tsme_enabled": 1, "ecc_enabled": 2, "rapl_disabled": 3,
    "ciphertext_hiding_enabled": 4, "alias_check_complete": 5,
}
SIGNING_KEYS = {0: "vcek", 1: "vlek", 7: "none"}

# TCB_VERSION byte positions per product family (Turin adds FMC and moves the others).
_TCB_BYTES = {
    "default": {"bootloader": 0, "tee": 1, "snp": 6, "microcode": 7},
    "Turin": {"fmc": 0, "bootloader": 1, "tee": 2, "snp": 3, "microcode": 7},
}


def tcb_layout(product: str | None) -> Mapping[str, int]:
    return _TCB_BYTES["Turin" if product == "Turin" else "default"]


def decode_tcb(raw: int, product: str | None) -> dict[str, int]:
    """The named SPLs of a TCB_VERSION; Milan/Genoa layout unless the product is Turin."""
    data = raw.to_bytes(8, "little")
    return {name: data[index] for name, index in tcb_layout(product).items()}


def encode_tcb(parts: Mapping[str, int], product: str | None) -> int:
    data = bytearray(8)
    for name, index in tcb_layout(product).items():
        data[index] = parts.get(name, 0)
    return int.from_bytes(data, "little")


def product_from_cpuid(family: int, model: int) -> str | None:
    """Product line from the report's cpuid family/model (FORMATS.md table), if known."""
    if family == 0x19 and model <= 0x0F:
        return "Milan"
    if family == 0x19 and (0x10 <= model <= 0x1F or 0xA0 <= model <= 0xAF):
        return "Genoa"
    if family == 0x1A and model <= 0x1F:
        return "Turin"
    return None


@dataclass(frozen=True)
class GuestPolicy:
    """The guest policy the hypervisor launched the guest with, decoded."""

    raw: int

    @property
    def abi_minor(self) -> int:
        return self.raw & 0xFF

    @property
    def abi_major(self) -> int:
        return (self.raw >> 8) & 0xFF

    def flag(self, name: str) -> bool:
        return bool(self.raw >> POLICY_FLAGS[name] & 1)

    @property
    def unknown_bits(self) -> int:
        return self.raw & ~_POLICY_KNOWN

    def to_dict(self) -> dict[str, Any]:
        decoded: dict[str, Any] = {"raw": self.raw, "abi_major": self.abi_major,
                                   "abi_minor": self.abi_minor}
        decoded.update({name: self.flag(name) for name in POLICY_FLAGS})
        decoded["unknown_bits"] = self.unknown_bits
        return decoded


def decode_platform_info(raw: int) -> dict[str, Any]:
    decoded: dict[str, Any] = {"raw": raw}
    decoded.update({name: bool(raw >> bit & 1) for name, bit in PLATFORM_INFO_FLAGS.items()})
    return decoded


@dataclass(frozen=True)
class SnpReport:
    """One ATTESTATION_REPORT. TCB fields are raw u64 values: their layout depends on the
    product, which a v2 report does not name (decode with `tcb()` once it is known)."""

    version: int = 3
    guest_svn: int = 0
    policy: int = 0x30000
    family_id: bytes = bytes(16)
    image_id: bytes = bytes(16)
    vmpl: int = 0
    signature_algo: int = SIGNATURE_ALGO_ECDSA_P384_SHA384
    current_tcb: int = 0
    platform_info: int = 0
    key_info: int = 0
    report_data: bytes = bytes(64)
    measurement: bytes = bytes(48)
    host_data: bytes = bytes(32)
    id_key_digest: bytes = bytes(48)
    author_key_digest: bytes = bytes(48)
    report_id: bytes = bytes(32)
    report_id_ma: bytes = bytes(32)
    reported_tcb: int = 0
    cpuid_family: int = 0
    cpuid_model: int = 0
    cpuid_stepping: int = 0
    chip_id: bytes = bytes(64)
    committed_tcb: int = 0
    current_build: int = 0
    current_minor: int = 0
    current_major: int = 0
    committed_build: int = 0
    committed_minor: int = 0
    committed_major: int = 0
    launch_tcb: int = 0
    launch_mit_vector: int = 0
    current_mit_vector: int = 0
    signature_r: int = 0
    signature_s: int = 0

    # --- decoded views ------------------------------------------------------------------

    @property
    def guest_policy(self) -> GuestPolicy:
        return GuestPolicy(self.policy)

    @property
    def author_key_en(self) -> bool:
        return bool(self.key_info & 0x1)

    @property
    def mask_chip_key(self) -> bool:
        return bool(self.key_info & 0x2)

    @property
    def signing_key(self) -> str:
        code = (self.key_info >> 2) & 0x7
        return SIGNING_KEYS.get(code, f"reserved({code})")

    @property
    def has_cpuid(self) -> bool:
        return self.version >= CPUID_VERSION

    @property
    def product(self) -> str | None:
        """The product line named by cpuid (v3+ reports), else None."""
        if not self.has_cpuid:
            return None
        return product_from_cpuid(self.cpuid_family, self.cpuid_model)

    def tcb(self, name: str, product: str | None) -> dict[str, int]:
        """Decode one of current_tcb, reported_tcb, committed_tcb, launch_tcb."""
        return decode_tcb(getattr(self, name), product)

    @property
    def current_firmware(self) -> str:
        return f"{self.current_major}.{self.current_minor}.{self.current_build}"

    @property
    def committed_firmware(self) -> str:
        return f"{self.committed_major}.{self.committed_minor}.{self.committed_build}"

    # --- serialisation ------------------------------------------------------------------

    def signed_bytes(self) -> bytes:
        return self.to_bytes()[:SIGNED_SIZE]

    def with_signature(self, r: int, s: int) -> SnpReport:
        return replace(self, signature_r=r, signature_s=s)

    def to_bytes(self) -> bytes:
        _check_ranges(self)
        return _LAYOUT.pack(*(_packed(self, name, code) for name, code in _FIELDS))


def _packed(report: SnpReport, name: str | None, code: str) -> Any:
    if name is None:
        return 0 if code == "B" else b""  # struct pads "Ns" with zeros
    value = getattr(report, name)
    return value.to_bytes(COMPONENT_SIZE, "little") if name in _SIGNATURE_FIELDS else value


def _check_ranges(report: SnpReport) -> None:
    # Programming errors in whoever built the record, not bad evidence: ValueError.
    for name, size in _BYTE_FIELDS.items():
        if len(getattr(report, name)) != size:
            raise ValueError(f"{name} must be {size} bytes")
    limits = [(name, 8) for name in _U8_FIELDS] + [(name, 32) for name in _U32_FIELDS]
    limits += [(name, 64) for name in _U64_FIELDS]
    limits += [("signature_r", 8 * COMPONENT_SIZE), ("signature_s", 8 * COMPONENT_SIZE)]
    for name, bits in limits:
        if not 0 <= getattr(report, name) < 1 << bits:
            raise ValueError(f"{name} must fit in {bits} unsigned bits")


def split_report(data: bytes) -> tuple[bytes, bytes]:
    """(the report's REPORT_SIZE bytes, the unsigned bytes after them); MalformedEvidence for
    anything truncated or with more than MAX_TRAILING bytes after the report."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedEvidence("SNP report must be bytes", found=type(data).__name__)
    data = bytes(data)
    if not REPORT_SIZE <= len(data) <= REPORT_SIZE + MAX_TRAILING:
        raise MalformedEvidence("SNP report has the wrong size",
                                expected=f"{REPORT_SIZE} bytes (and at most {MAX_TRAILING} "
                                         "unsigned bytes after them)",
                                found=f"{len(data)} bytes")
    return data[:REPORT_SIZE], data[REPORT_SIZE:]


def parse_report(data: bytes) -> SnpReport:
    """Parse one report from the first REPORT_SIZE bytes; reject anything truncated,
    oversized (see split_report) or inconsistent. Trailing bytes are ignored, never read."""
    report, _ = split_report(data)
    values = _LAYOUT.unpack(report)
    version = values[0]
    if version not in SUPPORTED_VERSIONS:
        raise MalformedEvidence("unsupported SNP report version",
                                expected=f"one of {sorted(SUPPORTED_VERSIONS)}", found=version)
    _check_reserved(values)
    return _from_values(values)


def _reserved_fields() -> tuple[tuple[int, int], ...]:
    """(index among the values, byte offset) of each reserved range, computed once."""
    found, offset = [], 0
    for index, (name, code) in enumerate(_FIELDS):
        if name is None:
            found.append((index, offset))
        offset += struct.calcsize("<" + code)
    return tuple(found)


_RESERVED = _reserved_fields()


def _check_reserved(values: tuple[Any, ...]) -> None:
    if len(values) != len(_FIELDS):
        raise ValueError("values do not match the report layout")
    for index, offset in _RESERVED:
        value = values[index]
        chunk = value if isinstance(value, bytes) else bytes([value])
        if any(chunk):
            first = len(chunk) - len(chunk.lstrip(b"\0"))
            raise MalformedEvidence(f"reserved byte at {offset + first:#05x} is not zero",
                                    expected="zero", found=f"{chunk[first]:#04x}")


_NAMED = tuple((index, name) for index, (name, _) in enumerate(_FIELDS) if name)


def _from_values(values: tuple[Any, ...]) -> SnpReport:
    named = {name: values[index] for index, name in _NAMED}
    for name in _SIGNATURE_FIELDS:
        named[name] = int.from_bytes(named[name], "little")
    return SnpReport(**named)
