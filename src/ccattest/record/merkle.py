"""RFC 9162 section 2.1 Merkle tree hashing: the tree a checkpoint names.

leaf hash = SHA-256(0x00 || entry), node hash = SHA-256(0x01 || left || right); the tree
over n leaves splits at k, the largest power of two smaller than n.

Proofs (2.1.3 inclusion, 2.1.4 consistency) are generated over a sequence of leaf hashes and
checked by walking the same split from the top (so generator and checker share one reading
of the RFC's recursive definitions), and CompactTree appends in O(log n).

Checkers raise, never return False: MalformedEvidence when the input cannot be a proof at all
(a hash that is not 32 bytes, a number outside uint64, a proof that is not a list of hashes);
VerificationFailed when it is well formed but proves nothing (an index outside the tree, a
smaller new tree, a proof of the wrong length, hashes that do not match). Messages avoid the
words errors.failed_check reads as certificate-chain failures ("root", "chain").
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from ..errors import MalformedEvidence, VerificationFailed

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}) = SHA-256()
MAX_SIZE = 2**64 - 1  # tree sizes and indices are uint64 in checkpoints and RFC 9162
RangeRoot = Callable[[int, int], bytes]  # (lo, hi) -> MTH(D[lo:hi]), for one node of the tree


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes (not entries)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = split_point(len(leaves))
    return node_hash(root(leaves[:k]), root(leaves[k:]))


# -- input checks: shared by generators and checkers, since sizes and indices may come
# -- from a peer's request as easily as from our own store.

def _check_number(value: object, what: str) -> int:
    # bool is an int subclass; True as a tree size is a bug, not a size.
    if type(value) is not int:
        raise MalformedEvidence(f"{what} is not an integer", found=type(value).__name__)
    if not 0 <= value <= MAX_SIZE:
        raise MalformedEvidence(f"{what} is out of range", expected="0 to 2^64 - 1",
                                found=str(value))
    return value


def _check_hash(value: object, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise MalformedEvidence(f"{what} is not a hash", expected="32 bytes",
                                found=type(value).__name__)
    if len(value) != HASH_SIZE:
        raise MalformedEvidence(f"{what} is not a SHA-256 hash", expected="32 bytes",
                                found=f"{len(value)} bytes")
    return value


def _check_proof(proof: object, expected: int, what: str) -> list[bytes]:
    # A str or bytes is iterable too; only a list or tuple of hashes is a proof.
    if not isinstance(proof, list | tuple):
        raise MalformedEvidence(f"{what} is not a list of hashes", found=type(proof).__name__)
    hashes = [_check_hash(item, f"{what} element {number}") for number, item in
              enumerate(proof)]
    if len(hashes) != expected:
        raise VerificationFailed(f"{what} has the wrong number of hashes",
                                 expected=expected, found=len(hashes))
    return hashes


def _check_leaves(leaves: Sequence[bytes]) -> None:
    for number, item in enumerate(leaves):
        _check_hash(item, f"leaf hash {number}")


def _range_root(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) without slicing: proof generation touches each leaf once."""
    if hi - lo == 1:
        return leaves[lo]
    k = lo + split_point(hi - lo)
    return node_hash(_range_root(leaves, lo, k), _range_root(leaves, k, hi))


# -- inclusion (RFC 9162 2.1.3)

def _inclusion_sides(index: int, size: int) -> list[bool]:
    """For each level from the top down, whether the leaf lies in the right subtree: the
    shape PATH(m, D[n]) follows. Its length is the proof's length."""
    sides = []
    while size > 1:
        k = split_point(size)
        if index < k:
            sides.append(False)
            size = k
        else:
            sides.append(True)
            index, size = index - k, size - k
    return sides


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) (2.1.3.1) over n = len(leaves) leaf hashes, nearest sibling first."""
    size = _check_number(len(leaves), "tree size")
    _check_leaves(leaves)
    return inclusion_path(index, size, lambda lo, hi: _range_root(leaves, lo, hi))


def inclusion_path(index: int, size: int, subtree: RangeRoot) -> list[bytes]:
    """PATH(index, D[size]) with MTH(D[lo:hi]) from `subtree` (the RFC tree's nodes only)."""
    index = _check_number(index, "leaf index")
    if index >= size:
        raise VerificationFailed("leaf index is outside the tree", expected=f"below {size}",
                                 found=index)
    proof = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = lo + split_point(hi - lo)
        if index < k:
            proof.append(subtree(k, hi))
            hi = k
        else:
            proof.append(subtree(lo, k))
            lo = k
    proof.reverse()  # collected top down; PATH lists the leaf's sibling first
    return proof


def root_from_inclusion(index: int, size: int, leaf: bytes,
                        proof: Sequence[bytes]) -> bytes:
    """The tree hash a leaf and its inclusion proof imply (2.1.3.2)."""
    index, size = _check_number(index, "leaf index"), _check_number(size, "tree size")
    leaf = _check_hash(leaf, "leaf hash")
    if index >= size:
        raise VerificationFailed("leaf index is outside the tree", expected=f"below {size}",
                                 found=index)
    sides = _inclusion_sides(index, size)
    hashes = _check_proof(proof, len(sides), "inclusion proof")
    node = leaf
    for sibling, right in zip(hashes, reversed(sides), strict=True):
        node = node_hash(sibling, node) if right else node_hash(node, sibling)
    return node


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     root: bytes) -> None:
    """Raise unless proof shows leaf at index in the tree of size with tree hash root.

    size and root must come from one signed checkpoint: the walk cannot tell a leaf from an
    inner node, so a tree hash paired with another size of the same shape may pass."""
    root = _check_hash(root, "tree hash")
    computed = root_from_inclusion(index, size, leaf, proof)
    if computed != root:  # tree hashes are public: no constant-time compare needed
        raise VerificationFailed("inclusion proof leads to a different tree hash",
                                 expected=root.hex(), found=computed.hex())


# -- consistency (RFC 9162 2.1.4)

def _consistency_shape(old_size: int, new_size: int) -> tuple[list[bool], bool]:
    """SUBPROOF(m, D[n], true)'s shape from the top down: per level whether the old tree
    reaches into the right subtree, and whether the old tree is itself a subtree of the new
    one (then its hash seeds the proof instead of the proof's first element)."""
    sides, whole = [], True
    while old_size != new_size:
        k = split_point(new_size)
        if old_size <= k:
            sides.append(False)
            new_size = k
        else:
            sides.append(True)
            old_size, new_size, whole = old_size - k, new_size - k, False
    return sides, whole


def _check_sizes(old_size: object, new_size: object) -> tuple[int, int]:
    old, new = _check_number(old_size, "old tree size"), _check_number(new_size, "new tree size")
    if old > new:  # a log that shrank: a rollback, not a typo
        raise VerificationFailed("the new tree is smaller than the old one",
                                 expected=f"at least {old} leaves", found=new)
    if old == 0 and new > 0:
        # RFC 9162 defines proofs for 0 < m < n only; transparency-dev refuses this too.
        raise VerificationFailed("no consistency proof starts at the empty tree",
                                 hint="trust the first tree head on its own signature")
    return old, new


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) (2.1.4.1) from the tree of old_size leaves to n = len(leaves):
    empty when the sizes are equal."""
    _check_sizes(old_size, len(leaves))
    _check_leaves(leaves)
    return consistency_path(old_size, len(leaves), lambda lo, hi: _range_root(leaves, lo, hi))


def consistency_path(old_size: int, size: int, subtree: RangeRoot) -> list[bytes]:
    """PROOF(old_size, D[size]) with MTH(D[lo:hi]) from `subtree`."""
    old, size = _check_sizes(old_size, size)
    proof = []
    lo, hi, whole = 0, size, True
    while old != hi - lo:
        k = split_point(hi - lo)
        if old <= k:
            proof.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            proof.append(subtree(lo, lo + k))
            lo, old, whole = lo + k, old - k, False
    if not whole:
        proof.append(subtree(lo, hi))  # the subtree both trees share
    proof.reverse()
    return proof


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """Raise unless proof shows the tree (old_size, old_root) is a prefix of
    (new_size, new_root) (2.1.4.2)."""
    old_root = _check_hash(old_root, "old tree hash")
    new_root = _check_hash(new_root, "new tree hash")
    old, new = _check_sizes(old_size, new_size)
    if old == new:
        _check_proof(proof, 0, "consistency proof")
        if old == 0 and old_root != EMPTY_ROOT:
            raise VerificationFailed("an empty tree has another tree hash",
                                     expected=EMPTY_ROOT.hex(), found=old_root.hex())
        if old_root != new_root:
            raise VerificationFailed("two trees of the same size have different tree hashes",
                                     expected=old_root.hex(), found=new_root.hex())
        return
    sides, whole = _consistency_shape(old, new)
    hashes = _check_proof(proof, len(sides) + (0 if whole else 1), "consistency proof")
    if whole:
        seed, siblings = old_root, hashes
    else:
        seed, siblings = hashes[0], hashes[1:]
    old_hash = new_hash = seed
    for sibling, right in zip(siblings, reversed(sides), strict=True):
        if right:  # a left sibling lies inside both trees
            old_hash, new_hash = node_hash(sibling, old_hash), node_hash(sibling, new_hash)
        else:  # a right sibling holds only leaves appended since
            new_hash = node_hash(new_hash, sibling)
    if old_hash != old_root:
        raise VerificationFailed("consistency proof leads to a different old tree hash",
                                 expected=old_root.hex(), found=old_hash.hex())
    if new_hash != new_root:
        raise VerificationFailed("consistency proof leads to a different new tree hash",
                                 expected=new_root.hex(), found=new_hash.hex())


# -- the compact tree a site appends to

class CompactTree:
    """The hashes of the perfect subtrees along the tree's right border, largest first (one
    per set bit of size): enough to append in O(log n) and to compute the tree hash, without
    holding the leaves."""

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def restore(cls, size: int, hashes: Sequence[bytes]) -> CompactTree:
        """A tree from its stored size and border hashes (as `hashes` returned them)."""
        size = _check_number(size, "tree size")
        if not isinstance(hashes, list | tuple):
            raise MalformedEvidence("compact tree hashes are not a list",
                                    found=type(hashes).__name__)
        if len(hashes) != size.bit_count():
            raise MalformedEvidence("compact tree has the wrong number of hashes for its size",
                                    expected=size.bit_count(), found=len(hashes))
        tree = cls()
        tree._size = size
        tree._hashes = [_check_hash(item, f"compact tree hash {n}")
                        for n, item in enumerate(hashes)]
        return tree

    @classmethod
    def of(cls, leaves: Iterable[bytes]) -> CompactTree:
        tree = cls()
        for leaf in leaves:
            tree.append(leaf)
        return tree

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def append(self, leaf: bytes) -> int:
        """Add a leaf hash; returns its index. Each trailing one bit of the old size is a
        subtree that the new leaf completes into one twice as large."""
        node = _check_hash(leaf, "leaf hash")
        if self._size == MAX_SIZE:
            raise MalformedEvidence("the tree is full", expected="at most 2^64 - 1 leaves")
        index = self._size
        carry = index
        while carry & 1:
            node = node_hash(self._hashes.pop(), node)
            carry >>= 1
        self._hashes.append(node)
        self._size = index + 1
        return index

    def root(self) -> bytes:
        """MTH of all leaves: the border subtrees folded from the right, which is the RFC's
        split, since each is the largest power of two below what remains."""
        if not self._hashes:
            return EMPTY_ROOT
        node = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            node = node_hash(left, node)
        return node


class TiledLeaves:
    """The leaf hashes a log's writer needs for proofs without holding them all: the hash of
    every complete tile of TILE leaves (aligned perfect subtrees), the leaves of the last,
    unfinished tile, and `fetch(lo, hi)` for the leaves of finished tiles (the store). A
    proof then costs O(n / TILE) hashes and at most two tiles read, and memory grows by one
    hash a tile instead of one a leaf: flat for a site that runs for months."""

    TILE = 256

    def __init__(self, fetch: Callable[[int, int], list[bytes]]) -> None:
        self._fetch = fetch
        self._tiles: list[bytes] = []
        self._tail: list[bytes] = []

    @classmethod
    def of(cls, leaves: Iterable[bytes], fetch: Callable[[int, int], list[bytes]]
           ) -> TiledLeaves:
        tiled = cls(fetch)
        for leaf in leaves:
            tiled.append(leaf)
        return tiled

    @property
    def size(self) -> int:
        return len(self._tiles) * self.TILE + len(self._tail)

    def append(self, leaf: bytes) -> None:
        self._tail.append(_check_hash(leaf, "leaf hash"))
        if len(self._tail) == self.TILE:
            self._tiles.append(_range_root(self._tail, 0, self.TILE))
            self._tail = []

    def subtree(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for a node of the RFC tree (lo is a multiple of the largest power
        of two not above hi - lo, as every node's is)."""
        if hi - lo == self.TILE and lo % self.TILE == 0 and lo // self.TILE < len(self._tiles):
            return self._tiles[lo // self.TILE]
        if hi - lo > self.TILE:
            k = lo + split_point(hi - lo)
            return node_hash(self.subtree(lo, k), self.subtree(k, hi))
        leaves = self._leaves(lo, hi)
        return _range_root(leaves, 0, len(leaves))

    def _leaves(self, lo: int, hi: int) -> list[bytes]:
        start = len(self._tiles) * self.TILE
        if lo >= start:
            return self._tail[lo - start:hi - start]
        leaves = self._fetch(lo, min(hi, start)) + self._tail[:max(0, hi - start)]
        if len(leaves) != hi - lo:
            raise VerificationFailed("the record returned the wrong number of leaf hashes",
                                     expected=hi - lo, found=len(leaves))
        return leaves
