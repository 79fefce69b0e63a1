"""RFC 6962 / RFC 9162 Merkle tree math: hashes, roots, inclusion and consistency proofs.

Pure: values in, values out. Leaf hash = SHA-256(0x00 ‖ entry); node hash =
SHA-256(0x01 ‖ left ‖ right); the tree of n leaves splits at the largest power of two
smaller than n. Proofs are built from *perfect* subtree hashes (2^level leaves starting at
index·2^level), which the store keeps as the tree grows, so a proof for any size costs
O(log n) lookups. Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "EMPTY_ROOT",
    "CompactRange",
    "ProofError",
    "SubtreeHash",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "perfect_root",
    "range_root",
    "root_from_inclusion",
    "verify_consistency",
    "verify_inclusion",
]

EMPTY_ROOT = hashlib.sha256(b"").digest()
HASH_SIZE = 32

SubtreeHash = Callable[[int, int], bytes]
"""(level, index) → the hash of the perfect subtree of 2**level leaves starting at leaf index·2**level."""


class ProofError(ValueError):
    """A proof that does not verify; the message says which check failed."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_root(leaves: Sequence[bytes]) -> bytes:
    """The root of a perfect subtree from its leaf hashes (a power of two of them)."""
    level = list(leaves)
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def range_root(start: int, end: int, subtree: SubtreeHash) -> bytes:
    """MTH of leaves [start, end), from perfect subtrees: decompose, then fold right to left."""
    if end <= start:
        return EMPTY_ROOT
    parts: list[bytes] = []
    while start < end:
        # The largest perfect subtree that starts at `start` (aligned) and fits before `end`.
        level = (start & -start).bit_length() - 1 if start else (end - start).bit_length() - 1
        while (1 << level) > end - start:
            level -= 1
        parts.append(subtree(level, start >> level))
        start += 1 << level
    root = parts[-1]
    for part in reversed(parts[:-1]):
        root = node_hash(part, root)
    return root


def inclusion_proof(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """PATH(m, D[0:n]) of RFC 6962 §2.1.1, leaf first."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            proof.append(range_root(start + k, end, subtree))
            end = start + k
        else:
            proof.append(range_root(start, start + k, subtree))
            start += k
    proof.reverse()
    return proof


def consistency_proof(old: int, new: int, subtree: SubtreeHash) -> list[bytes]:
    """PROOF(m, D[0:n]) of RFC 6962 §2.1.2."""
    if not 0 <= old <= new:
        raise ProofError(f"cannot prove size {old} consistent with the smaller size {new}")
    if old in (0, new):
        return []
    return _subproof(old, 0, new, True, subtree)


def _subproof(m: int, start: int, end: int, complete: bool, subtree: SubtreeHash) -> list[bytes]:
    n = end - start
    if m == n:
        return [] if complete else [range_root(start, end, subtree)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, start, start + k, complete, subtree), range_root(start + k, end, subtree)]
    return [*_subproof(m - k, start + k, end, False, subtree), range_root(start, start + k, subtree)]


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root a valid inclusion proof implies (RFC 9162 §2.1.3.2); raises ProofError if malformed."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    if len(leaf) != HASH_SIZE or any(len(h) != HASH_SIZE for h in proof):
        raise ProofError("a hash in the proof has the wrong length")
    fn, sn = index, size - 1
    result = leaf
    for sibling in proof:
        if sn == 0:
            raise ProofError("the proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than the tree is deep")
    return result


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError(f"inclusion proof for index {index} does not lead to the root of size {size}")


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """RFC 9162 §2.1.4.2; raises ProofError naming the check that failed."""
    if old > new:
        raise ProofError(f"size went backwards: {old} > {new}")
    if any(len(h) != HASH_SIZE for h in proof):
        raise ProofError("a hash in the proof has the wrong length")
    if old == new:
        if proof:
            raise ProofError("sizes are equal, so the proof must be empty")
        if old_root != new_root:
            raise ProofError("equal sizes with different roots")
        return
    if old == 0:
        if proof:
            raise ProofError("an empty tree is consistent with anything; the proof must be empty")
        return
    if not proof:
        raise ProofError("a non-empty proof is required")
    path = list(proof)
    if old & (old - 1) == 0:  # old is a power of two: its root is the first node of the path
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for node in path[1:]:
        if sn == 0:
            raise ProofError("the proof is longer than needed")
        if fn & 1 or fn == sn:
            fr = node_hash(node, fr)
            sr = node_hash(node, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, node)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than needed")
    if fr != old_root:
        raise ProofError(f"the proof does not lead to the root of size {old}")
    if sr != new_root:
        raise ProofError(f"the proof does not lead to the root of size {new}")


@dataclass
class CompactRange:
    """The right edge of a growing tree: one hash per set bit of its size.

    Appending a leaf returns the perfect subtrees it completed as (level, index, hash), which
    the store persists so that proofs need no recomputation.
    """

    size: int = 0
    hashes: list[bytes] | None = None

    def __post_init__(self) -> None:
        if self.hashes is None:
            self.hashes = []

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        assert self.hashes is not None
        completed = [(0, self.size, leaf)]
        node, index, level = leaf, self.size, 0
        while index & 1:
            node = node_hash(self.hashes.pop(), node)
            index >>= 1
            level += 1
            completed.append((level, index, node))
        self.hashes.append(node)
        self.size += 1
        return completed

    def push(self, leaf: bytes, completed: list[tuple[int, int, bytes]] | None = None, from_level: int = 1) -> None:
        """Append a leaf, fast (for replaying a log); the perfect subtrees it completes from `from_level`
        up are added to `completed` as (level, index, hash) when a list is given."""
        hashes = self.hashes
        assert hashes is not None
        index = self.size
        node = leaf
        level = 0
        while index & 1:
            node = hashlib.sha256(b"\x01" + hashes.pop() + node).digest()
            index >>= 1
            level += 1
            if completed is not None and level >= from_level:
                completed.append((level, index, node))
        hashes.append(node)
        self.size += 1

    def root(self) -> bytes:
        assert self.hashes is not None
        if not self.hashes:
            return EMPTY_ROOT
        root = self.hashes[-1]
        for node in reversed(self.hashes[:-1]):
            root = node_hash(node, root)
        return root

    @classmethod
    def at(cls, size: int, subtree: SubtreeHash) -> CompactRange:
        """Rebuild the edge of a tree of `size` leaves from stored perfect subtrees."""
        hashes: list[bytes] = []
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                hashes.append(subtree(level, start >> level))
                start += 1 << level
        return cls(size, hashes)
