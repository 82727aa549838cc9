"""Wire forms of what sites exchange: evidence lists, transcripts, verdict summaries.

Everything crossing a site boundary is plain JSON-able data, parsed here with limits, so
the transport (NVFlare cells, in-process calls) never sees ccattest types.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import MalformedEvidence
from ..evidence import Evidence
from ..seal.keys import SealingPublicKey
from ..timeutil import require_aware

MAX_EVIDENCE_PER_SITE = 8
ROUND_CONTEXT = "ccattest/round/"


def evidence_to_wire(evidence: Sequence[Evidence]) -> list[dict[str, Any]]:
    return [item.to_dict() for item in evidence]


def evidence_from_wire(data: Any) -> list[Evidence]:
    if not isinstance(data, list) or len(data) > MAX_EVIDENCE_PER_SITE:
        raise MalformedEvidence("evidence list is malformed",
                                expected=f"a list of at most {MAX_EVIDENCE_PER_SITE} envelopes",
                                found=type(data).__name__)
    return [Evidence.from_dict(item) for item in data]


def bundle_to_wire(evidence: Sequence[Evidence], seal_key: SealingPublicKey | None
                   ) -> list[dict[str, Any]] | dict[str, Any]:
    """A site's evidence, with the sealing key it bound when sealing is on (else the plain
    list, as before sealing existed)."""
    if seal_key is None:
        return evidence_to_wire(evidence)
    return {"envelopes": evidence_to_wire(evidence), "seal_key": seal_key.to_wire()}


def bundle_from_wire(data: Any) -> tuple[list[Evidence], SealingPublicKey | None]:
    if isinstance(data, dict):
        if set(data) != {"envelopes", "seal_key"}:
            raise MalformedEvidence("evidence bundle is malformed",
                                    expected='{"envelopes": [...], "seal_key": {...}}',
                                    found=", ".join(sorted(map(str, data)))[:80])
        return evidence_from_wire(data["envelopes"]), SealingPublicKey.from_wire(
            data["seal_key"])
    return evidence_from_wire(data), None


def _hex(value: Any, size: int, what: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except (TypeError, ValueError):
        raise MalformedEvidence(f"{what} is not hex", found=repr(value)[:40]) from None
    if len(raw) != size:
        raise MalformedEvidence(f"{what} has the wrong length", expected=size, found=len(raw))
    return raw


def _time(value: Any, what: str) -> datetime:
    try:
        return require_aware(datetime.fromisoformat(value), what)
    except (TypeError, ValueError):
        raise MalformedEvidence(f"{what} is not an ISO time", found=repr(value)[:40]) from None


@dataclass(frozen=True)
class Transcript:
    """A collective-nonce round: every site's contribution, sorted by site.

    Evidence in the round binds SHA-256 of the canonical transcript, so a site that finds
    its own fresh contribution in it knows every bound evidence is newer than that
    contribution, whoever coordinated the round.
    """

    round_id: str
    contributions: tuple[tuple[str, bytes], ...]
    deadline: datetime

    def __post_init__(self) -> None:
        names = [site for site, _ in self.contributions]
        if names != sorted(set(names)):
            raise MalformedEvidence("transcript contributions must be unique and sorted by site")

    @classmethod
    def build(cls, round_id: str, contributions: Mapping[str, bytes], deadline: datetime
              ) -> Transcript:
        return cls(round_id, tuple(sorted(contributions.items())), deadline)

    def to_wire(self) -> dict[str, Any]:
        return {
            "round_id": self.round_id,
            "contributions": [[site, value.hex()] for site, value in self.contributions],
            "deadline": self.deadline.isoformat(),
        }

    @classmethod
    def from_wire(cls, data: Any) -> Transcript:
        if not isinstance(data, dict) or not isinstance(data.get("round_id"), str):
            raise MalformedEvidence("transcript is malformed")
        entries = data.get("contributions")
        if not isinstance(entries, list) or not all(
                isinstance(e, list) and len(e) == 2 and isinstance(e[0], str) for e in entries):
            raise MalformedEvidence("transcript contributions are malformed")
        pairs = tuple((site, _hex(value, 32, f"contribution of {site}")) for site, value in entries)
        return cls(data["round_id"], pairs, _time(data.get("deadline"), "transcript deadline"))

    @functools.cached_property
    def _digest(self) -> bytes:
        canonical = json.dumps(self.to_wire(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).digest()

    def nonce(self) -> bytes:
        """SHA-256 of the canonical transcript (computed once: every peer check needs it)."""
        return self._digest

    @property
    def context(self) -> str:
        return ROUND_CONTEXT + self.round_id

    def contribution_of(self, site: str) -> bytes | None:
        return dict(self.contributions).get(site)

    def sites(self) -> list[str]:
        return [site for site, _ in self.contributions]


def parse_hex(value: Any, size: int, what: str) -> bytes:
    return _hex(value, size, what)


def parse_time(value: Any, what: str) -> datetime:
    return _time(value, what)
