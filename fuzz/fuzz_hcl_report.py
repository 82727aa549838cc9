"""Azure CVM HCL reports (the vTPM NV index 0x01400001: header, hardware report, runtime
data): platforms.azure.hcl.parse_hcl_report, then its runtime data JSON
(parse_runtime_data) and the key in it (platforms.azure.tpm.rsa_key_from_jwk). Mode 1 feeds
runtime data JSON directly."""

from __future__ import annotations

import common

with common.instrumented():
    from ccattest.platforms.azure import PLATFORM_SNP, PLATFORM_TDX
    from ccattest.platforms.azure.hcl import parse_hcl_report, parse_runtime_data
    from ccattest.platforms.azure.tpm import rsa_key_from_jwk
    from ccattest.testing.azure import AzureFixture


def _runtime(data: bytes) -> None:
    runtime = parse_runtime_data(data)
    _ = runtime.keys, runtime.vm_configuration, runtime.user_data
    rsa_key_from_jwk(runtime.key())

def entry(data: bytes) -> None:
    mode, rest = common.split_mode(data, 2)
    if mode == 0:
        _runtime(parse_hcl_report(rest).runtime_data)
    else:
        _runtime(rest)

def seeds() -> list[bytes]:
    reports = common.vectors("azure/trustee/**/hcl-report.bin")
    runtimes = common.vectors("azure/**/runtime_data.json")
    for platform in (PLATFORM_SNP, PLATFORM_TDX):
        fixture = AzureFixture.create(platform)
        reports.append(fixture.hcl().to_bytes())
        runtimes.append(fixture.runtime_data())
    runtimes += [parse_hcl_report(report).runtime_data for report in reports[:2]]
    return common.with_mode(0, reports) + common.with_mode(1, runtimes)

if __name__ == "__main__":
    common.main("hcl_report", entry, seeds())
