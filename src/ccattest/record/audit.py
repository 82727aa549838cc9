"""The audit anyone can run on a site's record: it needs no secret and trusts nothing
stored beside the entries. It re-hashes every entry, checks each is canonical and agrees
with its indexed columns, rebuilds the tree and checks every stored checkpoint's root, size
and origin (and its signature when the log's public key is given). Because every checkpoint
is checked against the same rebuilt tree, they are consistent with each other by
construction.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import MalformedEvidence, VerificationFailed
from . import merkle, note
from .entry import decode
from .store import RecordStore


@dataclass(frozen=True)
class AuditReport:
    origin: str
    size: int
    checkpoints: int
    signatures_checked: int


def audit(store: RecordStore, log_key: note.Verifier | None = None) -> AuditReport:
    """Everything a record can prove about itself; VerificationFailed names the first fault
    (the entry, or the checkpoint whose entries changed after it was signed)."""
    tree = merkle.CompactTree()
    pending = sorted(store.checkpoints(), key=lambda checkpoint: checkpoint.size)
    signatures = 0
    signatures += _check_checkpoints(store.origin, tree, pending, log_key)  # size 0 ones
    for stored in store.entries():
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
        signatures += _check_checkpoints(store.origin, tree, pending, log_key)
    if pending:
        raise VerificationFailed(f"a checkpoint of size {pending[0].size} names entries the "
                                 "record no longer has", expected=f"at most {tree.size}",
                                 hint="the tail of the log was dropped")
    return AuditReport(store.origin, tree.size, len(store.checkpoints()), signatures)


def _check_checkpoints(origin: str, tree: merkle.CompactTree, pending: list,
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
