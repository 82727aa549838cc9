"""`ccattest collect`: evidence from this machine's TEE, bound to a verifier's nonce."""

from __future__ import annotations

import dataclasses
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import CCAttestError, ConfigError
from .app import app
from .common import (
    COLLECT_PLATFORMS,
    DEFAULT_KEY_DIR,
    KeyDirOption,
    choice_list,
    err,
    fail,
    parse_hex,
    platform_name,
    read_file,
)

if TYPE_CHECKING:
    from ..evidence import Evidence


@app.command()
def collect(
    nonce: Annotated[str | None, typer.Option(
        metavar="HEX", help="The verifier's challenge (16 bytes or more).")] = None,
    platform: Annotated[str, typer.Option(
        metavar=choice_list(COLLECT_PLATFORMS), help="Where the evidence comes from.")
    ] = "software",
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", metavar="FILE", help="Write here instead of stdout.")] = None,
    key_dir: KeyDirOption = DEFAULT_KEY_DIR,
    site: Annotated[str | None, typer.Option(
        metavar="NAME", help="Site identity (default: host name).")] = None,
    context: Annotated[str, typer.Option(
        metavar="TEXT", help="Binding context agreed with the verifier.")] = "",
    measure: Annotated[list[Path] | None, typer.Option(
        metavar="FILE", help="software: also measure this file (repeatable).")] = None,
    setting: Annotated[list[str] | None, typer.Option(
        metavar="NAME=VALUE", help="software: also measure a setting (repeatable).")] = None,
    svn: Annotated[int, typer.Option(
        metavar="N", help="software: security version of the attested software.")] = 0,
    debug: Annotated[bool, typer.Option(
        "--debug", help="software: mark the report as debug.")] = False,
    report: Annotated[Path | None, typer.Option(
        metavar="FILE", help="nvgpu: wrap a report taken with other tools instead of asking "
        "NVML (its nonce is inside).")] = None,
    certs: Annotated[Path | None, typer.Option(
        metavar="FILE", help="nvgpu --report: the GPU's certificate chain (PEM).")] = None,
    cc_mode: Annotated[str | None, typer.Option(
        "--cc-mode", metavar="on|off", help="nvgpu --report: the CC mode NVML reports "
        "(nvidia-smi conf-compute -f).")] = None,
    devtools: Annotated[str | None, typer.Option(
        "--devtools", metavar="on|off", help="nvgpu --report: the DevTools mode NVML "
        "reports.")] = None,
) -> None:
    """Collect evidence that answers a verifier's NONCE.

    \b
    software  a development TEE (no hardware guarantee); creates a
              development root and site key in --key-dir on first use
    snp       the SEV-SNP firmware, through configfs-tsm or /dev/sev-guest,
              with the host's certificate table when it provides one
    tdx       the TDX module, through configfs-tsm
    nvgpu     every CC-mode GPU, through NVML, with its CC and DevTools state

    With --report, nvgpu evidence is made from a report taken with NVIDIA's tools, and the
    CC and DevTools state you declare (unsigned: the GPU does not sign it).
    """
    from ..evidence import bind

    try:
        chosen = platform_name(platform, COLLECT_PLATFORMS) or "software"
        identity = site or socket.gethostname().split(".")[0] or "localhost"
        if report is not None or certs is not None or cc_mode or devtools:
            evidence = _wrapped_gpu_report(chosen, identity, report, certs, cc_mode, devtools)
            _write(evidence, output, f"wrote nvgpu evidence for {identity} to {output} "
                   "(a report taken elsewhere, CC state "
                   + ("declared)" if cc_mode else "not reported)"))
            return
        if nonce is None:
            raise ConfigError("no --nonce: evidence must answer the verifier's challenge",
                              hint="pass --nonce HEX, the challenge the verifier sent you")
        challenge = parse_hex(nonce, "--nonce")
        if len(challenge) < 16:
            raise ConfigError("--nonce is too short to be a challenge",
                              expected="16 bytes or more", found=f"{len(challenge)} bytes")
        report_data = bind(challenge, identity, context)
        if chosen == "software":
            evidence, detail = _software(report_data, identity, key_dir, measure or [],
                                         setting or [], svn, debug)
        elif chosen == "snp":
            from ..platforms.snp.collect import SnpAttester

            evidence = SnpAttester().collect(report_data)
            detail = f"{len(evidence.report)}-byte report"
        elif chosen == "tdx":
            from ..platforms.tdx.collect import TdxAttester

            evidence = TdxAttester().collect(report_data)
            detail = f"{len(evidence.report)}-byte quote"
        else:
            from ..platforms.nvgpu.collect import NvgpuAttester

            evidence = NvgpuAttester().collect(bind(challenge, identity, context, size=32))
            detail = "GPU evidence"
        evidence = dataclasses.replace(evidence, attester=identity)
        _write(evidence, output, f"wrote {chosen} evidence for {identity} to {output} "
               f"({detail})")
    except CCAttestError as error:
        fail(error)


def _write(evidence: Evidence, output: Path | None, note: str) -> None:
    text = evidence.to_json() + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text)
    except OSError as exc:
        raise ConfigError(f"cannot write {output}", found=exc.strerror) from None
    err().print(note, soft_wrap=True)


def _wrapped_gpu_report(platform: str, identity: str, report: Path | None,
                        certs: Path | None, cc_mode: str | None,
                        devtools: str | None) -> Evidence:
    from ..platforms.nvgpu.collect import declared_evidence

    if platform != "nvgpu" or report is None:
        raise ConfigError("--report, --certs, --cc-mode and --devtools wrap a GPU report",
                          expected="--platform nvgpu --report FILE",
                          found=f"--platform {platform}" + ("" if report else ", no --report"))
    state = None
    if cc_mode or devtools:
        state = {"cc_mode": _on_off(cc_mode, "--cc-mode"),
                 "devtools": _on_off(devtools, "--devtools")}
    chain = read_file(certs, "certificate file") if certs is not None else None
    return declared_evidence(read_file(report, "report file"), chain, cc_state=state,
                             attester=identity)


def _on_off(value: str | None, option: str) -> str:
    word = (value or "").strip().lower()
    if word not in ("on", "off"):
        raise ConfigError(f"{option} is on or off", expected="on or off",
                          found=value or "nothing", hint="declare both --cc-mode and "
                          "--devtools, as `nvidia-smi conf-compute -f` shows them")
    return word


def _software(report_data: bytes, identity: str, key_dir: Path, measure: list[Path],
              settings: list[str], svn: int, debug: bool) -> tuple[Evidence, str]:
    from ..platforms.software.collect import SoftwareAttester, default_items
    from ..platforms.software.pki import KeyDir
    from ..timeutil import utcnow

    pairs = [_setting(text) for text in settings]
    credentials = KeyDir(key_dir).ensure_site(identity, utcnow())
    attester = SoftwareAttester(credentials, default_items(measure, pairs), svn=svn,
                                debug=debug)
    return attester.collect(report_data), f"measurement {attester.measurement.hex()[:16]}..."


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ConfigError("a setting is NAME=VALUE", expected="NAME=VALUE", found=text)
    return name, value
