"""The options that say how to verify a piece of evidence, shared by `verify` and
`policy init --from` (declared once, so both commands read them alike)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from .common import PLATFORMS

Nonce = Annotated[str | None, typer.Option(metavar="HEX", help="The challenge you issued.")]
ReportData = Annotated[str | None, typer.Option(
    "--report-data", metavar="HEX", help="Expected report_data, instead of --nonce.")]
Platform = Annotated[str | None, typer.Option(
    metavar="NAME", help=f"Evidence platform if not detected: {', '.join(PLATFORMS)}.")]
Identity = Annotated[str | None, typer.Option(
    metavar="NAME", help="Expected attester (default: the one the evidence names).")]
Context = Annotated[str, typer.Option(
    metavar="TEXT", help="Binding context agreed with the attester.")]
Certs = Annotated[list[Path] | None, typer.Option(
    "--certs", metavar="FILE", help="Certificates for the evidence, PEM or DER (repeatable).")]
Collateral = Annotated[Path | None, typer.Option(
    metavar="PATH", help="Collateral: a cache folder, a bundle or a TDX collateral file.")]
Offline = Annotated[bool, typer.Option(
    "--offline", help="Use no network: only given or cached collateral.")]
Rims = Annotated[list[Path] | None, typer.Option(
    "--rim", metavar="FILE", help="nvgpu: a driver or VBIOS RIM (repeatable).")]
Jwks = Annotated[Path | None, typer.Option(
    metavar="FILE", help="ita, maa, nvgpu-nras: the issuer's JWKS.")]
Instances = Annotated[list[str] | None, typer.Option(
    "--instance", metavar="URL", help="maa: an accepted MAA instance (repeatable).")]
Root = Annotated[Path | None, typer.Option(
    metavar="FILE", help="software, ita: the root certificate to trust.")]
TdxChainOnly = Annotated[bool, typer.Option(
    "--tdx-chain-only", help="azure-tdx without TCB collateral: check the chain only.")]
AllowUnbound = Annotated[bool, typer.Option(
    "--allow-unbound", help="Accept a token that binds no challenge of ours.")]


@dataclass(frozen=True)
class EvidenceArgs:
    """What the command line said about one piece of evidence and how to verify it."""

    path: Path
    nonce: str | None = None
    report_data: str | None = None
    platform: str | None = None
    identity: str | None = None
    context: str = ""
    certs: tuple[Path, ...] = ()
    collateral: Path | None = None
    offline: bool = False
    rims: tuple[Path, ...] = ()
    jwks: Path | None = None
    instances: tuple[str, ...] = ()
    root: Path | None = None
    key_dir: Path = Path("~/.ccattest/dev")
    tdx_chain_only: bool = False
    allow_unbound: bool = False
