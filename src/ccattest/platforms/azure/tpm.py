"""TPM 2.0 structures a vTPM quote is made of (TPM 2.0 Library, Part 2), big-endian.

TPMS_ATTEST (quote): magic TPM_GENERATED_VALUE, type TPM_ST_ATTEST_QUOTE, qualifiedSigner
(TPM2B_NAME), extraData (TPM2B_DATA: the verifier's nonce), clockInfo, firmwareVersion,
then TPMS_QUOTE_INFO: TPML_PCR_SELECTION and pcrDigest (TPM2B_DIGEST). The signature is a
TPMT_SIGNATURE (sigAlg, hash, TPM2B signature) or, as Azure samples give it, the bare RSA
signature bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ...errors import MalformedEvidence, VerificationFailed

TPM_GENERATED_VALUE = 0xFF544347
TPM_ST_ATTEST_QUOTE = 0x8018
TPM_ALG_SHA1 = 0x0004
TPM_ALG_SHA256 = 0x000B
TPM_ALG_SHA384 = 0x000C
TPM_ALG_SHA512 = 0x000D
TPM_ALG_NULL = 0x0010
TPM_ALG_RSASSA = 0x0014
TPM_ALG_RSAPSS = 0x0016
PCR_COUNT = 24
MAX_ATTEST_SIZE = 1024
ALG_NAMES = {TPM_ALG_SHA1: "sha1", TPM_ALG_SHA256: "sha256", TPM_ALG_SHA384: "sha384",
             TPM_ALG_SHA512: "sha512", TPM_ALG_RSASSA: "rsassa", TPM_ALG_RSAPSS: "rsapss",
             TPM_ALG_NULL: "null"}
_DIGESTS = {TPM_ALG_SHA256: (hashes.SHA256, hashlib.sha256)}


class _Reader:
    """Bounds-checked big-endian reads; every shortfall is MalformedEvidence."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.offset, self.what = data, 0, what

    def take(self, size: int, field: str) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise MalformedEvidence(f"{self.what} is truncated in {field}",
                                    expected=f"{size} bytes at {self.offset}",
                                    found=f"{len(self.data) - self.offset} bytes")
        chunk, self.offset = self.data[self.offset:end], end
        return chunk

    def uint(self, size: int, field: str) -> int:
        return int.from_bytes(self.take(size, field), "big")

    def tpm2b(self, field: str, limit: int = 0xFFFF) -> bytes:
        size = self.uint(2, field)
        if size > limit:
            raise MalformedEvidence(f"{self.what} {field} is too long", expected=f"<= {limit}",
                                    found=size)
        return self.take(size, field)

    def finish(self) -> None:
        if self.offset != len(self.data):
            raise MalformedEvidence(f"{self.what} has trailing bytes",
                                    found=f"{len(self.data) - self.offset} bytes")


def _tpm2b(value: bytes) -> bytes:
    return struct.pack(">H", len(value)) + value


@dataclass(frozen=True)
class PcrSelection:
    hash_alg: int
    pcrs: tuple[int, ...]
    size_of_select: int = 3

    def to_bytes(self) -> bytes:
        bits = bytearray(self.size_of_select)
        for index in self.pcrs:
            bits[index // 8] |= 1 << (index % 8)
        return struct.pack(">HB", self.hash_alg, self.size_of_select) + bytes(bits)


def parse_pcr_selections(reader: _Reader) -> tuple[PcrSelection, ...]:
    count = reader.uint(4, "pcrSelect.count")
    if count > 16:
        raise MalformedEvidence("too many PCR banks selected", expected="<= 16", found=count)
    selections = []
    for _ in range(count):
        alg = reader.uint(2, "pcrSelect.hash")
        size = reader.uint(1, "pcrSelect.sizeofSelect")
        if size > 4:
            raise MalformedEvidence("PCR select bitmap too long", expected="<= 4", found=size)
        bits = reader.take(size, "pcrSelect.pcrSelect")
        pcrs = tuple(i for i in range(size * 8) if bits[i // 8] >> (i % 8) & 1)
        selections.append(PcrSelection(alg, pcrs, size))
    return tuple(selections)


def pcr_selections_bytes(selections: Sequence[PcrSelection]) -> bytes:
    return struct.pack(">I", len(selections)) + b"".join(s.to_bytes() for s in selections)


@dataclass(frozen=True)
class ClockInfo:
    clock: int
    reset_count: int
    restart_count: int
    safe: bool

    def to_dict(self) -> dict[str, Any]:
        return {"clock": self.clock, "reset_count": self.reset_count,
                "restart_count": self.restart_count, "safe": self.safe}


@dataclass(frozen=True)
class Attest:
    """TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE."""

    qualified_signer: bytes
    extra_data: bytes
    clock_info: ClockInfo
    firmware_version: int
    pcr_selections: tuple[PcrSelection, ...]
    pcr_digest: bytes
    magic: int = TPM_GENERATED_VALUE
    type: int = TPM_ST_ATTEST_QUOTE

    @property
    def firmware(self) -> str:
        return f"{self.firmware_version:016x}"

    def to_bytes(self) -> bytes:
        clock = self.clock_info
        return (struct.pack(">IH", self.magic, self.type) + _tpm2b(self.qualified_signer)
                + _tpm2b(self.extra_data)
                + struct.pack(">QIIB", clock.clock, clock.reset_count, clock.restart_count,
                              int(clock.safe))
                + struct.pack(">Q", self.firmware_version)
                + pcr_selections_bytes(self.pcr_selections) + _tpm2b(self.pcr_digest))


def _yes_no(value: int) -> bool:
    # TPMI_YES_NO is 0 or 1; anything else is not a TPM-generated structure.
    if value not in (0, 1):
        raise MalformedEvidence("TPM clockInfo.safe is not a TPMI_YES_NO", expected="0 or 1",
                                found=value)
    return bool(value)


def parse_attest(data: bytes) -> Attest:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedEvidence("TPM quote must be bytes", found=type(data).__name__)
    data = bytes(data)
    if len(data) > MAX_ATTEST_SIZE:
        raise MalformedEvidence("TPM quote is too large", expected=f"<= {MAX_ATTEST_SIZE}",
                                found=len(data))
    reader = _Reader(data, "TPMS_ATTEST")
    magic, kind = reader.uint(4, "magic"), reader.uint(2, "type")
    if magic != TPM_GENERATED_VALUE:
        raise MalformedEvidence("TPM quote is not TPM-generated",
                                expected=f"magic {TPM_GENERATED_VALUE:#x}", found=f"{magic:#x}")
    if kind != TPM_ST_ATTEST_QUOTE:
        raise MalformedEvidence("TPM attestation is not a quote",
                                expected=f"type {TPM_ST_ATTEST_QUOTE:#x}", found=f"{kind:#x}")
    signer = reader.tpm2b("qualifiedSigner", 66)
    extra = reader.tpm2b("extraData", 64)
    clock = ClockInfo(reader.uint(8, "clock"), reader.uint(4, "resetCount"),
                      reader.uint(4, "restartCount"), _yes_no(reader.uint(1, "safe")))
    firmware = reader.uint(8, "firmwareVersion")
    selections = parse_pcr_selections(reader)
    digest = reader.tpm2b("pcrDigest", 64)
    reader.finish()
    return Attest(signer, extra, clock, firmware, selections, digest, magic, kind)


# --- signature ------------------------------------------------------------------------------

@dataclass(frozen=True)
class TpmSignature:
    sig_alg: int
    hash_alg: int
    signature: bytes

    def to_bytes(self) -> bytes:
        return struct.pack(">HH", self.sig_alg, self.hash_alg) + _tpm2b(self.signature)


def parse_signature(data: bytes, key_size: int) -> TpmSignature:
    """A TPMT_SIGNATURE, or bare signature bytes of the key's size (RSASSA, SHA-256)."""
    data = bytes(data)
    if len(data) == key_size:
        return TpmSignature(TPM_ALG_RSASSA, TPM_ALG_SHA256, data)
    reader = _Reader(data, "TPMT_SIGNATURE")
    sig_alg, hash_alg = reader.uint(2, "sigAlg"), reader.uint(2, "hash")
    if sig_alg not in (TPM_ALG_RSASSA, TPM_ALG_RSAPSS):
        raise MalformedEvidence("unsupported TPM signature algorithm",
                                expected="RSASSA (0x14) or RSAPSS (0x16)", found=f"{sig_alg:#x}")
    signature = reader.tpm2b("signature", 1024)
    reader.finish()
    return TpmSignature(sig_alg, hash_alg, signature)


def rsa_key_from_jwk(jwk: Mapping[str, Any]) -> rsa.RSAPublicKey:
    if jwk.get("kty") != "RSA":
        raise MalformedEvidence("attestation key is not an RSA JWK", expected="kty RSA",
                                found=jwk.get("kty"))
    try:
        n, e = (int.from_bytes(_b64url(jwk[name]), "big") for name in ("n", "e"))
        return rsa.RSAPublicNumbers(e, n).public_key()
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedEvidence("attestation key JWK does not parse", found=str(exc)) from None


def _b64url(value: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError("JWK member must be a string")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None


def verify_signature(message: bytes, signature: TpmSignature, key: rsa.RSAPublicKey) -> None:
    if signature.hash_alg not in _DIGESTS:
        raise VerificationFailed("unsupported TPM signature hash", expected="SHA-256 (0x0b)",
                                 found=f"{signature.hash_alg:#x}")
    algorithm = _DIGESTS[signature.hash_alg][0]()
    scheme = (padding.PKCS1v15() if signature.sig_alg == TPM_ALG_RSASSA else
              padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.AUTO))
    try:
        key.verify(signature.signature, bytes(message), scheme, algorithm)
    except (InvalidSignature, ValueError):
        raise VerificationFailed("TPM quote signature does not verify with the attestation key",
                                 expected=f"{ALG_NAMES[signature.sig_alg]} SHA-256 by HCLAkPub",
                                 found=signature.signature[:8].hex() + "...") from None


# --- PCRs -----------------------------------------------------------------------------------

def parse_pcr_values(values: Any) -> dict[int, bytes]:
    """A JSON list of hex digests (PCR 0, 1, ...) or an object {index: hex}."""
    items = enumerate(values) if isinstance(values, list) else (
        values.items() if isinstance(values, dict) else None)
    if items is None:
        raise MalformedEvidence("PCR values must be a list or an object of hex strings",
                                found=type(values).__name__)
    parsed: dict[int, bytes] = {}
    for key, value in items:
        try:
            index, digest = int(key), bytes.fromhex(value)
        except (TypeError, ValueError):
            raise MalformedEvidence("PCR value does not parse", found=f"{key}: {value!r}"[:80]
                                    ) from None
        if not 0 <= index < PCR_COUNT or len(digest) != 32:
            raise MalformedEvidence("PCR value out of range", expected="index 0..23, 32 bytes",
                                    found=f"index {index}, {len(digest)} bytes")
        parsed[index] = digest
    return parsed


def selected_pcrs(attest: Attest) -> tuple[int, ...]:
    """The SHA-256 PCRs a quote covers; other banks are refused."""
    pcrs: list[int] = []
    for selection in attest.pcr_selections:
        if selection.hash_alg not in _DIGESTS:
            if selection.pcrs:
                raise MalformedEvidence("unsupported PCR bank in the quote",
                                        expected="sha256 (0x0b)",
                                        found=f"{selection.hash_alg:#x}")
            continue
        pcrs.extend(selection.pcrs)
    return tuple(pcrs)


def pcr_digest(attest: Attest, values: Mapping[int, bytes]) -> bytes:
    """SHA-256 over the selected PCR values, in selection order."""
    digest = hashlib.sha256()
    for index in selected_pcrs(attest):
        if index not in values:
            raise MalformedEvidence("a PCR the quote covers has no value",
                                    expected=f"PCR {index}", found=sorted(values))
        digest.update(values[index])
    return digest.digest()


def check_pcr_digest(attest: Attest, values: Mapping[int, bytes]) -> dict[int, bytes]:
    """The covered PCR values, after their digest matched the quote's pcrDigest."""
    computed = pcr_digest(attest, values)
    if not hmac.compare_digest(computed, attest.pcr_digest):
        raise VerificationFailed("PCR values do not match the quote's pcrDigest",
                                 expected=attest.pcr_digest.hex(), found=computed.hex())
    return {index: values[index] for index in selected_pcrs(attest)}
