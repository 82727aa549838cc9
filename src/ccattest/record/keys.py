"""A site's record keys and the federation's public key set.

Each site holds two Ed25519 signed-note keys (record/note.py says why two, and why not the
site's TEE key): the log key (type 0x01), named after the site's log origin, signs its
checkpoints; the witness key (type 0x04), named after the site, cosigns other sites'
checkpoints. Secrets are files in signed-note form (``PRIVATE+KEY+...``, mode 0600).

The federation publishes every site's public keys in ONE JWK Set, beside the ES256 keys
that sign results and receipts, so that a data owner needs a single file to check a receipt
offline. A note key is an RFC 8037 OKP/Ed25519 JWK whose ``kid`` is ``<name>+<hex key ID>``
(unique, and the key ID commits to the name) with two members of ours: ``ccattest_note``
(``log`` or ``witness``) and ``ccattest_name`` (the note key's name). `note_keys` reads them
back and recomputes each key ID, so a JWK that names one key but carries another is refused.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from . import note

ROLES = {"log": note.ED25519, "witness": note.COSIGNATURE_V1}
LOG_KEY_FILE = "record-log.key"
WITNESS_KEY_FILE = "record-witness.key"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")  # RFC 7518 leaves padding out; allow it


def origin_for(federation: str, site: str) -> str:
    """A site's log origin: unique per federation and site, a valid note key name."""
    origin = f"ccattest.record/{federation}/{site}"
    if not note.valid_name(origin):
        raise ConfigError("federation or site name cannot name a log",
                          expected="no spaces or '+'", found=origin)
    return origin


@dataclass(frozen=True)
class SiteKeys:
    log: note.Signer
    witness: note.Signer

    @classmethod
    def generate(cls, federation: str, site: str) -> SiteKeys:
        return cls(note.Signer.generate(origin_for(federation, site), note.ED25519),
                   note.Signer.generate(site, note.COSIGNATURE_V1))

    @classmethod
    def load(cls, key_dir: Path) -> SiteKeys:
        return cls(_read_signer(key_dir / LOG_KEY_FILE, "log"),
                   _read_signer(key_dir / WITNESS_KEY_FILE, "witness"))

    def write(self, key_dir: Path) -> None:
        key_dir.mkdir(parents=True, exist_ok=True)
        for name, signer in ((LOG_KEY_FILE, self.log), (WITNESS_KEY_FILE, self.witness)):
            path = key_dir / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(signer.encode() + "\n")

    def public_jwks(self) -> list[dict[str, str]]:
        return [note_jwk(self.log.verifier, "log"), note_jwk(self.witness.verifier, "witness")]


def _read_signer(path: Path, role: str) -> note.Signer:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the record's {role} key {path}",
                          found=getattr(exc, "strerror", None) or type(exc).__name__,
                          hint="provisioning writes it (ccattest nvflare configure)") from None
    signer = note.Signer.parse(text)
    if signer.kind != ROLES[role]:
        raise ConfigError(f"{path} is not a {role} key",
                          expected=f"type {ROLES[role]:#04x}", found=f"type {signer.kind:#04x}")
    return signer


def note_jwk(verifier: note.Verifier, role: str) -> dict[str, str]:
    if ROLES.get(role) != verifier.kind:
        raise ConfigError(f"a {role} key has another type", found=f"type {verifier.kind:#04x}")
    x = base64.urlsafe_b64encode(verifier.public_key).rstrip(b"=").decode("ascii")
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "use": "sig", "alg": "EdDSA",
            "kid": f"{verifier.name}+{verifier.key_id.hex()}", "ccattest_note": role,
            "ccattest_name": verifier.name}


@dataclass(frozen=True)
class NoteKeys:
    """The note keys of a JWK Set: logs by origin, witnesses by name."""

    logs: Mapping[str, note.Verifier]
    witnesses: Mapping[str, note.Verifier]

    def log(self, origin: str) -> note.Verifier:
        try:
            return self.logs[origin]
        except KeyError:
            raise ConfigError(f"the key set has no key for the log {origin}",
                              expected="one of " + (", ".join(sorted(self.logs)) or "(none)"),
                              hint="use the federation's key set (federation.jwks.json), "
                                   "or check this record belongs to that federation"
                              ) from None


def note_keys(jwks: Mapping[str, Any]) -> NoteKeys:
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list):
        raise ConfigError("malformed JWKS", expected='an object with a "keys" list')
    found: dict[str, dict[str, note.Verifier]] = {"log": {}, "witness": {}}
    for position, jwk in enumerate(keys):
        if not isinstance(jwk, Mapping) or "ccattest_note" not in jwk:
            continue  # other keys (the ES256 result keys) are not note keys
        verifier = _verifier(jwk, position)
        role = str(jwk["ccattest_note"])
        if verifier.name in found[role]:
            raise ConfigError(f"the key set has two {role} keys named {verifier.name}",
                              hint="a key set names each log and witness once")
        found[role][verifier.name] = verifier
    return NoteKeys(found["log"], found["witness"])


def _verifier(jwk: Mapping[str, Any], position: int) -> note.Verifier:
    where = f"JWKS key {position}"
    role, name, x = jwk.get("ccattest_note"), jwk.get("ccattest_name"), jwk.get("x")
    if not isinstance(role, str) or role not in ROLES or not isinstance(name, str) \
            or not isinstance(x, str):
        raise ConfigError(f"{where} is not a record key",
                          expected="ccattest_note log|witness, ccattest_name and x")
    if (jwk.get("kty"), jwk.get("crv")) != ("OKP", "Ed25519") or "d" in jwk:
        raise ConfigError(f"{where} is not a public Ed25519 key",
                          expected="kty OKP, crv Ed25519, no d")
    if not _BASE64URL.fullmatch(x):  # the decoder would skip stray characters silently
        raise ConfigError(f"{where}: x is not base64url", found=x[:60])
    try:
        raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
    except ValueError:
        raise ConfigError(f"{where}: x is not base64url", found=x[:60]) from None
    verifier = note.Verifier(name, raw, ROLES[role])
    if jwk.get("kid") != f"{name}+{verifier.key_id.hex()}":
        raise ConfigError(f"{where}'s kid does not match its name and key",
                          expected=f"{name}+{verifier.key_id.hex()}", found=str(jwk.get("kid")))
    return verifier


def merge_jwks(parts: Iterable[Iterable[Mapping[str, Any]]]) -> dict[str, list[Any]]:
    """One key set from several sites' public keys; a kid appears once."""
    merged: dict[str, Mapping[str, Any]] = {}
    for keys in parts:
        for jwk in keys:
            merged.setdefault(str(jwk.get("kid")), jwk)
    return {"keys": [dict(jwk) for jwk in merged.values()]}
