"""record.note: round trips and every refusal: notes, keys, checkpoints, cosignatures."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from ccattest.errors import ConfigError, MalformedEvidence, VerificationFailed
from ccattest.record import note

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ORIGIN = "ccattest.example/federation-a/site-1"
ROOT = hashlib.sha256(b"root").digest()
LOG = note.Signer.generate(ORIGIN)
WITNESS = note.Signer.generate("ccattest.example/federation-a/client-2", note.COSIGNATURE_V1)


def _checkpoint(size: int = 5, extensions: tuple[str, ...] = ()) -> note.Checkpoint:
    return note.Checkpoint(ORIGIN, size, ROOT, extensions)


def _signed(size: int = 5) -> bytes:
    return note.sign_checkpoint(_checkpoint(size), LOG)


def _cosigned(at: datetime = NOW, size: int = 5) -> bytes:
    return note.cosign(_signed(size), WITNESS, LOG.verifier, at=at)


# -- notes

@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(st.characters(min_codepoint=0x20, exclude_categories=["Cs"]),
                        max_size=30), min_size=1, max_size=5))
def test_note_round_trip(lines: list[str]) -> None:
    text = "".join(f"{line}\n" for line in lines)
    if "\n\n" in "\n" + text:
        text = text.replace("\n\n", "\n.\n")  # keep the sign/parse split unambiguous
    signed = note.Note(text).sign(LOG)
    data = signed.encode()
    assert note.parse(data) == signed
    assert note.open_note(data, [LOG.verifier]).text == signed.text


def test_text_may_contain_blank_lines_and_sign_splits_at_the_last() -> None:
    data = note.Note("a\n\nb\n").sign(LOG).encode()
    assert note.open_note(data, [LOG.verifier]).text == "a\n\nb\n"


def _witnessed(data: bytes) -> None:
    """What a client accepts: the log's signature and the witness's cosignature."""
    note.open_checkpoint(data, LOG.verifier, witnesses=[WITNESS.verifier])
    note.verify_cosignature(data, WITNESS.verifier, now=NOW)


def test_every_single_byte_change_is_refused() -> None:
    data = _cosigned()
    _witnessed(data)
    for position in range(len(data)):
        for flip in (0x01, 0x80):
            mutated = data[:position] + bytes([data[position] ^ flip]) + data[position + 1:]
            with pytest.raises((MalformedEvidence, VerificationFailed)):
                _witnessed(mutated)


def test_a_changed_witness_line_is_unknown_to_the_log_check_alone() -> None:
    # Per signed-note, a line that no longer names a known key is ignored, not an error:
    # the log's signature still stands, the cosignature just is not there any more.
    data = _cosigned().replace(b"client-2 ", b"client-3 ")
    _, opened = note.open_checkpoint(data, LOG.verifier, witnesses=[WITNESS.verifier])
    assert opened.by(WITNESS.verifier) is None
    with pytest.raises(VerificationFailed, match="no cosignature"):
        note.verify_cosignature(data, WITNESS.verifier, now=NOW)


def test_every_truncation_is_refused() -> None:
    data = _cosigned()
    for end in range(len(data)):
        with pytest.raises((MalformedEvidence, VerificationFailed)):
            _witnessed(data[:end])


def test_body_byte_flipped_fails_the_signature() -> None:
    data = _signed(5).replace(b"\n5\n", b"\n6\n", 1)
    with pytest.raises(VerificationFailed, match="does not verify"):
        note.open_note(data, [LOG.verifier])


def test_signature_byte_flipped_fails() -> None:
    parsed = note.parse(_signed())
    sig = parsed.signatures[0]
    bad = note.Signature(sig.name, sig.key_id, bytes([sig.signature[0] ^ 1]) + sig.signature[1:])
    with pytest.raises(VerificationFailed, match="does not verify"):
        note.open_note(note.Note(parsed.text, (bad,)).encode(), [LOG.verifier])


def test_wrong_key_name_is_an_unknown_signature() -> None:
    parsed = note.parse(_signed())
    sig = parsed.signatures[0]
    renamed = note.Note(parsed.text, (note.Signature("other.example", sig.key_id,
                                                     sig.signature),))
    with pytest.raises(VerificationFailed, match="no known key"):
        note.open_note(renamed.encode(), [LOG.verifier])


def test_signature_by_another_key_under_the_same_name_is_ignored() -> None:
    impostor = note.Signer.generate(ORIGIN)
    data = note.Note("hello\n").sign(impostor).sign(LOG).encode()
    opened = note.open_note(data, [LOG.verifier])
    assert [v.verifier for v in opened.verified] == [LOG.verifier]
    assert [s.key_id for s in opened.unknown] == [impostor.key_id]


@pytest.mark.parametrize(("data", "match"), [
    ("hello\n— a AAAAAAA=\n", "no blank line"),
    ("hello\n\n", "does not end in a signature line"),
    ("hello\n\n— a AAAAAAA=", "does not end in a signature line"),
    ("hello\r\n\n— a AAAAAAA=\n", "control character"),
    ("hel\x00lo\n\n— a AAAAAAA=\n", "control character"),
    ("hello\n\n— a\tAAAAAAA=\n", "control character"),
    ("hello\n\n- a AAAAAAA=\n", "em dash"),
    ("hello\n\n—a AAAAAAA=\n", "em dash"),
    ("hello\n\n— aAAAAAAA=\n", "no valid key name"),
    ("hello\n\n—  AAAAAAA=\n", "no valid key name"),
    ("hello\n\n— a+b AAAAAAA=\n", "no valid key name"),
    ("hello\n\n— a\u00a0b AAAAAAA=\n", "no valid key name"),
    ("hello\n\n— a \n", "not base64"),
    ("hello\n\n— a AAAAAA==\n", "not base64"),  # 4 bytes: a key ID and no signature
    ("hello\n\n— a AAAAAAA\n", "not base64"),  # padding missing
    ("hello\n\n— a AAAAAAB=\n", "not base64"),  # non-canonical trailing bits
    ("hello\n\n— a AAAA AAA=\n", "not base64"),
    ("hello\n\n— a ＡAAAAAA=\n", "not base64"),
    ("hello\n\n— a AAAAAAA=\n— a AAAAAAE=\n", "repeats a key"),
])
def test_malformed_notes(data: str, match: str) -> None:
    with pytest.raises(MalformedEvidence, match=match):
        note.parse(data.encode())


def test_note_size_and_signature_count_limits() -> None:
    with pytest.raises(MalformedEvidence, match="is bytes"):
        note.parse("hello\n\n— a AAAAAAA=\n")  # type: ignore[arg-type]
    huge = b"x" * note.MAX_NOTE_BYTES + b"\n\n\xe2\x80\x94 a AAAAAAA=\n"
    with pytest.raises(MalformedEvidence, match="too large"):
        note.parse(huge)
    most = note.MAX_SIGNATURES
    lines = [note.Signature(f"k{n}", n.to_bytes(4, "big"), b"s") for n in range(most + 1)]
    assert len(note.parse(note.Note("t\n", tuple(lines[:most])).encode()).signatures) == most
    data = ("t\n\n" + "".join(s.line() for s in lines)).encode()
    with pytest.raises(MalformedEvidence, match="too many"):
        note.parse(data)


@pytest.mark.parametrize("bad", [
    note.Note("no newline"),
    note.Note("no newline", (note.Signature("a", b"\0" * 4, b"s"),)),
    note.Note("t\n", (note.Signature("a", b"\0" * 3, b"s"),)),  # key ID not 4 bytes
    note.Note("t\n", (note.Signature("a", b"\0" * 3, b"ss"),)),  # ... and parses otherwise
    note.Note("t\n", (note.Signature("a b", b"\0" * 4, b"s"),)),
    note.Note("t\n", (note.Signature("a", b"\0" * 4, b""),)),
    note.Note("x\n\n— A AAAAAAA=", (note.Signature("B", b"\0" * 4, b"s"),)),
])
def test_encode_refuses_what_would_not_read_back(bad: note.Note) -> None:
    with pytest.raises(MalformedEvidence):
        bad.encode()


def test_open_note_key_sets() -> None:
    data = _signed()
    assert note.open_note(data, [LOG.verifier, LOG.verifier]).verified[0].timestamp is None
    with pytest.raises(ConfigError, match="not a signed-note verifier"):
        note.open_note(data, [str(LOG.verifier)])  # type: ignore[list-item]
    twin = note.Verifier.parse(str(note.Signer.generate(ORIGIN).verifier))
    twin.key_id = LOG.key_id  # a forced collision: two keys, one (name, ID)
    with pytest.raises(ConfigError, match="share a name and key ID"):
        note.open_note(data, [LOG.verifier, twin])
    assert note.open_note(data, [LOG.verifier]).by(WITNESS.verifier) is None


# -- keys

@pytest.mark.parametrize("kind", [note.ED25519, note.COSIGNATURE_V1])
def test_key_round_trips(kind: int) -> None:
    signer = note.Signer.generate("a.example/k", kind)
    again = note.Signer.parse(signer.encode())
    assert again.verifier == signer.verifier
    assert note.Verifier.parse(str(signer.verifier)) == signer.verifier
    assert hash(note.Verifier.parse(str(signer.verifier))) == hash(signer.verifier)
    assert signer.verifier != str(signer.verifier)
    assert repr(signer.verifier) == f"Verifier({str(signer.verifier)!r})"
    secret = signer.encode().rsplit("+", 1)[1]
    assert secret not in repr(signer)
    assert signer.key_id.hex() in repr(signer)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\u2003b", "a\nb", "a\x01b", 5])
def test_bad_key_names(name: object) -> None:
    assert not note.valid_name(name)
    with pytest.raises(ConfigError, match="key name"):
        note.Verifier(name, b"\0" * 32)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="key name"):
        note.Signer(name, ed25519.Ed25519PrivateKey.generate())  # type: ignore[arg-type]


def test_bad_key_material() -> None:
    with pytest.raises(ConfigError, match="key type"):
        note.Verifier("a", b"\0" * 32, 0x02)
    with pytest.raises(ConfigError, match="32 bytes"):
        note.Verifier("a", b"\0" * 31)
    with pytest.raises(ConfigError, match="not an Ed25519 public key"):
        note.Verifier("a", "key")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not an Ed25519 private key"):
        note.Signer("a", b"\0" * 32)  # type: ignore[arg-type]


def test_backend_refusing_a_public_key_is_a_config_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(data: bytes) -> ed25519.Ed25519PublicKey:
        raise ValueError("invalid point")
    monkeypatch.setattr(ed25519.Ed25519PublicKey, "from_public_bytes", refuse)
    with pytest.raises(ConfigError, match="not an Ed25519 public key"):
        note.Verifier("a", b"\0" * 32)


def _vkey(name: str, kind: int, key: bytes, kid: str | None = None) -> str:
    kid = kid or note.key_id(name, kind, key).hex()
    return f"{name}+{kid}+{base64.b64encode(bytes([kind]) + key).decode()}"


@pytest.mark.parametrize(("text", "match"), [
    (None, "not a verifier key"),
    ("a+" * 600, "not a verifier key"),
    ("a+b", "3 fields"),
    # Another name with a key ID made for "a" (upper() of the whole key was random: the
    # key material could become a non-Ed25519 point and fail with another message).
    ("A" + _vkey("a", 1, LOG.verifier.public_key)[1:], "key ID|key name"),
    ("a+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "malformed key ID"),
    ("a+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T", "malformed key material"),
    ("a+c74f20a3+" + base64.b64encode(b"\x01" + b"\0" * 33).decode(), "key material"),
    (_vkey("a", 1, LOG.verifier.public_key, "00000000"), "does not match"),
    (_vkey("a", 2, LOG.verifier.public_key), "key type"),
])
def test_bad_verifier_keys(text: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        note.Verifier.parse(text)  # type: ignore[arg-type]


def test_bad_signer_keys() -> None:
    good = note.Signer.generate("a").encode()
    with pytest.raises(ConfigError, match="5 fields"):
        note.Signer.parse("PRIVATE+KEY+a+00000000")
    with pytest.raises(ConfigError, match="PRIVATE"):
        note.Signer.parse("PUBLIC+" + good.removeprefix("PRIVATE+"))
    _, _, name, kid, material = good.split("+", 4)
    with pytest.raises(ConfigError, match="does not match"):
        note.Signer.parse(f"PRIVATE+KEY+b+{kid}+{material}")
    with pytest.raises(ConfigError, match="does not match"):
        note.Signer.parse(f"PRIVATE+KEY+{name}+00000000+{material}")


def test_sign_times() -> None:
    with pytest.raises(ConfigError, match="carries no time"):
        LOG.sign(b"t\n", at=NOW)
    with pytest.raises(ConfigError, match="pass at="):
        WITNESS.sign(b"t\n")
    with pytest.raises(ConfigError, match="naive"):
        WITNESS.sign(b"t\n", at=datetime(2026, 1, 1))
    with pytest.raises(ConfigError, match="before 1970"):
        WITNESS.sign(b"t\n", at=datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC))
    epoch = WITNESS.sign(b"t\n", at=datetime(1970, 1, 1, 0, 0, 0, 999999, tzinfo=UTC))
    assert note.cosignature_timestamp(epoch.signature) == 0  # rounds down to whole seconds


# -- checkpoints

def test_checkpoint_round_trip_with_extensions() -> None:
    checkpoint = _checkpoint(2**64 - 1, ("ext one", "ext+two"))
    body = checkpoint.body()
    assert body == (f"{ORIGIN}\n18446744073709551615\n{base64.b64encode(ROOT).decode()}\n"
                    "ext one\next+two\n")
    assert note.Checkpoint.parse(body) == checkpoint
    assert note.Checkpoint.parse(_checkpoint(0).body()).size == 0


def _body(origin: str = ORIGIN, size: str = "5", root: str | None = None,
          extra: str = "") -> str:
    root = base64.b64encode(ROOT).decode() if root is None else root
    return f"{origin}\n{size}\n{root}\n{extra}"


@pytest.mark.parametrize(("text", "match"), [
    (_body()[:-1], "does not end in a newline"),
    (b"x\n5\n", "does not end in a newline"),
    ("x\n5\n", "fewer than three lines"),
    (_body(size="05"), "leading zeros"),
    (_body(size="00"), "leading zeros"),
    (_body(size="+5"), "leading zeros"),
    (_body(size="-1"), "leading zeros"),
    (_body(size=" 5"), "leading zeros"),
    (_body(size=""), "leading zeros"),
    (_body(size="\u0665"), "leading zeros"),  # an Arabic-Indic five: isdigit() says yes
    (_body(size=str(2**64)), "out of range"),
    (_body(size="9" * 21), "out of range"),
    (_body(size="9" * 5000), "out of range"),
    (_body(root=base64.b64encode(ROOT[:31]).decode()), "32 bytes"),
    (_body(root=base64.b64encode(ROOT + b"\0").decode()), "32 bytes"),
    (_body(root=base64.b64encode(ROOT).decode().rstrip("=")), "32 bytes"),
    (_body(root=base64.b64encode(ROOT).decode()[:-2] + "r="), "32 bytes"),  # trailing bits
    (_body(root=ROOT.hex()), "32 bytes"),
    (_body(origin=""), "origin"),
    (_body(origin="a b"), "origin"),
    (_body(origin="a\u3000b"), "origin"),
    (_body(extra="\n"), "extension"),
    (_body(extra="ext\n\n"), "extension"),
    (_body(extra="e\x01\n"), "extension"),
])
def test_malformed_checkpoints(text: str, match: str) -> None:
    with pytest.raises(MalformedEvidence, match=match):
        note.Checkpoint.parse(text)


@pytest.mark.parametrize("kwargs", [
    {"origin": ""}, {"origin": "a b"}, {"origin": 7},
    {"size": -1}, {"size": 2**64}, {"size": True}, {"size": "5"},
    {"root": ROOT[:31]}, {"root": ROOT.hex()},
    {"extensions": ["x"]}, {"extensions": ("",)}, {"extensions": ("a\nb",)},
    {"extensions": ("a\x7fb", 5)},
])
def test_checkpoint_construction_refuses_bad_fields(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"origin": ORIGIN, "size": 5, "root": ROOT,
                                 "extensions": (), **kwargs}
    with pytest.raises(ValueError, match="checkpoint"):
        note.Checkpoint(**fields)  # type: ignore[arg-type]


def test_open_checkpoint() -> None:
    checkpoint, opened = note.open_checkpoint(_signed(7), LOG.verifier)
    assert checkpoint == _checkpoint(7)
    assert opened.by(LOG.verifier) is not None


def test_open_checkpoint_refusals() -> None:
    with pytest.raises(ConfigError, match="signs its checkpoints"):
        note.sign_checkpoint(_checkpoint(), WITNESS)
    with pytest.raises(ConfigError, match="type 0x01"):
        note.open_checkpoint(_signed(), WITNESS.verifier)
    other = note.Signer.generate(ORIGIN)
    with pytest.raises(VerificationFailed, match="no known key"):
        note.open_checkpoint(_signed(), other.verifier)
    elsewhere = note.Signer.generate("another.example/log")
    with pytest.raises(VerificationFailed, match="names another log"):
        note.open_checkpoint(note.sign_checkpoint(_checkpoint(), elsewhere), elsewhere.verifier)
    only_witness = note.Note(_checkpoint().body()).sign(WITNESS, at=NOW).encode()
    with pytest.raises(VerificationFailed, match="not signed by its log"):
        note.open_checkpoint(only_witness, LOG.verifier, witnesses=[WITNESS.verifier])
    not_a_checkpoint = note.Note("hello\n").sign(LOG).encode()
    with pytest.raises(MalformedEvidence, match="fewer than three"):
        note.open_checkpoint(not_a_checkpoint, LOG.verifier)


# -- cosignatures

def test_witness_cosignature_verifies_with_the_witness_key_only() -> None:
    data = _cosigned()
    cosignature = note.verify_cosignature(data, WITNESS.verifier, now=NOW)
    assert (cosignature.witness, cosignature.at) == (WITNESS.name, NOW)
    assert cosignature.timestamp == int(NOW.timestamp())
    assert data.decode().endswith(cosignature.line)
    # the log's own key is not the witness's
    with pytest.raises(ConfigError, match="type 0x04"):
        note.verify_cosignature(data, LOG.verifier, now=NOW)
    # the log's public key as a cosigner under the witness's name: another key ID
    log_as_witness = note.Verifier(WITNESS.name, LOG.verifier.public_key, note.COSIGNATURE_V1)
    with pytest.raises(VerificationFailed, match="no cosignature"):
        note.verify_cosignature(data, log_as_witness, now=NOW)
    # the witness's key as a plain note key: its line is not that key's signature
    plain = note.Verifier(WITNESS.name, WITNESS.verifier.public_key)
    assert note.open_note(data, [plain, LOG.verifier]).verified[0].verifier == LOG.verifier
    # the log's verifier alone sees the cosignature as unknown
    opened = note.open_note(data, [LOG.verifier])
    assert [s.name for s in opened.unknown] == [WITNESS.name]
    # both at once: the witness's line verifies inside open_checkpoint and states its time
    _, both = note.open_checkpoint(data, LOG.verifier, witnesses=[WITNESS.verifier])
    verified = both.by(WITNESS.verifier)
    assert verified is not None and verified.timestamp == cosignature.timestamp


def test_cosignature_over_another_body_is_refused() -> None:
    line = note.verify_cosignature(_cosigned(size=5), WITNESS.verifier, now=NOW).line
    for other in (_checkpoint(6), note.Checkpoint(ORIGIN, 5, bytes(32)),
                  _checkpoint(5, ("ext",))):
        moved = note.sign_checkpoint(other, LOG) + line.encode()
        with pytest.raises(VerificationFailed, match="does not verify"):
            note.verify_cosignature(moved, WITNESS.verifier, now=NOW)
        with pytest.raises(VerificationFailed, match="does not verify"):
            note.open_checkpoint(moved, LOG.verifier, witnesses=[WITNESS.verifier])


def test_cosignature_renamed_to_another_witness_matches_no_key() -> None:
    data = _cosigned().decode().replace(f"— {WITNESS.name} ", "— someone.else ").encode()
    other = note.Verifier("someone.else", WITNESS.verifier.public_key, note.COSIGNATURE_V1)
    with pytest.raises(VerificationFailed, match="no cosignature"):
        note.verify_cosignature(data, other, now=NOW)


def test_cosigning_again_replaces_the_witness_line() -> None:
    later = note.cosign(_cosigned(NOW), WITNESS, LOG.verifier, at=NOW + timedelta(hours=1))
    assert len(note.parse(later).signatures) == 2
    assert note.verify_cosignature(later, WITNESS.verifier,
                                   now=NOW + timedelta(hours=1)).at == NOW + timedelta(hours=1)


def test_cosign_refusals() -> None:
    with pytest.raises(ConfigError, match="type 0x04"):
        note.cosign(_signed(), LOG, LOG.verifier, at=NOW)
    impostor = note.Signer.generate(ORIGIN)
    forged = note.sign_checkpoint(_checkpoint(), impostor)
    with pytest.raises(VerificationFailed, match="no known key"):
        note.cosign(forged, WITNESS, LOG.verifier, at=NOW)


def test_cosignature_time_checks() -> None:
    data = _cosigned(NOW + timedelta(minutes=4))
    assert note.verify_cosignature(data, WITNESS.verifier, now=NOW).at > NOW
    with pytest.raises(VerificationFailed, match="dated in the future"):
        note.verify_cosignature(data, WITNESS.verifier, now=NOW, skew=timedelta(0))
    with pytest.raises(ConfigError, match="naive"):
        note.verify_cosignature(data, WITNESS.verifier, now=datetime(2026, 1, 1))
    with pytest.raises(MalformedEvidence, match="fewer than three"):
        note.verify_cosignature(note.Note("hi\n").sign(WITNESS, at=NOW).encode(),
                                WITNESS.verifier, now=NOW)


def _raw_cosignature(timestamp: int, signature: bytes | None = None) -> bytes:
    """A witness line with any timestamp, signed or not, built below Signer.sign."""
    private = ed25519.Ed25519PrivateKey.generate()
    witness = note.Signer("w.example", private, note.COSIGNATURE_V1)
    body = _checkpoint().body().encode()
    if signature is None:
        signature = private.sign(note.cosignature_message(body, timestamp))
    line = note.Signature(witness.name, witness.key_id, timestamp.to_bytes(8, "big") + signature)
    return witness.verifier, _signed() + line.line().encode()


def test_cosignature_timestamps_at_the_edge_of_the_format() -> None:
    verifier, data = _raw_cosignature(2**63 - 1)  # valid, but no clock reaches it
    with pytest.raises(VerificationFailed, match="dated in the future"):
        note.verify_cosignature(data, verifier, now=NOW)
    verifier, data = _raw_cosignature(2**63, b"\0" * 64)
    with pytest.raises(MalformedEvidence, match="past 2\\^63"):
        note.verify_cosignature(data, verifier, now=NOW)


def test_cosignature_of_the_wrong_length_by_a_known_key() -> None:
    verifier, data = _raw_cosignature(1, b"\0" * 63)
    with pytest.raises(VerificationFailed, match="wrong length"):
        note.verify_cosignature(data, verifier, now=NOW)
