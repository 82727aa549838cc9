"""record.note against published examples, byte for byte:

- golang.org/x/mod/sumdb/note (note.go's package doc and note_test.go): the PeterNeumann and
  EnochRoot keys, the signed "If you think cryptography..." note, and the inputs Go refuses;
- c2sp.org/signed-note, tlog-checkpoint and tlog-cosignature (C2SP/C2SP): the example notes
  and the cosigned message the cosignature spec spells out;
- transparency-dev/formats note/note_cosigv1_test.go: verifier keys of type 0x01 and 0x04
  and a cosignature whose timestamp it decodes.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from ccattest.errors import ConfigError, MalformedEvidence, VerificationFailed
from ccattest.record import note

PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = ("If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n")
PETER_SIG = ("— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvq"
             "fqdngotpRZb6KE6RyyBwJnAM=\n")
ENOCH_SIG = ("— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oO"
             "TGwnWLox33WWd1RvMc+QQ=\n")

# c2sp.org/tlog-checkpoint and tlog-cosignature
SOFA_BODY = ("example.com/behind-the-sofa\n20852163\n"
             "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n")
SOFA_LOG_SIG = ("— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4U"
                "RYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n")
SOFA_WITNESS_SIG = ("— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWX"
                    "EhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n")
SOFA_COSIGNED_MESSAGE = (b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n"
                         b"20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n")

# c2sp.org/signed-note
QUASIMODO = ("Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\n"
             "ed è subito sera.\n\n"
             "— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9"
             "oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n")


# -- golang.org/x/mod/sumdb/note

def test_go_verifier_and_signer_keys_parse_and_reencode() -> None:
    peter = note.Verifier.parse(PETER_VKEY)
    assert (peter.name, peter.key_id.hex(), peter.kind) == ("PeterNeumann", "c74f20a3", 1)
    assert str(peter) == PETER_VKEY
    signer = note.Signer.parse(PETER_SKEY)
    assert signer.encode() == PETER_SKEY
    assert signer.verifier == peter
    assert str(note.Verifier.parse(ENOCH_VKEY)) == ENOCH_VKEY


def test_go_sign_gives_the_documented_note_byte_for_byte() -> None:
    signer = note.Signer.parse(PETER_SKEY)
    assert note.Note(TEXT).sign(signer).encode() == (TEXT + "\n" + PETER_SIG).encode()
    # Go: signing again replaces the key's earlier signature
    stale = note.Note(TEXT, (note.Signature("PeterNeumann", bytes.fromhex("c74f20a3"),
                                            b"x" * 64),))
    assert stale.sign(signer).encode() == (TEXT + "\n" + PETER_SIG).encode()


def test_go_open_verifies_known_and_ignores_unknown() -> None:
    peter, enoch = note.Verifier.parse(PETER_VKEY), note.Verifier.parse(ENOCH_VKEY)
    data = (TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode()
    opened = note.open_note(data, [peter])
    assert opened.text == TEXT
    assert [v.verifier for v in opened.verified] == [peter]
    assert [s.name for s in opened.unknown] == ["EnochRoot"]
    assert opened.unknown[0].key_id.hex() == "af0cfe78"
    both = note.open_note(data, [peter, enoch])
    assert [v.verifier for v in both.verified] == [peter, enoch]
    assert both.unknown == ()
    assert both.by(enoch) is both.verified[1]
    with pytest.raises(VerificationFailed, match="no known key"):
        note.open_note(data, [])


def test_go_invalid_signature_by_a_known_key_is_refused() -> None:
    peter = note.Verifier.parse(PETER_VKEY)
    longer = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]  # Go's own tampering
    with pytest.raises(VerificationFailed, match="wrong length"):
        note.open_note((TEXT + "\n" + longer).encode(), [peter])


@pytest.mark.parametrize("message", [
    TEXT,
    TEXT + "\n",
    TEXT + "\n" + PETER_SIG[:-1],
    "\x01" + TEXT + "\n" + PETER_SIG,
    TEXT + "\n" + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKv"
    "qfqdngotpRZb6KE6RyyBwJnAM=",
    TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    TEXT + "\n" + PETER_SIG * 101,
])
def test_go_malformed_notes(message: str) -> None:
    with pytest.raises(MalformedEvidence):
        note.open_note(message.encode(), [note.Verifier.parse(PETER_VKEY)])


def test_go_malformed_note_not_utf8() -> None:
    with pytest.raises(MalformedEvidence, match="UTF-8"):
        note.parse(b"\xff" + (TEXT + "\n" + PETER_SIG).encode())


def test_go_duplicate_signature_lines_are_refused_not_skipped() -> None:
    # Go drops the repeat; we refuse it so a note has one reading (see the module doc).
    with pytest.raises(MalformedEvidence, match="repeats a key"):
        note.parse((TEXT + "\n" + PETER_SIG + PETER_SIG).encode())


@pytest.mark.parametrize("signature_line", [
    PETER_SIG.replace("PeterNeumann", "CarmenSandiego"),
    PETER_SIG.replace("x08g", "xxxx"),
])
def test_go_renamed_or_rehashed_signature_is_unknown(signature_line: str) -> None:
    with pytest.raises(VerificationFailed, match="no known key"):
        note.open_note((TEXT + "\n" + signature_line).encode(),
                       [note.Verifier.parse(PETER_VKEY)])


def _manglings(key: str) -> list[str]:
    """Go's TestNewVerifier/TestNewSigner: every proper substring and every byte plus one."""
    raw = key.encode()
    out = {raw[i:j] for i in range(len(raw) + 1) for j in range(i + 1, len(raw) + 1)}
    out.discard(raw)
    for i in range(len(raw)):
        out.add(raw[:i] + bytes([(raw[i] + 1) % 256]) + raw[i + 1:])
    return [m.decode("latin-1") for m in out]


def test_go_mangled_verifier_keys_are_refused() -> None:
    for mangled in _manglings(PETER_VKEY):
        with pytest.raises(ConfigError):
            note.Verifier.parse(mangled)


def test_go_mangled_signer_keys_are_refused() -> None:
    for mangled in _manglings(PETER_SKEY):
        with pytest.raises(ConfigError):
            note.Signer.parse(mangled)


@pytest.mark.parametrize("vkey", [
    # wrong key length, with the key hash adjusted to match
    "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
    # unknown algorithm, with the key hash adjusted to match
    "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
])
def test_go_bad_verifier_keys(vkey: str) -> None:
    with pytest.raises(ConfigError):
        note.Verifier.parse(vkey)


# -- key IDs against published keys

@pytest.mark.parametrize(("vkey", "kind"), [
    (PETER_VKEY, 0x01),
    (ENOCH_VKEY, 0x01),
    # transparency-dev/formats note_cosigv1_test.go TestCoSigV1NewVerifier
    ("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6", 0x01),
    ("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2", 0x04),
])
def test_key_id_matches_published_keys(vkey: str, kind: int) -> None:
    name, hex_id, b64 = vkey.split("+", 2)
    raw = base64.b64decode(b64)
    assert raw[0] == kind
    assert note.key_id(name, kind, raw[1:]).hex() == hex_id
    # and independently of key_id(): SHA-256(name || 0x0A || type || key)[:4]
    assert hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex() == hex_id
    verifier = note.Verifier.parse(vkey)
    assert (verifier.kind, str(verifier)) == (kind, vkey)


# -- C2SP examples

def test_signed_note_spec_example_splits_at_the_last_blank_line() -> None:
    parsed = note.parse(QUASIMODO.encode())
    assert parsed.text == ("Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di "
                           "sole:\n\ned è subito sera.\n")
    assert [(s.name, len(s.signature)) for s in parsed.signatures] == [
        ("quasimodo.example/salvatore", 64)]
    assert parsed.encode() == QUASIMODO.encode()


def test_checkpoint_spec_example() -> None:
    data = (SOFA_BODY + "\n" + SOFA_LOG_SIG + SOFA_WITNESS_SIG).encode()
    parsed = note.parse(data)
    checkpoint = note.Checkpoint.parse(parsed.text)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    assert checkpoint.root == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.body() == SOFA_BODY
    assert parsed.encode() == data


def test_cosignature_spec_example_states_the_spec_time() -> None:
    witness = note.parse((SOFA_BODY + "\n" + SOFA_WITNESS_SIG).encode()).signatures[0]
    assert witness.name == "witness.example.com/w1"
    assert len(witness.signature) == 8 + 64
    # the spec's message example reads "time 1679315147"
    assert note.cosignature_timestamp(witness.signature) == 1679315147
    assert note.cosignature_message(SOFA_BODY.encode(), 1679315147) == SOFA_COSIGNED_MESSAGE


def test_cosignature_over_the_spec_message_verifies() -> None:
    # Sign the spec's literal message with a known seed, assemble the line by hand (not
    # through note.py), and check verify_cosignature reads it back.
    private = ed25519.Ed25519PrivateKey.from_private_bytes(
        base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:])
    public = note.Signer("x", private).verifier.public_key
    name = "witness.example.com/w1"
    kid = hashlib.sha256(name.encode() + b"\n\x04" + public).digest()[:4]
    payload = kid + (1679315147).to_bytes(8, "big") + private.sign(SOFA_COSIGNED_MESSAGE)
    line = f"— {name} {base64.b64encode(payload).decode()}\n"
    data = (SOFA_BODY + "\n" + line).encode()
    witness = note.Verifier(name, public, note.COSIGNATURE_V1)
    cosignature = note.verify_cosignature(data, witness, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert (cosignature.timestamp, cosignature.line) == (1679315147, line)
    assert cosignature.at == datetime(2023, 3, 20, 12, 25, 47, tzinfo=UTC)


# transparency-dev/formats note_cosigv1_test.go TestCosignatureTimestamp
def test_transparency_dev_cosignature_timestamp() -> None:
    works = base64.b64decode("ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w"
                             "9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==")
    assert note.cosignature_timestamp(works[4:]) == 1727964367
    wrong_type = base64.b64decode("eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnv"
                                  "xZx2ugnkyV+MUMLXpWs1hPb/W/4xkNQY=")
    with pytest.raises(MalformedEvidence, match="not an Ed25519 cosignature"):
        note.cosignature_timestamp(wrong_type[4:])
