"""Sealed payloads: HPKE (RFC 9180, base mode) wraps a fresh AES-256-GCM content key for one
recipient's attested key; the payload itself is AES-256-GCM in fixed-size chunks, so a
1 GB model is sealed and opened in place, never held three times.

    magic "ccseal" 0x00 0x01 | suite u8 | recipient key id (32) | enc length u16 | enc
    | chunk size u32 | plaintext length u64 | chunks (each chunk's ciphertext + 16-byte tag)

What binds what:
- The HPKE `info` is the header (suite, key id, chunk size, length) and the digest of the
  context: job, task, round, sender, recipient. The content key opens only for exactly
  that context and that layout: a payload cannot be replayed into another job, task,
  round, or between other sites.
- Each chunk's nonce is its index (the content key is fresh per payload); its associated
  data is the context digest, the index and whether it is the last chunk, so chunks cannot
  be reordered, dropped or the payload cut short.

Nothing here knows NVFlare; nvflare/sealing.py applies it to task data and results.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import MalformedEvidence, VerificationFailed
from .keys import SUITE_IDS, SealingKeyPair, SealingPublicKey, hpke_suite

MAGIC = b"ccseal\x00\x01"
TAG = 16
KEY_BYTES = 32
DEFAULT_CHUNK = 4 << 20  # 4 MiB: per-chunk overhead vanishes, a chunk is cheap to hold
MIN_CHUNK, MAX_CHUNK = 4 << 10, 64 << 20
MAX_PLAINTEXT = 1 << 40  # 1 TiB: far above any model, below anything that overflows
_FIXED = struct.Struct(">B32sH")  # suite, key id, enc length
_LAYOUT = struct.Struct(">IQ")  # chunk size, plaintext length
_SUITES_BY_ID = {number: name for name, number in SUITE_IDS.items()}


class SealedPayloadInvalid(VerificationFailed):
    """A sealed payload that does not open: another context, another key, or tampering."""


@dataclass(frozen=True)
class SealContext:
    """Where a payload may be opened. Every field is part of what the key opens for."""

    job: str
    task: str
    round: int
    sender: str
    recipient: str

    def digest(self) -> bytes:
        text = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(b"ccattest/seal/context/v1\0" + text.encode()).digest()


@dataclass(frozen=True)
class _Header:
    suite_id: int
    key_id: bytes
    enc: bytes
    chunk: int
    length: int

    @property
    def chunks(self) -> int:
        return max(1, -(-self.length // self.chunk))

    def to_bytes(self) -> bytes:
        return (MAGIC + _FIXED.pack(self.suite_id, self.key_id, len(self.enc)) + self.enc
                + _LAYOUT.pack(self.chunk, self.length))

    def info(self, context: SealContext) -> bytes:
        return (b"ccattest/seal/v1\0" + bytes([self.suite_id]) + self.key_id
                + _LAYOUT.pack(self.chunk, self.length) + context.digest())

    def sealed_size(self) -> int:
        return len(self.to_bytes()) + self.length + self.chunks * TAG


_ENC = {1: 1120 + KEY_BYTES + TAG, 2: 32 + KEY_BYTES + TAG}  # HPKE's output, by suite id


def sealed_size(length: int, recipient: SealingPublicKey, chunk: int = DEFAULT_CHUNK) -> int:
    suite_id = SUITE_IDS[recipient.suite]
    return _Header(suite_id, bytes(32), bytes(_ENC[suite_id]), chunk, length).sealed_size()


def _nonce(index: int) -> bytes:
    return b"\0\0\0\0" + index.to_bytes(8, "big")


def _aad(context: bytes, index: int, final: bool) -> bytes:
    return context + index.to_bytes(8, "big") + (b"\x01" if final else b"\x00")


def _check_layout(chunk: int, length: int) -> None:
    if not MIN_CHUNK <= chunk <= MAX_CHUNK:
        raise MalformedEvidence("a sealed payload's chunk size is out of range",
                                expected=f"{MIN_CHUNK} to {MAX_CHUNK} bytes", found=chunk)
    if length > MAX_PLAINTEXT:
        raise MalformedEvidence("a sealed payload is too large",
                                expected=f"at most {MAX_PLAINTEXT} bytes", found=length)


def _begin(recipient: SealingPublicKey, context: SealContext, length: int,
           chunk: int) -> tuple[_Header, AESGCM]:
    _check_layout(chunk, length)
    content_key = AESGCM.generate_key(bit_length=256)
    suite_id = SUITE_IDS[recipient.suite]
    key_id = bytes.fromhex(recipient.key_id)
    layout = _Header(suite_id, key_id, b"", chunk, length)
    enc = hpke_suite(recipient.suite).encrypt(content_key, recipient.hpke_key(),
                                              info=layout.info(context))
    return _Header(suite_id, key_id, enc, chunk, length), AESGCM(content_key)


def seal(data: bytes | bytearray | memoryview, recipient: SealingPublicKey,
         context: SealContext, *, chunk: int = DEFAULT_CHUNK) -> bytearray:
    """The sealed payload, written in place into one buffer (input + output in memory)."""
    plain = memoryview(data).cast("B")
    header, aead = _begin(recipient, context, len(plain), chunk)
    head = header.to_bytes()
    out = bytearray(header.sealed_size())
    out[:len(head)] = head
    digest, at = context.digest(), len(head)
    for index in range(header.chunks):
        part = plain[index * chunk:(index + 1) * chunk]
        final = index == header.chunks - 1
        aead.encrypt_into(_nonce(index), part, _aad(digest, index, final),
                          memoryview(out)[at:at + len(part) + TAG])
        at += len(part) + TAG
    return out


def _parse_header(read: memoryview | bytes) -> _Header:
    if bytes(read[:len(MAGIC)]) != MAGIC:
        raise MalformedEvidence("not a sealed payload", expected="the ccseal v1 header",
                                found=bytes(read[:8]).hex())
    at = len(MAGIC)
    if len(read) < at + _FIXED.size:
        raise MalformedEvidence("a sealed payload's header is truncated")
    suite_id, key_id, enc_length = _FIXED.unpack_from(read, at)
    if suite_id not in _ENC or enc_length != _ENC[suite_id]:
        raise MalformedEvidence("a sealed payload names an unknown suite or encapsulation",
                                found=f"suite {suite_id}, {enc_length} bytes")
    at += _FIXED.size
    if len(read) < at + enc_length + _LAYOUT.size:
        raise MalformedEvidence("a sealed payload's header is truncated")
    enc = bytes(read[at:at + enc_length])
    chunk, length = _LAYOUT.unpack_from(read, at + enc_length)
    _check_layout(chunk, length)
    return _Header(suite_id, key_id, enc, chunk, length)


# Who holds the private key may not be who opens the payload: a job process asks the site's
# own process (nvflare/sealing.py) to unwrap the content key; the private key stays there.
Unwrap = Callable[[int, str, bytes, bytes], bytes]  # (suite id, key id, enc, info) -> key
Openers = SealingKeyPair | Mapping[str, SealingKeyPair] | Unwrap


def unwrap_with(keys: SealingKeyPair | Mapping[str, SealingKeyPair], suite_id: int,
                key_id: str, enc: bytes, info: bytes) -> bytes:
    """The content key, with one of `keys` (the site process's side of Unwrap)."""
    pair = keys if isinstance(keys, SealingKeyPair) else keys.get(key_id)
    if pair is None or pair.public.key_id != key_id:
        raise SealedPayloadInvalid("a sealed payload is for another key",
                                   expected="one of this site's current sealing keys",
                                   found=key_id[:16],
                                   hint="the sender used a key this process does not hold "
                                   "(a key from before a restart, or another site's)")
    if SUITE_IDS[pair.public.suite] != suite_id:
        raise SealedPayloadInvalid("a sealed payload's suite does not match its key")
    try:
        return hpke_suite(pair.public.suite).decrypt(enc, pair.hpke_private(), info=info)
    except (InvalidTag, ValueError):
        raise SealedPayloadInvalid("a sealed payload does not open for this context",
                                   hint="replayed from another job, task, round or pair of "
                                   "sites, or altered") from None


def _content_key(header: _Header, keys: Openers, context: SealContext) -> AESGCM:
    key_id, info = header.key_id.hex(), header.info(context)
    try:
        if callable(keys):
            content_key = keys(header.suite_id, key_id, header.enc, info)
        else:
            content_key = unwrap_with(keys, header.suite_id, key_id, header.enc, info)
    except SealedPayloadInvalid as error:
        if error.hint and "replayed" in error.hint:  # say which context did not open
            raise SealedPayloadInvalid(
                error.message, expected=f"job {context.job}, task {context.task}, round "
                f"{context.round}, {context.sender} -> {context.recipient}",
                hint=error.hint) from None
        raise
    if len(content_key) != KEY_BYTES:
        raise SealedPayloadInvalid("a sealed payload's content key has the wrong length")
    return AESGCM(content_key)


def open_sealed(envelope: bytes | bytearray | memoryview, keys: Openers,
                context: SealContext) -> bytearray:
    """The plaintext, decrypted in place into one buffer (envelope + plaintext in memory).
    `keys`: this site's key pair, or its current ones by key id (during a rotation)."""
    sealed = memoryview(envelope).cast("B")
    header = _parse_header(sealed)
    if len(sealed) != header.sealed_size():
        raise MalformedEvidence("a sealed payload has the wrong length",
                                expected=f"{header.sealed_size()} bytes",
                                found=f"{len(sealed)} bytes")
    aead = _content_key(header, keys, context)
    digest, at = context.digest(), len(header.to_bytes())
    out = bytearray(header.length)
    for index in range(header.chunks):
        size = min(header.chunk, header.length - index * header.chunk)
        final = index == header.chunks - 1
        try:
            aead.decrypt_into(_nonce(index), sealed[at:at + size + TAG],
                              _aad(digest, index, final),
                              memoryview(out)[index * header.chunk:index * header.chunk + size])
        except InvalidTag:
            raise SealedPayloadInvalid("a sealed payload was altered",
                                       found=f"chunk {index} of {header.chunks}") from None
        at += size + TAG
    return out


def seal_stream(source: BinaryIO, length: int, target: BinaryIO, recipient: SealingPublicKey,
                context: SealContext, *, chunk: int = DEFAULT_CHUNK) -> int:
    """seal() from a file to a file, one chunk in memory at a time; returns bytes written."""
    header, aead = _begin(recipient, context, length, chunk)
    written = target.write(header.to_bytes())
    digest = context.digest()
    buffer = bytearray(chunk + TAG)
    for index in range(header.chunks):
        size = min(chunk, length - index * chunk)
        part = source.read(size)
        if len(part) != size:
            raise MalformedEvidence("the payload to seal ended early",
                                    expected=f"{length} bytes")
        view = memoryview(buffer)[:size + TAG]
        aead.encrypt_into(_nonce(index), part, _aad(digest, index, index == header.chunks - 1),
                          view)
        written += target.write(view)
    return written


def open_stream(source: BinaryIO, target: BinaryIO, keys: Openers,
                context: SealContext) -> int:
    """open_sealed() from a file to a file, one chunk in memory at a time. A chunk is
    written only once it authenticated; a failure leaves a prefix of good chunks, so write
    to a temporary name and rename on success."""
    head = source.read(len(MAGIC) + _FIXED.size)
    fixed = _parse_header_prefix(head)
    rest = source.read(fixed + _LAYOUT.size)
    header = _parse_header(head + rest)
    aead = _content_key(header, keys, context)
    digest = context.digest()
    buffer = bytearray(header.chunk)
    written = 0
    for index in range(header.chunks):
        size = min(header.chunk, header.length - index * header.chunk)
        part = source.read(size + TAG)
        if len(part) != size + TAG:
            raise SealedPayloadInvalid("a sealed payload was cut short",
                                       found=f"chunk {index} of {header.chunks}")
        view = memoryview(buffer)[:size]
        try:
            aead.decrypt_into(_nonce(index), part,
                              _aad(digest, index, index == header.chunks - 1), view)
        except InvalidTag:
            raise SealedPayloadInvalid("a sealed payload was altered",
                                       found=f"chunk {index} of {header.chunks}") from None
        written += target.write(view)
    if source.read(1):
        raise SealedPayloadInvalid("a sealed payload has bytes after its last chunk")
    return written


def _parse_header_prefix(head: bytes) -> int:
    """The encapsulation's length from the fixed part, checked before reading it."""
    if len(head) < len(MAGIC) + _FIXED.size or head[:len(MAGIC)] != MAGIC:
        _parse_header(head)  # raises the precise error
    suite_id, _, enc_length = _FIXED.unpack_from(head, len(MAGIC))
    if suite_id not in _ENC or enc_length != _ENC[suite_id]:
        _parse_header(head)
    return int(enc_length)

