"""Azure vTPM evidence as trustee's az-snp-vtpm / az-tdx-vtpm JSON (v0, v1, v2):
platforms.azure.vtpm.evidence_from_trustee_json, then AzureCvmVerifier.verify (HCL report,
TPM quote, PCRs, hardware report) against a test fixture's keys."""

from __future__ import annotations

import json
from datetime import datetime

import common

with common.instrumented():
    from ccattest.platforms.azure import PLATFORM_SNP, PLATFORM_TDX
    from ccattest.platforms.azure.vtpm import evidence_from_trustee_json
    from ccattest.testing.azure import AzureFixture, trustee_json
    from ccattest.testing.cases import FIXED_NOW

FIXTURES = {platform: AzureFixture.create(platform) for platform in (PLATFORM_SNP,
                                                                     PLATFORM_TDX)}
VERIFIERS = {platform: fixture.verifier() for platform, fixture in FIXTURES.items()}
NONCE = b"azure-fuzz-nonce-0123456789abcdef"
AT: datetime = FIXED_NOW


def entry(data: bytes) -> None:
    mode, rest = common.split_mode(data, 2)
    platform = (PLATFORM_SNP, PLATFORM_TDX)[mode]
    evidence = evidence_from_trustee_json(rest)
    evidence = type(evidence)(platform, evidence.report, evidence.endorsements)
    VERIFIERS[platform].verify(evidence, report_data=NONCE, at=AT)


def seeds() -> list[bytes]:
    snp = common.vectors("azure/trustee/**/az-snp-vtpm/evidence-*.json")
    tdx = common.vectors("azure/trustee/**/az-tdx-vtpm/evidence-*.json")
    for platform, found in ((PLATFORM_SNP, snp), (PLATFORM_TDX, tdx)):
        evidence, _ = FIXTURES[platform].evidence(NONCE)
        for version in (0, 1, 2):
            found.append(json.dumps(trustee_json(evidence, version=version)).encode())
    return common.with_mode(0, snp) + common.with_mode(1, tdx)


if __name__ == "__main__":
    common.main("azure_evidence", entry, seeds())
