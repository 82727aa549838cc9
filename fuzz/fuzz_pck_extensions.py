"""The SGX extension of a PCK certificate (DER inside the certificate):
platforms.tdx.certs.parse_sgx_extension; mode 1 feeds whole certificates through
load_certificates and pck_extensions."""

from __future__ import annotations

import common

with common.instrumented():
    from ccattest.platforms.tdx.certs import (
        load_certificates,
        parse_sgx_extension,
        pck_extensions,
        sgx_extension_value,
    )
    from ccattest.testing.tdx import DEFAULT_FMSPC, der, sgx_extension


def entry(data: bytes) -> None:
    mode, rest = common.split_mode(data, 2)
    if mode == 0:
        parse_sgx_extension(rest)
    else:
        for cert in load_certificates(rest, "PCK certificate"):
            pck_extensions(cert)


def seeds() -> list[bytes]:
    pems = common.vectors("tdx/dcap-qvl-synthetic/**/pckCert.pem",
                          "tdx/dcap-qvl-synthetic/**/pckSignChain.pem")
    extensions = [sgx_extension(fmspc=DEFAULT_FMSPC, sgx_svns=range(16), pce_svn=11,
                                cpu_svn=bytes(16))]
    for pem in pems:
        for cert in load_certificates(pem):
            value = sgx_extension_value(cert)
            if value is not None:
                extensions.append(value)
    ders = [der(cert) for pem in pems for cert in load_certificates(pem)]
    return common.with_mode(0, extensions) + common.with_mode(1, pems + ders)


if __name__ == "__main__":
    common.main("pck_extensions", entry, seeds())
