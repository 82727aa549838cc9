"""One site's log: entries, tree and signed checkpoints (record/audit.py checks them).

`SiteLog` is the writer: each entry goes to the store, its leaf hash into an in-memory
CompactTree (O(log n) per append) and TiledLeaves (one hash per 256 entries, for the proofs
its witnesses ask for; older leaves are read back from the store), and every
`checkpoint_every` entries the site
signs a checkpoint of the tree (c2sp.org/tlog-checkpoint) with its log key. One process
writes a site's log; the tree is rebuilt from the stored leaf hashes when it opens.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

from ..errors import VerificationFailed
from . import merkle, note
from .entry import Entry
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
        leaves = store.leaf_hashes()
        self.tree = merkle.CompactTree.of(leaves)
        self.leaves = merkle.TiledLeaves.of(leaves, store.leaf_hashes)
        self.lock = threading.RLock()  # rounds, registrations and jobs append from threads
        latest = store.latest_checkpoint()
        self.latest: bytes | None = None if latest is None else latest.note.encode("utf-8")

    @property
    def origin(self) -> str:
        return self.store.origin

    @property
    def size(self) -> int:
        return self.tree.size

    def append(self, entry: Entry) -> int:
        """Store the entry; sign a checkpoint when the tree reaches a multiple of K."""
        body = entry.encode()
        with self.lock:
            index = self.store.append(body, entry)
            if index != self.tree.size:  # someone else wrote to this log: our tree is stale
                raise VerificationFailed("the record grew behind this writer's back",
                                         expected=f"index {self.tree.size}", found=index,
                                         hint="one process writes a site's record")
            leaf = merkle.leaf_hash(body)
            self.tree.append(leaf)
            self.leaves.append(leaf)
            if self.tree.size % self.checkpoint_every == 0:
                self.checkpoint(at=entry.at)
        return index

    def checkpoint(self, *, at: datetime) -> bytes:
        """Sign and store a checkpoint of the whole log now (also on job admission, before
        each round's witnessing and at shutdown); returns the signed note. Signs nothing
        new when the latest checkpoint already covers every entry."""
        with self.lock:
            if self.latest is not None and note.Checkpoint.parse(
                    note.parse(self.latest).text).size == self.tree.size:
                return self.latest
            head = note.Checkpoint(self.store.origin, self.tree.size, self.tree.root())
            signed = note.sign_checkpoint(head, self.signer)
            self.store.add_checkpoint(head.size, head.root, signed.decode("utf-8"), at=at,
                                      check_root=False)
            self.latest = signed
            return signed

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        with self.lock:
            return merkle.inclusion_path(index, self._within(size), self.leaves.subtree)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        with self.lock:
            return merkle.consistency_path(old_size, self._within(new_size),
                                           self.leaves.subtree)

    def _within(self, size: int) -> int:
        # As the slice it replaces: a size beyond the log proves about the whole log.
        return min(merkle._check_number(size, "tree size"), self.leaves.size)


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
