"""Witnessing: clients vouch that the server's log only ever grows.

The server (the log) sends each client its latest signed checkpoint and a consistency proof
from the checkpoint that client last cosigned. The client (a `Witness`) checks the log's
signature, that the log did not shrink (a dropped tail), that a checkpoint of the same size
has the same root (a fork), and the RFC 9162 consistency proof (rewritten or forked
history); only then does it remember the new checkpoint, durably, and cosign it
(c2sp.org/tlog-cosignature). A server that shows two histories must later move a client
from one to the other, which no proof allows; and a receipt carries the cosignatures of
every participant on ONE checkpoint, which a split view cannot produce.

`Witnessed` is the server's side: which size each witness last saw (from the witness's
own answer), the proofs to send, and the cosignatures it gets back, verified before they
are stored.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import MalformedEvidence, StaleEvidence, VerificationFailed
from . import merkle, note
from .log import SiteLog
from .store import RecordStore

MAX_PROOF_HASHES = 128  # a consistency proof has at most 2 log2(size) + 1 hashes


@dataclass(frozen=True)
class LogView:
    """What the log sends a witness: its checkpoint note and a proof from `old_size`."""

    checkpoint: bytes
    old_size: int
    proof: tuple[bytes, ...]

    def to_wire(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint.decode("utf-8"), "from": self.old_size,
                "proof": [item.hex() for item in self.proof]}

    @classmethod
    def from_wire(cls, data: Any) -> LogView:
        if not isinstance(data, Mapping):
            raise MalformedEvidence("log view is malformed", expected="an object")
        checkpoint, old_size, proof = data.get("checkpoint"), data.get("from"), data.get("proof")
        if (not isinstance(checkpoint, str) or len(checkpoint) > note.MAX_NOTE_BYTES
                or not isinstance(old_size, int) or isinstance(old_size, bool)
                or not 0 <= old_size <= merkle.MAX_SIZE
                or not isinstance(proof, list) or len(proof) > MAX_PROOF_HASHES):
            raise MalformedEvidence("log view is malformed",
                                    expected="checkpoint text, from (a size), proof (hashes)")
        hashes = []
        for item in proof:
            try:
                raw = bytes.fromhex(item) if isinstance(item, str) else b""
            except ValueError:
                raw = b""
            if len(raw) != merkle.HASH_SIZE:
                raise MalformedEvidence("log view proof holds a bad hash", found=repr(item)[:80])
            hashes.append(raw)
        return cls(checkpoint.encode("utf-8"), old_size, tuple(hashes))


class WrongStartingPoint(StaleEvidence):
    """The log sent a proof from another size than this witness last cosigned: not an
    attack (the log may have restarted and forgotten), so the witness says which size it
    needs and the log asks again."""

    def __init__(self, needed: int, found: int) -> None:
        super().__init__("the log's proof starts at another size than this witness "
                         "cosigned", expected=needed, found=found)
        self.needed = needed


class Witness:
    """A client's witness of one log (the server's). State lives in the client's own record
    (table `witnessed`), so a restart does not reset what it vouched for."""

    def __init__(self, store: RecordStore, signer: note.Signer, log_key: note.Verifier, *,
                 run: Callable[[Callable[[], Any]], Any] | None = None) -> None:
        if signer.kind != note.COSIGNATURE_V1:
            raise VerificationFailed("a witness cosigns with a type 0x04 key")
        self.store, self.signer, self.log_key = store, signer, log_key
        # Who performs the durable write (the site's record writer thread), waited for.
        self.run = run or (lambda job: job())
        self._seen: tuple[int, bytes] | None = None  # (size, root): its only writer caches it
        self._loaded = False

    @property
    def origin(self) -> str:
        return self.log_key.name

    def _state(self) -> tuple[int, bytes] | None:
        if not self._loaded:
            seen = self.store.witnessed(self.origin)
            self._seen = None if seen is None else (seen.size, seen.root)
            self._loaded = True
        return self._seen

    def seen_size(self) -> int:
        state = self._state()
        return 0 if state is None else state[0]

    def cosign(self, view: LogView, *, at: datetime) -> str:
        """Check the view against what this witness saw before; remember it; return this
        witness's cosignature line. Raises VerificationFailed, naming the attack, otherwise."""
        head, opened = note.open_checkpoint(view.checkpoint, self.log_key)
        state = self._state()
        # Every log extends the empty one: after cosigning size 0 there is nothing to prove.
        if state is not None and (state[0] > 0 or head.size == 0):
            seen_size, seen_root = state
            where = f"{self.origin}'s log"
            if head.size < seen_size:
                raise VerificationFailed(f"{where} shrank: its tail was dropped",
                                         expected=f"at least {seen_size} entries (cosigned "
                                         "before)", found=f"{head.size} entries")
            if head.size == seen_size and head.root != seen_root:
                raise VerificationFailed(f"{where} forked: two checkpoints of size "
                                         f"{head.size} with different roots",
                                         expected=seen_root.hex(), found=head.root.hex())
            if view.old_size != seen_size and head.size > seen_size:
                raise WrongStartingPoint(seen_size, view.old_size)
            if head.size == seen_size:  # the checkpoint it cosigned: nothing to prove
                return self.signer.sign(opened.text.encode("utf-8"), at=at).line()
            try:
                merkle.verify_consistency(seen_size, head.size, seen_root, head.root,
                                          list(view.proof))
            except VerificationFailed as error:
                raise VerificationFailed(f"{where} does not extend the checkpoint this site "
                                         f"cosigned at size {seen_size}: history was "
                                         "rewritten or forked", found=error.message) from None
        if state is None or head.size > state[0]:
            text = view.checkpoint.decode("utf-8")
            self.run(lambda: self.store.set_witnessed(self.origin, head.size, head.root, text,
                                                      at=at))
            self._seen = (head.size, head.root)
        # The cosignature over the note's text: what note.cosign signs, without re-reading.
        return self.signer.sign(opened.text.encode("utf-8"), at=at).line()


class Witnessed:
    """The log's side: proofs for its witnesses and the cosignatures they return."""

    def __init__(self, log: SiteLog, witnesses: Mapping[str, note.Verifier]) -> None:
        self.log, self.witnesses = log, dict(witnesses)
        self.seen: dict[str, int] = {}  # what each witness said, or last cosigned, it saw
        # Held while a checkpoint is shown to witnesses and their cosignatures gathered (a
        # round, a receipt), so no witness is ever shown a checkpoint older than one it
        # already cosigned: to a witness, a log that goes back is a log that lost its tail.
        self.lock = threading.RLock()
        self._last_head: tuple[bytes, note.Checkpoint] | None = None
        self._proofs: dict[tuple[int, int], tuple[bytes, ...]] = {}

    def seen_by(self, witness: str, said: Any) -> int:
        """Where to prove from: what the witness said it saw, or what it cosigned since
        (its state only grows), whichever is larger."""
        said = said if isinstance(said, int) and not isinstance(said, bool) else 0
        return max(said, self.seen.get(witness, 0))

    def view(self, checkpoint: bytes, old_size: Any, witness: str | None = None) -> LogView:
        """The view for a witness that says it last saw `old_size` (clamped: a witness that
        claims more than the log holds gets no proof and must refuse, which it will)."""
        head = self._head(checkpoint)
        if not isinstance(old_size, int) or isinstance(old_size, bool) or old_size < 0:
            old_size = 0
        if witness is not None:
            self.seen[witness] = old_size
        proof: tuple[bytes, ...] = ()
        if 0 < old_size < head.size:  # most witnesses saw the same size: one proof for all
            key = (old_size, head.size)
            if key not in self._proofs:
                kept = dict(list(self._proofs.items())[-15:])  # the newest 15
                self._proofs = {**kept,
                                key: tuple(self.log.consistency_proof(old_size, head.size))}
            proof = self._proofs[key]
        return LogView(checkpoint, old_size, proof)

    def _head(self, checkpoint: bytes) -> note.Checkpoint:
        """The checkpoint's head; parsed once per round, not once per witness."""
        cached = self._last_head
        if cached is not None and cached[0] == checkpoint:
            return cached[1]
        head = note.Checkpoint.parse(note.parse(checkpoint).text)
        self._last_head = (checkpoint, head)
        return head

    def accept(self, checkpoint: bytes, answers: Mapping[str, Any], *, at: datetime,
               defer: Callable[[Callable[[], object]], None] | None = None
               ) -> tuple[list[str], dict[str, str]]:
        """Verify and store the witnesses' cosignature lines; returns (who cosigned, who did
        not and why). A line that does not verify is never stored. `defer` runs the store
        write later (a round does not wait for it; a receipt does)."""
        parsed = note.parse(checkpoint)
        head, text = note.Checkpoint.parse(parsed.text), parsed.text.encode("utf-8")
        good: list[tuple[str, str, int]] = []
        refused: dict[str, str] = {}
        for site, line in sorted(answers.items()):
            key = self.witnesses.get(site)
            if key is None:
                refused[site] = "no witness key for this site in the federation's key set"
                continue
            if not isinstance(line, str) or len(line) > 512 or not line.endswith("\n"):
                refused[site] = "not a cosignature line"
                continue
            try:
                cosignature = note.verify_cosignature_line(text, line, key, now=at)
            except (MalformedEvidence, VerificationFailed) as error:
                refused[site] = error.message
                continue
            good.append((site, cosignature.line, cosignature.timestamp))
        if good:
            def store() -> None:
                self.log.store.add_cosignatures(head.size, good)

            (defer or (lambda job: job()))(store)
            for site, _, _ in good:
                self.seen[site] = head.size
        return [site for site, _, _ in good], refused

    def cosigned_note(self, size: int) -> bytes:
        """The stored checkpoint of `size` with every stored cosignature appended."""
        stored = self.log.store.checkpoint(size)
        if stored is None:
            raise VerificationFailed(f"no checkpoint of size {size} in this log")
        lines = "".join(item.line for item in self.log.store.cosignatures(size))
        return stored.note.encode("utf-8") + lines.encode("utf-8")
