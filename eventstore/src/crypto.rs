//! Envelope encryption of personal data (crypto-shredding).
//!
//! A master key (from configuration) wraps one random data key per (store, subject, key class).
//! Every personal-data marker in a payload (`{"$pii": {...}}`, see `domain::pii`) is replaced by
//! `{"$enc": {...}}`: XChaCha20-Poly1305 under the subject's data key, with associated data that
//! binds the ciphertext to its store, stream, event, JSON path, class and subject, so it cannot be
//! copied into another event and still open. Destroying the data key makes every such field read
//! back as an explicit erased marker.

use crate::error::{Result, StoreError};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{AeadCore, XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use domain::pii::{KeyClass, PII_MARKER};
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use uuid::Uuid;

/// The JSON key of an encrypted personal-data field as stored.
pub const ENC_MARKER: &str = "$enc";
const NONCE_LEN: usize = 24;

/// The key-encryption key. Never logged; `Debug` is redacted.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl MasterKey {
    pub fn from_base64(s: &str) -> Result<Self> {
        let bytes = B64.decode(s.trim()).map_err(|_| StoreError::Config("master key is not valid base64".into()))?;
        let key: [u8; 32] =
            bytes.try_into().map_err(|_| StoreError::Config("master key must be exactly 32 bytes".into()))?;
        Ok(Self(key))
    }

    pub fn generate() -> Self {
        Self(random_key())
    }

    pub fn to_base64(&self) -> String {
        B64.encode(self.0)
    }

    /// A sub-key for another purpose (token signing, certificate signing), so the master key
    /// itself is only ever used to wrap data keys.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(b"inventory-connect derive v1\0");
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

fn random_key() -> [u8; 32] {
    XChaCha20Poly1305::generate_key(&mut OsRng).into()
}

/// A data key as kept in the key store: wrapped, or destroyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub store_id: Uuid,
    pub subject_id: Uuid,
    pub class: KeyClass,
    pub key_id: Uuid,
    /// `nonce || ciphertext` under the master key; `None` once destroyed.
    pub wrapped: Option<Vec<u8>>,
    pub fingerprint: String,
    pub created_at: DateTime<Utc>,
    pub destroyed_at: Option<DateTime<Utc>>,
}

/// An unwrapped data key. Lives only in memory for the duration of one operation.
#[derive(Clone)]
pub struct DataKey {
    pub key_id: Uuid,
    key: [u8; 32],
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey({})", self.key_id)
    }
}

fn key_aad(store: Uuid, subject: Uuid, class: KeyClass, key_id: Uuid) -> Vec<u8> {
    format!("ic-dek-v1\0{store}\0{subject}\0{}\0{key_id}", class.as_str()).into_bytes()
}

fn fingerprint(key: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    h.update(b"ic-dek-fingerprint-v1\0");
    h.update(key);
    hex(&h.finalize())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl MasterKey {
    /// Wraps a secret (the ledger's signing key) under this master key, bound to `label`.
    pub fn wrap_secret(&self, label: &str, secret: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = format!("ic-secret-v1\0{label}").into_bytes();
        let ct = cipher
            .encrypt(&nonce, Payload { msg: secret, aad: &aad })
            .expect("encryption with a valid key cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        out
    }

    /// Unwraps a secret wrapped by [`MasterKey::wrap_secret`] with the same label.
    pub fn unwrap_secret(&self, label: &str, wrapped: &[u8]) -> Result<Vec<u8>> {
        if wrapped.len() <= NONCE_LEN {
            return Err(StoreError::Crypto("wrapped secret too short".into()));
        }
        let (nonce, ct) = wrapped.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let aad = format!("ic-secret-v1\0{label}").into_bytes();
        cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| StoreError::Crypto("secret does not unwrap under this master key".into()))
    }

    /// A fresh random 32-byte secret.
    pub fn random_secret() -> [u8; 32] {
        random_key()
    }

    /// Creates a fresh data key and its record, wrapped under this master key.
    pub fn new_data_key(&self, store_id: Uuid, subject_id: Uuid, class: KeyClass, now: DateTime<Utc>) -> KeyRecord {
        let key = random_key();
        let key_id = Uuid::now_v7();
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = key_aad(store_id, subject_id, class, key_id);
        let ct =
            cipher.encrypt(&nonce, Payload { msg: &key, aad: &aad }).expect("encryption with a valid key cannot fail");
        let mut wrapped = nonce.to_vec();
        wrapped.extend_from_slice(&ct);
        KeyRecord {
            store_id,
            subject_id,
            class,
            key_id,
            wrapped: Some(wrapped),
            fingerprint: fingerprint(&key),
            created_at: now,
            destroyed_at: None,
        }
    }

    /// The record's wrapped key, unwrapped with this master key and wrapped again under `new`
    /// (same key, same binding); `Ok(None)` for a destroyed key.
    pub fn rewrap(&self, record: &KeyRecord, new: &MasterKey) -> Result<Option<Vec<u8>>> {
        let Some(key) = self.unwrap_key(record)? else { return Ok(None) };
        let cipher = XChaCha20Poly1305::new((&new.0).into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = key_aad(record.store_id, record.subject_id, record.class, record.key_id);
        let ct = cipher
            .encrypt(&nonce, Payload { msg: &key.key, aad: &aad })
            .expect("encryption with a valid key cannot fail");
        let mut wrapped = nonce.to_vec();
        wrapped.extend_from_slice(&ct);
        Ok(Some(wrapped))
    }

    /// Unwraps a live key; `Ok(None)` if it was destroyed.
    pub fn unwrap_key(&self, record: &KeyRecord) -> Result<Option<DataKey>> {
        let Some(wrapped) = &record.wrapped else { return Ok(None) };
        if wrapped.len() <= NONCE_LEN {
            return Err(StoreError::Crypto("wrapped key too short".into()));
        }
        let (nonce, ct) = wrapped.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let aad = key_aad(record.store_id, record.subject_id, record.class, record.key_id);
        let key = cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| StoreError::Crypto("data key does not unwrap under this master key".into()))?;
        let key: [u8; 32] = key.try_into().map_err(|_| StoreError::Crypto("data key has wrong length".into()))?;
        Ok(Some(DataKey { key_id: record.key_id, key }))
    }
}

/// Where a field lives: what its ciphertext is bound to.
pub struct FieldContext<'a> {
    pub store_id: Uuid,
    pub stream_id: &'a str,
    pub event_id: Uuid,
}

fn field_aad(ctx: &FieldContext<'_>, path: &str, class: KeyClass, subject: Uuid) -> Vec<u8> {
    format!("ic-field-v1\0{}\0{}\0{}\0{path}\0{}\0{subject}", ctx.store_id, ctx.stream_id, ctx.event_id, class.as_str())
        .into_bytes()
}

/// Visits every marker object (`{"$pii": ..}` or `{"$enc": ..}`) with its JSON pointer path.
fn walk(value: &mut Value, path: &mut String, f: &mut dyn FnMut(&str, &mut Value) -> Result<()>) -> Result<()> {
    match value {
        Value::Object(map) if map.len() == 1 && (map.contains_key(PII_MARKER) || map.contains_key(ENC_MARKER)) => {
            f(path, value)
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let len = path.len();
                path.push('/');
                path.push_str(&k.replace('~', "~0").replace('/', "~1"));
                walk(v, path, f)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                walk(v, path, f)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Visits every marker object without changing anything (no copy of the payload).
fn visit(value: &Value, f: &mut dyn FnMut(&Value) -> Result<()>) -> Result<()> {
    match value {
        Value::Object(map) if map.len() == 1 && (map.contains_key(PII_MARKER) || map.contains_key(ENC_MARKER)) => {
            f(value)
        }
        Value::Object(map) => map.values().try_for_each(|v| visit(v, f)),
        Value::Array(items) => items.iter().try_for_each(|v| visit(v, f)),
        _ => Ok(()),
    }
}

fn marker_body<'v>(value: &'v Value, key: &str) -> Option<&'v Map<String, Value>> {
    value.as_object()?.get(key)?.as_object()
}

/// The key classes of clear personal-data markers in a payload (what sealing will need).
pub fn classes_to_seal(payload: &Value) -> Result<BTreeSet<KeyClass>> {
    let mut out = BTreeSet::new();
    visit(payload, &mut |node| {
        if let Some(body) = marker_body(node, PII_MARKER) {
            if body.get("value").is_some() {
                out.insert(parse_class(body)?);
            }
        }
        Ok(())
    })?;
    Ok(out)
}

fn parse_class(body: &Map<String, Value>) -> Result<KeyClass> {
    body.get("class")
        .and_then(Value::as_str)
        .and_then(KeyClass::parse)
        .ok_or_else(|| StoreError::Crypto("personal-data marker has no known key class".into()))
}

/// Replaces every clear personal-data marker by its ciphertext under `keys[class]`.
pub fn seal(
    payload: &mut Value,
    ctx: &FieldContext<'_>,
    subject: Uuid,
    keys: &HashMap<KeyClass, DataKey>,
) -> Result<()> {
    walk(payload, &mut String::new(), &mut |path, node| {
        let Some(body) = marker_body(node, PII_MARKER) else { return Ok(()) };
        let Some(clear) = body.get("value") else {
            // Already an erased marker: nothing personal to protect.
            return Ok(());
        };
        let class = parse_class(body)?;
        let key = keys.get(&class).ok_or_else(|| StoreError::Crypto("no data key for class".into()))?;
        let plaintext = serde_json::to_vec(clear).expect("JSON values serialise");
        let cipher = XChaCha20Poly1305::new((&key.key).into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = field_aad(ctx, path, class, subject);
        let ct = cipher
            .encrypt(&nonce, Payload { msg: &plaintext, aad: &aad })
            .expect("encryption with a valid key cannot fail");
        *node = json!({ ENC_MARKER: {
            "v": 1,
            "class": class.as_str(),
            "subject": subject,
            "key": key.key_id,
            "nonce": B64.encode(nonce),
            "ct": B64.encode(ct),
        }});
        Ok(())
    })
}

/// The (subject, class) pairs whose keys are needed to open a payload.
pub fn keys_to_open(payload: &Value) -> Result<BTreeSet<(Uuid, KeyClass)>> {
    let mut out = BTreeSet::new();
    visit(payload, &mut |node| {
        if let Some(body) = marker_body(node, ENC_MARKER) {
            out.insert((parse_subject(body)?, parse_class(body)?));
        }
        Ok(())
    })?;
    Ok(out)
}

fn parse_subject(body: &Map<String, Value>) -> Result<Uuid> {
    body.get("subject")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| StoreError::Crypto("encrypted field has no subject".into()))
}

/// What the key store knows about one (subject, class) key.
#[derive(Debug, Clone)]
pub enum KeyState {
    Live(DataKey),
    /// Destroyed (crypto-shredded) at this time.
    Destroyed(Option<DateTime<Utc>>),
}

/// Replaces every encrypted field by a clear marker, or an erased marker where the key is gone.
pub fn open(payload: &mut Value, ctx: &FieldContext<'_>, keys: &HashMap<(Uuid, KeyClass), KeyState>) -> Result<()> {
    walk(payload, &mut String::new(), &mut |path, node| {
        let Some(body) = marker_body(node, ENC_MARKER) else { return Ok(()) };
        let class = parse_class(body)?;
        let subject = parse_subject(body)?;
        let replacement = match keys.get(&(subject, class)) {
            Some(KeyState::Live(key)) => {
                let field = |k: &str| -> Result<Vec<u8>> {
                    body.get(k)
                        .and_then(Value::as_str)
                        .and_then(|s| B64.decode(s).ok())
                        .ok_or_else(|| StoreError::Crypto(format!("encrypted field has no valid {k}")))
                };
                let nonce = field("nonce")?;
                if nonce.len() != NONCE_LEN {
                    return Err(StoreError::Crypto("encrypted field nonce has wrong length".into()));
                }
                let ct = field("ct")?;
                let cipher = XChaCha20Poly1305::new((&key.key).into());
                let aad = field_aad(ctx, path, class, subject);
                let plain = cipher
                    .decrypt(XNonce::from_slice(&nonce), Payload { msg: &ct, aad: &aad })
                    .map_err(|_| StoreError::Crypto("encrypted field failed authentication".into()))?;
                let value: Value = serde_json::from_slice(&plain)
                    .map_err(|_| StoreError::Crypto("decrypted field is not JSON".into()))?;
                json!({ PII_MARKER: { "class": class.as_str(), "value": value } })
            }
            // A destroyed key, or one that never reached this key store (e.g. a restored
            // backup of the log without the key store): the data is gone, which is erasure.
            Some(KeyState::Destroyed(at)) => erased(class, *at),
            None => erased(class, None),
        };
        *node = replacement;
        Ok(())
    })
}

fn erased(class: KeyClass, at: Option<DateTime<Utc>>) -> Value {
    let mut body = json!({ "class": class.as_str(), "erased": true });
    if let Some(at) = at {
        body["at"] = json!(at);
    }
    json!({ PII_MARKER: body })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> FieldContext<'static> {
        FieldContext { store_id: Uuid::from_u128(1), stream_id: "customer-x", event_id: Uuid::from_u128(2) }
    }

    fn live(master: &MasterKey, subject: Uuid) -> (HashMap<KeyClass, DataKey>, HashMap<(Uuid, KeyClass), KeyState>) {
        let rec = master.new_data_key(Uuid::from_u128(1), subject, KeyClass::Profile, Utc::now());
        let key = master.unwrap_key(&rec).unwrap().unwrap();
        (
            HashMap::from([(KeyClass::Profile, key.clone())]),
            HashMap::from([((subject, KeyClass::Profile), KeyState::Live(key))]),
        )
    }

    #[test]
    fn sealed_payloads_hold_no_plaintext_and_open_back() {
        let master = MasterKey::generate();
        let subject = Uuid::from_u128(9);
        let (seal_keys, open_keys) = live(&master, subject);
        let original = json!({"name": {"$pii": {"class": "profile", "value": "Ann Secret"}}, "tags": ["vip"]});
        let mut p = original.clone();
        seal(&mut p, &ctx(), subject, &seal_keys).unwrap();
        assert!(!p.to_string().contains("Ann Secret"));
        assert_eq!(p["tags"], json!(["vip"]));
        open(&mut p, &ctx(), &open_keys).unwrap();
        assert_eq!(p, original);
    }

    #[test]
    fn ciphertext_moved_to_another_event_or_field_does_not_open() {
        let master = MasterKey::generate();
        let subject = Uuid::from_u128(9);
        let (seal_keys, open_keys) = live(&master, subject);
        let mut p = json!({"name": {"$pii": {"class": "profile", "value": "Ann"}}});
        seal(&mut p, &ctx(), subject, &seal_keys).unwrap();
        let other_event = FieldContext { event_id: Uuid::from_u128(3), ..ctx() };
        assert!(matches!(open(&mut p.clone(), &other_event, &open_keys), Err(StoreError::Crypto(_))));
        let mut moved = json!({"email": p["name"].clone()});
        assert!(matches!(open(&mut moved, &ctx(), &open_keys), Err(StoreError::Crypto(_))));
    }

    #[test]
    fn a_destroyed_key_opens_as_an_explicit_erased_marker() {
        let master = MasterKey::generate();
        let subject = Uuid::from_u128(9);
        let (seal_keys, _) = live(&master, subject);
        let mut p = json!({"name": {"$pii": {"class": "profile", "value": "Ann"}}});
        seal(&mut p, &ctx(), subject, &seal_keys).unwrap();
        let gone = HashMap::from([((subject, KeyClass::Profile), KeyState::Destroyed(None))]);
        open(&mut p, &ctx(), &gone).unwrap();
        let name: domain::Pii<String> = serde_json::from_value(p["name"].clone()).unwrap();
        assert!(name.is_erased());
    }

    #[test]
    fn a_key_wrapped_for_one_subject_does_not_unwrap_as_another() {
        let master = MasterKey::generate();
        let mut rec = master.new_data_key(Uuid::from_u128(1), Uuid::from_u128(2), KeyClass::Profile, Utc::now());
        rec.subject_id = Uuid::from_u128(3);
        assert!(master.unwrap_key(&rec).is_err());
        let other = MasterKey::generate();
        rec.subject_id = Uuid::from_u128(2);
        assert!(other.unwrap_key(&rec).is_err());
    }

    #[test]
    fn master_keys_parse_only_32_byte_base64() {
        let k = MasterKey::generate();
        assert!(MasterKey::from_base64(&k.to_base64()).is_ok());
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert_eq!(format!("{k:?}"), "MasterKey(<redacted>)");
    }
}
