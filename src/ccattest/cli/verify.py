"""`ccattest verify`: evidence verified natively, appraised against a policy."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import CCAttestError, VerificationFailed
from .app import app
from .common import (
    DEFAULT_KEY_DIR,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_USAGE,
    EXIT_WARNING,
    PLATFORMS,
    AtOption,
    KeyDirOption,
    err,
    fail,
    parse_at,
    platform_name,
)

if TYPE_CHECKING:
    from ..policy.model import Policy
    from ..result import AttestationResult

@app.command()
def verify(
    evidence_file: Annotated[Path, typer.Argument(
        metavar="EVIDENCE", help="A ccattest envelope, or a raw, hex or base64 report.")],
    nonce: Annotated[str | None, typer.Option(
        metavar="HEX", help="The challenge you issued.")] = None,
    report_data: Annotated[str | None, typer.Option(
        "--report-data", metavar="HEX", help="Expected report_data, instead of --nonce.")
    ] = None,
    platform: Annotated[str | None, typer.Option(
        metavar="NAME", help=f"Evidence platform if not detected: {', '.join(PLATFORMS)}.")
    ] = None,
    identity: Annotated[str | None, typer.Option(
        metavar="NAME", help="Expected attester (default: the one the evidence names).")
    ] = None,
    context: Annotated[str, typer.Option(
        metavar="TEXT", help="Binding context agreed with the attester.")] = "",
    policy: Annotated[Path | None, typer.Option(
        metavar="FILE", help="Appraisal policy (YAML; `ccattest policy init`).")] = None,
    certs: Annotated[list[Path] | None, typer.Option(
        "--certs", metavar="FILE", help="Certificates for the evidence, PEM or DER "
        "(repeatable).")] = None,
    collateral: Annotated[Path | None, typer.Option(
        metavar="PATH", help="Collateral: a cache folder, a bundle or a TDX collateral "
        "file.")] = None,
    offline: Annotated[bool, typer.Option(
        "--offline", help="Use no network: only given or cached collateral.")] = False,
    rim: Annotated[list[Path] | None, typer.Option(
        "--rim", metavar="FILE", help="nvgpu: a driver or VBIOS RIM (repeatable).")] = None,
    jwks: Annotated[Path | None, typer.Option(
        metavar="FILE", help="ita, maa, nvgpu-nras: the issuer's JWKS.")] = None,
    instance: Annotated[list[str] | None, typer.Option(
        "--instance", metavar="URL", help="maa: an accepted MAA instance (repeatable).")
    ] = None,
    root: Annotated[Path | None, typer.Option(
        metavar="FILE", help="software, ita: the root certificate to trust.")] = None,
    key_dir: KeyDirOption = DEFAULT_KEY_DIR,
    tdx_chain_only: Annotated[bool, typer.Option(
        "--tdx-chain-only", help="azure-tdx without TCB collateral: check the chain only.")
    ] = False,
    allow_unbound: Annotated[bool, typer.Option(
        "--allow-unbound", help="Accept a token that binds no challenge of ours.")] = False,
    at: AtOption = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print one JSON object, whatever the outcome.")] = False,
    verbose: Annotated[bool, typer.Option(
        "-v", "--verbose", help="Show every check, not only those that failed.")] = False,
    ear: Annotated[Path | None, typer.Option(
        metavar="FILE", help="Also write the result as a signed EAR JWT.")] = None,
) -> None:
    """Verify EVIDENCE and appraise it against a policy.

    Exit status: 0 affirming, 3 warning, 1 rejected, 2 unusable input or usage.
    """
    from . import sources

    when: datetime | None = None
    chosen: str | None = None
    try:
        when = parse_at(at)
        chosen = platform_name(platform)
        evidence = sources.load(evidence_file, chosen)
        chosen = evidence.platform
        sources.check_format(evidence)  # parse first, then ask for what is missing
        evidence = sources.with_certs(evidence, certs or [])
        evidence = sources.with_collateral(evidence, collateral, offline=offline, at=when)
        expected = sources.expected_report_data(
            nonce, report_data, identity or evidence.attester, context,
            optional=allow_unbound, platform=evidence.platform)
        appraisal_policy = _policy(policy)
        verifier = sources.make_verifier(evidence, sources.Sources(
            root, key_dir, jwks, collateral, offline, allow_unbound, appraisal_policy, when,
            tuple(rim or []), tuple(instance or []), tdx_chain_only))
        from ..pipeline import verify_and_appraise

        result = verify_and_appraise(evidence, verifier, appraisal_policy,
                                     report_data=expected, at=when)
        if identity and result.attester not in (None, identity):
            raise VerificationFailed("the evidence comes from another site",
                                     expected=identity, found=result.attester)
        if ear is not None and result.verified:
            _write_ear(ear, result, key_dir, expected, when)
    except CCAttestError as error:
        if as_json:
            _print_json(_no_verdict(chosen, error, when))
        fail(error)
    if as_json:
        _print_json(result)
    else:
        from ..render import print_result

        print_result(sys.stdout, result, verbose=verbose)
        if policy is None and result.verified:
            sys.stdout.write("no --policy given: the default policy accepts no platform; "
                             "write one with `ccattest policy init`\n")
    raise typer.Exit(exit_code(result))


def exit_code(result: AttestationResult) -> int:
    from ..result import Tier

    if not result.verified:
        # Tier none on unverified evidence means it did not even parse: unusable input.
        return EXIT_USAGE if result.status is Tier.NONE else EXIT_REJECTED
    return {Tier.AFFIRMING: EXIT_OK, Tier.WARNING: EXIT_WARNING}.get(result.status,
                                                                     EXIT_REJECTED)


def _policy(path: Path | None) -> Policy:
    from ..policy import load_policy
    from ..policy.model import DEFAULT_POLICY

    return load_policy(path) if path else DEFAULT_POLICY


def _no_verdict(platform: str | None, error: CCAttestError,
                at: datetime | None) -> AttestationResult:
    """The --json answer when there is no result: unusable input (status none) or, for a
    verification failure found by the command itself, a rejection."""
    from ..policy.appraise import appraise_failure
    from ..result import AttestationResult, Reason, TrustVector
    from ..timeutil import utcnow

    when = at or utcnow()
    if isinstance(error, VerificationFailed):
        return appraise_failure(platform or "unknown", error, when)
    from ..errors import failed_check
    from ..render import error_hint

    reason = Reason(failed_check(error), False, f"{error.message}; {error_hint(error)}",
                    expected=None if error.expected is None else str(error.expected),
                    found=None if error.found is None else str(error.found))
    return AttestationResult(platform=platform or "unknown", trust_vector=TrustVector(),
                             verified=False, issued_at=when, expires_at=when,
                             reasons=(reason,))


def _print_json(result: AttestationResult) -> None:
    sys.stdout.write(json.dumps(result.to_json_dict(), indent=2) + "\n")
    sys.stdout.flush()


def _write_ear(path: Path, result: AttestationResult, key_dir: Path, report_data: bytes | None,
               when: datetime) -> None:
    from ..tokens import load_or_create_signing_key, sign_results

    key = load_or_create_signing_key(Path(key_dir).expanduser() / "verifier.key.pem")
    path.write_text(sign_results([result], key, issued_at=when, nonce=report_data) + "\n")
    err().print(f"wrote signed result to {path} (kid {key.kid})", soft_wrap=True)
