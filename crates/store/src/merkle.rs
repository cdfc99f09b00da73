//! Merkle trees over event hashes, as RFC 6962 (Certificate Transparency) defines them: a
//! seal signs the root over positions 1..=n, and an inclusion proof shows that one event is
//! under that root without the other events.
//!
//! `leaf = SHA-256(0x00 ‖ event hash)`, `node = SHA-256(0x01 ‖ left ‖ right)`; a tree of n > 1
//! leaves splits at the largest power of two smaller than n.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

pub fn leaf_hash(event_hash: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0]);
    h.update(event_hash);
    h.finalize().into()
}

fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two strictly smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// The root over leaves already hashed with [`leaf_hash`]. The empty tree's root is the hash of
/// nothing.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The audit path of leaf `index` (from 0) in a tree of `leaves`, bottom up.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 || index >= n {
        return Vec::new();
    }
    let k = split(n);
    if index < k {
        let mut path = inclusion_proof(&leaves[..k], index);
        path.push(root(&leaves[k..]));
        path
    } else {
        let mut path = inclusion_proof(&leaves[k..], index - k);
        path.push(root(&leaves[..k]));
        path
    }
}

/// A tree whose subtree roots are computed once, so that many inclusion proofs cost O(log n)
/// each after the first.
pub struct Tree<'a> {
    leaves: &'a [Hash],
    memo: std::collections::HashMap<(usize, usize), Hash>,
}

impl<'a> Tree<'a> {
    pub fn new(leaves: &'a [Hash]) -> Self {
        Self { leaves, memo: std::collections::HashMap::new() }
    }

    /// The root of leaves `start..start + len`.
    fn subtree(&mut self, start: usize, len: usize) -> Hash {
        match len {
            0 => Sha256::digest([]).into(),
            1 => self.leaves[start],
            _ => {
                if let Some(hash) = self.memo.get(&(start, len)) {
                    return *hash;
                }
                let k = split(len);
                let hash = node_hash(&self.subtree(start, k), &self.subtree(start + k, len - k));
                self.memo.insert((start, len), hash);
                hash
            }
        }
    }

    /// The root of the first `size` leaves.
    pub fn root(&mut self, size: usize) -> Hash {
        self.subtree(0, size)
    }

    /// The audit path of leaf `index` in the tree of the first `size` leaves.
    pub fn proof(&mut self, index: usize, size: usize) -> Vec<Hash> {
        let mut path = Vec::new();
        self.path(index, 0, size, &mut path);
        path
    }

    fn path(&mut self, index: usize, start: usize, len: usize, path: &mut Vec<Hash>) {
        if len <= 1 || index >= start + len {
            return;
        }
        let k = split(len);
        if index < start + k {
            self.path(index, start, k, path);
            let sibling = self.subtree(start + k, len - k);
            path.push(sibling);
        } else {
            self.path(index, start + k, len - k, path);
            let sibling = self.subtree(start, k);
            path.push(sibling);
        }
    }
}

/// Recomputes the root from a leaf, its index, the tree size and its audit path (RFC 9162,
/// section 2.1.3.2).
pub fn root_from_proof(leaf: Hash, index: usize, size: usize, path: &[Hash]) -> Option<Hash> {
    if index >= size {
        return None;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = leaf;
    for p in path {
        if sn == 0 {
            return None;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    (sn == 0).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&Sha256::digest(i.to_be_bytes()))).collect()
    }

    #[test]
    fn every_leaf_of_every_small_tree_proves_its_inclusion() {
        for n in 1..=33 {
            let leaves = leaves(n);
            let root = root(&leaves);
            for i in 0..n {
                let proof = inclusion_proof(&leaves, i);
                assert_eq!(root_from_proof(leaves[i], i, n, &proof), Some(root), "n={n} i={i}");
            }
        }
    }

    #[test]
    fn a_proof_does_not_prove_another_leaf_or_another_index() {
        let leaves = leaves(13);
        let root = root(&leaves);
        let proof = inclusion_proof(&leaves, 5);
        assert_ne!(root_from_proof(leaves[6], 5, 13, &proof), Some(root));
        assert_ne!(root_from_proof(leaves[5], 6, 13, &proof), Some(root));
    }

    #[test]
    fn the_memoised_tree_gives_the_same_roots_and_proofs() {
        let leaves = leaves(37);
        let mut tree = Tree::new(&leaves);
        for size in 1..=37 {
            assert_eq!(tree.root(size), root(&leaves[..size]));
            for i in 0..size {
                assert_eq!(tree.proof(i, size), inclusion_proof(&leaves[..size], i), "size={size} i={i}");
            }
        }
    }

    #[test]
    fn the_root_of_two_leaves_is_their_node() {
        let leaves = leaves(2);
        assert_eq!(root(&leaves), node_hash(&leaves[0], &leaves[1]));
    }
}
