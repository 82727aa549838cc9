"""`ccattest demo`: three software sites attest to a verifier; one of them is tampered.

The flow is the one a federation runs, on the development TEE: the verifier issues a
challenge per site, each site measures its code and answers with bound evidence, the
verifier redeems the challenge (once), verifies, appraises against its policy, and signs
the affirming results as an EAR that anyone holding its JWKS can check.
"""

from __future__ import annotations

import dataclasses
import shutil
from datetime import timedelta
from pathlib import Path

from rich.console import Console

from .evidence import Evidence
from .freshness import ChallengeIssuer
from .pipeline import verify_and_appraise
from .platforms.software.abi import parse_report
from .platforms.software.collect import SoftwareAttester
from .platforms.software.measure import measure_file, measure_setting
from .platforms.software.pki import KeyDir
from .platforms.software.verify import SoftwareVerifier
from .policy import Policy, SoftwarePolicy
from .render import CONTRAINDICATED_NOTE, results_table
from .result import AttestationResult, Tier
from .timeutil import utcnow
from .tokens import jwks, load_or_create_signing_key, sign_results, verify_token

SITES = ("site-1", "site-2", "site-3")
TAMPERED = "site-3"
TRAINING_CODE = "def train(model, data):\n    return model.fit(data)\n"


def _site_files(work_dir: Path, site: str) -> Path:
    app = work_dir / "sites" / site / "app"
    app.mkdir(parents=True, exist_ok=True)
    code = TRAINING_CODE if site != TAMPERED else TRAINING_CODE + "    # exfiltrate(data)\n"
    (app / "train.py").write_text(code)
    return app / "train.py"


def _attester(keys: KeyDir, work_dir: Path, site: str) -> SoftwareAttester:
    items = [measure_file(_site_files(work_dir, site), "app/train.py"),
             measure_setting("job", "fedavg-demo")]
    return SoftwareAttester(keys.ensure_site(site, utcnow()), items, svn=1)


def _tamper(evidence: Evidence, reference: bytes) -> Evidence:
    """What an attacker running modified code tries: claim the reference measurement."""
    report = dataclasses.replace(parse_report(evidence.report), measurement=reference)
    return dataclasses.replace(evidence, report=report.to_bytes(), log=())


def run_demo(work_dir: Path, console: Console) -> int:
    """Run the demo; returns how many sites were not affirmed (1 when all is well)."""
    shutil.rmtree(work_dir, ignore_errors=True)
    keys = KeyDir(work_dir / "keys")
    root = keys.ensure_root(utcnow())
    console.print("[bold]ccattest demo[/bold]: 3 sites on the [cyan]software[/cyan] platform "
                  "(development TEE)")
    console.print(f"keys in {keys.path}", soft_wrap=True)  # a path is never broken
    attesters = {site: _attester(keys, work_dir, site) for site in SITES}
    reference = attesters["site-1"].measurement
    policy = Policy(id="demo-policy", software=SoftwarePolicy(
        allow=True, measurements=[reference.hex()], identities=list(SITES)))
    issuer = ChallengeIssuer(ttl=timedelta(minutes=1), verifier_id="demo-verifier")
    verifier = SoftwareVerifier([root.certificate])

    rows: list[tuple[str, AttestationResult]] = []
    with console.status("attesting sites...") as status:
        for site, attester in attesters.items():
            status.update(f"challenging {site}...")
            challenge = issuer.issue(context=f"demo:{site}")
            evidence = attester.collect(challenge.report_data(site))
            if site == TAMPERED:
                evidence = _tamper(evidence, reference)
            redeemed = issuer.redeem(challenge.nonce, context=f"demo:{site}")
            result = verify_and_appraise(evidence, verifier, policy,
                                         report_data=redeemed.report_data(site), at=utcnow())
            rows.append((site, result))
    console.print(results_table(rows, "attestation results (verifier: demo-verifier)"))
    if any(result.status is Tier.CONTRAINDICATED for _, result in rows):
        console.print(CONTRAINDICATED_NOTE)

    affirmed = [result for _, result in rows if result.affirming]
    key = load_or_create_signing_key(keys.path / "verifier.key.pem")
    for result in affirmed:
        token = sign_results([result], key, issued_at=result.issued_at)
        claims = verify_token(token, jwks([key]), at=result.issued_at)
        console.print(f"EAR for {claims.get('sub')}: {len(token)} bytes, "
                      f"ES256 kid {key.kid[:12]}..., verified against the JWKS")
    console.print(f"{len(affirmed)} of {len(rows)} sites affirmed; {TAMPERED} ran modified code "
                  "and forged its measurement, so its report signature no longer verifies.")
    return len(rows) - len(affirmed)
