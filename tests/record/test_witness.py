"""Witnessing a log: the view a log sends (and its wire form), a client's witness that
cosigns only a log that grew honestly, and the log's side that gathers the cosignatures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ccattest.errors import MalformedEvidence, StaleEvidence, VerificationFailed
from ccattest.record import merkle, note
from ccattest.record.entry import Entry
from ccattest.record.keys import SiteKeys, origin_for
from ccattest.record.log import SiteLog
from ccattest.record.store import RecordStore
from ccattest.record.witness import (
    MAX_PROOF_HASHES,
    LogView,
    Witness,
    Witnessed,
    WrongStartingPoint,
)

FEDERATION = "fed-w"
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HASH = "ab" * merkle.HASH_SIZE


@dataclass
class World:
    """A server's log and one client's (site-1's) witness of it, each on its own store."""

    log: SiteLog
    server: SiteKeys
    client: SiteKeys
    client_store: RecordStore
    writes: list[object]

    def grow(self, count: int) -> bytes:
        """Append `count` entries and return a checkpoint of the whole log."""
        for _ in range(count):
            number = self.log.size
            self.log.append(Entry("round", "server", AT + timedelta(seconds=number),
                                  {"round": number}))
        return self.log.checkpoint(at=AT)

    def witness(self) -> Witness:
        return Witness(self.client_store, self.client.witness, self.server.log.verifier,
                       run=self._run)

    def witnessed(self) -> Witnessed:
        return Witnessed(self.log, {"site-1": self.client.witness.verifier})

    def _run(self, job: Callable[[], Any]) -> Any:
        self.writes.append(job)
        return job()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    server, client = SiteKeys.generate(FEDERATION, "server"), SiteKeys.generate(FEDERATION,
                                                                                 "site-1")
    log_store = RecordStore.open(tmp_path / "server.sqlite3", origin=server.log.name)
    client_store = RecordStore.open(tmp_path / "client.sqlite3", origin=client.log.name)
    try:
        yield World(SiteLog(log_store, server.log, checkpoint_every=1000), server, client,
                    client_store, [])
    finally:
        log_store.close()
        client_store.close()


def _forged(world: World, size: int, root: bytes) -> bytes:
    """A checkpoint the server's key signs over any size and root it likes."""
    return note.sign_checkpoint(note.Checkpoint(world.log.origin, size, root), world.server.log)


def _size(checkpoint: bytes) -> int:
    return note.Checkpoint.parse(note.parse(checkpoint).text).size


def _count_proofs(world: World, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The old sizes of the consistency proofs the log computes from now on."""
    made: list[int] = []
    real = world.log.consistency_proof

    def counted(old_size: int, new_size: int) -> list[bytes]:
        made.append(old_size)
        return real(old_size, new_size)

    monkeypatch.setattr(world.log, "consistency_proof", counted)
    return made


# -- the wire form -----------------------------------------------------------------------------

def test_a_view_goes_over_the_wire_and_back(world: World) -> None:
    world.grow(3)
    checkpoint = world.grow(2)
    view = world.witnessed().view(checkpoint, 3)
    wire = view.to_wire()
    assert wire["from"] == 3 and wire["checkpoint"] == checkpoint.decode("utf-8")
    assert all(isinstance(item, str) for item in wire["proof"]) and wire["proof"]
    assert LogView.from_wire(wire) == view


@pytest.mark.parametrize("data", [None, "text", ["checkpoint"], 3])
def test_a_view_that_is_not_an_object_is_malformed(data: Any) -> None:
    with pytest.raises(MalformedEvidence, match="log view is malformed") as caught:
        LogView.from_wire(data)
    assert caught.value.expected == "an object"


@pytest.mark.parametrize("changes", [
    {"checkpoint": None}, {"checkpoint": b"bytes"}, {"checkpoint": "x" * (note.MAX_NOTE_BYTES + 1)},
    {"from": None}, {"from": "3"}, {"from": True}, {"from": -1}, {"from": merkle.MAX_SIZE + 1},
    {"from": 3.0}, {"proof": None}, {"proof": HASH}, {"proof": (HASH,)},
    {"proof": [HASH] * (MAX_PROOF_HASHES + 1)},
], ids=lambda changes: f"{next(iter(changes))}={str(next(iter(changes.values())))[:12]}")
def test_a_view_with_a_field_of_the_wrong_type_or_size_is_malformed(
        changes: dict[str, Any]) -> None:
    wire = {"checkpoint": "text\n", "from": 0, "proof": [], **changes}
    with pytest.raises(MalformedEvidence, match="log view is malformed") as caught:
        LogView.from_wire(wire)
    assert caught.value.expected == "checkpoint text, from (a size), proof (hashes)"


def test_a_view_at_the_limits_is_read() -> None:
    view = LogView.from_wire({"checkpoint": "", "from": merkle.MAX_SIZE,
                              "proof": [HASH] * MAX_PROOF_HASHES})
    assert view.old_size == merkle.MAX_SIZE and len(view.proof) == MAX_PROOF_HASHES


@pytest.mark.parametrize("item", ["zz" * merkle.HASH_SIZE, "ab" * 31, "ab" * 33, "", "abc",
                                  32, None, ["ab"], bytes(32)])
def test_a_view_whose_proof_holds_a_bad_hash_is_malformed(item: Any) -> None:
    with pytest.raises(MalformedEvidence, match="log view proof holds a bad hash") as caught:
        LogView.from_wire({"checkpoint": "", "from": 1, "proof": [HASH, item]})
    assert caught.value.found == repr(item)[:80]


def test_a_bad_hash_is_shown_shortened() -> None:
    with pytest.raises(MalformedEvidence) as caught:
        LogView.from_wire({"checkpoint": "", "from": 1, "proof": ["ab" * 100]})
    assert caught.value.found == repr("ab" * 100)[:80]


# -- the witness -------------------------------------------------------------------------------

def test_a_witness_cosigns_only_with_a_cosignature_key(world: World) -> None:
    with pytest.raises(VerificationFailed, match="a witness cosigns with a type 0x04 key"):
        Witness(world.client_store, world.client.log, world.server.log.verifier)


def test_a_witness_names_the_log_it_watches(world: World) -> None:
    assert world.witness().origin == origin_for(FEDERATION, "server")


def test_a_first_view_is_cosigned_and_remembered(world: World) -> None:
    checkpoint = world.grow(3)
    witness = world.witness()
    assert witness.seen_size() == 0
    line = witness.cosign(LogView(checkpoint, 0, ()), at=AT)
    cosignature = note.verify_cosignature_line(note.parse(checkpoint).text.encode("utf-8"),
                                               line, world.client.witness.verifier, now=AT)
    assert cosignature.timestamp == int(AT.timestamp())
    assert len(world.writes) == 1 and witness.seen_size() == 3
    stored = world.client_store.witnessed(world.log.origin)
    assert stored is not None and (stored.size, stored.note) == (3, checkpoint.decode())


def test_a_witness_restarted_remembers_what_it_cosigned(world: World) -> None:
    world.witness().cosign(LogView(world.grow(3), 0, ()), at=AT)
    assert world.witness().seen_size() == 3


def test_a_witness_runs_its_writes_itself_by_default(world: World) -> None:
    witness = Witness(world.client_store, world.client.witness, world.server.log.verifier)
    witness.cosign(LogView(world.grow(2), 0, ()), at=AT)
    assert world.client_store.witnessed(world.log.origin) is not None


def test_a_grown_log_with_a_good_proof_is_cosigned(world: World) -> None:
    witness, witnessed = world.witness(), world.witnessed()
    first = world.grow(3)
    witness.cosign(witnessed.view(first, witness.seen_size()), at=AT)
    second = world.grow(4)
    witness.cosign(witnessed.view(second, witness.seen_size()), at=AT)
    assert witness.seen_size() == 7 and len(world.writes) == 2


def test_the_same_checkpoint_again_is_cosigned_without_a_write(world: World) -> None:
    witness = world.witness()
    checkpoint = world.grow(3)
    first = witness.cosign(LogView(checkpoint, 0, ()), at=AT)
    again = witness.cosign(LogView(checkpoint, 3, ()), at=AT + timedelta(seconds=5))
    assert first != again  # a new time, a new cosignature line
    assert len(world.writes) == 1


def test_the_same_size_with_any_starting_point_needs_no_proof(world: World) -> None:
    witness = world.witness()
    checkpoint = world.grow(3)
    witness.cosign(LogView(checkpoint, 0, ()), at=AT)
    witness.cosign(LogView(checkpoint, 1, ()), at=AT)  # the size decides, not `from`
    assert len(world.writes) == 1


def test_a_view_the_log_did_not_sign_is_refused(world: World) -> None:
    world.grow(2)
    stranger = note.Signer.generate(world.log.origin)
    head = note.Checkpoint(world.log.origin, 2, world.log.tree.root())
    with pytest.raises(VerificationFailed, match="signed by no known key"):
        world.witness().cosign(LogView(note.sign_checkpoint(head, stranger), 0, ()), at=AT)
    assert world.writes == []


def test_a_log_that_shrank_is_refused(world: World) -> None:
    witness = world.witness()
    small = world.grow(3)
    witness.cosign(LogView(world.grow(2), 0, ()), at=AT)
    with pytest.raises(VerificationFailed, match="log shrank: its tail was dropped") as caught:
        witness.cosign(LogView(small, 5, ()), at=AT)
    assert caught.value.expected == "at least 5 entries (cosigned before)"
    assert caught.value.found == "3 entries"
    assert witness.seen_size() == 5 and len(world.writes) == 1


def test_a_fork_at_the_same_size_is_refused(world: World) -> None:
    witness = world.witness()
    honest = world.grow(3)
    witness.cosign(LogView(honest, 0, ()), at=AT)
    fork = _forged(world, 3, bytes(32))
    with pytest.raises(VerificationFailed, match="forked: two checkpoints of size 3") as caught:
        witness.cosign(LogView(fork, 3, ()), at=AT)
    assert caught.value.found == bytes(32).hex()
    assert caught.value.expected == note.Checkpoint.parse(note.parse(honest).text).root.hex()


def test_a_proof_from_another_size_asks_for_the_size_it_needs(world: World) -> None:
    witness, witnessed = world.witness(), world.witnessed()
    witness.cosign(LogView(world.grow(3), 0, ()), at=AT)
    world.grow(2)
    checkpoint = world.grow(2)
    with pytest.raises(WrongStartingPoint) as caught:
        witness.cosign(witnessed.view(checkpoint, 5), at=AT)
    error = caught.value
    assert isinstance(error, StaleEvidence)  # not an attack: the log asks again
    assert (error.needed, error.expected, error.found) == (3, 3, 5)
    assert "starts at another size than this witness cosigned" in error.message
    witness.cosign(witnessed.view(checkpoint, error.needed), at=AT)  # and then it works
    assert witness.seen_size() == 7


def test_a_proof_that_does_not_verify_is_refused_as_rewritten_history(world: World) -> None:
    witness, witnessed = world.witness(), world.witnessed()
    witness.cosign(LogView(world.grow(3), 0, ()), at=AT)
    view = witnessed.view(world.grow(3), 3)
    bad = LogView(view.checkpoint, 3, (bytes(32), *view.proof[1:]))
    with pytest.raises(VerificationFailed, match="history was rewritten or forked") as caught:
        witness.cosign(bad, at=AT)
    assert "does not extend the checkpoint this site cosigned at size 3" in caught.value.message
    assert "consistency proof" in str(caught.value.found)
    assert witness.seen_size() == 3 and len(world.writes) == 1


def test_a_rewritten_log_of_a_larger_size_is_refused(world: World) -> None:
    witness = world.witness()
    witness.cosign(LogView(world.grow(3), 0, ()), at=AT)
    world.grow(3)
    proof = tuple(world.log.consistency_proof(3, 6))  # the honest proof, for another root
    rewritten = _forged(world, 6, bytes(32))
    with pytest.raises(VerificationFailed, match="history was rewritten or forked"):
        witness.cosign(LogView(rewritten, 3, proof), at=AT)


def test_a_proof_with_too_few_hashes_is_refused(world: World) -> None:
    witness = world.witness()
    witness.cosign(LogView(world.grow(3), 0, ()), at=AT)
    with pytest.raises(VerificationFailed, match="history was rewritten") as caught:
        witness.cosign(LogView(world.grow(3), 3, ()), at=AT)
    assert "wrong number of hashes" in str(caught.value.found)


def test_a_witness_that_cosigned_the_empty_log_cosigns_it_once_it_grew(world: World) -> None:
    witness, witnessed = world.witness(), world.witnessed()
    empty = world.log.checkpoint(at=AT)
    assert _size(empty) == 0
    witness.cosign(witnessed.view(empty, witness.seen_size()), at=AT)
    grown = world.grow(2)
    witness.cosign(witnessed.view(grown, witness.seen_size()), at=AT)
    assert witness.seen_size() == 2


# -- the log's side ----------------------------------------------------------------------------

def test_a_view_from_a_smaller_size_carries_the_consistency_proof(world: World) -> None:
    world.grow(3)
    checkpoint = world.grow(4)
    witnessed = world.witnessed()
    view = witnessed.view(checkpoint, 3, "site-1")
    assert view == LogView(checkpoint, 3, tuple(world.log.consistency_proof(3, 7)))
    assert witnessed.seen == {"site-1": 3}


@pytest.mark.parametrize("old_size", [None, "3", 2.0, True, False, -1])
def test_a_view_for_a_size_that_is_not_a_size_starts_from_zero(world: World,
                                                                  old_size: Any) -> None:
    witnessed = world.witnessed()
    checkpoint = world.grow(4)
    assert witnessed.view(checkpoint, old_size, "site-1") == LogView(checkpoint, 0, ())
    assert witnessed.seen == {"site-1": 0}


@pytest.mark.parametrize("old_size", [4, 5, 1000])
def test_a_view_from_the_size_or_beyond_carries_no_proof(world: World, old_size: int) -> None:
    checkpoint = world.grow(4)
    assert world.witnessed().view(checkpoint, old_size) == LogView(checkpoint, old_size, ())


def test_a_witness_that_claims_more_than_the_log_holds_refuses(world: World) -> None:
    witness = world.witness()
    witness.cosign(LogView(world.grow(5), 0, ()), at=AT)
    # The log lost its tail and shows the witness a smaller tree: no proof can help.
    smaller = _forged(world, 3, merkle.root(world.log.store.leaf_hashes(0, 3)))
    view = world.witnessed().view(smaller, witness.seen_size())
    assert view.proof == ()
    with pytest.raises(VerificationFailed, match="shrank"):
        witness.cosign(view, at=AT)


def test_a_view_without_a_witness_name_records_nothing(world: World) -> None:
    witnessed = world.witnessed()
    witnessed.view(world.grow(2), 1)
    assert witnessed.seen == {}


def test_witnesses_that_saw_the_same_size_share_one_proof(world: World,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    world.grow(3)
    checkpoint = world.grow(3)
    witnessed = world.witnessed()
    made = _count_proofs(world, monkeypatch)
    views = [witnessed.view(checkpoint, 3, f"site-{n}") for n in range(1, 4)]
    witnessed.view(checkpoint, 2, "site-4")
    assert made == [3, 2]
    assert views[0].proof is views[1].proof is views[2].proof


def test_the_proof_cache_holds_sixteen_proofs(world: World,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoint = world.grow(20)
    witnessed = world.witnessed()
    for old_size in range(1, 17):
        witnessed.view(checkpoint, old_size)
    made = _count_proofs(world, monkeypatch)
    for old_size in range(1, 17):
        witnessed.view(checkpoint, old_size)
    assert made == []


def test_a_full_proof_cache_evicts_the_oldest_proof(world: World,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoint = world.grow(20)
    witnessed = world.witnessed()
    for old_size in range(1, 18):  # 17 sizes: one too many, the first should go
        witnessed.view(checkpoint, old_size)
    made = _count_proofs(world, monkeypatch)
    witnessed.view(checkpoint, 16)  # the one made just before the newest
    assert made == []


def test_the_head_is_parsed_again_for_a_new_checkpoint(world: World) -> None:
    witnessed = world.witnessed()
    first = world.grow(2)
    assert witnessed.view(first, 1).proof
    second = world.grow(2)
    view = witnessed.view(second, 2)
    assert view.proof == tuple(world.log.consistency_proof(2, 4))


def _line(world: World, checkpoint: bytes, signer: note.Signer | None = None) -> str:
    signer = signer or world.client.witness
    return signer.sign(note.parse(checkpoint).text.encode("utf-8"), at=AT).line()


def test_accepted_cosignatures_are_stored_and_make_the_cosigned_note(world: World) -> None:
    witnessed = world.witnessed()
    checkpoint = world.grow(3)
    line = world.witness().cosign(witnessed.view(checkpoint, 0, "site-1"), at=AT)
    assert witnessed.accept(checkpoint, {"site-1": line}, at=AT) == (["site-1"], {})
    assert witnessed.seen == {"site-1": 3}
    cosigned = witnessed.cosigned_note(3)
    assert cosigned == checkpoint + line.encode("utf-8")
    note.verify_cosignature(cosigned, world.client.witness.verifier, now=AT)


def test_a_cosigned_note_of_a_checkpoint_without_cosignatures_is_the_checkpoint(
        world: World) -> None:
    checkpoint = world.grow(2)
    assert world.witnessed().cosigned_note(2) == checkpoint


def test_accept_can_defer_the_store_write(world: World) -> None:
    witnessed = world.witnessed()
    checkpoint = world.grow(3)
    deferred: list[Callable[[], object]] = []
    cosigned, refused = witnessed.accept(checkpoint, {"site-1": _line(world, checkpoint)},
                                         at=AT, defer=deferred.append)
    assert (cosigned, refused, len(deferred)) == (["site-1"], {}, 1)
    assert witnessed.seen == {"site-1": 3}
    assert world.log.store.cosignatures(3) == []  # not yet written
    deferred[0]()
    assert [c.witness for c in world.log.store.cosignatures(3)] == ["site-1"]


def test_accept_refuses_a_site_that_is_not_a_known_witness(world: World) -> None:
    witnessed = world.witnessed()
    checkpoint = world.grow(2)
    deferred: list[Callable[[], object]] = []
    stranger = note.Signer.generate("site-9", note.COSIGNATURE_V1)
    cosigned, refused = witnessed.accept(checkpoint, {"site-9": _line(world, checkpoint,
                                                                      stranger)},
                                         at=AT, defer=deferred.append)
    assert cosigned == [] and deferred == []  # nothing to store: no write is queued
    assert refused == {"site-9": "no witness key for this site in the federation's key set"}
    assert witnessed.seen == {}


@pytest.mark.parametrize("line", [None, 7, b"\xe2\x80\x94 site-1 AAAA\n", "x" * 512 + "\n"],
                         ids=["none", "int", "bytes", "overlong"])
def test_accept_refuses_what_is_not_a_cosignature_line(world: World, line: Any) -> None:
    checkpoint = world.grow(2)
    assert world.witnessed().accept(checkpoint, {"site-1": line}, at=AT) == (
        [], {"site-1": "not a cosignature line"})


def test_accept_refuses_a_good_line_without_its_newline(world: World) -> None:
    checkpoint = world.grow(2)
    line = _line(world, checkpoint)
    assert world.witnessed().accept(checkpoint, {"site-1": line.rstrip("\n")}, at=AT) == (
        [], {"site-1": "not a cosignature line"})


def test_accept_refuses_a_line_by_another_key(world: World) -> None:
    checkpoint = world.grow(2)
    impostor = note.Signer.generate("site-1", note.COSIGNATURE_V1)
    cosigned, refused = world.witnessed().accept(
        checkpoint, {"site-1": _line(world, checkpoint, impostor)}, at=AT)
    assert cosigned == [] and refused["site-1"] == "the line is not a cosignature by site-1"
    assert world.log.store.cosignatures(2) == []


def test_accept_refuses_a_line_over_another_checkpoint(world: World) -> None:
    other = world.grow(2)
    checkpoint = world.grow(1)
    _, refused = world.witnessed().accept(checkpoint, {"site-1": _line(world, other)}, at=AT)
    assert refused["site-1"].startswith("signature by site-1+") and "does not verify" in \
        refused["site-1"]


def test_accept_refuses_a_malformed_line(world: World) -> None:
    checkpoint = world.grow(2)
    _, refused = world.witnessed().accept(checkpoint, {"site-1": "— site-1 !!!\n"}, at=AT)
    assert refused == {"site-1": "signature line 1 is not base64 of a key ID and a signature"}


def test_accept_refuses_a_cosignature_dated_in_the_future(world: World) -> None:
    checkpoint = world.grow(2)
    line = world.client.witness.sign(note.parse(checkpoint).text.encode("utf-8"),
                                     at=AT + timedelta(hours=1)).line()
    _, refused = world.witnessed().accept(checkpoint, {"site-1": line}, at=AT)
    assert refused == {"site-1": "cosignature by site-1 is dated in the future"}


def test_accept_keeps_the_good_lines_among_bad_ones(world: World) -> None:
    site_2 = SiteKeys.generate(FEDERATION, "site-2")
    witnessed = Witnessed(world.log, {"site-1": world.client.witness.verifier,
                                      "site-2": site_2.witness.verifier})
    checkpoint = world.grow(2)
    cosigned, refused = witnessed.accept(checkpoint, {"site-2": _line(world, checkpoint),
                                                      "site-1": _line(world, checkpoint)},
                                         at=AT)
    assert cosigned == ["site-1"] and list(refused) == ["site-2"]
    assert witnessed.seen == {"site-1": 2}
    assert [c.witness for c in world.log.store.cosignatures(2)] == ["site-1"]


def test_a_cosigned_note_of_an_unknown_size_is_refused(world: World) -> None:
    world.grow(2)
    with pytest.raises(VerificationFailed, match="no checkpoint of size 5 in this log"):
        world.witnessed().cosigned_note(5)



def test_the_checkpoint_it_already_cosigned_needs_no_proof(world: World) -> None:
    """A log may show a witness again the checkpoint it cosigned last (a receipt's, then a
    round's), with a proof from an older size: nothing to prove, cosign it again."""
    witness, witnessed = world.witness(), world.witnessed()
    first = world.grow(3)
    witness.cosign(witnessed.view(first, 0, "site-1"), at=AT)
    second = world.grow(2)
    witness.cosign(witnessed.view(second, 3, "site-1"), at=AT)
    writes = len(world.writes)
    line = witness.cosign(witnessed.view(second, 3, "site-1"), at=AT)  # as if still at 3
    assert line.startswith("\u2014 site-1 ") and witness.seen_size() == 5
    assert len(world.writes) == writes  # nothing new to remember
    assert witnessed.seen_by("site-1", 2) == 3 and witnessed.seen_by("site-1", 9) == 9
    assert witnessed.seen_by("site-9", True) == 0
