"""NVIDIA RIMs (SWID tag XML with an enveloped XML-DSig signature), as the RIM service
serves them: platforms.nvgpu.rim.parse_rim (contents), verify_rim (signature and chain to
the pinned RIM root) and embedded_certificates."""

from __future__ import annotations

import base64
from datetime import datetime

import common

with common.instrumented():
    from ccattest.platforms.nvgpu.rim import embedded_certificates, parse_rim, verify_rim

AT = datetime.fromisoformat("2025-06-01T00:00:00+00:00")


def entry(data: bytes) -> None:
    mode, rest = common.split_mode(data, 3)
    if mode == 0:
        parse_rim(rest)
    elif mode == 1:
        verify_rim(rest, at=AT)
    else:
        embedded_certificates(rest)


def seeds() -> list[bytes]:
    rims = common.vectors("gpu/nvtrust-lgv/samples/*.swidtag", "gpu/nvattest-sdk/**/*.xml")
    rims += [base64.b64decode(text) for text in
             common.vectors("gpu/trustee/rvps/src/extractors/swid/test-rim.b64")]
    few = rims[:3] + rims[-3:]
    return common.with_mode(0, rims) + common.with_mode(1, few) + common.with_mode(2, few)


if __name__ == "__main__":
    common.main("rim", entry, seeds())
