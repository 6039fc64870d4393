//! RFC 6962 §2.1 Merkle trees: leaf and node hashes, the tree head, and audit paths and
//! consistency proofs — expressed as lists of *ranges* `[start, end)` whose tree hashes make up
//! the proof, so a store that keeps the hashes of complete subtrees can answer with O(log n)
//! reads ([`subtrees`] says which).

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// SHA-256(0x00 ‖ data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::new().chain_update([0x00]).chain_update(data).finalize().into()
}

/// SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new().chain_update([0x01]).chain_update(left).chain_update(right).finalize().into()
}

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly less than `n` (n ≥ 2).
pub fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// MTH(D[start:end]) from the leaf hashes in memory.
pub fn range_hash(leaves: &[Hash], start: u64, end: u64) -> Hash {
    match end - start {
        0 => empty_root(),
        1 => leaves[start as usize],
        n => {
            let k = split(n);
            node_hash(&range_hash(leaves, start, start + k), &range_hash(leaves, start + k, end))
        }
    }
}

pub fn root(leaves: &[Hash]) -> Hash {
    range_hash(leaves, 0, leaves.len() as u64)
}

/// The ranges whose hashes form PATH(index, D[0:size]), leaf side first.
pub fn inclusion_ranges(index: u64, size: u64) -> Vec<(u64, u64)> {
    fn path(m: u64, start: u64, end: u64, out: &mut Vec<(u64, u64)>) {
        let n = end - start;
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            path(m, start, start + k, out);
            out.push((start + k, end));
        } else {
            path(m - k, start + k, end, out);
            out.push((start, start + k));
        }
    }
    let mut out = Vec::new();
    if index < size {
        path(index, 0, size, &mut out);
    }
    out
}

/// The ranges whose hashes form PROOF(m, D[0:n]) (RFC 6962 §2.1.2), for 0 < m ≤ n.
pub fn consistency_ranges(m: u64, n: u64) -> Vec<(u64, u64)> {
    fn subproof(m: u64, start: u64, end: u64, whole: bool, out: &mut Vec<(u64, u64)>) {
        let n = end - start;
        if m == n {
            if !whole {
                out.push((start, end));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            subproof(m, start, start + k, whole, out);
            out.push((start + k, end));
        } else {
            subproof(m - k, start + k, end, false, out);
            out.push((start, start + k));
        }
    }
    let mut out = Vec::new();
    if 0 < m && m < n {
        subproof(m, 0, n, true, &mut out);
    }
    out
}

/// The complete, aligned subtrees `(level, index)` — covering leaves `index·2^level ..
/// (index+1)·2^level` — whose hashes combine into MTH(D[start:end]), in the order
/// [`combine`] consumes them.
pub fn subtrees(start: u64, end: u64) -> Vec<(u32, u64)> {
    fn walk(start: u64, end: u64, out: &mut Vec<(u32, u64)>) {
        let n = end - start;
        if n.is_power_of_two() && start.is_multiple_of(n) {
            out.push((n.trailing_zeros(), start / n));
            return;
        }
        let k = split(n);
        walk(start, start + k, out);
        walk(start + k, end, out);
    }
    let mut out = Vec::new();
    if end > start {
        walk(start, end, &mut out);
    }
    out
}

/// MTH(D[start:end]) from the hashes of its [`subtrees`], given in that order.
pub fn combine(start: u64, end: u64, nodes: &mut impl Iterator<Item = Hash>) -> Option<Hash> {
    let n = end - start;
    if n == 0 {
        return Some(empty_root());
    }
    if n.is_power_of_two() && start.is_multiple_of(n) {
        return nodes.next();
    }
    let k = split(n);
    let left = combine(start, start + k, nodes)?;
    let right = combine(start + k, end, nodes)?;
    Some(node_hash(&left, &right))
}

/// The complete subtrees that become complete when leaf `index` is added: `(level, index)` for
/// levels 1.. (level 0 is the leaf itself).
pub fn completed_by(index: u64) -> impl Iterator<Item = (u32, u64)> {
    let done = index + 1;
    (1..64u32).take_while(move |l| done.is_multiple_of(1u64 << l)).map(move |l| (l, done / (1u64 << l) - 1))
}

/// RFC 9162 §2.1.3.2: does `proof` show that `leaf` is at `index` in the tree of `size` with
/// `root`?
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && &r == root
}

/// RFC 9162 §2.1.4.2: does `proof` show that the tree (`size1`, `root1`) is a prefix of
/// (`size2`, `root2`)?
pub fn verify_consistency(size1: u64, size2: u64, root1: &Hash, root2: &Hash, proof: &[Hash]) -> bool {
    if size1 > size2 {
        return false;
    }
    if size1 == size2 {
        return proof.is_empty() && root1 == root2;
    }
    if size1 == 0 {
        return proof.is_empty() && root1 == &empty_root();
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if size1.is_power_of_two() {
        path.insert(0, *root1);
    }
    let Some((first, rest)) = path.split_first() else { return false };
    let (mut f_n, mut s_n) = (size1 - 1, size2 - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && &fr == root1 && &sr == root2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }
    fn h(s: &str) -> Hash {
        unhex(s).try_into().unwrap()
    }

    /// The reference tree of the Certificate Transparency / RFC 9162 test suites.
    fn reference_leaves() -> Vec<Hash> {
        ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
            .iter()
            .map(|d| leaf_hash(&unhex(d)))
            .collect()
    }

    const ROOTS: [&str; 9] = [
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

    fn proof(leaves: &[Hash], ranges: Vec<(u64, u64)>) -> Vec<Hash> {
        ranges.into_iter().map(|(a, b)| range_hash(leaves, a, b)).collect()
    }

    #[test]
    fn roots_match_the_reference_vectors() {
        let leaves = reference_leaves();
        for (n, want) in ROOTS.iter().enumerate() {
            assert_eq!(root(&leaves[..n]), h(want), "tree size {n}");
        }
    }

    #[test]
    fn inclusion_proofs_match_the_reference_vectors() {
        let leaves = reference_leaves();
        let cases: [(u64, u64, &[&str]); 3] = [
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (index, size, want) in cases {
            let got = proof(&leaves[..size as usize], inclusion_ranges(index, size));
            assert_eq!(got, want.iter().map(|w| h(w)).collect::<Vec<_>>(), "PATH({index}, {size})");
            assert!(verify_inclusion(&leaves[index as usize], index, size, &got, &h(ROOTS[size as usize])));
        }
    }

    #[test]
    fn consistency_proofs_match_the_reference_vectors() {
        let leaves = reference_leaves();
        let cases: [(u64, u64, &[&str]); 4] = [
            (1, 1, &[]),
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (m, n, want) in cases {
            let got = proof(&leaves[..n as usize], consistency_ranges(m, n));
            assert_eq!(got, want.iter().map(|w| h(w)).collect::<Vec<_>>(), "PROOF({m}, {n})");
            assert!(verify_consistency(m, n, &h(ROOTS[m as usize]), &h(ROOTS[n as usize]), &got));
        }
    }

    #[test]
    fn every_proof_verifies_and_tampering_fails_up_to_40_leaves() {
        let leaves: Vec<Hash> = (0..40u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for n in 1..=40u64 {
            let r = root(&leaves[..n as usize]);
            for i in 0..n {
                let p = proof(&leaves, inclusion_ranges(i, n));
                assert!(verify_inclusion(&leaves[i as usize], i, n, &p, &r), "PATH({i},{n})");
                assert!(!verify_inclusion(&leaves[((i + 1) % n) as usize], i, n, &p, &r) || n == 1);
            }
            for m in 1..=n {
                let p = proof(&leaves, consistency_ranges(m, n));
                let r1 = root(&leaves[..m as usize]);
                assert!(verify_consistency(m, n, &r1, &r, &p), "PROOF({m},{n})");
                if m < n {
                    // A different history of the first m leaves is not consistent.
                    let mut forged = leaves[..n as usize].to_vec();
                    forged[0] = leaf_hash(b"forged");
                    assert!(!verify_consistency(m, n, &root(&forged[..m as usize]), &r, &p));
                }
            }
        }
    }

    #[test]
    fn stored_subtrees_rebuild_any_range() {
        let leaves: Vec<Hash> = (0..37u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let node = |level: u32, index: u64| {
            let size = 1u64 << level;
            range_hash(&leaves, index * size, (index + 1) * size)
        };
        for a in 0..37u64 {
            for b in a..=37 {
                let nodes: Vec<Hash> = subtrees(a, b).into_iter().map(|(l, i)| node(l, i)).collect();
                assert_eq!(combine(a, b, &mut nodes.into_iter()), Some(range_hash(&leaves, a, b)), "[{a},{b})");
            }
        }
        // Adding leaf 7 completes the subtrees of 2, 4 and 8 leaves ending there.
        assert_eq!(completed_by(7).collect::<Vec<_>>(), vec![(1, 3), (2, 1), (3, 0)]);
        assert_eq!(completed_by(4).count(), 0);
    }
}
