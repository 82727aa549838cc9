"""TPM 2.0 structures in Azure vTPM evidence: TPMS_ATTEST (platforms.azure.tpm.parse_attest),
TPMT_SIGNATURE (parse_signature) and the PCR list JSON (parse_pcr_values)."""

from __future__ import annotations

import json

import common

with common.instrumented():
    from ccattest.platforms.azure.tpm import parse_attest, parse_pcr_values, parse_signature
    from ccattest.testing.azure import AzureFixture


def entry(data: bytes) -> None:
    mode, rest = common.split_mode(data, 3)
    if mode == 0:
        parse_attest(rest)
    elif mode == 1:
        parse_signature(rest, 256)
    else:
        try:
            values = json.loads(rest)
        except (ValueError, RecursionError):
            return
        parse_pcr_values(values)


def seeds() -> list[bytes]:
    messages = common.vectors("azure/trustee/**/tpm-quote.msg")
    signatures = common.vectors("azure/trustee/**/tpm-quote.sig")
    pcrs = []
    for document in common.vectors("azure/trustee/**/tpm-quote-v1.json"):
        quote = json.loads(document)
        messages.append(bytes.fromhex(quote["message"]))
        signatures.append(bytes.fromhex(quote["signature"]))
        pcrs.append(json.dumps(quote["pcrs"]).encode())
    fixture = AzureFixture.create()
    evidence, _ = fixture.evidence()
    messages.append(evidence.endorsements["tpm_quote"])
    signatures.append(evidence.endorsements["tpm_signature"])
    pcrs.append(evidence.endorsements["pcrs"])
    return (common.with_mode(0, messages) + common.with_mode(1, signatures)
            + common.with_mode(2, pcrs))


if __name__ == "__main__":
    common.main("tpm", entry, seeds())
