//! The verifiable ledger of InventoryConnect, with no database: RFC 6962 Merkle trees and their
//! proofs ([`tree`]), and signed tree heads as C2SP checkpoints in signed notes ([`note`]). The
//! server builds and serves the tree with it; an outside auditor verifies heads and proofs with
//! it alone.
#![forbid(unsafe_code)]

pub mod certificate;
pub mod note;
pub mod tree;

pub use note::{Checkpoint, NoteError, NoteSigner, NoteVerifier};
pub use tree::{leaf_hash, node_hash, verify_consistency, verify_inclusion, Hash};

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses lower- or upper-case hex into a hash.
pub fn parse_hash(s: &str) -> Option<Hash> {
    if s.len() != 64 {
        return None;
    }
    let bytes: Vec<u8> =
        (0..32).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16)).collect::<Result<_, _>>().ok()?;
    bytes.try_into().ok()
}
