"""Signed notes and checkpoints of the federation's transparency log, which sites send each
other to witness and cosign: record.note.parse, Checkpoint.parse, and
open_checkpoint (signature lines against the log's key) and record.entry.decode."""

from __future__ import annotations

import common

with common.instrumented():
    from ccattest.record import entry as record_entry
    from ccattest.record import note

SIGNER = note.Signer.generate("fuzz.example/log")
VERIFIER = SIGNER.verifier


def entry(data: bytes) -> None:
    mode, rest = common.split_mode(data, 3)
    if mode == 0:
        parsed = note.parse(rest)
        note.Checkpoint.parse(parsed.text)
    elif mode == 1:
        note.open_checkpoint(rest, VERIFIER)
    else:
        record_entry.decode(rest)


def seeds() -> list[bytes]:
    checkpoint = note.Checkpoint("fuzz.example/log", 3, bytes(range(32)))
    signed = note.sign_checkpoint(checkpoint, SIGNER)
    entries = [b'{"at":"2025-01-01T00:00:00+00:00","data":{},"kind":"verdict","site":"a","v":1}']
    return (common.with_mode(0, [signed]) + common.with_mode(1, [signed])
            + common.with_mode(2, entries))


if __name__ == "__main__":
    common.main("record_note", entry, seeds())
