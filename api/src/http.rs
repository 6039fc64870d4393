//! GraphQL over HTTP (the GraphQL Foundation's specification): which media type to answer in,
//! how a request is read from a GET or a POST, and the status codes of the answer.
//!
//! - The answer's media type follows `Accept`: `application/graphql-response+json` when the
//!   client accepts it at least as much as `application/json`; `application/json` when only that
//!   (or only a wildcard, or no `Accept` at all — the specification's legacy default) is
//!   accepted; `406 Not Acceptable` when neither is.
//! - In `application/graphql-response+json`, a request that fails before execution (a document
//!   that does not parse or validate, variables that do not coerce) is `400` with no `data`
//!   entry; anything that executed is `200`. In `application/json` every executed request is
//!   `200`, as legacy clients expect.
//! - A POST must be `application/json` (`415` otherwise). A GET executes queries from the URL
//!   (`query`, `variables`, `operationName`) and refuses mutations with `405` (`Allow: POST`);
//!   GraphiQL is served to a GET without a query only when the client accepts `text/html`.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The media types the API answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    GraphqlResponseJson,
    Json,
}

impl Media {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        }
    }
}

/// `(type/subtype, q)` of each media range in an `Accept` header.
fn ranges(accept: &str) -> Vec<(String, f32)> {
    accept
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let media = pieces.next()?.trim().to_ascii_lowercase();
            if media.is_empty() {
                return None;
            }
            let q = pieces
                .filter_map(|p| p.trim().strip_prefix("q=").and_then(|v| v.trim().parse::<f32>().ok()))
                .next()
                .unwrap_or(1.0);
            Some((media, q))
        })
        .collect()
}

fn quality(ranges: &[(String, f32)], media: &str) -> Option<f32> {
    ranges
        .iter()
        .filter(|(m, _)| m == media)
        .map(|(_, q)| *q)
        .fold(None, |best, q| Some(best.map_or(q, |b: f32| b.max(q))))
}

/// The media type to answer in, or `None` (406) when the client accepts neither.
pub fn negotiate(headers: &HeaderMap) -> Option<Media> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(Media::Json);
    };
    let r = ranges(accept);
    let graphql = quality(&r, "application/graphql-response+json").filter(|q| *q > 0.0);
    let json = quality(&r, "application/json").filter(|q| *q > 0.0);
    let wildcard = quality(&r, "*/*").into_iter().chain(quality(&r, "application/*")).fold(0.0f32, f32::max);
    match (graphql, json) {
        (Some(g), Some(j)) => Some(if g >= j { Media::GraphqlResponseJson } else { Media::Json }),
        (Some(_), None) => Some(Media::GraphqlResponseJson),
        (None, Some(_)) => Some(Media::Json),
        (None, None) if wildcard > 0.0 => Some(Media::Json),
        (None, None) => None,
    }
}

/// Whether the client accepts HTML (a browser asking for GraphiQL).
pub fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| ranges(a).iter().any(|(m, q)| m == "text/html" && *q > 0.0))
}

/// Whether a POST body is declared as JSON.
pub fn is_json_body(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// An error answer for a request that never reached the schema.
pub fn error(media: Media, status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"errors": [{"message": message, "extensions": {"code": code}}]});
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(media.as_str()))], body.to_string()).into_response()
}

/// `406`: the client accepts no media type the API answers in.
pub fn not_acceptable() -> Response {
    let body = serde_json::json!({"errors": [{"message": "accept application/graphql-response+json or application/json", "extensions": {"code": "NOT_ACCEPTABLE"}}]});
    (
        StatusCode::NOT_ACCEPTABLE,
        [(header::CONTENT_TYPE, HeaderValue::from_static(Media::Json.as_str()))],
        body.to_string(),
    )
        .into_response()
}

/// Reads a GET request's URL parameters as a GraphQL request; `Err` says what is wrong (a 400).
pub fn from_query(raw: Option<&str>) -> Result<async_graphql::Request, &'static str> {
    let bad = |m: &'static str| m;
    let mut query = None;
    let mut variables = None;
    let mut operation = None;
    let mut extensions = None;
    let mut document_id = None;
    for (k, v) in form_urlencoded(raw.unwrap_or("")) {
        match k.as_str() {
            "query" => query = Some(v),
            "extensions" if !v.is_empty() => extensions = Some(v),
            "variables" if !v.is_empty() => variables = Some(v),
            "operationName" if !v.is_empty() => operation = Some(v),
            "documentId" if !v.is_empty() => document_id = Some(v),
            _ => {}
        }
    }
    let extensions = match extensions.map(|e| serde_json::from_str::<async_graphql::Extensions>(&e)) {
        None => None,
        Some(Ok(e)) => Some(e),
        Some(Err(_)) => return Err(bad("`extensions` must be a JSON object")),
    };
    // A persisted query may come as its hash alone.
    let query = match (query, &extensions) {
        (Some(q), _) => q,
        (None, Some(e)) if e.contains_key("persistedQuery") => String::new(),
        (None, _) if document_id.is_some() => String::new(),
        (None, _) => return Err(bad("a GET request needs a `query` parameter")),
    };
    let mut req = async_graphql::Request::new(query);
    if let Some(e) = extensions {
        req.extensions = e;
    }
    if crate::persisted::adopt_document_id(&mut req, document_id.as_deref()).is_err() {
        return Err(bad("documentId must look like \"sha256:<hex>\""));
    }
    if let Some(v) = variables {
        match serde_json::from_str::<serde_json::Value>(&v) {
            Ok(json @ serde_json::Value::Object(_)) => {
                req = req.variables(async_graphql::Variables::from_json(json));
            }
            _ => return Err(bad("`variables` must be a JSON object")),
        }
    }
    if let Some(op) = operation {
        req = req.operation_name(op);
    }
    Ok(req)
}

/// Whether the operation a request selects is a mutation (GET may not run one). A document
/// that does not parse is not a mutation here: execution reports the parse error.
pub fn is_mutation(req: &async_graphql::Request) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let Ok(doc) = async_graphql::parser::parse_query(&req.query) else { return false };
    let ty = match (&doc.operations, req.operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next().map(|op| op.node.ty),
        (DocumentOperations::Multiple(_), None) => None,
    };
    ty == Some(OperationType::Mutation)
}

/// `application/x-www-form-urlencoded` pairs (a URL's query string).
fn form_urlencoded(raw: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The answer to an executed request, in `media`.
pub fn respond(media: Media, response: async_graphql::Response) -> Response {
    let content_type = [(header::CONTENT_TYPE, HeaderValue::from_static(media.as_str()))];
    // A request error: nothing executed (no data), and no error points into a result.
    let request_error = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    if media == Media::GraphqlResponseJson && request_error {
        let body = serde_json::json!({ "errors": response.errors });
        return (StatusCode::BAD_REQUEST, content_type, body.to_string()).into_response();
    }
    let body = serde_json::to_string(&response).expect("a GraphQL response serialises");
    (StatusCode::OK, content_type, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn the_answer_is_in_a_media_type_the_client_accepts() {
        assert_eq!(negotiate(&HeaderMap::new()), Some(Media::Json), "no Accept: the legacy default");
        assert_eq!(negotiate(&accept("application/json")), Some(Media::Json));
        assert_eq!(negotiate(&accept("application/graphql-response+json")), Some(Media::GraphqlResponseJson));
        assert_eq!(
            negotiate(&accept("application/graphql-response+json, application/json;q=0.9")),
            Some(Media::GraphqlResponseJson)
        );
        assert_eq!(negotiate(&accept("application/graphql-response+json;q=0.5, application/json")), Some(Media::Json));
        assert_eq!(negotiate(&accept("*/*")), Some(Media::Json));
        assert_eq!(negotiate(&accept("text/html")), None);
        assert_eq!(negotiate(&accept("application/json;q=0")), None);
        assert!(accepts_html(&accept("text/html,application/xhtml+xml;q=0.9")));
    }

    #[test]
    fn url_parameters_decode_and_mutations_are_recognised() {
        let req = from_query(Some("query=%7B__typename%7D&variables=%7B%22a%22%3A1%7D&operationName=")).unwrap();
        assert_eq!(req.query, "{__typename}");
        assert!(!is_mutation(&req));
        let m = from_query(Some("query=mutation+M+%7B+logout+%7B+revoked+%7D+%7D")).unwrap();
        assert_eq!(m.query, "mutation M { logout { revoked } }");
        assert!(is_mutation(&m));
        assert!(from_query(Some("variables=%7B%7D")).is_err(), "no query");
        assert!(from_query(Some("query=%7Ba%7D&variables=%5B1%5D")).is_err(), "variables not an object");
    }
}
