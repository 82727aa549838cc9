"""`ccattest policy`: write and check appraisal policies."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import CCAttestError, ConfigError
from .app import policy_app
from .common import fail, out, parse_hex, platform_name

TEMPLATE_PLATFORMS = ("software", "snp", "tdx", "nvgpu", "azure")
# Sections whose reference values are a SHA-384 launch measurement (MRTD for TDX).
MEASURED = {"software": 48, "snp": 48, "tdx": 48, "azure": 48}


@policy_app.command("init")
def policy_init(
    platform: Annotated[list[str] | None, typer.Option(
        metavar="|".join(TEMPLATE_PLATFORMS),
        help="Add a section for this platform (repeatable).")] = None,
    measurement: Annotated[list[str] | None, typer.Option(
        metavar="HEX", help="A SHA-384 measurement to accept in the software, snp, tdx "
        "(MRTD) and azure sections (repeatable). GPUs are measured against NVIDIA's RIMs "
        "instead.")] = None,
) -> None:
    """Print a commented starter policy."""
    from ..policy.templates import starter_policy

    try:
        chosen = [name for name in (platform_name(p, TEMPLATE_PLATFORMS) for p in platform or [])
                  if name is not None]
        checked = _measurements(chosen, measurement or [])
        sys.stdout.write(starter_policy(chosen, checked))
    except CCAttestError as error:
        fail(error)


def _measurements(platforms: list[str], values: list[str]) -> list[str]:
    if not values:
        return []
    measured = [p for p in platforms if p in MEASURED]
    if not measured:
        raise ConfigError(
            "--measurement needs a section that takes measurements",
            expected="--platform software, snp, tdx or azure",
            found=", ".join(platforms) or "no --platform",
            hint="GPU measurements are compared with NVIDIA's signed RIMs (require_rim_match); "
                 "to pin GPU firmware, edit driver_versions and vbios_versions")
    size = MEASURED[measured[0]]
    return [parse_hex(value, "--measurement", size=size).hex() for value in values]


@policy_app.command("check")
def policy_check(path: Annotated[Path, typer.Argument(metavar="FILE")]) -> None:
    """Validate a policy file; errors name the key and the line."""
    from ..policy import load_policy

    try:
        loaded = load_policy(path)
    except CCAttestError as error:
        fail(error)
    sections = loaded.sections()
    out().print(f"[green]ok[/green]: {path} (policy id {loaded.id}; platform sections: "
                f"{', '.join(sections) or 'none'})", soft_wrap=True)
