"""Merkle trees as RFC 9162 (Certificate Transparency 2.0) defines them: hashes, inclusion and consistency proofs.

The foundation of the verifiable tally: each petition's signature log is such a tree. Proof generation reads the
tree through `subtree_hash(start, end)`, so a store of aligned, complete subtrees can answer it with O(log n)
reads; verification needs only the proof, as a signer's browser or `undersigned verify` holds it.
No maintained Python library follows the RFC's indexing and proof format exactly (pymerkle's differ), and the
whole algorithm is short; it is checked against transparency-dev's published test data and, by property tests,
against a naive recomputation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

SubtreeHash = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A proof that does not prove what it claims (or is malformed)."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1): where RFC 9162 splits a tree of n leaves."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of leaf hashes, computed directly (for small trees and for checking)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(root_of(leaves[:k]), root_of(leaves[k:]))


def memory_subtrees(leaves: Sequence[bytes]) -> SubtreeHash:
    """`subtree_hash` over leaf hashes held in memory, memoised."""
    memo: dict[tuple[int, int], bytes] = {}

    def subtree_hash(start: int, end: int) -> bytes:
        key = (start, end)
        if key not in memo:
            if end - start == 1:
                memo[key] = leaves[start]
            else:
                k = _split(end - start)
                memo[key] = node_hash(subtree_hash(start, start + k), subtree_hash(start + k, end))
        return memo[key]

    return subtree_hash


def inclusion_proof(index: int, size: int, subtree_hash: SubtreeHash) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162, 2.1.3.1: the audit path of leaf `index` in the tree of `size` leaves."""
    if not 0 <= index < size:
        raise ProofError("the leaf index is not in the tree")
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index - start < k:
            proof.append(subtree_hash(start + k, end))
            end = start + k
        else:
            proof.append(subtree_hash(start, start + k))
            start = start + k
    return proof[::-1]


def consistency_proof(old_size: int, new_size: int, subtree_hash: SubtreeHash) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162, 2.1.4.1: that the tree of `old_size` leaves is a prefix of the new one."""
    if not 0 < old_size <= new_size:
        raise ProofError("the sizes are not 0 < old <= new")
    if old_size == new_size:
        return []

    def subproof(m: int, start: int, end: int, whole: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if whole else [subtree_hash(start, end)]
        k = _split(n)
        if m <= k:
            return subproof(m, start, start + k, whole) + [subtree_hash(start + k, end)]
        return subproof(m - k, start + k, end, False) + [subtree_hash(start, start + k)]

    return subproof(old_size, 0, new_size, True)


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root a valid inclusion proof implies (RFC 9162, 2.1.3.2)."""
    if not 0 <= index < size:
        raise ProofError("the leaf index is not in the tree")
    fn, sn = index, size - 1
    result = leaf
    for sibling in proof:
        _check_hash(sibling)
        if sn == 0:
            raise ProofError("the proof is longer than the path")
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than the path")
    return result


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    _check_hash(leaf)
    _check_hash(root)
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError("the leaf is not in the tree with that root")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """RFC 9162, 2.1.4.2: raise unless the old tree is a prefix of the new one. (An empty old tree proves
    nothing worth checking, and is refused, as the reference verifier refuses it.)"""
    if old_size < 1 or old_size > new_size:
        raise ProofError("the sizes are not 0 < old <= new")
    if old_size == new_size:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError("two different roots for the same size: the log forked")
        return
    if not proof:
        raise ProofError("the proof is empty")
    for node in proof:
        _check_hash(node)
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
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
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, node)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than needed")
    if fr != old_root:
        raise ProofError("the proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("the proof does not lead to the new root")


def _check_hash(node: bytes) -> None:
    if len(node) != 32:
        raise ProofError("a proof node is not a SHA-256 hash")
