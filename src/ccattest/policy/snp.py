"""The snp section: which SEV-SNP guests, on which AMD platforms, a site accepts.

Trust-vector mapping (AR4SI): hardware 2 for a genuine AMD chain (the verifier proved it),
96 for a product, signing key or TCB the policy does not accept; executables 2/96 for the
launch measurement (33 when the policy names none); configuration 2/96 for guest policy,
VMPL, SVN, host data, key digests, firmware, platform info and revocation; instance
identity 2/97 for chip ids; runtime-opaque 2 (SNP encrypts guest memory).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from ..result import TrustClaim
from ..text import human, one_of
from .base import Appraisal, StrictModel, reference_rule
from .refs import Sha384Hex, hex_digest, read_digest_file

Hex32 = Annotated[str, hex_digest(32)]
Hex64 = Annotated[str, hex_digest(64)]
Product = Literal["Milan", "Genoa", "Turin"]
SigningKey = Literal["vcek", "vlek"]
TCB_COMPONENTS = ("fmc", "bootloader", "tee", "snp", "microcode")
_FIRMWARE = re.compile(r"\A(\d{1,3})\.(\d{1,3})\Z")


def _firmware(value: str) -> str:
    if not _FIRMWARE.match(value.strip()):
        raise ValueError(f"expected 'major.minor' such as '1.55', found {value!r}")
    return value.strip()


class TcbMinimum(StrictModel):
    """Minimum SPL per TCB component; fmc applies to Turin only."""

    bootloader: int = Field(default=0, ge=0, le=255)
    tee: int = Field(default=0, ge=0, le=255)
    snp: int = Field(default=0, ge=0, le=255)
    microcode: int = Field(default=0, ge=0, le=255)
    fmc: int = Field(default=0, ge=0, le=255)


class SnpPolicy(StrictModel):
    allow: bool = Field(default=True, description="a section present means SNP is accepted")
    measurements: list[Sha384Hex] = Field(default_factory=list)
    measurements_file: str | None = None
    min_tcb: TcbMinimum = Field(default_factory=TcbMinimum)
    min_tcb_by_product: dict[Product, TcbMinimum] = Field(default_factory=dict)
    allow_debug: bool = False
    allow_migrate_ma: bool = False
    require_smt_disabled: bool = False
    vmpl: list[Annotated[int, Field(ge=0, le=3)]] = Field(default_factory=lambda: [0])
    min_guest_svn: int = Field(default=0, ge=0, lt=2**32)
    host_data: list[Hex32] = Field(default_factory=list)
    id_key_digests: list[Sha384Hex] = Field(default_factory=list)
    author_key_digests: list[Sha384Hex] = Field(default_factory=list)
    chip_ids: list[Hex64] = Field(default_factory=list)
    products: list[Product] = Field(default_factory=list)
    signing_keys: list[SigningKey] = Field(default_factory=lambda: ["vcek", "vlek"])
    min_firmware: Annotated[str, AfterValidator(_firmware)] | None = None
    platform_info_forbidden_bits: int | None = Field(default=None, ge=0, lt=2**64)
    platform_info_required_bits: int | None = Field(default=None, ge=0, lt=2**64)
    require_revocation_check: bool = False

    def resolve_files(self, base: Path) -> SnpPolicy:
        if self.measurements_file is None:
            return self
        extra = read_digest_file(base / self.measurements_file, 48)
        return self.model_copy(update={"measurements": [*self.measurements, *extra]})

    def tcb_minimum(self, product: str) -> TcbMinimum:
        return self.min_tcb_by_product.get(product, self.min_tcb)


def appraise_snp(section: SnpPolicy | None, claims: Mapping[str, Any]) -> Appraisal:
    appraisal = Appraisal()
    allowed = section is not None and section.allow
    appraisal.rule(
        "platform_allowed", allowed,
        "SEV-SNP evidence with a genuine AMD chain, accepted by policy" if allowed
        else "policy does not accept SEV-SNP",
        claim=TrustClaim.HARDWARE, ok=2, fail=96,
        expected="snp section with allow: true",
        found="no snp section" if section is None else f"snp.allow: {section.allow}".lower(),
    )
    section = section or SnpPolicy()
    for rule in (_hardware, _executables, _guest_policy, _guest_identity, _platform,
                 _instance):
        rule(appraisal, section, claims)
    appraisal.rule("memory_encryption", True, "SEV-SNP encrypts and integrity-protects guest "
                   "memory", claim=TrustClaim.RUNTIME_OPAQUE, ok=2, fail=96,
                   expected="SEV-SNP guest", found=f"SEV-SNP on {claims['product']}")
    return appraisal


def _member(appraisal: Appraisal, check: str, value: Any, allowed: list[Any], what: str, *,
            claim: TrustClaim, fail: int) -> None:
    """One rule 'value is one of allowed'; an empty list allows anything."""
    if not allowed:
        appraisal.rule(check, True, f"{what}: any allowed by policy", claim=claim,
                       ok=2, fail=fail, expected="any", found=value)
        return
    passed = value in allowed
    appraisal.rule(check, passed, f"{what} {value} is {'' if passed else 'not '}allowed",
                   claim=claim, ok=2, fail=fail, expected=one_of(allowed), found=value)


def _hardware(appraisal: Appraisal, section: SnpPolicy, claims: Mapping[str, Any]) -> None:
    _member(appraisal, "product", claims["product"], list(section.products), "product",
            claim=TrustClaim.HARDWARE, fail=96)
    # vcek / vlek are the policy's spelling; people read the key names AMD uses.
    _member(appraisal, "signing_key", str(claims["signing_key"]).upper(),
            [key.upper() for key in section.signing_keys], "signing key",
            claim=TrustClaim.HARDWARE, fail=96)
    minimum = section.tcb_minimum(claims["product"])
    reported = claims["reported_tcb"]
    wanted = {name: getattr(minimum, name) for name in TCB_COMPONENTS if name in reported}
    low = {name: reported[name] for name, value in wanted.items() if reported[name] < value}
    appraisal.rule("min_tcb", not low,
                   "reported TCB meets the minimum" if not low
                   else f"reported TCB below the minimum in {', '.join(tcb_words(low))}",
                   claim=TrustClaim.HARDWARE, ok=2, fail=96,
                   expected=human(tcb_words(wanted), minimum=True),
                   found=tcb_words(reported))


def tcb_words(tcb: Mapping[str, Any]) -> dict[str, Any]:
    """TCB components under the names AMD's documents use (TEE, SNP), in report order."""
    order = {name: index for index, name in enumerate(TCB_COMPONENTS)}
    return {_TCB_LABELS.get(name, name): tcb[name]
            for name in sorted(tcb, key=lambda name: order.get(name, len(order)))}


_TCB_LABELS = {"fmc": "FMC", "tee": "TEE", "snp": "SNP"}


def _executables(appraisal: Appraisal, section: SnpPolicy, claims: Mapping[str, Any]) -> None:
    reference_rule(appraisal, claims["measurement"], section.measurements,
                   what="launch measurement")


def _flag_rule(appraisal: Appraisal, check: str, on: bool, allowed: bool, what: str) -> None:
    state = "on" if on else "off"
    appraisal.rule(check, allowed or not on,
                   f"{what} is {state}" + (" (allowed by policy)" if on and allowed else ""),
                   claim=TrustClaim.CONFIGURATION, ok=2, fail=96,
                   expected="any" if allowed else "off", found=state)


def _guest_policy(appraisal: Appraisal, section: SnpPolicy, claims: Mapping[str, Any]) -> None:
    policy = claims["policy"]
    _flag_rule(appraisal, "debug", bool(policy["debug"]), section.allow_debug,
               "guest policy DEBUG")
    _flag_rule(appraisal, "migrate_ma", bool(policy["migrate_ma"]), section.allow_migrate_ma,
               "guest policy MIGRATE_MA (migration agent)")
    _flag_rule(appraisal, "smt", bool(policy["smt"]), not section.require_smt_disabled,
               "guest policy SMT")
    vmpl = claims["vmpl"]
    appraisal.rule("vmpl", vmpl in section.vmpl, f"report from VMPL {vmpl}",
                   claim=TrustClaim.CONFIGURATION, ok=2, fail=96,
                   expected=one_of(section.vmpl), found=vmpl)
    svn = claims["guest_svn"]
    appraisal.rule("min_guest_svn", svn >= section.min_guest_svn,
                   f"guest SVN {svn}, minimum {section.min_guest_svn}",
                   claim=TrustClaim.CONFIGURATION, ok=2, fail=96,
                   expected=f">= {section.min_guest_svn}", found=svn)


def _guest_identity(appraisal: Appraisal, section: SnpPolicy,
                    claims: Mapping[str, Any]) -> None:
    for check, claim, allowed, what in (
        ("host_data", "host_data", section.host_data, "host data"),
        ("id_key_digest", "id_key_digest", section.id_key_digests, "ID key digest"),
        ("author_key_digest", "author_key_digest", section.author_key_digests,
         "author key digest"),
    ):
        _member(appraisal, check, claims[claim], list(allowed), what,
                claim=TrustClaim.CONFIGURATION, fail=96)


def _platform(appraisal: Appraisal, section: SnpPolicy, claims: Mapping[str, Any]) -> None:
    _firmware_rule(appraisal, section, claims["firmware"]["current"])
    raw = int(claims["platform_info"]["raw"])
    forbidden = section.platform_info_forbidden_bits or 0
    required = section.platform_info_required_bits or 0
    passed = not raw & forbidden and raw & required == required
    appraisal.rule("platform_info", passed,
                   f"platform info {raw:#x} " + ("meets" if passed else "violates")
                   + " the policy's bits",
                   claim=TrustClaim.CONFIGURATION, ok=2, fail=96,
                   expected=f"none of {forbidden:#x}, all of {required:#x}", found=f"{raw:#x}")
    revocation = claims["revocation"]
    checked = revocation == "checked"
    appraisal.rule("revocation", checked or not section.require_revocation_check,
                   "AMD certificates checked against the ARK's CRL" if checked
                   else "revocation not checked" + (
                       "" if section.require_revocation_check else " (not required by policy)"),
                   claim=TrustClaim.CONFIGURATION, ok=2, fail=96,
                   expected="checked" if section.require_revocation_check else "any",
                   found=revocation)


def _firmware_rule(appraisal: Appraisal, section: SnpPolicy, current: str) -> None:
    if section.min_firmware is None:
        appraisal.rule("min_firmware", True, f"firmware {current}: no minimum in the policy",
                       claim=TrustClaim.CONFIGURATION, ok=2, fail=96, expected="any",
                       found=current)
        return
    have = tuple(int(part) for part in current.split(".")[:2])
    want = tuple(int(part) for part in section.min_firmware.split("."))
    appraisal.rule("min_firmware", have >= want,
                   f"firmware {current}, minimum {section.min_firmware}",
                   claim=TrustClaim.CONFIGURATION, ok=2, fail=96,
                   expected=f">= {section.min_firmware}", found=current)


def _instance(appraisal: Appraisal, section: SnpPolicy, claims: Mapping[str, Any]) -> None:
    _member(appraisal, "chip_id", claims["chip_id"], list(section.chip_ids), "chip",
            claim=TrustClaim.INSTANCE_IDENTITY, fail=97)
