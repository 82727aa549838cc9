"""`ccattest verify`: evidence verified natively, appraised against a policy."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import CCAttestError, VerificationFailed
from . import evidence_options as opt
from .app import app
from .common import (
    DEFAULT_KEY_DIR,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_USAGE,
    EXIT_WARNING,
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
    nonce: opt.Nonce = None,
    report_data: opt.ReportData = None,
    platform: opt.Platform = None,
    identity: opt.Identity = None,
    context: opt.Context = "",
    policy: Annotated[Path | None, typer.Option(
        metavar="FILE", help="Appraisal policy (YAML; `ccattest policy init`).")] = None,
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

    args = opt.EvidenceArgs(
        evidence_file, nonce, report_data, platform, identity, context, tuple(certs or []),
        collateral, offline, tuple(rim or []), jwks, tuple(instance or []), root, key_dir,
        tdx_chain_only, allow_unbound)
    when: datetime | None = None
    chosen: str | None = None
    try:
        when = parse_at(at)
        chosen = platform_name(platform)
        evidence = sources.load_checked(args)  # parse first, then ask for what is missing
        chosen = evidence.platform
        appraisal_policy = _policy(policy)
        evidence, verifier, expected = sources.prepare(evidence, args, appraisal_policy, when)
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
