"""The development TEE's evidence: its signed measurement report
(platforms.software.abi.parse_report, mode 0) and the site certificate endorsement the
verifier decodes (SoftwareVerifier.verify with a fuzzed site_cert, mode 1)."""

from __future__ import annotations

import common

with common.instrumented():
    from ccattest.evidence import Evidence
    from ccattest.platforms.software.abi import parse_report
    from ccattest.testing.software import SoftwareFixture

FIXTURE = SoftwareFixture.create()
VERIFIER = FIXTURE.verifier()
EVIDENCE, REPORT_DATA, _ = FIXTURE.evidence(bytes(32))


def entry(data: bytes) -> None:
    mode, rest = common.split_mode(data, 2)
    if mode == 0:
        parse_report(rest)
    else:
        evidence = Evidence(EVIDENCE.platform, EVIDENCE.report, {"site_cert": rest})
        VERIFIER.verify(evidence, report_data=REPORT_DATA, at=FIXTURE.now)


def seeds() -> list[bytes]:
    reports = [EVIDENCE.report, FIXTURE.evidence(bytes(32), "ctx")[0].report]
    return common.with_mode(0, reports) + common.with_mode(1, [EVIDENCE.endorsements["site_cert"]])


if __name__ == "__main__":
    common.main("software_report", entry, seeds())
