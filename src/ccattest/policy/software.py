"""The software section: is the development TEE allowed, and what must it report."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from ..result import TrustClaim
from ..text import one_of
from .base import Appraisal, StrictModel, reference_rule
from .refs import Sha384Hex, read_digest_file


class SoftwarePolicy(StrictModel):
    allow: bool = Field(default=False, description="accept the development TEE at all")
    measurements: list[Sha384Hex] = Field(default_factory=list)
    measurements_file: str | None = None
    min_svn: int = Field(default=0, ge=0, lt=2**32)
    allow_debug: bool = False
    identities: list[str] = Field(default_factory=list)

    def resolve_files(self, base: Path) -> SoftwarePolicy:
        if self.measurements_file is None:
            return self
        extra = read_digest_file(base / self.measurements_file, 48)
        return self.model_copy(update={"measurements": [*self.measurements, *extra]})


def appraise_software(section: SoftwarePolicy | None, claims: Mapping[str, Any]) -> Appraisal:
    appraisal = Appraisal()
    allowed = section is not None and section.allow
    appraisal.rule(
        "platform_allowed", allowed,
        "software platform allowed by policy: development only, no hardware guarantee"
        if allowed else "policy does not allow the software platform (development only)",
        claim=TrustClaim.HARDWARE, ok=0, fail=96,
        expected=None if allowed else "software.allow: true", found=None if allowed else
        ("no software section" if section is None else "software.allow: false"),
    )
    section = section or SoftwarePolicy()
    _identity(appraisal, section, claims["identity"])
    reference_rule(appraisal, claims["measurement"], section.measurements)
    debug = bool(claims["debug"])
    appraisal.rule("debug", section.allow_debug or not debug,
                   "debug mode is on" + (" (allowed)" if section.allow_debug else "") if debug
                   else "debug mode is off",
                   claim=TrustClaim.CONFIGURATION, ok=2, fail=96,
                   expected="debug off", found="debug on" if debug else "debug off")
    svn = int(claims["svn"])
    appraisal.rule("min_svn", svn >= section.min_svn, f"svn {svn}, minimum {section.min_svn}",
                   claim=TrustClaim.CONFIGURATION, ok=2, fail=96,
                   expected=f">= {section.min_svn}", found=svn)
    return appraisal


def _identity(appraisal: Appraisal, section: SoftwarePolicy, identity: str) -> None:
    if not section.identities:
        appraisal.rule("identity", True, f"site {identity} certified by the configured root",
                       claim=TrustClaim.INSTANCE_IDENTITY, ok=2, fail=97)
        return
    appraisal.rule("identity", identity in section.identities,
                   f"site {identity} is " + ("" if identity in section.identities else "not ")
                   + "in the policy's identities",
                   claim=TrustClaim.INSTANCE_IDENTITY, ok=2, fail=97,
                   expected=one_of(section.identities), found=identity)
