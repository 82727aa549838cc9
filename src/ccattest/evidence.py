"""Evidence, challenges, and the one place where a nonce becomes report_data.

Evidence keeps what the device produced (`report`) apart from the endorsements that vouch
for it (certificates, collateral) and from unsigned side data (`log`, e.g. the list of
measured items): only the report is signed by the attesting environment.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import ConfigError, MalformedEvidence

BIND_DOMAIN = b"ccattest/bind/v1"
NONCE_MIN, NONCE_MAX = 16, 1024
ENVELOPE_FORMAT = "ccattest-evidence/1"
MAX_ENVELOPE_BYTES = 4 * 1024 * 1024


def _framed(value: bytes) -> bytes:
    # Length-prefix every field so that no two (nonce, id, context) triples collide.
    return struct.pack(">I", len(value)) + value


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def bind(nonce: bytes, attester_id: str, context: bytes | str = b"", *, size: int = 64) -> bytes:
    """report_data for evidence answering `nonce`, from `attester_id`, in `context`.

    64 bytes (SHA-512) for SNP/TDX/software report_data; 32 bytes (SHA-256) for the GPU
    nonce. The domain tag keeps these digests apart from any other use of the same nonce.
    """
    if not NONCE_MIN <= len(nonce) <= NONCE_MAX:
        raise ConfigError(
            "nonce has the wrong length",
            expected=f"{NONCE_MIN} to {NONCE_MAX} bytes",
            found=f"{len(nonce)} bytes",
        )
    if not attester_id:
        raise ConfigError("attester identity is empty", hint="every binding names its attester")
    message = BIND_DOMAIN + _framed(nonce) + _framed(_as_bytes(attester_id))
    message += _framed(_as_bytes(context))
    if size == 64:
        return hashlib.sha512(message).digest()
    if size == 32:
        return hashlib.sha256(message).digest()
    raise ConfigError("unsupported report_data size", expected="32 or 64", found=size)


@dataclass(frozen=True)
class Challenge:
    """A verifier's request for fresh evidence: the nonce and who asks, until when."""

    nonce: bytes
    issued_at: datetime
    expires_at: datetime
    verifier_id: str = ""
    context: str = ""

    def report_data(self, attester_id: str, *, size: int = 64) -> bytes:
        return bind(self.nonce, attester_id, self.binding_context(), size=size)

    def binding_context(self) -> str:
        return f"{self.verifier_id}|{self.context}"

    def to_dict(self) -> dict[str, str]:
        return {
            "nonce": self.nonce.hex(),
            "issued_at": self.issued_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "verifier_id": self.verifier_id,
            "context": self.context,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Challenge:
        try:
            return cls(
                nonce=bytes.fromhex(data["nonce"]),
                issued_at=datetime.fromisoformat(data["issued_at"]),
                expires_at=datetime.fromisoformat(data["expires_at"]),
                verifier_id=str(data.get("verifier_id", "")),
                context=str(data.get("context", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedEvidence("challenge does not parse", found=str(exc)) from None


@dataclass(frozen=True)
class Evidence:
    """What an attester hands over: the signed report, its endorsements, and side data."""

    platform: str
    report: bytes
    endorsements: Mapping[str, bytes] = field(default_factory=dict)
    attester: str | None = None
    log: tuple[Mapping[str, str], ...] = ()

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Evidence:
        """Parse an envelope; anything off is MalformedEvidence, never another exception."""
        if len(text) > MAX_ENVELOPE_BYTES:
            raise MalformedEvidence(
                "evidence envelope too large",
                expected=f"at most {MAX_ENVELOPE_BYTES} bytes",
                found=f"{len(text)} bytes",
            )
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise MalformedEvidence("evidence envelope is not JSON", found=str(exc)) from None
        return _envelope_from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> Evidence:
        """An envelope already decoded from JSON (e.g. inside a larger message)."""
        return _envelope_from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "format": ENVELOPE_FORMAT,
            "platform": self.platform,
            "report": base64.b64encode(self.report).decode(),
            "endorsements": {k: base64.b64encode(v).decode() for k, v in self.endorsements.items()},
        }
        if self.attester is not None:
            body["attester"] = self.attester
        if self.log:
            body["log"] = [dict(entry) for entry in self.log]
        return body


def _envelope_from_dict(data: Any) -> Evidence:
    if not isinstance(data, dict) or data.get("format") != ENVELOPE_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise MalformedEvidence("not a ccattest evidence envelope",
                                expected=f"format {ENVELOPE_FORMAT!r}", found=found)
    platform = _field(data, "platform", str)
    attester = data.get("attester")
    if attester is not None and not isinstance(attester, str):
        raise MalformedEvidence("envelope field 'attester' must be a string")
    endorsements = _field(data, "endorsements", dict, default={})
    log = _field(data, "log", list, default=[])
    if not all(isinstance(e, dict) and all(isinstance(v, str) for v in e.values()) for e in log):
        raise MalformedEvidence("envelope field 'log' must be a list of string maps")
    return Evidence(
        platform=platform,
        report=_b64(_field(data, "report", str), "report"),
        endorsements={str(k): _b64(v, f"endorsements.{k}") for k, v in endorsements.items()},
        attester=attester,
        log=tuple(log),
    )


def _field(data: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    value = data.get(name, default)
    if not isinstance(value, kind):
        raise MalformedEvidence(
            f"envelope field {name!r} has the wrong type",
            expected=kind.__name__,
            found=type(value).__name__,
        )
    return value


def _b64(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedEvidence(f"envelope field {name!r} must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedEvidence(f"envelope field {name!r} is not valid base64") from None
