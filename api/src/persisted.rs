//! Automatic persisted queries (the Apollo extension): a client sends
//! `extensions.persistedQuery {version: 1, sha256Hash}` without the query text; the server runs
//! the query it registered under that hash, or answers `PersistedQueryNotFound`, and the client
//! then sends the text once with its hash. The cache is per process and bounded.

use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

/// Most queries kept; registering one more evicts another.
const CAPACITY: usize = 10_000;

/// Why a persisted-query request cannot run: status, code and message for the client.
pub type Refusal = (StatusCode, &'static str, &'static str);

#[derive(Default)]
pub struct PersistedQueries {
    queries: Mutex<HashMap<String, String>>,
}

impl PersistedQueries {
    /// Fills in the request's query from its hash, or registers the query under its hash.
    pub fn resolve(&self, req: &mut async_graphql::Request) -> Result<(), Refusal> {
        let Some(ext) = req.extensions.get("persistedQuery") else { return Ok(()) };
        let malformed: Refusal =
            (StatusCode::BAD_REQUEST, "BAD_REQUEST", "persistedQuery needs version 1 and a sha256Hash");
        let async_graphql::Value::Object(ext) = ext else { return Err(malformed) };
        let version = ext.get("version").and_then(|v| match v {
            async_graphql::Value::Number(n) => n.as_u64(),
            _ => None,
        });
        let hash = match ext.get("sha256Hash") {
            Some(async_graphql::Value::String(h)) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                h.to_ascii_lowercase()
            }
            _ => return Err(malformed),
        };
        if version != Some(1) {
            return Err(malformed);
        }
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
        let actual: String = Sha256::digest(req.query.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        if actual != hash {
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
