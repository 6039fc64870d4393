//! GraphQL over HTTP (the GraphQL Foundation's specification), over real HTTP on both
//! backends: media types by `Accept`, status codes, GET for queries only, GraphiQL only for
//! browsers.

use super::TestApp;
use serde_json::{json, Value};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// Where requests go: a server's base URL and a client.
#[derive(Clone, Copy)]
struct At<'a> {
    url: &'a str,
    client: &'a reqwest::Client,
}

impl TestApp {
    fn at(&self) -> At<'_> {
        At { url: &self.url, client: &self.client }
    }
}

async fn post(
    app: At<'_>,
    token: &str,
    accept: Option<&str>,
    content_type: Option<&str>,
    body: &str,
) -> (u16, String, String) {
    let mut req = app.client.post(format!("{}/graphql", app.url)).bearer_auth(token).body(body.to_owned());
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    if let Some(c) = content_type {
        req = req.header("content-type", c);
    }
    let r = req.send().await.unwrap();
    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (r.status().as_u16(), ct, r.text().await.unwrap())
}

async fn get(app: At<'_>, token: Option<&str>, accept: &str, query: &str) -> reqwest::Response {
    let mut req = app.client.get(format!("{}/graphql{query}", app.url)).header("accept", accept);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

pub(crate) async fn graphql_over_http_follows_the_specification(app: TestApp) {
    let token = app.owner().await;
    let ok = r#"{"query":"{ me { role } }"}"#;
    let json_ct = Some("application/json");
    // No document at all (a misspelt `query`): invalid parameters, 400 in either media type.
    for accept in [None, Some(GRAPHQL_RESPONSE)] {
        let (status, _, _) = post(app.at(), &token, accept, json_ct, r#"{"qeury":"{ me { role } }"}"#).await;
        assert_eq!(status, 400);
    }

    // The answer comes in a media type the client accepts.
    let (status, ct, body) = post(app.at(), &token, Some(GRAPHQL_RESPONSE), json_ct, ok).await;
    assert_eq!((status, ct.starts_with(GRAPHQL_RESPONSE)), (200, true), "{ct}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["data"]["me"]["role"], "OWNER");
    let (status, ct, _) = post(app.at(), &token, Some("application/json"), json_ct, ok).await;
    assert_eq!((status, ct.starts_with("application/json")), (200, true), "{ct}");
    let (status, ct, _) =
        post(app.at(), &token, Some("application/graphql-response+json;q=0.5, application/json"), json_ct, ok).await;
    assert_eq!((status, ct.starts_with("application/json")), (200, true), "the higher q wins: {ct}");
    let (status, ct, _) = post(app.at(), &token, None, json_ct, ok).await;
    assert_eq!((status, ct.starts_with("application/json")), (200, true), "no Accept: application/json");
    let (status, _, _) = post(app.at(), &token, Some("text/html"), json_ct, ok).await;
    assert_eq!(status, 406);

    // In application/graphql-response+json a request that cannot execute is 400 without data.
    for (what, body) in [
        ("a syntax error", r#"{"query":"{ me { role "}"#.to_owned()),
        ("a validation error", r#"{"query":"{ me { nonsense } }"}"#.to_owned()),
        (
            "a variable that does not coerce",
            json!({"query": "query($n: Int!) { inventoryItems(first: $n) { totalCount } }", "variables": {"n": "ten"}})
                .to_string(),
        ),
    ] {
        let (status, _, text) = post(app.at(), &token, Some(GRAPHQL_RESPONSE), json_ct, &body).await;
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(status, 400, "{what}: {text}");
        assert!(v.get("data").is_none() && v["errors"].as_array().is_some_and(|e| !e.is_empty()), "{what}: {text}");
        // The same in application/json is a 200 with the errors.
        let (status, _, text) = post(app.at(), &token, Some("application/json"), json_ct, &body).await;
        assert_eq!(status, 200, "{what} as application/json: {text}");
    }
    // An error while executing is a result: 200, with data.
    let (status, _, text) = post(
        app.at(),
        &token,
        Some(GRAPHQL_RESPONSE),
        json_ct,
        r#"{"query":"{ inventoryItems(minPosition: \"not-a-position\") { totalCount } }"}"#,
    )
    .await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((status, v.get("data").is_some()), (200, true), "{text}");

    // A POST must say it is JSON.
    let (status, _, _) = post(app.at(), &token, Some(GRAPHQL_RESPONSE), None, ok).await;
    assert_eq!(status, 415);
    let (status, _, _) = post(app.at(), &token, Some(GRAPHQL_RESPONSE), Some("text/plain"), ok).await;
    assert_eq!(status, 415);
    let (status, _, _) =
        post(app.at(), &token, Some(GRAPHQL_RESPONSE), Some("application/json; charset=utf-8"), ok).await;
    assert_eq!(status, 200);

    // GET runs queries from the URL, refuses mutations, and serves GraphiQL only to browsers.
    let r = get(app.at(), Some(&token), "application/json", "?query=%7B%20me%20%7B%20role%20%7D%20%7D").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["data"]["me"]["role"], "OWNER");
    let r = get(app.at(), Some(&token), "application/json", "?query=query%20Q(%24f%3A%20Int)%20%7B%20inventoryItems(first%3A%20%24f)%20%7B%20totalCount%20%7D%20%7D&variables=%7B%22f%22%3A1%7D&operationName=Q").await;
    assert!(r.json::<Value>().await.unwrap()["data"]["inventoryItems"]["totalCount"].is_number());
    let r = get(app.at(), Some(&token), GRAPHQL_RESPONSE, "?query=mutation%20%7B%20logout%20%7B%20revoked%20%7D%20%7D")
        .await;
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers().get("allow").unwrap(), "POST");
    let r = get(app.at(), None, "text/html,application/xhtml+xml", "").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("content-type").unwrap().to_str().unwrap().starts_with("text/html"));
    let r = get(app.at(), None, "application/json", "").await;
    assert_eq!(r.status(), 400, "no query and no HTML: nothing to do");
    // The session still works after all that: nothing above logged it out.
    let (status, _, _) = post(app.at(), &token, None, json_ct, ok).await;
    assert_eq!(status, 200);
}

pub(crate) async fn automatic_persisted_queries_run_by_hash_once_registered(app: TestApp) {
    use sha2::Digest;
    let token = app.owner().await;
    let query = "{ me { role } }";
    let hash: String = sha2::Sha256::digest(query.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let ext = json!({"persistedQuery": {"version": 1, "sha256Hash": hash}});
    let by_hash = json!({"extensions": ext}).to_string();
    let json_ct = Some("application/json");
    // Unknown hash: the answer Apollo clients expect, then they send the text once.
    let (status, _, text) = post(app.at(), &token, None, json_ct, &by_hash).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (status, &v["errors"][0]["message"], &v["errors"][0]["extensions"]["code"]),
        (200, &json!("PersistedQueryNotFound"), &json!("PERSISTED_QUERY_NOT_FOUND")),
        "{text}"
    );
    let (status, _, text) =
        post(app.at(), &token, None, json_ct, &json!({"query": query, "extensions": ext}).to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["data"]["me"]["role"], "OWNER");
    let (status, _, text) = post(app.at(), &token, None, json_ct, &by_hash).await;
    assert_eq!(
        (status, serde_json::from_str::<Value>(&text).unwrap()["data"]["me"]["role"].clone()),
        (200, json!("OWNER")),
        "{text}"
    );
    // Over GET too (what Apollo's APQ link uses for queries).
    let url_ext: String = ext
        .to_string()
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let r = get(app.at(), Some(&token), "application/json", &format!("?extensions={url_ext}")).await;
    assert_eq!(r.json::<Value>().await.unwrap()["data"]["me"]["role"], "OWNER");
    // A text that does not match its hash is refused; a registered mutation stays POST-only.
    let wrong = json!({"query": "{ me { userId } }", "extensions": ext}).to_string();
    let (status, _, _) = post(app.at(), &token, None, json_ct, &wrong).await;
    assert_eq!(status, 400);
    let mutation = "mutation { logout { revoked } }";
    let m_hash: String = sha2::Sha256::digest(mutation.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let other = app.owner().await;
    let m_ext = json!({"persistedQuery": {"version": 1, "sha256Hash": m_hash}});
    let (status, _, _) =
        post(app.at(), &other, None, json_ct, &json!({"query": mutation, "extensions": m_ext}).to_string()).await;
    assert_eq!(status, 200);
    let m_url: String = m_ext
        .to_string()
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let r = get(app.at(), Some(&token), "application/json", &format!("?extensions={m_url}")).await;
    assert_eq!(r.status(), 405, "a mutation by hash over GET is still refused");
    let (status, _, _) = post(
        app.at(),
        &token,
        None,
        json_ct,
        &json!({"extensions": {"persistedQuery": {"version": 2, "sha256Hash": hash}}}).to_string(),
    )
    .await;
    assert_eq!(status, 400, "only version 1");
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) async fn trusted_documents_mode_runs_only_the_allowlist(app: TestApp) {
    let login = "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { token } }";
    let me = "{ me { role } }";
    let feed = "subscription { events { eventType } }";
    let list = json!({
        format!("sha256:{}", sha256_hex(login)): login,
        sha256_hex(me): me,
        sha256_hex(feed): feed,
    });
    let settings = api::app::Settings {
        trusted_documents: Some(api::persisted::TrustedDocuments::parse(&list.to_string()).unwrap()),
        ..Default::default()
    };
    let (url, _state, _stop) = super::serve_on(&app.db.url, &app.key, settings).await;
    let trusted = At { url: &url, client: &app.client };
    // Logging in by document id, with variables.
    let body = json!({"documentId": format!("sha256:{}", sha256_hex(login)),
                      "variables": {"e": api::demo::DEMO_EMAIL, "p": api::demo::DEMO_PASSWORD}});
    let (_, _, text) = post(trusted, "", None, Some("application/json"), &body.to_string()).await;
    let r: Value = serde_json::from_str(&text).unwrap();
    let token = r["data"]["login"]["token"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    // A listed document sent as text runs; over GET by id too.
    let (status, _, text) =
        post(trusted, &token, None, Some("application/json"), &json!({"query": me}).to_string()).await;
    assert_eq!(
        (status, serde_json::from_str::<Value>(&text).unwrap()["data"]["me"]["role"].clone()),
        (200, json!("OWNER"))
    );
    let r = get(trusted, Some(&token), "application/json", &format!("?documentId=sha256%3A{}", sha256_hex(me))).await;
    assert_eq!(r.json::<Value>().await.unwrap()["data"]["me"]["role"], "OWNER");
    // Anything else is refused, and cannot be registered by hash either.
    let other = "{ me { userId } }";
    for body in [
        json!({"query": other}),
        json!({"query": other, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(other)}}}),
        json!({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(other)}}}),
    ] {
        let (status, _, text) =
            post(trusted, &token, Some(GRAPHQL_RESPONSE), Some("application/json"), &body.to_string()).await;
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (status, v["errors"][0]["extensions"]["code"].as_str()),
            (400, Some("PERSISTED_QUERY_NOT_IN_LIST")),
            "{body}: {text}"
        );
        assert!(v.get("data").is_none(), "{text}");
    }
    // The same list guards subscriptions.
    let mut ws = super::live::Ws::open(&url, &token).await;
    ws.send(json!({"type": "subscribe", "id": "no", "payload": {"query": "subscription { events { position } }"}}))
        .await;
    match ws.recv().await {
        super::live::Frame::Json(m) => {
            assert_eq!(
                (m["type"].as_str(), m["payload"][0]["extensions"]["code"].as_str()),
                (Some("error"), Some("PERSISTED_QUERY_NOT_IN_LIST")),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
    ws.send(
        json!({"type": "subscribe", "id": "yes", "payload": {"documentId": format!("sha256:{}", sha256_hex(feed))}}),
    )
    .await;
    // Changes are written until one arrives (the subscription joins the live feed when it is
    // processed, not when it is sent).
    let owner = app.owner().await;
    for _ in 0..50 {
        app.gql(Some(&owner), super::ACQUIRE, super::acquire_input("100.00")).await;
        if let Some(f) = ws.within(std::time::Duration::from_millis(200)).await {
            let super::live::Frame::Json(m) = f else { panic!("{f:?}") };
            assert_eq!(m["payload"]["data"]["events"]["eventType"], "ItemAcquired", "{m}");
            return;
        }
    }
    panic!("the listed subscription delivered nothing");
}
