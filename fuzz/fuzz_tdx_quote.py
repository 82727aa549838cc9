"""TDX quotes (v4 and v5, with their certification data): platforms.tdx.abi.parse_quote,
then the QE certification data and the PCK chain inside it."""

from __future__ import annotations

import common

with common.instrumented():
    from ccattest.platforms.tdx.abi import parse_qe_certification, parse_quote
    from ccattest.platforms.tdx.certs import load_certificates, pck_extensions
    from ccattest.testing.tdx import QUOTE_V5, TdxFixture


def entry(data: bytes) -> None:
    mode, rest = common.split_mode(data, 2)
    qe = parse_quote(rest).qe if mode == 0 else parse_qe_certification(rest)
    if qe is not None and qe.certification:
        certs = load_certificates(qe.certification, "PCK chain")
        pck_extensions(certs[0])


def seeds() -> list[bytes]:
    quotes = common.vectors("tdx/**/*quote*.dat", "tdx/trustee/**/occlum_quote.dat",
                            "tdx/dcap-qvl/sample/tdx_quote", "tdx/dcap-qvl/sample/sgx_quote",
                            "azure/trustee/deps/verifier/test_data/az-tdx-vtpm/td-quote.bin")
    quotes += [TdxFixture.create().quote(bytes(64)).to_bytes(),
               TdxFixture.create(version=QUOTE_V5, tdx15=True).quote(bytes(64)).to_bytes()]
    qes = [TdxFixture.create().qe_certification().to_bytes()]
    return common.with_mode(0, quotes) + common.with_mode(1, qes)


if __name__ == "__main__":
    common.main("tdx_quote", entry, seeds())
