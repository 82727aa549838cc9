"""The policy document: common settings plus one optional section per platform.

A platform without a section is not accepted: sections are opt-in, so a policy written
before a platform existed never accepts it by accident.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from .azure import AzurePolicy
from .base import StrictModel
from .nvgpu import NvgpuPolicy
from .snp import SnpPolicy
from .software import SoftwarePolicy
from .tdx import TdxPolicy


class CommonPolicy(StrictModel):
    result_lifetime_seconds: int = Field(default=3600, gt=0, le=7 * 24 * 3600)
    required_platforms: list[str] = Field(default_factory=list)


class Policy(StrictModel):
    version: Literal[1] = 1
    id: str | None = None
    common: CommonPolicy = Field(default_factory=CommonPolicy)
    software: SoftwarePolicy | None = None
    snp: SnpPolicy | None = None
    tdx: TdxPolicy | None = None
    nvgpu: NvgpuPolicy | None = None
    azure: AzurePolicy | None = None

    def section(self, platform: str) -> BaseModel | None:
        name = _SHARED_SECTIONS.get(platform, platform)
        return getattr(self, name, None) if name in _PLATFORM_SECTIONS else None

    def sections(self) -> list[str]:
        """The platform sections this policy has (each judges one or more platforms)."""
        return [name for name in _PLATFORM_SECTIONS if getattr(self, name) is not None]

    def resolve_files(self, base: Path) -> Policy:
        """Read the reference-value files the sections name, relative to `base`."""
        updates = {}
        for name in _PLATFORM_SECTIONS:
            section = getattr(self, name)
            if section is not None:
                updates[name] = section.resolve_files(base)
        return self.model_copy(update=updates)


_PLATFORM_SECTIONS = ("software", "snp", "tdx", "nvgpu", "azure")
# Platforms judged by another platform's rules: ITA tokens carry TDX claims.
_SHARED_SECTIONS = {"ita": "tdx", "nvgpu-nras": "nvgpu", "maa": "azure",
                    "azure-snp": "snp", "azure-tdx": "tdx"}
DEFAULT_POLICY = Policy(id="ccattest-default")
