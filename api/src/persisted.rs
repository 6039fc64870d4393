//! Persisted queries, in two modes.
//!
//! - **Automatic persisted queries** (the Apollo extension; the default): a client sends
//!   `extensions.persistedQuery {version: 1, sha256Hash}` without the query text; the server
//!   runs the query it registered under that hash, or answers `PersistedQueryNotFound`, and the
//!   client then sends the text once with its hash. The cache is per process and bounded.
//! - **Trusted documents** (`serve --trusted-documents FILE`): only the operations in an
//!   allowlist built with the dashboard run. A request names one by hash (the APQ extension, or
//!   `documentId: "sha256:<hex>"`), or sends text whose hash is on the list; anything else is
//!   refused with `PERSISTED_QUERY_NOT_IN_LIST`, and nothing new is registered.

use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Most queries kept; registering one more evicts another.
const CAPACITY: usize = 10_000;

/// Why a persisted-query request cannot run: status, code and message for the client.
pub type Refusal = (StatusCode, &'static str, &'static str);

/// The allowlist of trusted documents: SHA-256 (lowercase hex) → document text.
#[derive(Debug, Clone)]
pub struct TrustedDocuments(Arc<HashMap<String, String>>);

impl TrustedDocuments {
    /// Reads the file: a JSON object from each document's hash (hex, optionally prefixed
    /// `sha256:`) to its text. Every hash must be the text's, so the list cannot say one thing
    /// and run another.
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it ({e})"))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let map: HashMap<String, String> =
            serde_json::from_str(text).map_err(|e| format!("not a JSON object of hash to document text ({e})"))?;
        let mut docs = HashMap::with_capacity(map.len());
        for (key, document) in map {
            let hash = key.strip_prefix("sha256:").unwrap_or(&key).to_ascii_lowercase();
            if sha256_hex(&document) != hash {
                return Err(format!("the entry {key:?} is not the SHA-256 of its document"));
            }
            docs.insert(hash, document);
        }
        if docs.is_empty() {
            return Err("it lists no documents".into());
        }
        Ok(Self(Arc::new(docs)))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Default)]
pub struct PersistedQueries {
    queries: Mutex<HashMap<String, String>>,
    trusted: Option<TrustedDocuments>,
}

/// Moves a `documentId` (`"sha256:<hex>"`, the GraphQL-over-HTTP persisted-documents form)
/// into the request as the persisted-query extension, so both forms are resolved alike.
pub fn adopt_document_id(req: &mut async_graphql::Request, document_id: Option<&str>) -> Result<(), Refusal> {
    let Some(id) = document_id else { return Ok(()) };
    let Some(hash) = id.strip_prefix("sha256:") else {
        return Err((StatusCode::BAD_REQUEST, "BAD_REQUEST", "documentId must look like \"sha256:<hex>\""));
    };
    let mut ext = async_graphql::indexmap::IndexMap::new();
    ext.insert(async_graphql::Name::new("version"), async_graphql::Value::from(1));
    ext.insert(async_graphql::Name::new("sha256Hash"), async_graphql::Value::from(hash));
    req.extensions.insert("persistedQuery".into(), async_graphql::Value::Object(ext));
    Ok(())
}

impl PersistedQueries {
    pub fn new(trusted: Option<TrustedDocuments>) -> Self {
        Self { queries: Mutex::default(), trusted }
    }

    /// Fills in the request's query from its hash, or registers the query under its hash; in
    /// trusted-documents mode, lets only listed documents through.
    pub fn resolve(&self, req: &mut async_graphql::Request) -> Result<(), Refusal> {
        let hash = match req.extensions.get("persistedQuery") {
            None => None,
            Some(ext) => Some(requested_hash(ext)?),
        };
        if let Some(trusted) = &self.trusted {
            let not_listed: Refusal = (
                StatusCode::BAD_REQUEST,
                "PERSISTED_QUERY_NOT_IN_LIST",
                "this server runs only its trusted documents, and this is not one of them",
            );
            let hash = match hash {
                Some(h) => h,
                None => sha256_hex(&req.query),
            };
            let Some(document) = trusted.0.get(&hash) else { return Err(not_listed) };
            if !req.query.is_empty() && req.query != *document {
                return Err((StatusCode::BAD_REQUEST, "BAD_REQUEST", "provided sha does not match query"));
            }
            req.query = document.clone();
            return Ok(());
        }
        let Some(hash) = hash else { return Ok(()) };
        let mut queries = self.queries.lock().expect("the persisted-query cache lock is never poisoned");
        if req.query.is_empty() {
            return match queries.get(&hash) {
                Some(q) => {
                    req.query = q.clone();
                    Ok(())
                }
                None => Err((StatusCode::OK, "PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")),
            };
        }
        if sha256_hex(&req.query) != hash {
            return Err((StatusCode::BAD_REQUEST, "BAD_REQUEST", "provided sha does not match query"));
        }
        if queries.len() >= CAPACITY && !queries.contains_key(&hash) {
            if let Some(old) = queries.keys().next().cloned() {
                queries.remove(&old);
            }
        }
        queries.insert(hash, req.query.clone());
        Ok(())
    }
}

/// The hash a `persistedQuery` extension names.
fn requested_hash(ext: &async_graphql::Value) -> Result<String, Refusal> {
    let malformed: Refusal =
        (StatusCode::BAD_REQUEST, "BAD_REQUEST", "persistedQuery needs version 1 and a sha256Hash");
    let async_graphql::Value::Object(ext) = ext else { return Err(malformed) };
    let version = ext.get("version").and_then(|v| match v {
        async_graphql::Value::Number(n) => n.as_u64(),
        _ => None,
    });
    match ext.get("sha256Hash") {
        Some(async_graphql::Value::String(h))
            if version == Some(1) && h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Ok(h.to_ascii_lowercase())
        }
        _ => Err(malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trusted_list_must_hash_to_its_documents() {
        let q = "{ __typename }";
        let good = format!("{{\"sha256:{}\": {:?}}}", sha256_hex(q), q);
        assert_eq!(TrustedDocuments::parse(&good).unwrap().len(), 1);
        let bad = format!("{{\"{}\": {:?}}}", sha256_hex("{ me { email } }"), q);
        assert!(TrustedDocuments::parse(&bad).unwrap_err().contains("not the SHA-256"));
        assert!(TrustedDocuments::parse("[]").is_err());
        assert!(TrustedDocuments::parse("{}").is_err());
    }

    #[test]
    fn trusted_mode_runs_listed_documents_only() {
        let q = "{ __typename }";
        let list = TrustedDocuments::parse(&format!("{{\"{}\": {:?}}}", sha256_hex(q), q)).unwrap();
        let pq = PersistedQueries::new(Some(list));
        let mut by_text = async_graphql::Request::new(q);
        assert!(pq.resolve(&mut by_text).is_ok());
        let mut by_id = async_graphql::Request::new("");
        adopt_document_id(&mut by_id, Some(&format!("sha256:{}", sha256_hex(q)))).unwrap();
        pq.resolve(&mut by_id).unwrap();
        assert_eq!(by_id.query, q);
        let mut other = async_graphql::Request::new("{ me { email } }");
        assert_eq!(pq.resolve(&mut other).unwrap_err().1, "PERSISTED_QUERY_NOT_IN_LIST");
        // Registering by hash (APQ) adds nothing in this mode.
        let text = "{ me { email } }";
        let mut register = async_graphql::Request::new(text);
        adopt_document_id(&mut register, Some(&format!("sha256:{}", sha256_hex(text)))).unwrap();
        assert_eq!(pq.resolve(&mut register).unwrap_err().1, "PERSISTED_QUERY_NOT_IN_LIST");
        let mut again = async_graphql::Request::new("");
        adopt_document_id(&mut again, Some(&format!("sha256:{}", sha256_hex(text)))).unwrap();
        assert_eq!(pq.resolve(&mut again).unwrap_err().1, "PERSISTED_QUERY_NOT_IN_LIST");
    }
}
