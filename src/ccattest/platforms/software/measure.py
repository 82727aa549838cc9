"""Measurement of a declared list of files and settings, replayable from its log.

Each item extends a SHA-384 register the way TDX RTMRs and TPM PCRs do:
    m = SHA-384(m || SHA-384(kind NUL name NUL digest))
so the report carries 48 bytes while the unsigned log lets a verifier see, item by item,
what was measured and check that it replays to the signed value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigError, MalformedEvidence

ZERO = bytes(48)
KINDS = ("file", "setting")


@dataclass(frozen=True)
class MeasuredItem:
    kind: str  # "file" or "setting"
    name: str
    digest: bytes  # SHA-384 of the file's bytes or of the setting's UTF-8 value

    def to_log(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "sha384": self.digest.hex()}

    @classmethod
    def from_log(cls, entry: Mapping[str, str]) -> MeasuredItem:
        try:
            kind, name, digest = entry["kind"], entry["name"], bytes.fromhex(entry["sha384"])
        except (KeyError, ValueError, TypeError):
            raise MalformedEvidence("measurement log entry does not parse",
                                    expected="{kind, name, sha384}", found=dict(entry)) from None
        if kind not in KINDS or len(digest) != 48:
            raise MalformedEvidence("measurement log entry is invalid",
                                    expected=f"kind in {KINDS} and a 48-byte digest",
                                    found=f"kind={kind!r}, {len(digest)}-byte digest")
        return cls(kind, name, digest)


def measure_file(path: Path, name: str | None = None) -> MeasuredItem:
    try:
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha384").digest()
    except OSError as exc:
        raise ConfigError(f"cannot measure {path}", found=exc.strerror) from None
    return MeasuredItem("file", name or str(path), digest)


def measure_setting(name: str, value: str) -> MeasuredItem:
    return MeasuredItem("setting", name, hashlib.sha384(value.encode("utf-8")).digest())


def extend(register: bytes, item: MeasuredItem) -> bytes:
    event = f"{item.kind}\0{item.name}\0".encode() + item.digest
    return hashlib.sha384(register + hashlib.sha384(event).digest()).digest()


def replay(items: Iterable[MeasuredItem]) -> bytes:
    register = ZERO
    for item in items:
        register = extend(register, item)
    return register
