"""TDX collateral as one JSON document (dcap-qvl's shape, also an evidence endorsement):
platforms.tdx.collateral_json.collateral_from_json, then every item in it parsed."""

from __future__ import annotations

import common

with common.instrumented():
    from ccattest.platforms.tdx.certs import load_certificates, load_crl
    from ccattest.platforms.tdx.collateral_json import collateral_from_json, collateral_to_json
    from ccattest.platforms.tdx.tcb import parse_qe_identity, parse_tcb_info
    from ccattest.testing.tdx import TdxFixture


def entry(data: bytes) -> None:
    collateral = collateral_from_json(data)
    parse_tcb_info(collateral.tcb_info)
    parse_qe_identity(collateral.qe_identity)
    for chain in (collateral.tcb_info_issuer_chain, collateral.qe_identity_issuer_chain,
                  collateral.pck_crl_issuer_chain):
        load_certificates(chain)
    load_crl(collateral.pck_crl, "PCK CRL")
    load_crl(collateral.root_ca_crl, "root CA CRL")


def seeds() -> list[bytes]:
    real = common.vectors("tdx/dcap-qvl/sample/*_collateral.json")
    return [*real, collateral_to_json(TdxFixture.create().collateral())]


if __name__ == "__main__":
    common.main("tdx_collateral", entry, seeds())
