"""Attester and Verifier protocols, and the registry that maps platform names to them.

The registry stores import paths, not classes, so that naming a platform never imports
another platform's optional dependencies (NVML, NVFlare, ...).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

from ..errors import ConfigError, MalformedEvidence, PlatformUnavailable
from ..evidence import Evidence
from ..result import Reason


@dataclass(frozen=True)
class VerifiedClaims:
    """What a verifier proved: claims it vouches for and the checks that held.

    Verifiers never judge claims (that is the policy's job); they raise VerificationFailed
    or MalformedEvidence when integrity or authenticity does not hold.

    `valid_until` is the earliest end of validity of what the verdict rested on (a CRL's or
    TCB Info's nextUpdate, a certificate's notAfter, a token's exp), and `valid_until_source`
    names that item; None where nothing time-limited was used. The result built from these
    claims expires no later than it (policy.appraise). It may lie before the verification time
    only where the verifier was configured to accept expired collateral.
    """

    platform: str
    claims: Mapping[str, Any]
    checks: tuple[Reason, ...] = ()
    attester: str | None = None  # an identity the evidence itself authenticates, if any
    collateral: Mapping[str, Any] = field(default_factory=dict)
    valid_until: datetime | None = None
    valid_until_source: str | None = None


def earliest(bounds: Iterable[tuple[str, datetime | None]]) -> tuple[datetime | None, str | None]:
    """(time, name) of the earliest of (name, end of validity) pairs; None ends are unbounded.

    For verifiers filling VerifiedClaims.valid_until / valid_until_source; the first name wins
    a tie, so list the most telling item first."""
    best: tuple[datetime | None, str | None] = (None, None)
    for name, end in bounds:
        if end is not None and (best[0] is None or end < best[0]):
            best = (end, name)
    return best


@runtime_checkable
class Attester(Protocol):
    platform: ClassVar[str]

    def collect(self, report_data: bytes) -> Evidence:
        """Evidence whose signed report carries `report_data` (see evidence.bind)."""
        ...


@runtime_checkable
class Verifier(Protocol):
    platform: ClassVar[str]

    def verify(self, evidence: Evidence, *, report_data: bytes, at: datetime) -> VerifiedClaims:
        """Prove integrity, authenticity and the binding of `report_data`, as of `at`."""
        ...


@dataclass(frozen=True)
class PlatformEntry:
    name: str
    attester: str | None  # "module:Class"; None where evidence is a service's token
    verifier: str
    magic: tuple[bytes, ...] = ()  # leading bytes that identify a bare report, where any
    summary: str = ""


_REGISTRY: dict[str, PlatformEntry] = {}


def register_platform(entry: PlatformEntry) -> None:
    if entry.name in _REGISTRY and _REGISTRY[entry.name] != entry:
        raise ConfigError(f"platform {entry.name!r} is already registered differently")
    _REGISTRY[entry.name] = entry


def platforms() -> Mapping[str, PlatformEntry]:
    return dict(_REGISTRY)


def _entry(name: str) -> PlatformEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise ConfigError(f"unknown platform {name!r}", expected=f"one of: {known}") from None


def _load(path: str) -> type:
    module_name, _, attr = path.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def attester_class(name: str) -> type:
    entry = _entry(name)
    if entry.attester is None:
        raise PlatformUnavailable(f"{name} evidence is issued by a service, not collected here")
    return _load(entry.attester)


def verifier_class(name: str) -> type:
    return _load(_entry(name).verifier)


def detect_platform(report: bytes) -> str:
    """The platform of a bare report, where its format says so."""
    for entry in _REGISTRY.values():
        if any(report.startswith(magic) for magic in entry.magic):
            return entry.name
    raise MalformedEvidence(
        "cannot tell the platform of this evidence",
        expected="a ccattest envelope or a report with a known header",
        found=f"{len(report)} bytes starting {report[:8].hex() or '(empty)'}",
        hint="pass --platform",
    )


register_platform(
    PlatformEntry(
        name="snp",
        attester="ccattest.platforms.snp.collect:SnpAttester",
        verifier="ccattest.platforms.snp.verify:SnpVerifier",
        summary="AMD SEV-SNP: VCEK/VLEK-signed reports, chain to pinned AMD ARKs",
    )
)
register_platform(
    PlatformEntry(
        name="tdx",
        attester="ccattest.platforms.tdx.collect:TdxAttester",
        verifier="ccattest.platforms.tdx.verify:TdxVerifier",
        # quote v4 and v5 headers: version, ECDSA P-256 attestation key, TEE type TDX
        magic=(b"\x04\x00\x02\x00\x81\x00\x00\x00", b"\x05\x00\x02\x00\x81\x00\x00\x00"),
        summary="Intel TDX: DCAP quotes, PCK chain to the pinned Intel SGX Root CA, TCB status",
    )
)
register_platform(
    PlatformEntry(
        name="nvgpu",
        attester="ccattest.platforms.nvgpu.collect:NvgpuAttester",
        verifier="ccattest.platforms.nvgpu.verify:NvgpuVerifier",
        magic=(b"\x11\xe0\x01\xff",),  # SPDM 1.1 GET_MEASUREMENTS, all blocks
        summary="NVIDIA GPU CC (Hopper, Blackwell): SPDM measurements, device chain to the "
                "pinned NVIDIA Device Identity CA, RIMs",
    )
)
register_platform(
    PlatformEntry(
        name="nvgpu-nras",
        attester=None,
        verifier="ccattest.platforms.nvgpu.nras:NrasVerifier",
        summary="NVIDIA Remote Attestation Service results: ES384 detached EAT, submods digests",
    )
)
register_platform(
    PlatformEntry(
        name="azure-snp",
        attester="ccattest.platforms.azure.vtpm:AzureCvmAttester",
        verifier="ccattest.platforms.azure.vtpm:AzureSnpVerifier",
        summary="Azure confidential VM on SEV-SNP: HCL report, vTPM quote bound to the report",
    )
)
register_platform(
    PlatformEntry(
        name="azure-tdx",
        attester="ccattest.platforms.azure.vtpm:AzureCvmAttester",
        verifier="ccattest.platforms.azure.vtpm:AzureTdxVerifier",
        summary="Azure confidential VM on TDX: HCL report with TDREPORT, TD quote, vTPM quote",
    )
)
register_platform(
    PlatformEntry(
        name="maa",
        attester="ccattest.platforms.azure.aci:AciAttester",
        verifier="ccattest.platforms.azure.maa:MaaVerifier",
        summary="Microsoft Azure Attestation tokens: RS256, jku of an allow-listed instance",
    )
)
register_platform(
    PlatformEntry(
        name="ita",
        attester=None,
        verifier="ccattest.platforms.ita.verify:ItaVerifier",
        summary="Intel Trust Authority tokens: PS384 JWT, x5c chain to a configured root",
    )
)
register_platform(
    PlatformEntry(
        name="software",
        attester="ccattest.platforms.software.collect:SoftwareAttester",
        verifier="ccattest.platforms.software.verify:SoftwareVerifier",
        magic=(b"CCSW",),
        summary="development TEE: signed reports from a local key; no hardware guarantee",
    )
)
