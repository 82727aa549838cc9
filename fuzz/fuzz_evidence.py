"""Evidence files and envelopes as users and peers hand them over: encoding.load_evidence
(a ccattest JSON envelope, or a bare report as raw bytes, hex or base64 text, whose
platform is detected from its header) and Evidence.from_json."""

from __future__ import annotations

import base64

import common

with common.instrumented():
    from ccattest.encoding import load_evidence
    from ccattest.evidence import Evidence
    from ccattest.testing.snp import SnpFixture
    from ccattest.testing.software import SoftwareFixture
    from ccattest.testing.tdx import TdxFixture


def entry(data: bytes) -> None:
    mode, rest = common.split_mode(data, 2)
    if mode == 0:
        load_evidence(rest)
    else:
        Evidence.from_json(rest).to_json()


def seeds() -> list[bytes]:
    envelopes = [SoftwareFixture.create().evidence(bytes(32))[0].to_json().encode(),
                 SnpFixture.create().evidence(bytes(32))[0].to_json().encode(),
                 TdxFixture.create().evidence(bytes(32))[0].to_json().encode()]
    report = common.vectors("azure/**/get-sevsnp-jwt/snp_report.bin")[:1]
    quote = common.vectors("tdx/go-tdx-guest/testing/testdata/quote_v5_sample.dat")[:1]
    bare = [*report, *quote]
    bare += [item.hex().encode() for item in bare] + [base64.b64encode(i) for i in bare]
    return common.with_mode(0, envelopes + bare) + common.with_mode(1, envelopes)


if __name__ == "__main__":
    common.main("evidence", entry, seeds())
