"""TPM quote structures: TPMS_ATTEST, TPMT_SIGNATURE, the AK JWK, PCR digests."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import given
from hypothesis import strategies as st

from ccattest.errors import MalformedEvidence, VerificationFailed
from ccattest.platforms.azure import tpm
from ccattest.platforms.azure.hcl import parse_hcl_report, parse_runtime_data
from ccattest.testing.azure import AzureFixture, jwk

TRUSTEE = "azure/trustee/deps/verifier/test_data/"
FIXTURE = AzureFixture.create("azure-snp")
ATTEST = FIXTURE.attest(b"nonce-1234567890")
MESSAGE = ATTEST.to_bytes()
KEY = FIXTURE.ak.public_key()
VALUES = dict(enumerate(FIXTURE.pcrs))


@pytest.mark.parametrize("folder", ["az-snp-vtpm", "az-tdx-vtpm"])
def test_trustee_quotes(vectors: Path, folder: str) -> None:
    sample = json.loads((vectors / TRUSTEE / folder / "tpm-quote-v1.json").read_text())
    message = bytes.fromhex(sample["message"])
    attest = tpm.parse_attest(message)
    assert attest.extra_data == b"challenge" and attest.to_bytes() == message
    assert attest.firmware == "2020031200120003" and attest.clock_info.safe
    assert tpm.selected_pcrs(attest) == tuple(range(24))
    hcl = parse_hcl_report((vectors / TRUSTEE / folder / "hcl-report.bin").read_bytes())
    key = tpm.rsa_key_from_jwk(parse_runtime_data(hcl.runtime_data).key())
    signature = tpm.parse_signature(bytes.fromhex(sample["signature"]), key.key_size // 8)
    tpm.verify_signature(message, signature, key)
    covered = tpm.check_pcr_digest(attest, tpm.parse_pcr_values(sample["pcrs"]))
    assert len(covered) == 24


def test_quote_signature_forms() -> None:
    raw = FIXTURE.sign(MESSAGE)
    bare = tpm.parse_signature(raw, 256)
    wrapped = tpm.parse_signature(bare.to_bytes(), 256)
    assert wrapped == bare and wrapped.sig_alg == tpm.TPM_ALG_RSASSA
    tpm.verify_signature(MESSAGE, wrapped, KEY)
    pss = FIXTURE.ak.sign(MESSAGE, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                               salt_length=32), hashes.SHA256())
    parsed = tpm.parse_signature(tpm.TpmSignature(tpm.TPM_ALG_RSAPSS, tpm.TPM_ALG_SHA256,
                                                  pss).to_bytes(), 256)
    tpm.verify_signature(MESSAGE, parsed, KEY)
    with pytest.raises(VerificationFailed):
        tpm.verify_signature(MESSAGE + b"x", parsed, KEY)


@pytest.mark.parametrize("data", [
    struct.pack(">HH", 0x0018, 0x000B) + b"\0\0",  # ECDSA
    struct.pack(">HH", 0x0014, 0x000B) + b"\0\x05ab",  # truncated
    struct.pack(">HH", 0x0014, 0x000B) + b"\0\0xx",  # trailing
    struct.pack(">HH", 0x0014, 0x000B) + b"\x08\x00",  # too long
])
def test_bad_signature_structures(data: bytes) -> None:
    with pytest.raises(MalformedEvidence):
        tpm.parse_signature(data, 256)


def test_unsupported_signature_hash() -> None:
    with pytest.raises(VerificationFailed, match="hash"):
        tpm.verify_signature(MESSAGE, tpm.TpmSignature(tpm.TPM_ALG_RSASSA, tpm.TPM_ALG_SHA1,
                                                       bytes(256)), KEY)


@pytest.mark.parametrize("key", [
    {"kty": "EC"}, {"kty": "RSA", "n": "AQAB"}, {"kty": "RSA", "n": 5, "e": "AQAB"},
    {"kty": "RSA", "n": "A", "e": "AQAB"}, {"kty": "RSA", "n": "AQAB", "e": "AA"},
])
def test_bad_jwks(key: dict[str, object]) -> None:
    with pytest.raises(MalformedEvidence):
        tpm.rsa_key_from_jwk(key)


def test_jwk_round_trip() -> None:
    assert tpm.rsa_key_from_jwk(jwk(KEY, "HCLAkPub")).public_numbers() == KEY.public_numbers()


@pytest.mark.parametrize("data", [
    b"", MESSAGE[:-1], MESSAGE + b"\0", b"\0" * 2000, b"\xff\x54\x43\x46" + MESSAGE[4:],
    MESSAGE[:4] + b"\x80\x17" + MESSAGE[6:], MESSAGE[:6] + b"\x00\x50" + MESSAGE[8:],
])
def test_bad_attest(data: bytes) -> None:
    with pytest.raises(MalformedEvidence):
        tpm.parse_attest(data)


def test_attest_not_bytes() -> None:
    with pytest.raises(MalformedEvidence):
        tpm.parse_attest("ff54")  # type: ignore[arg-type]


def _with_selection(selection: bytes) -> bytes:
    head = MESSAGE[:MESSAGE.index(b"\x00\x00\x00\x01\x00\x0b\x03")]
    return head + selection + b"\x00\x20" + bytes(32)


@pytest.mark.parametrize("selection", [
    b"\x00\x00\x00\x20",  # 32 banks
    b"\x00\x00\x00\x01\x00\x0b\x08" + bytes(8),  # bitmap too long
])
def test_bad_selections(selection: bytes) -> None:
    with pytest.raises(MalformedEvidence):
        tpm.parse_attest(_with_selection(selection))


def test_other_banks() -> None:
    empty_sha1 = tpm.parse_attest(_with_selection(b"\x00\x00\x00\x02\x00\x04\x03\x00\x00\x00"
                                                  b"\x00\x0b\x03\x01\x00\x00"))
    assert tpm.selected_pcrs(empty_sha1) == (0,)
    sha1 = tpm.parse_attest(_with_selection(b"\x00\x00\x00\x01\x00\x04\x03\x01\x00\x00"))
    with pytest.raises(MalformedEvidence, match="bank"):
        tpm.selected_pcrs(sha1)


def test_pcr_digest() -> None:
    assert tpm.check_pcr_digest(ATTEST, VALUES) == VALUES
    with pytest.raises(VerificationFailed):
        tpm.check_pcr_digest(ATTEST, {**VALUES, 5: bytes(32)})
    with pytest.raises(MalformedEvidence, match="PCR 23"):
        tpm.pcr_digest(ATTEST, {i: v for i, v in VALUES.items() if i != 23})
    partial = dataclasses.replace(ATTEST, pcr_selections=(tpm.PcrSelection(
        tpm.TPM_ALG_SHA256, (0, 7)),))
    assert tpm.parse_attest(partial.to_bytes()) == partial


@pytest.mark.parametrize("values", [
    "x", [1], ["zz"], ["00" * 31], {"24": "00" * 32}, {"a": "00" * 32},
])
def test_bad_pcr_values(values: object) -> None:
    with pytest.raises(MalformedEvidence):
        tpm.parse_pcr_values(values)


def test_pcr_values_object() -> None:
    assert tpm.parse_pcr_values({"7": "11" * 32}) == {7: b"\x11" * 32}


@given(st.integers(0, len(MESSAGE) - 1), st.integers(1, 255))
def test_attest_mutations_only_malformed(offset: int, mask: int) -> None:
    data = bytearray(MESSAGE)
    data[offset] ^= mask
    try:
        attest = tpm.parse_attest(bytes(data))
    except MalformedEvidence:
        return
    assert attest.to_bytes() == bytes(data)


@given(st.binary(max_size=300))
def test_signature_garbage_only_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedEvidence):
        tpm.parse_signature(data, 256)


def test_non_boolean_safe_flag_is_malformed() -> None:
    data = bytearray(MESSAGE)
    data[76] ^= 0x02  # clockInfo.safe: TPMI_YES_NO allows only 0 and 1
    with pytest.raises(MalformedEvidence, match="TPMI_YES_NO"):
        tpm.parse_attest(bytes(data))
