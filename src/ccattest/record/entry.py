"""The canonical encoding of a record entry: the bytes a leaf hash is taken over.

An entry is a JSON object {"v": 1, "kind", "site", "at", "data"} encoded with sorted keys,
no insignificant whitespace, UTF-8, and only strings, integers, booleans, null, lists and
objects with string keys: no floats (their text is not canonical across languages), so
anyone can re-encode an entry and get the same bytes (docs/ARCHITECTURE.md, "The record").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..errors import ConfigError, MalformedEvidence
from ..timeutil import require_aware

VERSION = 1
MAX_ENTRY_BYTES = 2 * 1024 * 1024  # a receipt entry holds a signed receipt (a JWT up to 1 MiB)
KINDS = frozenset({
    "registration", "verdict", "round", "gate", "action", "exclusion", "readmission",
    "config", "receipt",
})


@dataclass(frozen=True)
class Entry:
    kind: str
    site: str
    at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        if self.kind not in KINDS:
            raise ValueError(f"unknown record entry kind {self.kind!r}")
        when = require_aware(self.at, "entry time").astimezone(UTC)
        document = {"v": VERSION, "kind": self.kind, "site": self.site,
                    "at": when.isoformat().replace("+00:00", "Z"), "data": self.data}
        return canonical(document)


def canonical(value: Any) -> bytes:
    _check(value, "entry")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _check(value: Any, where: str) -> None:
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        return
    if isinstance(value, list | tuple):
        for number, item in enumerate(value):
            _check(item, f"{where}[{number}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: object keys must be strings, found {key!r}")
            _check(item, f"{where}.{key}")
        return
    raise ValueError(f"{where}: {type(value).__name__} has no canonical encoding "
                     "(use strings, integers, booleans, null, lists and objects)")


def decode(data: bytes) -> Entry:
    """An entry from its canonical bytes; refuses anything that does not re-encode to the
    same bytes (so two encodings of one entry cannot both be in a log)."""
    if len(data) > MAX_ENTRY_BYTES:
        raise MalformedEvidence("record entry too large", expected=f"at most {MAX_ENTRY_BYTES}"
                                " bytes", found=f"{len(data)} bytes")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedEvidence("record entry is not JSON", found=str(exc)[:120]) from None
    if not isinstance(document, dict) or set(document) != {"v", "kind", "site", "at", "data"}:
        raise MalformedEvidence("record entry has the wrong shape",
                                expected="v, kind, site, at, data")
    if document["v"] != VERSION or document["kind"] not in KINDS:
        raise MalformedEvidence("record entry of an unknown version or kind",
                                found=f"v {document['v']!r}, kind {document['kind']!r}")
    try:
        at = datetime.fromisoformat(str(document["at"]).replace("Z", "+00:00"))
        entry = Entry(document["kind"], str(document["site"]), at, document["data"])
        encoded = entry.encode()
    except (ValueError, TypeError, ConfigError) as exc:  # ConfigError: a time without a zone
        raise MalformedEvidence("record entry does not parse", found=str(exc)[:120]) from None
    if encoded != data:
        raise MalformedEvidence("record entry is not in canonical form",
                                hint="entries are compact JSON with sorted keys")
    return entry
