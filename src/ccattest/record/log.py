"""One site's log (entries, tree, signed checkpoints), and the audit anyone can run on it.

`SiteLog` is the writer: each entry goes to the store, its leaf hash into an in-memory
CompactTree (O(log n) per append), and every `checkpoint_every` entries the site signs a
checkpoint of the tree (c2sp.org/tlog-checkpoint) with its log key. One process writes a
site's log; the tree is rebuilt from the stored leaf hashes when it opens.

`audit` needs no secret and trusts nothing stored beside the entries: it re-hashes every
entry, checks each is canonical and agrees with its indexed columns, rebuilds the tree and
checks every stored checkpoint's root, size and origin (and its signature when the log's
public key is given). Because every checkpoint is checked against the same rebuilt tree,
they are consistent with each other by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..errors import MalformedEvidence, VerificationFailed
from . import merkle, note
from .entry import Entry, decode
from .store import RecordStore

RECORD_FILE = "record.sqlite3"  # in a site's local/cc/
DEFAULT_CHECKPOINT_EVERY = 64


class SiteLog:
    def __init__(self, store: RecordStore, signer: note.Signer, *,
                 checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY) -> None:
        if signer.name != store.origin:
            raise VerificationFailed("the log key is named after another log",
                                     expected=store.origin, found=signer.name)
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        self.store, self.signer, self.checkpoint_every = store, signer, checkpoint_every
        self.tree = merkle.CompactTree.of(store.leaf_hashes())

    @property
    def size(self) -> int:
        return self.tree.size

    def append(self, entry: Entry) -> int:
        """Store the entry; sign a checkpoint when the tree reaches a multiple of K."""
        body = entry.encode()
        index = self.store.append(body)
        if index != self.tree.size:  # someone else wrote to this log: our tree is stale
            raise VerificationFailed("the record grew behind this writer's back",
                                     expected=f"index {self.tree.size}", found=index,
                                     hint="one process writes a site's record")
        self.tree.append(merkle.leaf_hash(body))
        if self.tree.size % self.checkpoint_every == 0:
            self.checkpoint(at=entry.at)
        return index

    def checkpoint(self, *, at: datetime) -> bytes:
        """Sign and store a checkpoint of the whole log now (also on job admission and at
        shutdown); returns the signed note."""
        head = note.Checkpoint(self.store.origin, self.tree.size, self.tree.root())
        signed = note.sign_checkpoint(head, self.signer)
        self.store.add_checkpoint(head.size, head.root, signed.decode("utf-8"), at=at)
        return signed


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


def locate(path: Path | str) -> str:
    """The record a user named: a database URL, an SQLite file, a site's local/cc/ folder or
    its workspace (kit) folder."""
    text = str(path)
    if "://" in text:
        return text
    folder = Path(text)
    for candidate in (folder / RECORD_FILE, folder / "cc" / RECORD_FILE,
                      folder / "local" / "cc" / RECORD_FILE):
        if candidate.is_file():
            return str(candidate)
    return text
