//! Merkle tree hashing and proofs for the audit log, as RFC 9162 §2.1 defines them (SHA-256).
//! Owns the leaf and node hash rules, the compact [`Frontier`] that stands in for leaves pruned by
//! retention, proof generation over a partly pruned [`Tree`], and the proof verifiers auditors
//! run. Nothing here touches storage: callers load hashes and keep the frontier.

use sha2::{Digest, Sha256};
use std::fmt;

/// A SHA-256 digest: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// The hash of one leaf: SHA-256(0x00 || data). The prefix keeps a leaf from ever being
/// mistaken for an interior node (a second-preimage defence).
pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::new().chain_update([0x00]).chain_update(data).finalize().into()
}

/// The hash of an interior node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new().chain_update([0x01]).chain_update(left).chain_update(right).finalize().into()
}

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Why a root or proof could not be produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MerkleError {
    /// An index or tree size past the end of the tree, or sizes in the wrong order.
    OutOfRange,
    /// The answer needs leaves that retention has removed.
    Pruned,
    /// A stored frontier whose bytes do not fit its tree size.
    BadFrontier,
}

impl fmt::Display for MerkleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MerkleError::OutOfRange => "that audit event or log size does not exist (yet)",
            MerkleError::Pruned => {
                "those audit events were removed by retention; proofs start at the retention boundary"
            }
            MerkleError::BadFrontier => "the stored Merkle frontier is corrupt: its length does not match its log size",
        })
    }
}

impl std::error::Error for MerkleError {}

/// The largest power of two strictly below `n` (RFC 9162's split point k). Needs `n >= 2`.
fn split(n: u64) -> u64 {
    1 << (n - 1).ilog2()
}

/// The "compact range" of a tree's first `size` leaves: the roots of the perfect subtrees that
/// the set bits of `size` describe, largest (leftmost) first. It is all that is needed to keep
/// appending and to compute the root, so it can replace the leaves it covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// How many leaves the frontier covers.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The subtree roots, largest (leftmost) first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Appends one leaf hash, in amortised O(1) hashes. Each trailing one bit of the old size is
    /// a subtree as wide as the one being carried, so the two merge, as in a binary increment.
    pub fn push(&mut self, leaf: Hash) {
        let mut carry = leaf;
        for _ in 0..self.size.trailing_ones() {
            // There is one node per set bit of `size`, so this never runs dry.
            if let Some(left) = self.nodes.pop() {
                carry = node_hash(&left, &carry);
            }
        }
        self.nodes.push(carry);
        self.size += 1;
    }

    /// The root of the covered tree. Folding right to left is RFC 9162's recursion: the
    /// leftmost subtree is always the left child of everything to its right.
    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        let Some(last) = nodes.next() else {
            return empty_root();
        };
        nodes.fold(*last, |right, left| node_hash(left, &right))
    }

    /// The node hashes, concatenated, for storage next to `size`.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.nodes.concat()
    }

    /// Rebuilds a frontier stored with [`Frontier::to_bytes`].
    pub fn from_bytes(size: u64, bytes: &[u8]) -> Result<Frontier, MerkleError> {
        if bytes.len() as u64 != 32 * u64::from(size.count_ones()) {
            return Err(MerkleError::BadFrontier);
        }
        let nodes = bytes
            .chunks_exact(32)
            .map(|chunk| Hash::try_from(chunk).map_err(|_| MerkleError::BadFrontier))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Frontier { size, nodes })
    }

    /// The node covering exactly leaves `[start, end)`, if the frontier has one.
    fn subtree(&self, start: u64, end: u64) -> Option<Hash> {
        let widths = (0..u64::BITS).rev().map(|bit| 1u64 << bit).filter(|width| self.size & width != 0);
        let mut offset = 0;
        for (width, node) in widths.zip(&self.nodes) {
            if offset == start && offset + width == end {
                return Some(*node);
            }
            offset += width;
        }
        None
    }
}

/// A tree whose earliest leaves may have been pruned: `base` stands in for leaves
/// `0 .. base.size()`, and `leaves` holds the leaf hashes from `base.size()` on. A tree
/// nothing was pruned from is [`Tree::full`].
#[derive(Clone, Copy, Debug)]
pub struct Tree<'a> {
    base: &'a Frontier,
    leaves: &'a [Hash],
}

/// The base of a tree nothing was pruned from.
static NOTHING_PRUNED: Frontier = Frontier { size: 0, nodes: Vec::new() };

impl<'a> Tree<'a> {
    /// A tree whose leaves before `base.size()` are represented only by `base`.
    pub fn new(base: &'a Frontier, leaves: &'a [Hash]) -> Tree<'a> {
        Tree { base, leaves }
    }

    /// A tree with all its leaves: the same as `Tree::new(&Frontier::new(), leaves)`, but the
    /// empty frontier is a static, so the tree can outlive the statement that makes it.
    pub fn full(leaves: &'a [Hash]) -> Tree<'a> {
        Tree::new(&NOTHING_PRUNED, leaves)
    }

    /// How many leaves the tree has, pruned ones included.
    pub fn size(&self) -> u64 {
        self.base.size() + self.leaves.len() as u64
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Result<Hash, MerkleError> {
        self.root_at(self.size())
    }

    /// The root of the tree of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, MerkleError> {
        if size > self.size() {
            return Err(MerkleError::OutOfRange);
        }
        if size == 0 {
            return Ok(empty_root());
        }
        self.subtree_root(0, size)
    }

    /// The inclusion proof (RFC 9162 §2.1.3.1 PATH) of leaf `index` in the tree of the first
    /// `size` leaves, nearest sibling first.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, MerkleError> {
        if index >= size || size > self.size() {
            return Err(MerkleError::OutOfRange);
        }
        let mut proof = Vec::new();
        self.path(index, 0, size, &mut proof)?;
        Ok(proof)
    }

    /// The consistency proof (RFC 9162 §2.1.4.1 PROOF) that the tree of the first `old_size`
    /// leaves is a prefix of the tree of the first `new_size`. Empty when the sizes are equal.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>, MerkleError> {
        if old_size == 0 || old_size > new_size || new_size > self.size() {
            return Err(MerkleError::OutOfRange);
        }
        let mut proof = Vec::new();
        self.subproof(old_size, 0, new_size, true, &mut proof)?;
        Ok(proof)
    }

    /// MTH of leaves `[start, end)`, where `start < end <= size()`. Below the base it can only use
    /// frontier nodes: it follows the RFC split, which lands on frontier nodes wherever the range
    /// is a node of a tree that extends past the base, and reports `Pruned` when it reaches a
    /// single removed leaf instead.
    fn subtree_root(&self, start: u64, end: u64) -> Result<Hash, MerkleError> {
        let base = self.base.size();
        if start < base {
            if let Some(node) = self.base.subtree(start, end) {
                return Ok(node);
            }
        }
        if end - start == 1 {
            if start < base {
                return Err(MerkleError::Pruned);
            }
            // `start - base` is below `leaves.len()`, a usize, so the cast is lossless.
            return self.leaves.get((start - base) as usize).copied().ok_or(MerkleError::OutOfRange);
        }
        let mid = start + split(end - start);
        Ok(node_hash(&self.subtree_root(start, mid)?, &self.subtree_root(mid, end)?))
    }

    /// PATH(index, D[start:end]), appended to `proof` leaf side first.
    fn path(&self, index: u64, start: u64, end: u64, proof: &mut Vec<Hash>) -> Result<(), MerkleError> {
        if end - start == 1 {
            return Ok(());
        }
        let mid = start + split(end - start);
        if index < mid {
            self.path(index, start, mid, proof)?;
            proof.push(self.subtree_root(mid, end)?);
        } else {
            self.path(index, mid, end, proof)?;
            proof.push(self.subtree_root(start, mid)?);
        }
        Ok(())
    }

    /// SUBPROOF(old_end - start, D[start:end], complete), appended to `proof`. `complete` says
    /// whether D[start:old_end] is the whole old tree, whose root the verifier already has.
    fn subproof(
        &self,
        old_end: u64,
        start: u64,
        end: u64,
        complete: bool,
        proof: &mut Vec<Hash>,
    ) -> Result<(), MerkleError> {
        if old_end == end {
            if !complete {
                proof.push(self.subtree_root(start, end)?);
            }
            return Ok(());
        }
        // Here start < old_end < end, so the range has at least two leaves and can be split.
        let mid = start + split(end - start);
        if old_end <= mid {
            self.subproof(old_end, start, mid, complete, proof)?;
            proof.push(self.subtree_root(mid, end)?);
        } else {
            self.subproof(old_end, mid, end, false, proof)?;
            proof.push(self.subtree_root(start, mid)?);
        }
        Ok(())
    }
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves whose root is `root`
/// (RFC 9162 §2.1.3.2). Works from the proof alone, as an auditor would.
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    // `node` and `last` are the RFC's fn and sn: our position and the last position, per level.
    let (mut node, mut last) = (index, size - 1);
    let mut hash = *leaf;
    for sibling in proof {
        if last == 0 {
            // More proof than tree.
            return false;
        }
        if node & 1 == 1 || node == last {
            hash = node_hash(sibling, &hash);
            // A rightmost node with no sibling at this level moves up unchanged.
            while node & 1 == 0 && node != 0 {
                node >>= 1;
                last >>= 1;
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        node >>= 1;
        last >>= 1;
    }
    last == 0 && hash == *root
}

/// Checks that the tree of `old_size` leaves with root `old_root` is a prefix of the tree of
/// `new_size` leaves with root `new_root` (RFC 9162 §2.1.4.2).
///
/// The RFC's algorithm covers `0 < old_size < new_size`. For the edges: equal sizes are the same
/// tree, so the proof must be empty (as PROOF gives) and the roots equal; the empty tree is a
/// prefix of every tree, so `old_size == 0` needs an empty proof and `old_root` equal to
/// [`empty_root`], the only root an empty tree has. A shrinking tree is never consistent.
pub fn verify_consistency(old_size: u64, new_size: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash]) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == 0 && *old_root != empty_root() {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        return proof.is_empty();
    }
    // When the old tree is a perfect subtree, the proof leaves out its root: the verifier has it.
    let (first, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        match proof.split_first() {
            Some(split) => split,
            None => return false,
        }
    };
    // `node` and `last` are the RFC's fn and sn, for the old tree's last leaf and the new one's.
    let (mut node, mut last) = (old_size - 1, new_size - 1);
    while node & 1 == 1 {
        node >>= 1;
        last >>= 1;
    }
    let (mut old_hash, mut new_hash) = (*first, *first);
    for hash in rest {
        if last == 0 {
            return false;
        }
        if node & 1 == 1 || node == last {
            old_hash = node_hash(hash, &old_hash);
            new_hash = node_hash(hash, &new_hash);
            while node & 1 == 0 && node != 0 {
                node >>= 1;
                last >>= 1;
            }
        } else {
            new_hash = node_hash(&new_hash, hash);
        }
        node >>= 1;
        last >>= 1;
    }
    last == 0 && old_hash == *old_root && new_hash == *new_root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(hex: &str) -> Hash {
        let bytes = hex::decode(hex).expect("test vectors are hex");
        Hash::try_from(bytes.as_slice()).expect("test vectors are 32 bytes")
    }

    fn hashes(hexes: &[&str]) -> Vec<Hash> {
        hexes.iter().map(|x| h(x)).collect()
    }

    // The RFC 6962 reference leaves and tree heads used across certificate-transparency
    // implementations (transparency-dev/merkle testonly/constants.go and proof/verify_test.go).
    const CT_LEAVES: [&str; 8] =
        ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];

    // Roots for tree sizes 0..=8.
    const CT_ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    // Perfect subtree hashes of the 8-leaf reference tree, by level, left to right.
    const CT_LEVEL0: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ];
    const CT_LEVEL1: [&str; 4] = [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ];
    const CT_LEVEL2: [&str; 2] = [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ];

    fn ct_leaves() -> Vec<Hash> {
        CT_LEAVES.iter().map(|x| leaf_hash(&hex::decode(x).expect("hex"))).collect()
    }

    fn frontier_of(leaves: &[Hash]) -> Frontier {
        let mut frontier = Frontier::new();
        for leaf in leaves {
            frontier.push(*leaf);
        }
        frontier
    }

    /// Distinct leaves for the exhaustive tests.
    fn many_leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(format!("audit event {i}").as_bytes())).collect()
    }

    /// MTH straight from the RFC's definition, independent of `Tree` and `Frontier`.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    fn flip(hash: &Hash) -> Hash {
        let mut out = *hash;
        out[0] ^= 0x10;
        out
    }

    #[test]
    fn hashes_use_the_rfc_prefixes() {
        assert_eq!(empty_root(), h(CT_ROOTS[0]));
        // A one-leaf tree's root is the hash of its leaf: SHA-256(0x00).
        assert_eq!(leaf_hash(b""), h(CT_ROOTS[1]));
        let leaves = ct_leaves();
        assert_eq!(node_hash(&leaves[0], &leaves[1]), h(CT_ROOTS[2]));
    }

    #[test]
    fn reference_roots_and_subtrees() {
        let leaves = ct_leaves();
        assert_eq!(leaves, hashes(&CT_LEVEL0));
        let tree = Tree::full(&leaves);
        let mut frontier = Frontier::new();
        for size in 0..=8u64 {
            let want = h(CT_ROOTS[size as usize]);
            assert_eq!(frontier.size(), size);
            assert_eq!(frontier.root(), want, "frontier root at size {size}");
            assert_eq!(tree.root_at(size), Ok(want), "tree root at size {size}");
            if let Some(leaf) = leaves.get(size as usize) {
                frontier.push(*leaf);
            }
        }
        assert_eq!(tree.root(), Ok(h(CT_ROOTS[8])));

        // The published compact ranges for each size.
        let (l0, l1, l2) = (hashes(&CT_LEVEL0), hashes(&CT_LEVEL1), hashes(&CT_LEVEL2));
        let compact: [Vec<Hash>; 9] = [
            vec![],
            vec![l0[0]],
            vec![l1[0]],
            vec![l1[0], l0[2]],
            vec![l2[0]],
            vec![l2[0], l0[4]],
            vec![l2[0], l1[2]],
            vec![l2[0], l1[2], l0[6]],
            vec![h(CT_ROOTS[8])],
        ];
        for (size, want) in compact.iter().enumerate() {
            assert_eq!(frontier_of(&leaves[..size]).nodes(), want.as_slice(), "compact range at size {size}");
        }
    }

    #[test]
    fn reference_inclusion_proofs() {
        let leaves = ct_leaves();
        let tree = Tree::full(&leaves);
        let vectors: [(u64, u64, Vec<Hash>); 5] = [
            (0, 1, vec![]),
            (0, 8, hashes(&[CT_LEVEL0[1], CT_LEVEL1[1], CT_LEVEL2[1]])),
            (5, 8, hashes(&[CT_LEVEL0[4], CT_LEVEL1[3], CT_LEVEL2[0]])),
            (2, 3, hashes(&[CT_ROOTS[2]])),
            (1, 5, hashes(&[CT_LEVEL0[0], CT_LEVEL1[1], CT_LEVEL0[4]])),
        ];
        for (index, size, want) in vectors {
            assert_eq!(tree.inclusion_proof(index, size), Ok(want.clone()), "proof of {index} in {size}");
            let root = h(CT_ROOTS[size as usize]);
            assert!(verify_inclusion(&leaves[index as usize], index, size, &want, &root));
        }
    }

    #[test]
    fn reference_consistency_proofs() {
        let leaves = ct_leaves();
        let tree = Tree::full(&leaves);
        let vectors: [(u64, u64, Vec<Hash>); 5] = [
            (1, 1, vec![]),
            (1, 8, hashes(&[CT_LEVEL0[1], CT_LEVEL1[1], CT_LEVEL2[1]])),
            (6, 8, hashes(&[CT_LEVEL1[2], CT_LEVEL1[3], CT_LEVEL2[0]])),
            (2, 5, hashes(&[CT_LEVEL1[1], CT_LEVEL0[4]])),
            (6, 7, hashes(&[CT_LEVEL1[2], CT_LEVEL0[6], CT_LEVEL2[0]])),
        ];
        for (old, new, want) in vectors {
            assert_eq!(tree.consistency_proof(old, new), Ok(want.clone()), "proof of {old} to {new}");
            let (old_root, new_root) = (h(CT_ROOTS[old as usize]), h(CT_ROOTS[new as usize]));
            assert!(verify_consistency(old, new, &old_root, &new_root, &want));
        }
    }

    #[test]
    fn frontier_and_tree_agree_with_the_definition() {
        let leaves = many_leaves(70);
        let mut frontier = Frontier::new();
        for size in 1..=70u64 {
            frontier.push(leaves[size as usize - 1]);
            let slice = &leaves[..size as usize];
            let want = reference_root(slice);
            assert_eq!(frontier.root(), want, "frontier at {size}");
            assert_eq!(frontier.nodes().len(), size.count_ones() as usize);
            assert_eq!(Tree::full(slice).root(), Ok(want), "tree at {size}");
        }
    }

    #[test]
    fn every_inclusion_proof_verifies_and_tampering_fails() {
        let leaves = many_leaves(70);
        let tree = Tree::full(&leaves);
        let other_leaf = leaf_hash(b"not in the log");
        for size in 1..=70u64 {
            let root = reference_root(&leaves[..size as usize]);
            for index in 0..size {
                let leaf = &leaves[index as usize];
                let proof = tree.inclusion_proof(index, size).expect("in range");
                assert!(verify_inclusion(leaf, index, size, &proof, &root), "{index} in {size}");

                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i] = flip(&bad[i]);
                    assert!(!verify_inclusion(leaf, index, size, &bad, &root), "{index} in {size}, hash {i}");
                }
                for other in (0..size + 2).filter(|&other| other != index) {
                    assert!(!verify_inclusion(leaf, other, size, &proof, &root), "{index} as {other} in {size}");
                }
                assert!(!verify_inclusion(&other_leaf, index, size, &proof, &root));
                assert!(!verify_inclusion(leaf, index, size, &proof, &flip(&root)));
                let mut longer = proof.clone();
                longer.push(root);
                assert!(!verify_inclusion(leaf, index, size, &longer, &root));
                if let Some((_, shorter)) = proof.split_last() {
                    assert!(!verify_inclusion(leaf, index, size, shorter, &root));
                }
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_tampering_fails() {
        let leaves = many_leaves(70);
        let tree = Tree::full(&leaves);
        let roots: Vec<Hash> = (0..=70).map(|n| reference_root(&leaves[..n])).collect();
        for new in 1..=70u64 {
            let new_root = &roots[new as usize];
            for old in 1..=new {
                let old_root = &roots[old as usize];
                let proof = tree.consistency_proof(old, new).expect("in range");
                assert!(verify_consistency(old, new, old_root, new_root, &proof), "{old} to {new}");
                assert!(!verify_consistency(old, new, &flip(old_root), new_root, &proof));
                assert!(!verify_consistency(old, new, old_root, &flip(new_root), &proof));
                let mut longer = proof.clone();
                longer.push(*new_root);
                assert!(!verify_consistency(old, new, old_root, new_root, &longer), "{old} to {new} + 1");
                if old == new {
                    assert!(proof.is_empty());
                    continue;
                }
                assert!(!verify_consistency(old, new, new_root, old_root, &proof), "swapped roots");
                assert!(!verify_consistency(old, new, old_root, new_root, &[]), "empty proof");
                if let Some((_, shorter)) = proof.split_last() {
                    assert!(!verify_consistency(old, new, old_root, new_root, shorter), "{old} to {new} - 1");
                }
                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i] = flip(&bad[i]);
                    assert!(!verify_consistency(old, new, old_root, new_root, &bad), "{old} to {new}, hash {i}");
                }
                // The same proof and roots, claimed for another old size. (Not another new size:
                // a root does not commit to its tree's size, e.g. the 2-to-3 proof [h2] also
                // passes as 2-to-4, as if h2 were the root of leaves 2..4. Signed tree heads bind
                // sizes to roots; the proof cannot.)
                for other in (1..=new).filter(|&other| other != old) {
                    assert!(!verify_consistency(other, new, old_root, new_root, &proof), "{old} as {other}");
                }
            }
        }
    }

    #[test]
    fn consistency_edge_cases() {
        let empty = empty_root();
        let one = leaf_hash(b"one");
        let two = leaf_hash(b"two");
        // The empty tree is a prefix of everything, with nothing to prove.
        assert!(verify_consistency(0, 0, &empty, &empty, &[]));
        assert!(verify_consistency(0, 5, &empty, &one, &[]));
        assert!(!verify_consistency(0, 5, &one, &one, &[]));
        assert!(!verify_consistency(0, 5, &empty, &one, &[one]));
        // Equal sizes: same tree.
        assert!(verify_consistency(3, 3, &one, &one, &[]));
        assert!(!verify_consistency(3, 3, &one, &two, &[]));
        assert!(!verify_consistency(3, 3, &one, &one, &[one]));
        // Logs do not shrink.
        assert!(!verify_consistency(4, 3, &one, &one, &[]));
        // Inclusion needs the index inside the tree.
        assert!(!verify_inclusion(&one, 0, 0, &[], &one));
        assert!(verify_inclusion(&one, 0, 1, &[], &one));
        assert!(!verify_inclusion(&one, 1, 1, &[], &one));
    }

    #[test]
    fn out_of_range_requests() {
        let leaves = many_leaves(5);
        let tree = Tree::full(&leaves);
        assert_eq!(tree.root_at(6), Err(MerkleError::OutOfRange));
        assert_eq!(tree.inclusion_proof(5, 5), Err(MerkleError::OutOfRange));
        assert_eq!(tree.inclusion_proof(0, 6), Err(MerkleError::OutOfRange));
        assert_eq!(tree.inclusion_proof(0, 0), Err(MerkleError::OutOfRange));
        assert_eq!(tree.consistency_proof(0, 3), Err(MerkleError::OutOfRange));
        assert_eq!(tree.consistency_proof(4, 3), Err(MerkleError::OutOfRange));
        assert_eq!(tree.consistency_proof(3, 6), Err(MerkleError::OutOfRange));
        assert_eq!(Tree::full(&[]).root(), Ok(empty_root()));
    }

    /// Checks a pruned tree's answer against the full tree's: it must be the same answer, and it
    /// may be missing (as `Pruned`) only if `may_be_pruned`.
    fn assert_same<T: PartialEq + fmt::Debug>(
        pruned: Result<T, MerkleError>,
        full: T,
        may_be_pruned: bool,
        what: &str,
    ) {
        match pruned {
            Ok(value) => assert_eq!(value, full, "{what}"),
            Err(MerkleError::Pruned) if may_be_pruned => {}
            Err(err) => panic!("{what}: {err:?}"),
        }
    }

    #[test]
    fn pruned_trees_give_the_full_trees_answers() {
        let all = many_leaves(40);
        for n in 0..=40usize {
            let leaves = &all[..n];
            let full = Tree::full(leaves);
            for b in 0..=n {
                let base = frontier_of(&leaves[..b]);
                let tree = Tree::new(&base, &leaves[b..]);
                let b = b as u64;
                let n = n as u64;
                assert_eq!(tree.size(), n);
                assert_eq!(tree.root(), full.root(), "root of {n} from base {b}");
                for size in 0..=n {
                    let what = format!("root at {size} of {n} from base {b}");
                    assert_same(tree.root_at(size), full.root_at(size).expect("full"), size < b, &what);
                }
                for index in 0..n {
                    let what = format!("inclusion of {index} in {n} from base {b}");
                    let want = full.inclusion_proof(index, n).expect("full");
                    assert_same(tree.inclusion_proof(index, n), want, index < b, &what);
                }
                for old in 1..=n {
                    let what = format!("consistency of {old} with {n} from base {b}");
                    let want = full.consistency_proof(old, n).expect("full");
                    assert_same(tree.consistency_proof(old, n), want, old < b, &what);
                }
            }
        }
    }

    #[test]
    fn pruned_trees_answer_smaller_sizes_too() {
        // Proofs about an older tree size, from a tree that has grown past the boundary since.
        let leaves = many_leaves(24);
        let full = Tree::full(&leaves);
        for b in 0..=24usize {
            let base = frontier_of(&leaves[..b]);
            let tree = Tree::new(&base, &leaves[b..]);
            let b = b as u64;
            for size in b.max(1)..=24 {
                for index in b..size {
                    assert_eq!(tree.inclusion_proof(index, size), full.inclusion_proof(index, size));
                }
                for old in b.max(1)..=size {
                    assert_eq!(tree.consistency_proof(old, size), full.consistency_proof(old, size));
                }
            }
        }
    }

    #[test]
    fn pruned_leaves_are_reported() {
        let leaves = many_leaves(10);
        let base = frontier_of(&leaves[..8]);
        let tree = Tree::new(&base, &leaves[8..]);
        // Leaf 3's path needs leaf 2, which only survives inside the frontier's 8-leaf subtree.
        assert_eq!(tree.inclusion_proof(3, 10), Err(MerkleError::Pruned));
        assert_eq!(tree.consistency_proof(3, 10), Err(MerkleError::Pruned));
        assert_eq!(tree.root_at(5), Err(MerkleError::Pruned));
        // The boundary itself, and everything after it, is still provable.
        let full = Tree::full(&leaves);
        assert_eq!(tree.root_at(8), full.root_at(8));
        assert_eq!(tree.inclusion_proof(8, 10), full.inclusion_proof(8, 10));
        assert_eq!(tree.consistency_proof(8, 10), full.consistency_proof(8, 10));
        assert!(MerkleError::Pruned.to_string().contains("retention"));
    }

    #[test]
    fn frontier_bytes_round_trip() {
        let leaves = many_leaves(70);
        for (size, n) in (0..=70usize).zip(0u64..) {
            let frontier = frontier_of(&leaves[..size]);
            let bytes = frontier.to_bytes();
            assert_eq!(bytes.len(), 32 * n.count_ones() as usize);
            let back = Frontier::from_bytes(n, &bytes);
            assert_eq!(back.as_ref(), Ok(&frontier), "size {n}");
            // Restored, it keeps growing like the original.
            let (mut restored, mut original) = (back.expect("round trip"), frontier);
            restored.push(leaves[0]);
            original.push(leaves[0]);
            assert_eq!(restored, original);

            let mut longer = bytes.clone();
            longer.extend_from_slice(&[0; 32]);
            assert_eq!(Frontier::from_bytes(n, &longer), Err(MerkleError::BadFrontier));
            if let Some((_, shorter)) = bytes.split_last() {
                assert_eq!(Frontier::from_bytes(n, shorter), Err(MerkleError::BadFrontier));
            }
            // The length must fit the size it is stored with, not merely be whole hashes.
            if (n + 1).count_ones() != n.count_ones() {
                assert_eq!(Frontier::from_bytes(n + 1, &bytes), Err(MerkleError::BadFrontier));
            }
        }
        assert_eq!(Frontier::from_bytes(0, &[]), Ok(Frontier::new()));
        assert_eq!(Frontier::from_bytes(3, &[0; 32]), Err(MerkleError::BadFrontier));
    }

    #[test]
    fn errors_read_well() {
        for err in [MerkleError::OutOfRange, MerkleError::Pruned, MerkleError::BadFrontier] {
            let text = err.to_string();
            assert!(text.len() > 20 && !text.contains("Pruned"), "{text}");
        }
    }
}
