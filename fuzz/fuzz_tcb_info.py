"""Intel PCS collateral JSON as served (signed body + signature): TCB Info and QE Identity,
platforms.tdx.tcb.parse_tcb_info and parse_qe_identity."""

from __future__ import annotations

import common

with common.instrumented():
    from ccattest.platforms.tdx.tcb import parse_qe_identity, parse_tcb_info
    from ccattest.testing.tdx import TdxFixture


def entry(data: bytes) -> None:
    mode, rest = common.split_mode(data, 2)
    if mode == 0:
        parse_tcb_info(rest)
    else:
        parse_qe_identity(rest)


def seeds() -> list[bytes]:
    tcb = common.vectors("tdx/**/tcbInfo.json", "tdx/**/sample_tcbinfo_response_v5",
                         "tdx/**/sample_tcbInfo_response")
    qe = common.vectors("tdx/**/qeIdentity.json", "tdx/**/enclaveIdentity.json",
                        "tdx/**/sample_qeIdentity_response")
    fixture = TdxFixture.create()
    tcb.append(fixture.tcb_info())
    qe.append(fixture.qe_identity())
    return common.with_mode(0, tcb) + common.with_mode(1, qe)


if __name__ == "__main__":
    common.main("tcb_info", entry, seeds())
