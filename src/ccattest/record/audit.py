"""The audit anyone can run on a site's record: it needs no secret and trusts nothing
stored beside the entries. It re-hashes every entry, checks each is canonical and agrees
with its indexed columns, rebuilds the tree and checks every stored checkpoint's root, size
and origin (and its signature when the log's public key is given), then every stored
cosignature by a witness whose key is given. Because every checkpoint is checked against
the same rebuilt tree, they are consistent with each other by construction.

It reads a `RecordSource`: a live `RecordStore` or an export file (record/export.py), so an
export handed to an auditor is checked exactly as the database it came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from ..errors import ConfigError, MalformedEvidence, VerificationFailed
from . import merkle, note
from .entry import decode
from .store import Cosignature, StoredEntry

# With no `now`, a cosignature's time is not judged: the audit of an old export must not
# depend on today's clock. Far enough to mean "never", near enough to add minutes to.
_NO_CLOCK = datetime(9000, 1, 1, tzinfo=UTC)


class CheckpointRow(Protocol):
    """A stored checkpoint: its size and root as filed, and the signed note."""

    @property
    def size(self) -> int: ...
    @property
    def root(self) -> bytes: ...
    @property
    def note(self) -> str: ...


class RecordSource(Protocol):
    """What an audit reads: a `RecordStore` or an `ExportedRecord`."""

    @property
    def origin(self) -> str: ...
    def entries(self) -> Sequence[StoredEntry]: ...
    def checkpoints(self) -> Sequence[CheckpointRow]: ...
    def cosignatures(self, size: int) -> Sequence[Cosignature]: ...


@dataclass(frozen=True)
class AuditReport:
    origin: str
    size: int
    checkpoints: int
    signatures_checked: int
    cosignatures_checked: int = 0
    cosignatures_unchecked: int = 0  # by witnesses whose key was not given
    unknown_witnesses: tuple[str, ...] = ()


def audit(source: RecordSource, log_key: note.Verifier | None = None, *,
          witnesses: Mapping[str, note.Verifier] | None = None,
          now: datetime | None = None) -> AuditReport:
    """Everything a record can prove about itself; VerificationFailed names the first fault
    (the entry, the checkpoint whose entries changed after it was signed, or the witness
    whose stored cosignature does not verify). `now` refuses cosignatures dated after it."""
    tree = merkle.CompactTree()
    stored_checkpoints = list(source.checkpoints())
    pending = sorted(stored_checkpoints, key=lambda checkpoint: checkpoint.size)
    signatures = 0
    signatures += _check_checkpoints(source.origin, tree, pending, log_key)  # size 0 ones
    for stored in source.entries():
        if stored.index != tree.size:
            raise VerificationFailed("the record has a hole", expected=f"entry {tree.size}",
                                     found=f"entry {stored.index}")
        if merkle.leaf_hash(stored.body) != stored.leaf_hash:
            raise VerificationFailed(f"entry {stored.index} was changed after it was written",
                                     expected="its stored leaf hash",
                                     found=merkle.leaf_hash(stored.body).hex())
        try:
            entry = decode(stored.body)
        except MalformedEvidence as error:
            raise VerificationFailed(f"entry {stored.index} is not a canonical entry",
                                     found=error.message) from None
        if (entry.site, entry.kind) != (stored.site, stored.kind):
            raise VerificationFailed(f"entry {stored.index}'s indexed columns disagree with it",
                                     expected=f"{entry.site}/{entry.kind}",
                                     found=f"{stored.site}/{stored.kind}")
        tree.append(stored.leaf_hash)
        signatures += _check_checkpoints(source.origin, tree, pending, log_key)
    if pending:
        raise VerificationFailed(f"a checkpoint of size {pending[0].size} names entries the "
                                 "record no longer has", expected=f"at most {tree.size}",
                                 hint="the tail of the log was dropped")
    # Cosignatures last: a checkpoint's note is only worth vouching for once its root is
    # known to be the tree's.
    known = dict(witnesses or {})
    checked, unknown = 0, []
    for checkpoint in stored_checkpoints:
        for cosignature in source.cosignatures(checkpoint.size):
            verifier = known.get(cosignature.witness)
            if verifier is None:
                unknown.append(cosignature.witness)
                continue
            _check_cosignature(checkpoint, cosignature, verifier, now or _NO_CLOCK)
            checked += 1
    return AuditReport(source.origin, tree.size, len(stored_checkpoints), signatures,
                       checked, len(unknown), tuple(sorted(set(unknown))))


def _check_checkpoints(origin: str, tree: merkle.CompactTree, pending: list[CheckpointRow],
                       log_key: note.Verifier | None) -> int:
    """Check (and drop from `pending`) the checkpoints of the tree's current size."""
    checked = 0
    while pending and pending[0].size == tree.size:
        stored = pending.pop(0)
        root = tree.root()
        where = f"checkpoint of size {stored.size}"
        if stored.root != root:
            raise VerificationFailed(f"entries before {stored.size} changed after the {where} "
                                     "was signed", expected=root.hex(), found=stored.root.hex())
        data = stored.note.encode("utf-8")
        if log_key is not None:
            head, _ = note.open_checkpoint(data, log_key)
            checked += 1
        else:
            head = note.Checkpoint.parse(note.parse(data).text)
        if (head.origin, head.size, head.root) != (origin, stored.size, root):
            raise VerificationFailed(f"the {where}'s signed note says otherwise",
                                     expected=f"{origin} {stored.size} {root.hex()}",
                                     found=f"{head.origin} {head.size} {head.root.hex()}")
    return checked


def _check_cosignature(checkpoint: CheckpointRow, cosignature: Cosignature,
                       verifier: note.Verifier, now: datetime) -> None:
    """The stored line must be this witness's valid cosignature of this very checkpoint, and
    state the time it is filed under (the store keeps the newest per witness by it)."""
    line = cosignature.line.rstrip("\n") + "\n"
    where = (f"the cosignature by {cosignature.witness} of the checkpoint of size "
             f"{checkpoint.size}")
    try:
        verified = note.verify_cosignature(checkpoint.note.encode("utf-8") + line.encode(),
                                           verifier, now=now)
    except (VerificationFailed, MalformedEvidence) as error:
        raise VerificationFailed(f"{where} does not verify", found=error.message) from None
    if verified.timestamp != cosignature.timestamp:
        raise VerificationFailed(f"{where} states another time than it is filed under",
                                 expected=cosignature.timestamp, found=verified.timestamp)


# -- consistency with a checkpoint someone kept ------------------------------------------------

@dataclass(frozen=True)
class ConsistencyReport:
    origin: str
    old_size: int
    size: int
    proof_length: int


def check_consistency(source: RecordSource, old: note.Checkpoint) -> ConsistencyReport:
    """Prove the record extends the tree of `old` (a checkpoint kept from earlier, its
    signature already checked by the caller): RFC 9162 consistency from the old size to
    the whole record. VerificationFailed says how it does not: a dropped tail, rewritten
    entries, or a fork (the record holds another checkpoint of the old size)."""
    if old.origin != source.origin:
        raise ConfigError("the checkpoint is of another log", expected=source.origin,
                          found=old.origin)
    leaves: list[bytes] = []
    for stored in source.entries():  # rehashed: a stored hash could hide a rewritten body
        if stored.index != len(leaves):
            raise VerificationFailed("the record has a hole", expected=f"entry {len(leaves)}",
                                     found=f"entry {stored.index}")
        leaf = merkle.leaf_hash(stored.body)
        if leaf != stored.leaf_hash:
            raise VerificationFailed(f"entry {stored.index} was changed after it was written",
                                     hint="`ccattest audit verify` checks the whole record")
        leaves.append(leaf)
    size = len(leaves)
    if old.size > size:
        raise VerificationFailed(f"the record is shorter than the kept checkpoint: entries "
                                 f"from {size} were dropped", expected=f"at least {old.size} "
                                 "entries", found=size, hint="the tail of the log was dropped")
    if old.size == 0:  # RFC 9162 has no proof from the empty tree: every log extends it
        if old.root != merkle.root([]):
            raise VerificationFailed("the kept checkpoint of size 0 has a root other than the "
                                     "empty tree's", found=old.root.hex())
        return ConsistencyReport(source.origin, 0, size, 0)
    proof = merkle.consistency_proof(old.size, leaves)
    try:
        merkle.verify_consistency(old.size, size, old.root, merkle.root(leaves), proof)
    except VerificationFailed as error:
        raise VerificationFailed(_divergence(source, old), found=error.message,
                                 hint="the keeper rewrote history the checkpoint's signer "
                                      "had committed to") from None
    return ConsistencyReport(source.origin, old.size, size, len(proof))


def _divergence(source: RecordSource, old: note.Checkpoint) -> str:
    mine = next((c for c in source.checkpoints() if c.size == old.size), None)
    if mine is not None and mine.root != old.root:
        return (f"the log forked: the record's own checkpoint of size {old.size} has another "
                "root than the kept one")
    return (f"the record does not extend the kept checkpoint: entries before {old.size} were "
            "rewritten")


__all__ = ["AuditReport", "CheckpointRow", "ConsistencyReport", "RecordSource", "audit",
           "check_consistency"]
