"""Sealed payloads open only for their recipient's key and their exact context, whole and
unaltered; the two suites; memory bounded; every malformed envelope a typed error."""

from __future__ import annotations

import io
import os
import tracemalloc
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from ccattest.errors import MalformedEvidence
from ccattest.seal.envelope import (
    MAGIC,
    MIN_CHUNK,
    TAG,
    SealContext,
    SealedPayloadInvalid,
    open_sealed,
    open_stream,
    seal,
    seal_stream,
    sealed_size,
)
from ccattest.seal.keys import (
    DEFAULT_SUITE,
    SealingKeyPair,
    SealingPublicKey,
    SuiteName,
)

AT = datetime(2026, 12, 1, tzinfo=UTC)
CONTEXT = SealContext(job="job-1", task="train", round=3, sender="server", recipient="site-1")
CHUNK = MIN_CHUNK


@pytest.fixture(scope="module", params=list(SuiteName))
def pair(request: pytest.FixtureRequest) -> SealingKeyPair:
    return SealingKeyPair.generate(request.param, AT)


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
def test_a_payload_opens_whole_for_its_key_and_context(pair: SealingKeyPair, size: int) -> None:
    data = os.urandom(size)
    sealed = seal(data, pair.public, CONTEXT, chunk=CHUNK)
    assert len(sealed) == sealed_size(size, pair.public, CHUNK)
    assert sealed.startswith(MAGIC)
    assert size < 64 or data[:64] not in sealed  # ciphertext, not the model
    assert open_sealed(sealed, pair, CONTEXT) == data
    assert open_sealed(sealed, {pair.public.key_id: pair}, CONTEXT) == data
    streamed = io.BytesIO()
    assert seal_stream(io.BytesIO(data), size, streamed, pair.public, CONTEXT,
                       chunk=CHUNK) == len(sealed)
    opened = io.BytesIO()
    assert open_stream(io.BytesIO(streamed.getvalue()), opened, pair, CONTEXT) == size
    assert opened.getvalue() == data


@pytest.mark.parametrize(("field", "value"), [("job", "job-2"), ("task", "validate"),
                                         ("round", 4), ("sender", "site-2"),
                                         ("recipient", "site-2")])
def test_a_payload_replayed_into_another_context_does_not_open(
        pair: SealingKeyPair, field: str, value: object) -> None:
    sealed = seal(b"model weights", pair.public, CONTEXT, chunk=CHUNK)
    with pytest.raises(SealedPayloadInvalid, match="does not open for this context"):
        open_sealed(sealed, pair, replace(CONTEXT, **{field: value}))


def test_another_key_cannot_open_it_even_with_the_right_id(pair: SealingKeyPair) -> None:
    other = SealingKeyPair.generate(pair.public.suite, AT)
    sealed = seal(b"model weights", pair.public, CONTEXT, chunk=CHUNK)
    with pytest.raises(SealedPayloadInvalid, match="for another key"):
        open_sealed(sealed, other, CONTEXT)
    with pytest.raises(SealedPayloadInvalid, match="for another key"):
        open_sealed(sealed, {other.public.key_id: other}, CONTEXT)
    impostor = {pair.public.key_id: other}  # a key filed under the wrong id
    with pytest.raises(SealedPayloadInvalid, match="for another key"):
        open_sealed(sealed, impostor, CONTEXT)


def test_tampering_anywhere_is_caught(pair: SealingKeyPair) -> None:
    data = os.urandom(3 * CHUNK + 5)
    sealed = seal(data, pair.public, CONTEXT, chunk=CHUNK)
    head = len(sealed) - len(data) - 4 * TAG
    for at in (head - 20, head + 3, head + CHUNK + TAG + 1, len(sealed) - 1):
        altered = bytearray(sealed)
        altered[at] ^= 0x01
        with pytest.raises(SealedPayloadInvalid):
            open_sealed(altered, pair, CONTEXT)
    chunk_1 = slice(head, head + CHUNK + TAG)
    chunk_2 = slice(head + CHUNK + TAG, head + 2 * (CHUNK + TAG))
    swapped = bytearray(sealed)
    swapped[chunk_1], swapped[chunk_2] = sealed[chunk_2], sealed[chunk_1]
    with pytest.raises(SealedPayloadInvalid, match="altered"):
        open_sealed(swapped, pair, CONTEXT)


def test_a_payload_cut_short_or_extended_is_refused(pair: SealingKeyPair) -> None:
    data = os.urandom(2 * CHUNK)
    sealed = bytes(seal(data, pair.public, CONTEXT, chunk=CHUNK))
    for text in (sealed[:-1], sealed[:-(CHUNK + TAG)], sealed + b"\0"):
        with pytest.raises(MalformedEvidence, match="wrong length"):
            open_sealed(text, pair, CONTEXT)
        with pytest.raises(SealedPayloadInvalid):
            open_stream(io.BytesIO(text), io.BytesIO(), pair, CONTEXT)
    # A one-chunk payload presented as the first chunk of a longer one: the final flag
    # and the length are authenticated, so a truncation cannot be re-headed either.
    short = bytes(seal(data[:CHUNK], pair.public, CONTEXT, chunk=CHUNK))
    assert open_sealed(short, pair, CONTEXT) == data[:CHUNK]


def test_malformed_envelopes_are_typed_errors(pair: SealingKeyPair) -> None:
    sealed = bytes(seal(b"x" * 100, pair.public, CONTEXT, chunk=CHUNK))
    cases = [b"", b"not sealed", MAGIC, sealed[:len(MAGIC) + 10],
             MAGIC + bytes([9]) + sealed[len(MAGIC) + 1:],
             sealed[:len(MAGIC) + 33] + b"\xff\xff" + sealed[len(MAGIC) + 35:]]
    for text in cases:
        with pytest.raises(MalformedEvidence):
            open_sealed(text, pair, CONTEXT)
        with pytest.raises(MalformedEvidence):
            open_stream(io.BytesIO(text), io.BytesIO(), pair, CONTEXT)
    for chunk in (MIN_CHUNK - 1, (64 << 20) + 1):
        with pytest.raises(MalformedEvidence, match="chunk size"):
            seal(b"x", pair.public, CONTEXT, chunk=chunk)
    with pytest.raises(MalformedEvidence, match="ended early"):
        seal_stream(io.BytesIO(b"short"), 10, io.BytesIO(), pair.public, CONTEXT, chunk=CHUNK)
    header_end = len(sealed) - 100 - TAG
    huge = bytearray(sealed)
    huge[header_end - 8:header_end] = (1 << 50).to_bytes(8, "big")
    with pytest.raises(MalformedEvidence, match="too large"):
        open_sealed(huge, pair, CONTEXT)


def test_keys_travel_and_bind(pair: SealingKeyPair) -> None:
    wire = pair.public.to_wire()
    again = SealingPublicKey.from_wire(wire)
    assert again == pair.public and again.key_id == pair.public.key_id
    assert pair.public.binding() == f"seal:{pair.public.suite}:{pair.public.key_id}"
    assert open_sealed(seal(b"m", again, CONTEXT, chunk=CHUNK), pair, CONTEXT) == b"m"
    bad = [None, [], {"suite": "x25519"}, {"suite": "x25519", "key": 5},
           {"suite": "x25519", "key": "zz"}, {"suite": "rsa", "key": "00" * 32},
           {"suite": "x25519", "key": "00" * 31}, {"suite": "x25519", "key": "00" * 5000},
           {"suite": "x25519", "key": "00" * 32, "extra": "1"}]
    for data in bad:
        with pytest.raises(MalformedEvidence):
            SealingPublicKey.from_wire(data)
    low_order = SealingPublicKey(SuiteName.X25519, bytes(32))  # the all-zero point
    with pytest.raises((MalformedEvidence, SealedPayloadInvalid, ValueError)):
        seal(b"m", low_order, CONTEXT, chunk=CHUNK)


def test_the_default_suite_is_the_post_quantum_hybrid() -> None:
    assert DEFAULT_SUITE is SuiteName.MLKEM768_X25519


def test_opening_holds_the_envelope_and_the_plaintext_not_three_copies() -> None:
    pair = SealingKeyPair.generate(SuiteName.X25519, AT)
    size = 24 << 20
    sealed = seal(os.urandom(size), pair.public, CONTEXT)
    tracemalloc.start()
    try:
        opened = open_sealed(sealed, pair, CONTEXT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(opened) == size
    assert peak < size * 1.1  # the plaintext buffer, and one chunk's worth at most besides
