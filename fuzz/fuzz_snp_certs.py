"""The SNP certificate table (configfs-tsm auxblob / extended guest request) and the
certificates in it: platforms.snp.certs.parse_cert_table, load_certificates."""

from __future__ import annotations

import common

with common.instrumented():
    from ccattest.platforms.snp.certs import build_cert_table, load_certificates, parse_cert_table
    from ccattest.testing.snp import SnpFixture, der


def entry(data: bytes) -> None:
    mode, rest = common.split_mode(data, 2)
    if mode == 0:
        for blob in parse_cert_table(rest).values():
            load_certificates(blob)
    else:
        load_certificates(rest)


def seeds() -> list[bytes]:
    certs = common.vectors(
        "sev-snp/virtee-sev/tests/certs_data/vcek_*.der",
        "sev-snp/trustee/deps/verifier/test_data/snp/test-v*.der",
        "sev-snp/go-sev-guest/verify/testdata/*.testcer",
        "sev-snp/virtee-sev/src/certs/snp/builtin/milan/*.pem",
        "azure/azure-attestation-samples/extracted/get-sevsnp-jwt/vcek_cert_chain.pem",
    )
    fixture = SnpFixture.create("Genoa")
    tables = [fixture.auxblob(),
              build_cert_table({"vcek": der(fixture.leaf), "ask": der(fixture.intermediate),
                                "ark": der(fixture.ark)})]
    tables += [build_cert_table({"vcek": cert}) for cert in certs[:2]]
    tables += common.vectors("sev-snp/virtee-sev/tests/certs_data/cert_chain_*")
    return common.with_mode(0, tables) + common.with_mode(1, certs)


if __name__ == "__main__":
    common.main("snp_certs", entry, seeds())
