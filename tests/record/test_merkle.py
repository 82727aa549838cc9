"""record.merkle on trees we build: generated proofs verify, any change to a proof, index,
size, leaf or tree hash is refused with a typed error, and CompactTree agrees with root()."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccattest.errors import MalformedEvidence, VerificationFailed, failed_check
from ccattest.record.merkle import (
    EMPTY_ROOT,
    MAX_SIZE,
    CompactTree,
    TiledLeaves,
    consistency_path,
    consistency_proof,
    inclusion_path,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    root_from_inclusion,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [leaf_hash(n.to_bytes(4, "big")) for n in range(300)]
H = hashlib.sha256(b"some other hash").digest()


def flipped(proof: list[bytes], element: int, byte: int) -> list[bytes]:
    changed = bytearray(proof[element])
    changed[byte] ^= 0x01
    return [*proof[:element], bytes(changed), *proof[element + 1:]]


# -- the compact tree

def test_compact_tree_agrees_with_root_at_every_size_to_300():
    tree = CompactTree()
    assert tree.root() == EMPTY_ROOT == root([])
    for size, leaf in enumerate(LEAVES, start=1):
        assert tree.append(leaf) == size - 1
        assert tree.size == size
        assert len(tree.hashes) == size.bit_count()  # O(log n) state, so O(log n) appends
        assert tree.root() == root(LEAVES[:size])


@given(st.lists(st.binary(min_size=32, max_size=32), max_size=300))
def test_compact_tree_of_any_leaves_and_its_restore(leaves):
    tree = CompactTree.of(leaves)
    assert tree.root() == root(leaves)
    again = CompactTree.restore(tree.size, tree.hashes)
    again.append(H)
    assert again.root() == root([*leaves, H])


def test_compact_tree_refuses_what_is_not_a_tree():
    with pytest.raises(MalformedEvidence, match="not a SHA-256 hash"):
        CompactTree().append(b"short")
    with pytest.raises(MalformedEvidence, match="not a hash"):
        CompactTree().append("00" * 32)  # type: ignore[arg-type]
    with pytest.raises(MalformedEvidence, match="wrong number of hashes"):
        CompactTree.restore(3, [H])
    with pytest.raises(MalformedEvidence, match="not a list"):
        CompactTree.restore(1, H)  # type: ignore[arg-type]
    with pytest.raises(MalformedEvidence, match="compact tree hash 1"):
        CompactTree.restore(3, [H, b""])
    with pytest.raises(MalformedEvidence, match="out of range"):
        CompactTree.restore(-1, [])
    full = CompactTree.restore(MAX_SIZE, [H] * 64)
    with pytest.raises(MalformedEvidence, match="full"):
        full.append(H)
    assert full.size == MAX_SIZE


# -- proofs from our own trees, exhaustively for small sizes

@pytest.mark.parametrize("size", range(1, 34))
def test_every_inclusion_proof_verifies_and_nothing_else_does(size):
    leaves = LEAVES[:size]
    tree_hash = root(leaves)
    for index in range(size):
        proof = inclusion_proof(index, leaves)
        verify_inclusion(index, size, leaves[index], proof, tree_hash)
        assert root_from_inclusion(index, size, leaves[index], tuple(proof)) == tree_hash
        for other in {0, index - 1, index + 1, index ^ 1, size - 1} - {index}:
            if 0 <= other < size:
                with pytest.raises(VerificationFailed):
                    verify_inclusion(other, size, leaves[index], proof, tree_hash)
        # Another size with that size's tree hash (a proof replayed against another
        # checkpoint). With this size's hash, a size of the same shape would pass: the check
        # cannot tell a leaf from an inner node, which is why size and tree hash must come
        # from one signed checkpoint (see verify_inclusion).
        for other in (index + 1, size - 1, size + 1, 2 * size):
            if other != size and other > index:
                with pytest.raises(VerificationFailed):
                    verify_inclusion(index, other, leaves[index], proof, root(LEAVES[:other]))
        with pytest.raises(VerificationFailed):
            verify_inclusion(index, size, H, proof, tree_hash)
        with pytest.raises(VerificationFailed, match="different tree hash"):
            verify_inclusion(index, size, leaves[index], proof, H)
        if size <= 17:  # every byte of every element: 32 * log2(n) checks per leaf
            for element in range(len(proof)):
                for byte in range(32):
                    with pytest.raises(VerificationFailed, match="different tree hash"):
                        verify_inclusion(index, size, leaves[index],
                                         flipped(proof, element, byte), tree_hash)
        with pytest.raises(VerificationFailed, match="wrong number of hashes"):
            verify_inclusion(index, size, leaves[index], [*proof, H], tree_hash)
        if proof:
            with pytest.raises(VerificationFailed, match="wrong number of hashes"):
                verify_inclusion(index, size, leaves[index], proof[:-1], tree_hash)


@pytest.mark.parametrize("new_size", range(1, 34))
def test_every_consistency_proof_verifies_and_nothing_else_does(new_size):
    leaves = LEAVES[:new_size]
    new_hash = root(leaves)
    for old_size in range(1, new_size + 1):
        old_hash = root(leaves[:old_size])
        proof = consistency_proof(old_size, leaves)
        verify_consistency(old_size, new_size, old_hash, new_hash, proof)
        if old_size == new_size:
            assert proof == []
            continue
        for other in {1, old_size - 1, old_size + 1, old_size ^ 1} - {old_size}:
            if 0 < other < new_size:
                with pytest.raises(VerificationFailed):
                    verify_consistency(other, new_size, root(LEAVES[:other]), new_hash, proof)
        for other in (new_size - 1, new_size + 1, 2 * new_size):
            if other > old_size:
                with pytest.raises(VerificationFailed):
                    verify_consistency(old_size, other, old_hash, root(LEAVES[:other]), proof)
        # When the old tree is a subtree of the new one its hash seeds the walk, so a wrong
        # one shows in the new tree hash.
        with pytest.raises(VerificationFailed, match=r"different (old|new) tree hash"):
            verify_consistency(old_size, new_size, H, new_hash, proof)
        with pytest.raises(VerificationFailed, match="new tree hash"):
            verify_consistency(old_size, new_size, old_hash, H, proof)
        with pytest.raises(VerificationFailed):
            verify_consistency(old_size, new_size, new_hash, old_hash, proof)
        if new_size <= 17:
            for element in range(len(proof)):
                for byte in range(32):
                    with pytest.raises(VerificationFailed, match=r"different (old|new) tree"):
                        verify_consistency(old_size, new_size, old_hash, new_hash,
                                           flipped(proof, element, byte))
        with pytest.raises(VerificationFailed, match="wrong number of hashes"):
            verify_consistency(old_size, new_size, old_hash, new_hash, [*proof, H])
        with pytest.raises(VerificationFailed, match="wrong number of hashes"):
            verify_consistency(old_size, new_size, old_hash, new_hash, proof[:-1])


@given(st.data(), st.integers(1, 300))
def test_proofs_over_larger_trees_against_the_compact_tree(data, size):
    leaves = LEAVES[:size]
    tree_hash = CompactTree.of(leaves).root()
    index = data.draw(st.integers(0, size - 1))
    verify_inclusion(index, size, leaves[index], inclusion_proof(index, leaves), tree_hash)
    old_size = data.draw(st.integers(1, size))
    verify_consistency(old_size, size, CompactTree.of(leaves[:old_size]).root(), tree_hash,
                       consistency_proof(old_size, leaves))


def test_proof_shapes_follow_the_rfc_examples():
    # RFC 9162 2.1.5: the 7-leaf tree's audit paths and consistency proofs.
    d = LEAVES[:7]
    g, h = node_hash(d[0], d[1]), node_hash(d[2], d[3])
    i, j, k = node_hash(d[4], d[5]), node_hash(g, h), node_hash(node_hash(d[4], d[5]), d[6])
    assert inclusion_proof(0, d) == [d[1], h, k]
    assert inclusion_proof(3, d) == [d[2], g, k]
    assert inclusion_proof(4, d) == [d[5], d[6], j]
    assert inclusion_proof(6, d) == [i, j]
    assert consistency_proof(3, d) == [d[2], d[3], g, k]
    assert consistency_proof(4, d) == [k]
    assert consistency_proof(6, d) == [i, d[6], j]


# -- hostile input: a typed error with a reason, never IndexError or a silent pass

def test_equal_sizes_need_an_empty_proof_and_equal_tree_hashes():
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(5, 5, H, H, ())
    with pytest.raises(VerificationFailed, match="empty tree has another"):
        verify_consistency(0, 0, H, H, [])
    with pytest.raises(VerificationFailed, match="same size have different"):
        verify_consistency(5, 5, H, EMPTY_ROOT, [])
    with pytest.raises(VerificationFailed, match="wrong number of hashes"):
        verify_consistency(5, 5, H, H, [H])


def test_sizes_that_cannot_be_proved_are_refused():
    with pytest.raises(VerificationFailed, match="smaller than the old") as caught:
        verify_consistency(8, 7, H, H, [H])
    assert failed_check(caught.value) == "verification"  # not "certificate chain"
    with pytest.raises(VerificationFailed, match="empty tree"):
        verify_consistency(0, 3, EMPTY_ROOT, H, [])
    with pytest.raises(VerificationFailed, match="outside the tree"):
        verify_inclusion(8, 8, H, [H, H, H], H)
    with pytest.raises(VerificationFailed, match="outside the tree"):
        verify_inclusion(0, 0, H, [], EMPTY_ROOT)
    with pytest.raises(VerificationFailed, match="outside the tree"):
        inclusion_proof(3, LEAVES[:3])
    with pytest.raises(VerificationFailed, match="smaller than the old"):
        consistency_proof(4, LEAVES[:3])
    with pytest.raises(VerificationFailed, match="empty tree"):
        consistency_proof(0, LEAVES[:3])
    assert consistency_proof(0, []) == []


@pytest.mark.parametrize(("number", "message"), [
    (-1, "out of range"), (MAX_SIZE + 1, "out of range"), (True, "not an integer"),
    (3.0, "not an integer"), ("3", "not an integer"),
])
def test_numbers_outside_uint64_are_malformed(number, message):
    with pytest.raises(MalformedEvidence, match=message):
        verify_inclusion(number, 4, H, [H, H], H)
    with pytest.raises(MalformedEvidence, match=message):
        verify_inclusion(0, number, H, [H, H], H)
    with pytest.raises(MalformedEvidence, match=message):
        verify_consistency(number, 4, H, H, [H])
    with pytest.raises(MalformedEvidence, match=message):
        verify_consistency(1, number, H, H, [H])
    with pytest.raises(MalformedEvidence, match=message):
        inclusion_proof(number, LEAVES[:4])
    with pytest.raises(MalformedEvidence, match=message):
        consistency_proof(number, LEAVES[:4])


@pytest.mark.parametrize(("bad", "message"), [
    (b"", "not a SHA-256 hash"), (H + b"\x00", "not a SHA-256 hash"), (H[:31], "not a SHA"),
    (bytearray(H), "not a hash"), (H.hex(), "not a hash"), (None, "not a hash"),
])
def test_hashes_that_are_not_32_bytes_are_malformed(bad, message):
    leaves = LEAVES[:4]
    good_root, proof = root(leaves), inclusion_proof(1, leaves)
    with pytest.raises(MalformedEvidence, match=message):
        verify_inclusion(1, 4, bad, proof, good_root)
    with pytest.raises(MalformedEvidence, match=message):
        verify_inclusion(1, 4, leaves[1], proof, bad)
    with pytest.raises(MalformedEvidence, match=f"inclusion proof element 1 is {message}"):
        verify_inclusion(1, 4, leaves[1], [proof[0], bad], good_root)
    with pytest.raises(MalformedEvidence, match=message):
        verify_consistency(1, 4, bad, good_root, [H, H])
    with pytest.raises(MalformedEvidence, match=message):
        verify_consistency(1, 4, leaves[0], bad, [H, H])
    with pytest.raises(MalformedEvidence, match=message):
        verify_consistency(1, 4, leaves[0], good_root, [H, bad])
    with pytest.raises(MalformedEvidence, match=f"leaf hash 2 is {message}"):
        inclusion_proof(0, [*LEAVES[:2], bad])
    with pytest.raises(MalformedEvidence, match=message):
        consistency_proof(1, [*LEAVES[:2], bad])


@pytest.mark.parametrize("proof", [b"".join([H, H]), H.hex(), None, {H, H[::-1]}, iter([H])])
def test_a_proof_must_be_a_list_of_hashes(proof):
    with pytest.raises(MalformedEvidence, match="not a list of hashes"):
        verify_inclusion(1, 4, H, proof, H)
    with pytest.raises(MalformedEvidence, match="not a list of hashes"):
        verify_consistency(1, 4, H, H, proof)


def test_huge_trees_fail_cleanly():
    # Near 2^64 the walk is 64 levels deep; a proof of the right length just does not match.
    index, size = MAX_SIZE - 1, MAX_SIZE
    with pytest.raises(VerificationFailed, match="wrong number of hashes") as caught:
        verify_inclusion(index, size, H, [], H)
    proof = [H] * caught.value.expected
    assert 0 < len(proof) <= 64
    with pytest.raises(VerificationFailed, match="different tree hash"):
        verify_inclusion(index, size, H, proof, H)
    with pytest.raises(VerificationFailed, match="wrong number of hashes") as caught:
        verify_consistency(MAX_SIZE // 3, MAX_SIZE, H, H, [])
    proof = [H] * caught.value.expected
    assert 0 < len(proof) <= 65
    with pytest.raises(VerificationFailed, match=r"different (old|new) tree hash"):
        verify_consistency(MAX_SIZE // 3, MAX_SIZE, H, H, proof)


# -- TiledLeaves: proofs from tile hashes and fetched leaves, equal to the leaves' own

def _leaf(n: int) -> bytes:
    return leaf_hash(n.to_bytes(4, "big"))


def _tiled(leaves: list[bytes]) -> tuple[TiledLeaves, list[tuple[int, int]]]:
    fetched: list[tuple[int, int]] = []

    def fetch(lo: int, hi: int) -> list[bytes]:
        fetched.append((lo, hi))
        return leaves[lo:hi]

    return TiledLeaves.of(leaves, fetch), fetched


@pytest.mark.parametrize("size", [1, 2, 255, 256, 257, 511, 512, 513, 1000, 1280, 2049])
def test_tiled_proofs_equal_the_leaves_proofs(size: int) -> None:
    leaves = [_leaf(n) for n in range(size)]
    tiled, fetched = _tiled(leaves)
    assert tiled.size == size
    for index in sorted({0, size // 3, size - 1, max(0, size - 257)}):
        assert inclusion_path(index, size, tiled.subtree) == inclusion_proof(index, leaves)
    for old in sorted({1, size // 2, max(1, size - 1), 256, 300} - {0}):
        if old <= size:
            assert (consistency_path(old, size, tiled.subtree)
                    == consistency_proof(old, leaves))
    assert all(hi - lo <= TiledLeaves.TILE for lo, hi in fetched)  # never the whole log


@given(st.integers(1, 3000), st.data())
def test_tiled_proofs_match_for_any_size(size: int, data: st.DataObject) -> None:
    leaves = [_leaf(n) for n in range(size)]
    tiled, _ = _tiled(leaves)
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(1, size))
    assert inclusion_path(index, size, tiled.subtree) == inclusion_proof(index, leaves)
    assert consistency_path(old, size, tiled.subtree) == consistency_proof(old, leaves)


def test_tiled_leaves_refuse_a_store_that_returns_too_few() -> None:
    leaves = [_leaf(n) for n in range(600)]
    tiled = TiledLeaves.of(leaves, lambda lo, hi: leaves[lo:hi - 1])
    with pytest.raises(VerificationFailed, match="wrong number of leaf hashes"):
        inclusion_path(3, 600, tiled.subtree)
