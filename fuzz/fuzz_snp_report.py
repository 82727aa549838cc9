"""SEV-SNP ATTESTATION_REPORT bytes: platforms.snp.abi.parse_report."""

from __future__ import annotations

import common

with common.instrumented():
    from ccattest.platforms.snp.abi import parse_report
    from ccattest.testing.snp import SnpFixture


def entry(data: bytes) -> None:
    report = parse_report(data)
    report.to_bytes()  # a report that parses must also serialise


def seeds() -> list[bytes]:
    real = common.vectors(
        "azure/azure-attestation-samples/extracted/get-sevsnp-jwt/snp_report.bin",
        "sev-snp/trustee/deps/verifier/test_data/snp/*report.bin",
        "sev-snp/go-sev-guest/verify/testdata/attestation.bin",
    )
    real += [bytes.fromhex(text.decode().strip()) for text in
             common.vectors("sev-snp/virtee-sev/tests/certs_data/report_milan.hex")]
    synthetic = []
    for product, kind, version in (("Milan", "vcek", 2), ("Genoa", "vcek", 3),
                                   ("Turin", "vlek", 5)):
        fixture = SnpFixture.create(product, signing_key=kind, version=version)
        synthetic.append(fixture.sign(fixture.report(bytes(64))))
    return real + synthetic


if __name__ == "__main__":
    common.main("snp_report", entry, seeds())
