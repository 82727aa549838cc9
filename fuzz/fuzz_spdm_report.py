"""NVIDIA GPU attestation reports (SPDM GET_MEASUREMENTS request + response, raw or hex):
platforms.nvgpu.abi.parse_report and the opaque fields it decodes."""

from __future__ import annotations

import common

with common.instrumented():
    from ccattest.platforms.nvgpu.abi import parse_report, report_bytes
    from ccattest.testing.nvgpu import NvgpuFixture


def entry(data: bytes) -> None:
    report = parse_report(data)
    report.to_bytes()


def seeds() -> list[bytes]:
    texts = common.vectors("gpu/**/*AttestationReport*.txt", "gpu/**/attestationReport.txt",
                           "gpu/**/hopper_coco_report1.txt")
    raw = []
    for text in texts:
        try:
            raw.append(report_bytes(text))
        except Exception:  # noqa: S112 - a sample that is not a report is simply not a seed
            continue
    synthetic = []
    for arch in ("HOPPER", "BLACKWELL"):
        fixture = NvgpuFixture.create(arch)
        synthetic.append(fixture.sign(fixture.report(bytes(32))))
    return raw + synthetic + texts[:1]


if __name__ == "__main__":
    common.main("spdm_report", entry, seeds())
