"""C2SP signed notes, checkpoints and witness cosignatures: how a site's log commits to its
tree and how the federation's clients vouch that they all saw the same one.

- c2sp.org/signed-note: a note is UTF-8 text ending in a newline, a blank line, then lines
  ``— <key name> base64(key ID(4) || signature)``. Keys are named; a key ID is
  ``SHA-256(name || 0x0A || type || public key)[:4]``. Verifier keys travel as
  ``<name>+<hex key ID>+base64(type || public key)``, signer keys (secret) as
  ``PRIVATE+KEY+<name>+<hex key ID>+base64(type || seed)`` (golang.org/x/mod/sumdb/note).
- c2sp.org/tlog-checkpoint: the note text is ``<origin>\\n<size>\\n<base64 root>\\n`` plus
  optional extension lines.
- c2sp.org/tlog-cosignature (Ed25519, type 0x04): a witness signs
  ``cosignature/v1\\ntime <unix seconds>\\n`` || the checkpoint text, and its line carries
  ``key ID || uint64 big-endian timestamp || signature``.

Who signs what. The site's log signs its checkpoints with a type-0x01 Ed25519 key named after
the log's origin; every client that witnesses the log cosigns those checkpoints with its own
type-0x04 key, named after itself. A cosignature's message does not contain the witness's
name, so one witness key must never serve two names (the key ID still commits to the name, so
a line relabelled with another name matches no configured key). Ed25519 because signed-note
defines it (type 0x01 is the only general-purpose type every note verifier speaks; ECDSA 0x02
is a transparency-dev extension) and tlog-cosignature's classical type is Ed25519 only. Keys
(not wired yet): the site's Ed25519 key (platforms/software/pki.py) has the right algorithm
and a certificate from the site's root, but it already signs the software platform's
attestation reports, and this module cannot prove those bytes never collide with a note, so
the log key and the witness key should be two further Ed25519 keys per site, kept and
certified beside it; the ES256/ES384 result-signing key (tokens.py) stays with JWS results.

Parsing is strict on purpose (a note is ≤ 1 MiB and ≤ 1024 signature lines, base64 must be
canonical, one line per key): MalformedEvidence for bytes that cannot be a note,
VerificationFailed for a known key whose signature does not verify or for a note that no
known key signed, ConfigError for a bad key string or an ambiguous set of keys. Signatures by
unknown keys are ignored, as the spec requires (that is how cosignatures and key rotation
coexist). Deliberate departure from Go: a second line for the same key is refused rather
than skipped, so a note has one reading.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from ..errors import ConfigError, MalformedEvidence, VerificationFailed
from ..timeutil import require_aware
from .merkle import HASH_SIZE, MAX_SIZE

ED25519 = 0x01  # signed-note: Ed25519 over the note text
COSIGNATURE_V1 = 0x04  # tlog-cosignature: timestamped Ed25519 over a checkpoint
KINDS = frozenset({ED25519, COSIGNATURE_V1})
MAX_NOTE_BYTES = 1 << 20
# The spec asks for at least 16; a federation's checkpoint carries one cosignature per
# client, so ours takes a thousand-site federation.
MAX_SIGNATURES = 1024
MAX_TIMESTAMP = 2**63 - 1
MAX_KEY_TEXT = 1024  # a key string is a name and ~50 characters; refuse anything huge early
DASH = "\u2014 "  # em dash, space: the start of every signature line
COSIGNATURE_HEADER = b"cosignature/v1\n"
_ED25519_SIGNATURE = 64
_COSIGNATURE = 8 + _ED25519_SIGNATURE
_HEX_ID = re.compile(r"[0-9a-f]{8}")  # lowercase, as Go writes it: one spelling per key
_DECIMAL = re.compile(r"0|[1-9][0-9]*")  # ASCII only: str.isdigit() accepts other scripts
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")  # every control character but newline
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- names, base64, key IDs

def valid_name(name: object) -> bool:
    """A key name: non-empty, no Unicode space, no plus (the vkey separator)."""
    return (isinstance(name, str) and name != "" and "+" not in name
            and not any(c.isspace() or ord(c) < 0x20 for c in name))


def _b64decode(text: str) -> bytes | None:
    """Strict standard base64: canonical padding and trailing bits, else None (so no two
    spellings of one signature both parse)."""
    if not text.isascii():
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def key_id(name: str, kind: int, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || type || public key)[:4], the signed-note recommendation (and
    tlog-cosignature's requirement for type 0x04)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([kind]) + public_key).digest()[:4]


def _raw_public(key: ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _check_key_args(name: object, kind: object) -> None:
    if not valid_name(name):
        raise ConfigError("not a signed-note key name", found=repr(name)[:80],
                          expected="non-empty, without spaces or '+'")
    if kind not in KINDS:
        raise ConfigError("unsupported signed-note key type", found=repr(kind),
                          expected="0x01 (Ed25519) or 0x04 (Ed25519 cosignature/v1)")


def _split_key(text: object, parts: int, what: str) -> list[str]:
    if not isinstance(text, str) or len(text) > MAX_KEY_TEXT:
        raise ConfigError(f"not a {what}", expected=f"a string of at most {MAX_KEY_TEXT}"
                          " characters", found=type(text).__name__)
    fields = text.split("+", parts - 1)  # the last field is base64, which may hold '+'
    if len(fields) != parts:
        raise ConfigError(f"not a {what}", expected=f"{parts} fields separated by '+'",
                          found=f"{len(fields)} fields")
    return fields


def _key_material(hex_id: str, b64: str, what: str) -> tuple[bytes, int, bytes]:
    if not _HEX_ID.fullmatch(hex_id):
        raise ConfigError(f"{what} has a malformed key ID", expected="8 lowercase hex digits",
                          found=repr(hex_id)[:40])
    raw = _b64decode(b64)
    if raw is None or len(raw) != 1 + 32:
        raise ConfigError(f"{what} has malformed key material",
                          expected="base64 of a type byte and 32 key bytes")
    return bytes.fromhex(hex_id), raw[0], raw[1:]


# -- keys

class Verifier:
    """A named public key: the trust a client is configured with."""

    __slots__ = ("_public", "key_id", "kind", "name")

    def __init__(self, name: str, public_key: ed25519.Ed25519PublicKey | bytes,
                 kind: int = ED25519) -> None:
        _check_key_args(name, kind)
        if isinstance(public_key, bytes):
            if len(public_key) != 32:
                raise ConfigError("an Ed25519 public key is 32 bytes",
                                  found=f"{len(public_key)} bytes")
            try:
                public_key = ed25519.Ed25519PublicKey.from_public_bytes(public_key)
            except ValueError:  # the backend may refuse some encodings outright
                raise ConfigError("not an Ed25519 public key") from None
        if not isinstance(public_key, ed25519.Ed25519PublicKey):
            raise ConfigError("not an Ed25519 public key", found=type(public_key).__name__)
        self.name, self.kind, self._public = name, kind, public_key
        self.key_id = key_id(name, kind, _raw_public(public_key))

    @classmethod
    def parse(cls, text: str) -> Verifier:
        """A verifier key ``<name>+<hex key ID>+base64(type || key)``; the key ID must be
        the one the name and key imply (a typo or a swapped key is caught here)."""
        name, hex_id, b64 = _split_key(text, 3, "verifier key")
        kid, kind, raw = _key_material(hex_id, b64, "verifier key")
        verifier = cls(name, raw, kind)
        if verifier.key_id != kid:
            raise ConfigError("verifier key ID does not match its name and key",
                              expected=verifier.key_id.hex(), found=hex_id)
        return verifier

    @property
    def public_key(self) -> bytes:
        return _raw_public(self._public)

    def __str__(self) -> str:
        material = base64.b64encode(bytes([self.kind]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{material}"

    def __repr__(self) -> str:
        return f"Verifier({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Verifier) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def verify(self, text: bytes, signature: bytes) -> int | None:
        """Raise unless signature (without the key ID) is this key's over text; returns the
        cosignature's timestamp for type 0x04, None for 0x01."""
        if self.kind == ED25519:
            if len(signature) != _ED25519_SIGNATURE:
                raise VerificationFailed(f"signature by {self.name} has the wrong length",
                                         expected=_ED25519_SIGNATURE, found=len(signature))
            self._check(text, signature)
            return None
        if len(signature) != _COSIGNATURE:
            raise VerificationFailed(f"cosignature by {self.name} has the wrong length",
                                     expected=_COSIGNATURE, found=len(signature))
        timestamp = cosignature_timestamp(signature)
        self._check(cosignature_message(text, timestamp), signature[8:])
        return timestamp

    def _check(self, message: bytes, signature: bytes) -> None:
        try:
            self._public.verify(signature, message)
        except InvalidSignature:
            raise VerificationFailed(f"signature by {self.name}+{self.key_id.hex()} does not "
                                     "verify") from None


class Signer:
    """A named private key. Never printed; ``encode`` is the only way its secret leaves."""

    __slots__ = ("_private", "kind", "name", "verifier")

    def __init__(self, name: str, private_key: ed25519.Ed25519PrivateKey,
                 kind: int = ED25519) -> None:
        _check_key_args(name, kind)
        if not isinstance(private_key, ed25519.Ed25519PrivateKey):
            raise ConfigError("not an Ed25519 private key", found=type(private_key).__name__)
        self.name, self.kind, self._private = name, kind, private_key
        self.verifier = Verifier(name, private_key.public_key(), kind)

    @classmethod
    def generate(cls, name: str, kind: int = ED25519) -> Signer:
        return cls(name, ed25519.Ed25519PrivateKey.generate(), kind)

    @classmethod
    def parse(cls, text: str) -> Signer:
        """A signer key ``PRIVATE+KEY+<name>+<hex key ID>+base64(type || seed)``; the key ID
        must match the public key the seed derives."""
        private, key, name, hex_id, b64 = _split_key(text, 5, "signer key")
        if (private, key) != ("PRIVATE", "KEY"):
            raise ConfigError("not a signer key", expected="PRIVATE+KEY+<name>+<id>+<key>")
        kid, kind, seed = _key_material(hex_id, b64, "signer key")
        signer = cls(name, ed25519.Ed25519PrivateKey.from_private_bytes(seed), kind)
        if signer.key_id != kid:
            raise ConfigError("signer key ID does not match its name and key",
                              expected=signer.key_id.hex(), found=hex_id)
        return signer

    @property
    def key_id(self) -> bytes:
        return self.verifier.key_id

    def encode(self) -> str:
        seed = self._private.private_bytes(serialization.Encoding.Raw,
                                           serialization.PrivateFormat.Raw,
                                           serialization.NoEncryption())
        material = base64.b64encode(bytes([self.kind]) + seed).decode("ascii")
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{material}"

    def __repr__(self) -> str:  # never show key material
        return f"Signer({self.name!r}, key ID {self.key_id.hex()}, type {self.kind:#04x})"

    def sign(self, text: bytes, *, at: datetime | None = None) -> Signature:
        """This key's signature line over text; a cosigner needs ``at``, the time it states
        (whole seconds: the format has no finer unit)."""
        if self.kind == ED25519:
            if at is not None:
                raise ConfigError("an Ed25519 note signature carries no time",
                                  hint="use a type 0x04 (cosignature) key to state a time")
            return Signature(self.name, self.key_id, self._private.sign(text))
        if at is None:
            raise ConfigError("a cosignature states a time: pass at=")
        # Whole seconds, rounded down; a datetime cannot reach 2^63 s, only fall below 0.
        timestamp = (require_aware(at, "cosignature time") - _EPOCH) // timedelta(seconds=1)
        if timestamp < 0:
            raise ConfigError("cosignature time is before 1970", found=at.isoformat())
        sig = self._private.sign(cosignature_message(text, timestamp))
        return Signature(self.name, self.key_id, timestamp.to_bytes(8, "big") + sig)


def cosignature_message(text: bytes, timestamp: int) -> bytes:
    return COSIGNATURE_HEADER + b"time %d\n" % timestamp + text


def cosignature_timestamp(signature: bytes) -> int:
    """The time a type-0x04 signature (after the key ID) states, unverified: for ordering
    and display only; trust it after ``verify_cosignature``."""
    if len(signature) != _COSIGNATURE:
        raise MalformedEvidence("not an Ed25519 cosignature", expected=f"{_COSIGNATURE} bytes",
                                found=f"{len(signature)} bytes")
    timestamp = int.from_bytes(signature[:8], "big")
    if timestamp > MAX_TIMESTAMP:
        raise MalformedEvidence("cosignature timestamp is past 2^63 - 1", found=timestamp)
    return timestamp


# -- notes

@dataclass(frozen=True)
class Signature:
    """One signature line: the key's name and ID and the signature bytes after the ID."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        payload = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{DASH}{self.name} {payload}\n"


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[Signature, ...] = ()

    def encode(self) -> bytes:
        """The note's bytes; refuses what ``parse`` would refuse, so every note we write can
        be read back (by us and by Go's x/mod note)."""
        if not self.text.endswith("\n") or not self.signatures:
            raise MalformedEvidence("a signed note is text ending in a newline and at least "
                                    "one signature")
        data = (self.text + "\n" + "".join(s.line() for s in self.signatures)).encode("utf-8")
        if parse(data) != self:  # one set of rules, and the bytes must read back as self
            raise MalformedEvidence("note does not encode to bytes that read back as itself",
                                    hint="a signature's key ID is 4 bytes")
        return data

    def with_signature(self, signature: Signature) -> Note:
        """The note with signature added, replacing any earlier one by the same key."""
        kept = tuple(s for s in self.signatures
                     if (s.name, s.key_id) != (signature.name, signature.key_id))
        return Note(self.text, (*kept, signature))

    def sign(self, signer: Signer, *, at: datetime | None = None) -> Note:
        return self.with_signature(signer.sign(self.text.encode("utf-8"), at=at))


def parse(data: bytes) -> Note:
    """A note's text and signature lines, checked for syntax only (nothing is verified)."""
    if not isinstance(data, bytes):
        raise MalformedEvidence("a signed note is bytes", found=type(data).__name__)
    if len(data) > MAX_NOTE_BYTES:
        raise MalformedEvidence("signed note too large", expected=f"at most {MAX_NOTE_BYTES}"
                                " bytes", found=f"{len(data)} bytes")
    try:
        whole = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedEvidence("signed note is not UTF-8") from None
    control = _CONTROL.search(whole)
    if control is not None:
        raise MalformedEvidence("signed note contains a control character",
                                found=f"U+{ord(control.group()):04X}")
    split = whole.rfind("\n\n")  # the last blank line separates text from signatures
    if split < 0:
        raise MalformedEvidence("signed note has no blank line before its signatures")
    text, block = whole[:split + 1], whole[split + 2:]
    if not block.endswith("\n"):
        raise MalformedEvidence("signed note does not end in a signature line and a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedEvidence("signed note has too many signatures",
                                expected=f"at most {MAX_SIGNATURES}", found=len(lines))
    signatures, seen = [], set()
    for number, line in enumerate(lines, 1):
        signature = _parse_line(line, number)
        if (signature.name, signature.key_id) in seen:
            raise MalformedEvidence(f"signature line {number} repeats a key",
                                    found=f"{signature.name}+{signature.key_id.hex()}")
        seen.add((signature.name, signature.key_id))
        signatures.append(signature)
    return Note(text, tuple(signatures))


def _parse_line(line: str, number: int) -> Signature:
    if not line.startswith(DASH):
        raise MalformedEvidence(f"signature line {number} does not start with an em dash",
                                found=repr(line[:20]))
    name, space, b64 = line[len(DASH):].partition(" ")
    if not space or not valid_name(name):
        raise MalformedEvidence(f"signature line {number} has no valid key name",
                                found=repr(name[:80]))
    raw = _b64decode(b64)
    if raw is None or len(raw) < 5:
        raise MalformedEvidence(f"signature line {number} is not base64 of a key ID and a "
                                "signature", found=repr(b64[:40]))
    return Signature(name, raw[:4], raw[4:])


@dataclass(frozen=True)
class Verified:
    """A signature by a known key that verified; timestamp only for cosignatures."""

    signature: Signature
    verifier: Verifier
    timestamp: int | None


@dataclass(frozen=True)
class OpenedNote:
    text: str
    verified: tuple[Verified, ...]
    unknown: tuple[Signature, ...]  # by keys not configured: ignored, kept for relaying

    def by(self, verifier: Verifier) -> Verified | None:
        return next((v for v in self.verified if v.verifier == verifier), None)


def _index(verifiers: Iterable[Verifier]) -> dict[tuple[str, bytes], Verifier]:
    known: dict[tuple[str, bytes], Verifier] = {}
    for verifier in verifiers:
        if not isinstance(verifier, Verifier):
            raise ConfigError("not a signed-note verifier", found=type(verifier).__name__)
        slot = (verifier.name, verifier.key_id)
        if slot in known and known[slot] != verifier:
            # Two keys under one name and ID: whoever set that up controls our trust anyway.
            raise ConfigError("two verifier keys share a name and key ID",
                              found=f"{verifier.name}+{verifier.key_id.hex()}")
        known[slot] = verifier
    return known


def open_note(data: bytes, verifiers: Iterable[Verifier]) -> OpenedNote:
    """Parse and verify: every signature by a known (name, key ID) must verify, at least one
    must exist; signatures by unknown keys are ignored."""
    known = _index(verifiers)
    note = parse(data)
    text = note.text.encode("utf-8")
    verified, unknown = [], []
    for signature in note.signatures:
        verifier = known.get((signature.name, signature.key_id))
        if verifier is None:
            unknown.append(signature)
            continue
        verified.append(Verified(signature, verifier, verifier.verify(text, signature.signature)))
    if not verified:
        raise VerificationFailed("note is signed by no known key",
                                 expected=", ".join(sorted(f"{n}+{k.hex()}" for n, k in known))
                                 or "a configured key",
                                 found=", ".join(f"{s.name}+{s.key_id.hex()}"
                                                 for s in note.signatures))
    return OpenedNote(note.text, tuple(verified), tuple(unknown))


# -- checkpoints (c2sp.org/tlog-checkpoint)

@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Programming errors surface here; parse() turns them into MalformedEvidence.
        if not isinstance(self.origin, str) or not self.origin or any(
                c.isspace() or ord(c) < 0x20 for c in self.origin):
            raise ValueError(f"checkpoint origin must be non-empty without spaces, "
                             f"not {self.origin!r}")
        if type(self.size) is not int or not 0 <= self.size <= MAX_SIZE:
            raise ValueError(f"checkpoint size must be an integer from 0 to 2^64-1, "
                             f"not {self.size!r}")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise ValueError("checkpoint root must be 32 bytes")
        if not isinstance(self.extensions, tuple):
            raise ValueError("checkpoint extensions must be a tuple of lines")
        for line in self.extensions:
            if not isinstance(line, str) or not line or "\n" in line or any(
                    ord(c) < 0x20 for c in line):
                raise ValueError(f"checkpoint extension lines are non-empty single lines, "
                                 f"not {line!r}")

    def body(self) -> str:
        root = base64.b64encode(self.root).decode("ascii")
        return "".join(f"{line}\n" for line in (self.origin, str(self.size), root,
                                                 *self.extensions))

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """A checkpoint from a note's text (final newline included)."""
        if not isinstance(text, str) or not text.endswith("\n"):
            raise MalformedEvidence("checkpoint text does not end in a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise MalformedEvidence("checkpoint has fewer than three lines",
                                    expected="origin, size, root hash", found=len(lines))
        origin, size, root_b64, *extensions = lines
        if not _DECIMAL.fullmatch(size):
            raise MalformedEvidence("checkpoint size is not a decimal without leading zeros",
                                    found=repr(size[:30]))
        if len(size) > len(str(MAX_SIZE)) or int(size) > MAX_SIZE:
            raise MalformedEvidence("checkpoint size is out of range", expected="below 2^64",
                                    found=size[:30])
        root = _b64decode(root_b64)
        if root is None or len(root) != HASH_SIZE:
            raise MalformedEvidence("checkpoint root hash is not base64 of 32 bytes",
                                    found=repr(root_b64[:60]))
        try:
            return cls(origin, int(size), root, tuple(extensions))
        except ValueError as exc:
            raise MalformedEvidence("checkpoint does not parse", found=str(exc)[:120]) from None


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> bytes:
    """The checkpoint as a note signed by the log's key."""
    if signer.kind != ED25519:
        raise ConfigError("a log signs its checkpoints with an Ed25519 (type 0x01) key",
                          found=f"type {signer.kind:#04x}")
    return Note(checkpoint.body()).sign(signer).encode()


def open_checkpoint(data: bytes, log: Verifier, *,
                    witnesses: Sequence[Verifier] = ()) -> tuple[Checkpoint, OpenedNote]:
    """A checkpoint signed by the log's own key, whose name must be the origin (the spec's
    SHOULD, made a must: a site's key vouches for its own log only). Cosignatures by the
    given witnesses are verified too (each must verify if present; quorum is the caller's)."""
    if log.kind != ED25519:
        raise ConfigError("a log's key is an Ed25519 (type 0x01) key",
                          found=f"type {log.kind:#04x}")
    opened = open_note(data, [log, *witnesses])
    if opened.by(log) is None:
        raise VerificationFailed("checkpoint is not signed by its log",
                                 expected=f"{log.name}+{log.key_id.hex()}")
    checkpoint = Checkpoint.parse(opened.text)
    if checkpoint.origin != log.name:
        raise VerificationFailed("checkpoint names another log", expected=log.name,
                                 found=checkpoint.origin)
    return checkpoint, opened


# -- cosignatures (c2sp.org/tlog-cosignature, Ed25519 v1)

@dataclass(frozen=True)
class Cosignature:
    witness: str
    line: str
    timestamp: int  # seconds since the epoch, as the witness states it

    @property
    def at(self) -> datetime:
        return _EPOCH + timedelta(seconds=self.timestamp)


def cosign(data: bytes, witness: Signer, log: Verifier, *, at: datetime) -> bytes:
    """The checkpoint note with the witness's cosignature added (replacing its earlier one).
    Checks the log's signature first; consistency with what the witness saw before is the
    caller's check (it needs the witness's state)."""
    if witness.kind != COSIGNATURE_V1:
        raise ConfigError("a witness cosigns with a type 0x04 key",
                          found=f"type {witness.kind:#04x}")
    open_checkpoint(data, log)
    return parse(data).sign(witness, at=at).encode()


def verify_cosignature_line(text: bytes, line: str, witness: Verifier, *, now: datetime,
                            skew: timedelta = timedelta(minutes=5)) -> Cosignature:
    """A witness's cosignature line over a checkpoint's text (the note without its
    signatures), checked as `verify_cosignature` checks it, without re-reading the note:
    a log gathering one line per client per round checks each against one text."""
    if witness.kind != COSIGNATURE_V1:
        raise ConfigError("a witness's verifier key is a type 0x04 key",
                          found=f"type {witness.kind:#04x}")
    if not line.endswith("\n") or "\n" in line[:-1]:
        raise MalformedEvidence("a cosignature is one signature line", found=repr(line[:40]))
    signature = _parse_line(line[:-1], 1)
    if (signature.name, signature.key_id) != (witness.name, witness.key_id):
        raise VerificationFailed(f"the line is not a cosignature by {witness.name}",
                                 expected=f"{witness.name}+{witness.key_id.hex()}",
                                 found=f"{signature.name}+{signature.key_id.hex()}")
    timestamp = witness.verify(text, signature.signature)
    assert timestamp is not None
    latest = (require_aware(now, "now") + skew - _EPOCH) // timedelta(seconds=1)
    if timestamp > latest:
        raise VerificationFailed(f"cosignature by {witness.name} is dated in the future",
                                 expected=f"at most {latest}", found=timestamp)
    return Cosignature(witness.name, signature.line(), timestamp)


def verify_cosignature(data: bytes, witness: Verifier, *, now: datetime,
                       skew: timedelta = timedelta(minutes=5)) -> Cosignature:
    """The witness's cosignature on a checkpoint note, verified over that note's text; a
    timestamp beyond now + skew is refused (clocks differ by a little, not by hours)."""
    if witness.kind != COSIGNATURE_V1:
        raise ConfigError("a witness's verifier key is a type 0x04 key",
                          found=f"type {witness.kind:#04x}")
    now = require_aware(now, "now")
    note = parse(data)
    Checkpoint.parse(note.text)
    mine = [s for s in note.signatures if (s.name, s.key_id) == (witness.name, witness.key_id)]
    if not mine:
        raise VerificationFailed(f"checkpoint has no cosignature by {witness.name}",
                                 expected=f"{witness.name}+{witness.key_id.hex()}")
    timestamp = witness.verify(note.text.encode("utf-8"), mine[0].signature)
    assert timestamp is not None  # type 0x04 always states one
    latest = (now + skew - _EPOCH) // timedelta(seconds=1)
    if timestamp > latest:  # compared as integers: 2^63 - 1 is no datetime
        raise VerificationFailed(f"cosignature by {witness.name} is dated in the future",
                                 expected=f"at most {latest} ({(now + skew).isoformat()})",
                                 found=timestamp)
    return Cosignature(witness.name, mine[0].line(), timestamp)


__all__ = [
    "COSIGNATURE_V1", "ED25519", "MAX_NOTE_BYTES", "MAX_SIGNATURES", "Checkpoint",
    "Cosignature", "Note", "OpenedNote", "Signature", "Signer", "Verified", "Verifier",
    "cosign", "cosignature_message", "cosignature_timestamp", "key_id", "open_checkpoint",
    "open_note", "parse", "sign_checkpoint", "valid_name", "verify_cosignature",
    "verify_cosignature_line",
]
