//! Deletion certificates, signed and checked offline.
//!
//! A certificate is one JSON object. Its `signature` member is the base64 Ed25519 signature, by
//! the ledger key named in `ledger_key` (a signed-note verifier key), over the RFC 8785 canonical
//! JSON of every other member. It carries a signed tree head (`tree_head.checkpoint`) and, for
//! each erasure event, the event's leaf hash and audit path in that tree — so anyone holding the
//! ledger key can check, with no database, that the certificate is unaltered and that the events
//! it cites are in the log the store keeps.

use crate::note::{NoteError, NoteSigner, NoteVerifier};
use crate::tree::{verify_inclusion, Hash};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{Map, Value};

/// The `type` member of every certificate this version writes.
pub const CERTIFICATE_TYPE: &str = "inventory-connect/deletion-certificate/v1";

/// Why a certificate does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateProblem {
    #[error("not a deletion certificate: {0}")]
    Malformed(String),
    #[error("signed by another key than the one given ({0})")]
    WrongKey(String),
    #[error("the signature does not verify: the certificate was altered or forged")]
    BadSignature,
    #[error("the tree head does not verify: {0}")]
    BadTreeHead(NoteError),
    #[error("the tree head's size or root differs from its signed checkpoint")]
    TreeHeadMismatch,
    #[error("the inclusion proof of event {0} does not lead to the signed root")]
    BadProof(String),
    #[error(
        "the file is not byte for byte the form it was issued in (members sorted, two-space indent, one final newline)"
    )]
    NotAsIssued,
}

/// What a verified certificate states (the parts a caller reports or re-checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub certificate_id: String,
    pub store_id: String,
    pub subject_id: String,
    pub tree_size: u64,
    /// `(event_id, leaf_index, leaf_hash)` of each proven event.
    pub events: Vec<(String, u64, Hash)>,
    /// `(class, key_id, fingerprint)` of each destroyed key.
    pub keys: Vec<(String, String, String)>,
}

/// RFC 8785 canonical JSON.
pub fn canonical(value: &Value) -> String {
    serde_jcs::to_string(value).expect("a JSON value always canonicalises")
}

/// The file form of a certificate: pretty-printed with members sorted (the order its canonical
/// form has too), and one final newline. Any other bytes are not the certificate as issued.
pub fn file_text(document: &Map<String, Value>) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(o) => {
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&o[k]))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string_pretty(&sorted(&Value::Object(document.clone()))).expect("JSON serialises") + "\n"
}

/// Signs `document` (an object without `signature`): adds `ledger_key` and `signature`.
pub fn sign(mut document: Map<String, Value>, signer: &NoteSigner) -> Map<String, Value> {
    document.remove("signature");
    document.insert("ledger_key".into(), Value::String(signer.verifier_key()));
    let signature = signer.sign_bytes(canonical(&Value::Object(document.clone())).as_bytes());
    document.insert("signature".into(), Value::String(B64.encode(signature)));
    document
}

fn field<'a>(v: &'a Value, path: &str) -> Result<&'a Value, CertificateProblem> {
    path.split('.')
        .try_fold(v, |v, k| v.get(k))
        .filter(|v| !v.is_null())
        .ok_or_else(|| CertificateProblem::Malformed(format!("no {path}")))
}

fn text(v: &Value, path: &str) -> Result<String, CertificateProblem> {
    field(v, path)?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| CertificateProblem::Malformed(format!("{path} is not text")))
}

fn number(v: &Value, path: &str) -> Result<u64, CertificateProblem> {
    field(v, path)?.as_u64().ok_or_else(|| CertificateProblem::Malformed(format!("{path} is not a number")))
}

fn hash(v: &Value, path: &str) -> Result<Hash, CertificateProblem> {
    crate::parse_hash(&text(v, path)?).ok_or_else(|| CertificateProblem::Malformed(format!("{path} is not a hash")))
}

/// Checks a certificate offline: its signature (by `trusted_key` when given, else by the key it
/// names — which only proves it is self-consistent), its tree head, and every inclusion proof.
pub fn verify(text_: &str, trusted_key: Option<&str>) -> Result<Verified, CertificateProblem> {
    let value: Value =
        serde_json::from_str(text_).map_err(|e| CertificateProblem::Malformed(format!("not JSON ({e})")))?;
    let Value::Object(mut document) = value.clone() else {
        return Err(CertificateProblem::Malformed("not a JSON object".into()));
    };
    if file_text(&document) != text_ {
        return Err(CertificateProblem::NotAsIssued);
    }
    if text(&value, "type")? != CERTIFICATE_TYPE {
        return Err(CertificateProblem::Malformed(format!("type is not {CERTIFICATE_TYPE}")));
    }
    let signature = document
        .remove("signature")
        .and_then(|s| s.as_str().and_then(|s| B64.decode(s).ok()))
        .ok_or_else(|| CertificateProblem::Malformed("no base64 signature".into()))?;
    let key = text(&value, "ledger_key")?;
    if let Some(trusted) = trusted_key {
        if trusted.trim() != key {
            return Err(CertificateProblem::WrongKey(trusted.trim().to_owned()));
        }
    }
    let verifier = NoteVerifier::parse(&key).map_err(CertificateProblem::BadTreeHead)?;
    if !verifier.verify_bytes(canonical(&Value::Object(document)).as_bytes(), &signature) {
        return Err(CertificateProblem::BadSignature);
    }
    let checkpoint =
        verifier.verify_checkpoint(&text(&value, "tree_head.checkpoint")?).map_err(CertificateProblem::BadTreeHead)?;
    if checkpoint.size != number(&value, "tree_head.tree_size")?
        || checkpoint.root != hash(&value, "tree_head.root_hash")?
    {
        return Err(CertificateProblem::TreeHeadMismatch);
    }
    let mut events = Vec::new();
    for e in field(&value, "erasure_events")?.as_array().into_iter().flatten() {
        let id = text(e, "event_id")?;
        let index = number(e, "leaf_index")?;
        let leaf = hash(e, "leaf_hash")?;
        let path = field(e, "audit_path")?
            .as_array()
            .ok_or_else(|| CertificateProblem::Malformed("audit_path is not a list".into()))?
            .iter()
            .map(|h| h.as_str().and_then(crate::parse_hash))
            .collect::<Option<Vec<Hash>>>()
            .ok_or_else(|| CertificateProblem::Malformed("audit_path holds a non-hash".into()))?;
        if !verify_inclusion(&leaf, index, checkpoint.size, &path, &checkpoint.root) {
            return Err(CertificateProblem::BadProof(id));
        }
        events.push((id, index, leaf));
    }
    if events.is_empty() {
        return Err(CertificateProblem::Malformed("no erasure events".into()));
    }
    let keys = field(&value, "destroyed_keys")?
        .as_array()
        .into_iter()
        .flatten()
        .map(|k| Ok((text(k, "class")?, text(k, "key_id")?, text(k, "fingerprint")?)))
        .collect::<Result<Vec<_>, CertificateProblem>>()?;
    Ok(Verified {
        certificate_id: text(&value, "certificate_id")?,
        store_id: text(&value, "store_id")?,
        subject_id: text(&value, "subject.pseudonymous_id")?,
        tree_size: checkpoint.size,
        events,
        keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::Checkpoint;
    use crate::tree::{inclusion_ranges, leaf_hash, range_hash, root};

    /// A three-event tree, a signed head over it, and a certificate citing event 1.
    fn certificate(signer: &NoteSigner) -> String {
        let leaves: Vec<Hash> = (0..3u8).map(|i| leaf_hash(&[i])).collect();
        let size = leaves.len() as u64;
        let head = Checkpoint { origin: signer.name().into(), size, root: root(&leaves) };
        let path: Vec<Value> = inclusion_ranges(1, size)
            .into_iter()
            .map(|(s, e)| Value::String(crate::hex(&range_hash(&leaves, s, e))))
            .collect();
        let doc = serde_json::json!({
            "type": CERTIFICATE_TYPE,
            "certificate_id": "c-1", "store_id": "s-1",
            "subject": {"kind": "customer", "pseudonymous_id": "p-1"},
            "destroyed_keys": [{"class": "profile", "key_id": "k-1", "fingerprint": "ab"}],
            "tree_head": {"tree_size": size, "root_hash": crate::hex(&head.root), "checkpoint": signer.sign(&head.body())},
            "erasure_events": [{"event_id": "e-1", "leaf_index": 1, "leaf_hash": crate::hex(&leaves[1]), "audit_path": path}],
        });
        let Value::Object(doc) = doc else { unreachable!() };
        file_text(&sign(doc, signer))
    }

    #[test]
    fn a_signed_certificate_verifies_and_names_what_it_proves() {
        let signer = NoteSigner::new("inventory-connect/test", &[3u8; 32]);
        let text = certificate(&signer);
        let v = verify(&text, Some(&signer.verifier_key())).unwrap();
        assert_eq!((v.subject_id.as_str(), v.tree_size, v.events.len()), ("p-1", 3, 1));
        // The signature is over the canonical form, and the file is the form it was issued in:
        // whitespace changed anywhere is a different file.
        let compact: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(verify(&serde_json::to_string(&compact).unwrap(), None), Err(CertificateProblem::NotAsIssued));
        assert_eq!(verify(&text.replacen("\n", "\n ", 1), None), Err(CertificateProblem::NotAsIssued));
        assert_eq!(verify(text.trim_end(), None), Err(CertificateProblem::NotAsIssued));
    }

    #[test]
    fn any_change_or_another_key_fails() {
        let signer = NoteSigner::new("inventory-connect/test", &[3u8; 32]);
        let text = certificate(&signer);
        let altered = text.replace("\"p-1\"", "\"p-2\"");
        assert_eq!(verify(&altered, None), Err(CertificateProblem::BadSignature));
        let other = NoteSigner::new("inventory-connect/test", &[4u8; 32]);
        assert!(matches!(verify(&text, Some(&other.verifier_key())), Err(CertificateProblem::WrongKey(_))));
        // Re-signed by another key after a change: the pinned key still refuses it.
        let mut forged: Map<String, Value> = serde_json::from_str(&altered).unwrap();
        forged = sign(forged, &other);
        assert!(matches!(
            verify(&file_text(&forged), Some(&signer.verifier_key())),
            Err(CertificateProblem::WrongKey(_))
        ));
        // A proof that does not lead to the root.
        let mut bad: Value = serde_json::from_str(&text).unwrap();
        bad["erasure_events"][0]["leaf_index"] = Value::from(2);
        let Value::Object(bad) = bad else { unreachable!() };
        let resigned = sign(bad, &signer);
        assert_eq!(verify(&file_text(&resigned), None), Err(CertificateProblem::BadProof("e-1".into())));
        assert!(matches!(verify("[]", None), Err(CertificateProblem::Malformed(_))));
    }
}
