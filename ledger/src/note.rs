//! Signed tree heads in the forms transparency-log tools already read: a C2SP `tlog-checkpoint`
//! (origin, tree size, base64 root hash, one per line) signed as a C2SP `signed-note` with
//! Ed25519. The verifier key is `<name>+<hex key hash>+<base64(0x01 ‖ public key)>`, where the
//! key hash is the first four bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key).

use crate::tree::Hash;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

/// Why a note or checkpoint did not verify. Each says what an auditor should look at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("not a signed note (no signature block after a blank line)")]
    Malformed,
    #[error("the verifier key is malformed")]
    BadKey,
    #[error("no signature by {0} on the note")]
    NoSignature(String),
    #[error("the signature by {0} does not verify: the note was altered or forged")]
    BadSignature(String),
    #[error("not a checkpoint: {0}")]
    BadCheckpoint(&'static str),
}

const ALG_ED25519: u8 = 0x01;
/// The signature line prefix: an em dash and a space.
const DASH: &str = "\u{2014} ";

fn key_hash(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update(b"\n")
        .chain_update([ALG_ED25519])
        .chain_update(public)
        .finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A tree head: what the log commits to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The checkpoint text (the note body), each line ending in a newline.
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, B64.encode(self.root))
    }

    pub fn parse(body: &str) -> Result<Self, NoteError> {
        let mut lines = body.split('\n');
        let origin = lines.next().filter(|o| !o.is_empty()).ok_or(NoteError::BadCheckpoint("no origin line"))?;
        let size = lines
            .next()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(NoteError::BadCheckpoint("the second line is not a tree size"))?;
        let root: Hash = lines
            .next()
            .and_then(|r| B64.decode(r).ok())
            .and_then(|r| r.try_into().ok())
            .ok_or(NoteError::BadCheckpoint("the third line is not a base64 SHA-256 root hash"))?;
        if !body.ends_with('\n') {
            return Err(NoteError::BadCheckpoint("the body must end with a newline"));
        }
        Ok(Self { origin: origin.to_owned(), size, root })
    }
}

/// Signs notes with an Ed25519 key under a name (the log's origin).
pub struct NoteSigner {
    name: String,
    key: SigningKey,
}

impl NoteSigner {
    /// `secret`: the 32-byte Ed25519 seed.
    pub fn new(name: &str, secret: &[u8; 32]) -> Self {
        Self { name: name.to_owned(), key: SigningKey::from_bytes(secret) }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// `<name>+<hex key hash>+<base64(0x01 ‖ public key)>`.
    pub fn verifier_key(&self) -> String {
        let public = self.public_key();
        let hash: String = key_hash(&self.name, &public).iter().map(|b| format!("{b:02x}")).collect();
        let mut encoded = vec![ALG_ED25519];
        encoded.extend_from_slice(&public);
        format!("{}+{hash}+{}", self.name, B64.encode(encoded))
    }

    /// A plain Ed25519 signature over `message` (for documents such as deletion certificates,
    /// which are canonical JSON and can never be mistaken for a note body).
    pub fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// The signed note: `body`, a blank line, and the signature line.
    pub fn sign(&self, body: &str) -> String {
        debug_assert!(body.ends_with('\n'));
        let signature = self.key.sign(body.as_bytes());
        let mut sig = key_hash(&self.name, &self.public_key()).to_vec();
        sig.extend_from_slice(&signature.to_bytes());
        format!("{body}\n{DASH}{} {}\n", self.name, B64.encode(sig))
    }
}

/// Checks notes against one verifier key.
pub struct NoteVerifier {
    name: String,
    hash: [u8; 4],
    key: VerifyingKey,
}

impl NoteVerifier {
    pub fn parse(verifier_key: &str) -> Result<Self, NoteError> {
        let mut parts = verifier_key.trim().splitn(3, '+');
        let (name, hash, key) = (parts.next(), parts.next(), parts.next());
        let (Some(name), Some(hash), Some(key)) = (name, hash, key) else { return Err(NoteError::BadKey) };
        let key = B64.decode(key).map_err(|_| NoteError::BadKey)?;
        if key.len() != 33 || key[0] != ALG_ED25519 || hash.len() != 8 {
            return Err(NoteError::BadKey);
        }
        let public: [u8; 32] = key[1..].try_into().map_err(|_| NoteError::BadKey)?;
        let hash_bytes: Vec<u8> = (0..4)
            .map(|i| u8::from_str_radix(&hash[2 * i..2 * i + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(|_| NoteError::BadKey)?;
        let expected = key_hash(name, &public);
        if hash_bytes != expected {
            return Err(NoteError::BadKey);
        }
        Ok(Self {
            name: name.to_owned(),
            hash: expected,
            key: VerifyingKey::from_bytes(&public).map_err(|_| NoteError::BadKey)?,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Verifies the note's signature by this key; returns the body.
    pub fn verify<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let split = note.rfind("\n\n").ok_or(NoteError::Malformed)?;
        let (body, signatures) = (&note[..split + 1], &note[split + 2..]);
        for line in signatures.lines() {
            let Some(rest) = line.strip_prefix(DASH) else { return Err(NoteError::Malformed) };
            let Some((name, sig)) = rest.split_once(' ') else { return Err(NoteError::Malformed) };
            if name != self.name {
                continue;
            }
            let sig = B64.decode(sig).map_err(|_| NoteError::Malformed)?;
            if sig.len() != 68 || sig[..4] != self.hash {
                continue;
            }
            let signature = Signature::from_slice(&sig[4..]).map_err(|_| NoteError::Malformed)?;
            return match self.key.verify(body.as_bytes(), &signature) {
                Ok(()) => Ok(body),
                Err(_) => Err(NoteError::BadSignature(self.name.clone())),
            };
        }
        Err(NoteError::NoSignature(self.name.clone()))
    }

    /// Whether `signature` is this key's Ed25519 signature over `message`.
    pub fn verify_bytes(&self, message: &[u8], signature: &[u8]) -> bool {
        Signature::from_slice(signature).is_ok_and(|s| self.key.verify_strict(message, &s).is_ok())
    }

    /// Verifies a signed checkpoint and parses it.
    pub fn verify_checkpoint(&self, note: &str) -> Result<Checkpoint, NoteError> {
        let cp = Checkpoint::parse(self.verify(note)?)?;
        if cp.origin != self.name {
            return Err(NoteError::BadCheckpoint("the origin is not the key's name"));
        }
        Ok(cp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_checkpoint_verifies_and_any_change_fails() {
        let signer = NoteSigner::new("example.com/log", &[7u8; 32]);
        let cp = Checkpoint { origin: "example.com/log".into(), size: 42, root: [9u8; 32] };
        let note = signer.sign(&cp.body());
        assert!(note.starts_with("example.com/log\n42\nCQkJ"), "{note}");
        assert!(note.contains("\n\n\u{2014} example.com/log "));
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        assert_eq!(verifier.verify_checkpoint(&note).unwrap(), cp);
        let altered = note.replace("\n42\n", "\n41\n");
        assert_eq!(verifier.verify(&altered), Err(NoteError::BadSignature("example.com/log".into())));
        let other = NoteSigner::new("example.com/log", &[8u8; 32]);
        assert!(NoteVerifier::parse(&other.verifier_key()).unwrap().verify(&note).is_err(), "another key");
        assert!(matches!(NoteVerifier::parse("nonsense"), Err(NoteError::BadKey)));
    }

    #[test]
    fn the_verifier_key_has_the_c2sp_form() {
        let signer = NoteSigner::new("PeterNeumann", &[1u8; 32]);
        let vkey = signer.verifier_key();
        let parts: Vec<&str> = vkey.split('+').collect();
        assert_eq!(parts[0], "PeterNeumann");
        assert_eq!(parts[1].len(), 8);
        assert_eq!(B64.decode(parts[2]).unwrap()[0], 0x01);
    }
}
