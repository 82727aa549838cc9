"""`ccattest policy`: write and check appraisal policies."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from ..errors import CCAttestError, ConfigError
from . import evidence_options as opt
from .app import policy_app
from .common import (
    DEFAULT_KEY_DIR,
    AtOption,
    KeyDirOption,
    fail,
    out,
    parse_at,
    parse_hex,
    platform_name,
)

TEMPLATE_PLATFORMS = ("software", "snp", "tdx", "nvgpu", "azure")
# Sections whose reference values are a SHA-384 launch measurement (MRTD for TDX).
MEASURED = {"software": 48, "snp": 48, "tdx": 48, "azure": 48}


@policy_app.command("init")
def policy_init(
    platform: Annotated[list[str] | None, typer.Option(
        metavar="|".join(TEMPLATE_PLATFORMS),
        help="Add a section for this platform (repeatable). With --from: the evidence's "
        "platform, if not detected.")] = None,
    measurement: Annotated[list[str] | None, typer.Option(
        metavar="HEX", help="A SHA-384 measurement to accept in the software, snp, tdx "
        "(MRTD) and azure sections (repeatable). GPUs are measured against NVIDIA's RIMs "
        "instead.")] = None,
    from_evidence: Annotated[Path | None, typer.Option(
        "--from", metavar="EVIDENCE", help="Verify this known-good evidence and write a "
        "policy that accepts exactly what it shows (takes verify's options).")] = None,
    nonce: opt.Nonce = None,
    report_data: opt.ReportData = None,
    identity: opt.Identity = None,
    context: opt.Context = "",
    certs: opt.Certs = None,
    collateral: opt.Collateral = None,
    offline: opt.Offline = False,
    rim: opt.Rims = None,
    jwks: opt.Jwks = None,
    instance: opt.Instances = None,
    root: opt.Root = None,
    key_dir: KeyDirOption = DEFAULT_KEY_DIR,
    tdx_chain_only: opt.TdxChainOnly = False,
    allow_unbound: opt.AllowUnbound = False,
    at: AtOption = None,
) -> None:
    """Print a commented starter policy, or one derived from known-good evidence (--from).

    The derived policy pins the measurement, the TCB floor, the product and the signer the
    evidence showed; review it before use.
    """
    try:
        if from_evidence is not None:
            if measurement:
                raise ConfigError("--measurement and --from do not go together",
                                  hint="--from takes the measurement from the evidence")
            if platform and len(platform) > 1:
                raise ConfigError("--from reads one piece of evidence: give at most one "
                                  "--platform", found=", ".join(platform))
            args = opt.EvidenceArgs(
                from_evidence, nonce, report_data, (platform or [None])[0], identity, context,
                tuple(certs or []), collateral, offline, tuple(rim or []), jwks,
                tuple(instance or []), root, key_dir, tdx_chain_only, allow_unbound)
            sys.stdout.write(_derived(args, parse_at(at)))
            return
        from ..policy.templates import starter_policy

        chosen = [name for name in (platform_name(p, TEMPLATE_PLATFORMS) for p in platform or [])
                  if name is not None]
        checked = _measurements(chosen, measurement or [])
        sys.stdout.write(starter_policy(chosen, checked))
    except CCAttestError as error:
        fail(error)


def _derived(args: opt.EvidenceArgs, at: datetime) -> str:
    """Verify (no appraisal: there is no policy yet), then derive the policy."""
    from ..policy.derive import derive_policy
    from ..policy.model import DEFAULT_POLICY
    from . import sources

    evidence = sources.load_checked(args)
    evidence, verifier, expected = sources.prepare(evidence, args, DEFAULT_POLICY, at)
    verified = verifier.verify(evidence, report_data=expected, at=at)  # type: ignore[arg-type]
    return derive_policy(verified)


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
