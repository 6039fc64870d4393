//! `serve` as a process: SIGTERM during a request, and traces exported over OTLP to a receiver
//! the test runs itself.

use super::{temp_dir, KEY};
use eventstore::testing::TestDatabase;
use serde_json::Value;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const OWNER: &str = "owner@demo.inventoryconnect.test";
const OWNER_PASSWORD: &str = "vintage-showroom-2026";

/// A running `inventory-connect serve --demo`.
pub(super) struct Server {
    process: Child,
    pub(super) base: String,
    pub(super) dir: std::path::PathBuf,
    pub(super) client: reqwest::Client,
}

impl Server {
    async fn start(tdb: &TestDatabase, env: &[(&str, &str)]) -> Server {
        Self::start_in(&tdb.url, temp_dir(), env).await
    }

    /// Serves `url` with `dir` as its data directory (kept when it stops, see [`Server::stop`]).
    pub(super) async fn start_in(url: &str, dir: std::path::PathBuf, env: &[(&str, &str)]) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let process = Command::new(env!("CARGO_BIN_EXE_inventory-connect"))
            .args(["--database-url", url, "--data-dir", dir.to_str().unwrap()])
            .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
            .env("IC_MASTER_KEY", KEY)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let server = Server { process, base: format!("http://127.0.0.1:{port}"), dir, client: reqwest::Client::new() };
        for _ in 0..200 {
            if server.client.get(format!("{}/healthz", server.base)).send().await.is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server came up");
    }

    pub(super) fn graphql(&self, body: Value) -> reqwest::RequestBuilder {
        self.client.post(format!("{}/graphql", self.base)).json(&body)
    }

    pub(super) async fn login(&self) -> String {
        let r: Value = self
            .graphql(serde_json::json!({
                "query": "mutation Login($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { token } }",
                "operationName": "Login",
                "variables": {"e": OWNER, "p": OWNER_PASSWORD},
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["data"]["login"]["token"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
    }

    fn terminate(&self) {
        let killed = Command::new("kill").args(["-TERM", &self.process.id().to_string()]).status().unwrap();
        assert!(killed.success());
    }

    async fn exit_code(self) -> Option<i32> {
        let dir = self.dir.clone();
        let code = self.wait().await;
        let _ = std::fs::remove_dir_all(dir);
        code
    }

    async fn wait(mut self) -> Option<i32> {
        tokio::task::spawn_blocking(move || self.process.wait()).await.unwrap().unwrap().code()
    }

    /// SIGTERM, then waits for a clean exit; the data directory stays.
    pub(super) async fn stop(self) {
        self.terminate();
        assert_eq!(self.wait().await, Some(0), "a clean exit");
    }

    /// One GraphQL request as the bearer of `token`; the JSON answer.
    pub(super) async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
        self.graphql(serde_json::json!({"query": query, "variables": variables}))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

pub(super) async fn sigterm_lets_the_request_in_flight_finish_and_exits_0(tdb: &TestDatabase) {
    let server = Server::start(tdb, &[]).await;
    let token = server.login().await;
    // A request that takes a while: it waits (5 s at most) for a position the log has not reached.
    let slow = tokio::spawn(
        server
            .graphql(serde_json::json!({"query": "{ inventoryItems(minPosition: \"999999999.0\") { totalCount } }"}))
            .bearer_auth(token)
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.terminate();
    let answered = slow.await.unwrap().expect("the request in flight was answered, not cut");
    assert_eq!(answered.status(), 200);
    let body: Value = answered.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "CONSISTENCY_TIMEOUT", "{body}");
    let (client, base) = (server.client.clone(), server.base.clone());
    assert_eq!(server.exit_code().await, Some(0), "a clean exit");
    // New connections are refused once it has stopped.
    assert!(client.get(format!("{base}/healthz")).send().await.is_err());
}

/// A minimal OTLP/HTTP receiver: accepts `POST /v1/traces` (JSON encoding), keeps each body.
async fn otlp_receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else { return };
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // One HTTP/1.1 request: headers, then `content-length` bytes of body.
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 8192];
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                    assert!(head.starts_with("post /v1/traces "), "{head}");
                    assert!(head.contains("content-type: application/json"), "{head}");
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse().unwrap())
                        .expect("a content-length");
                    while buf.len() < head_end + length {
                        let mut chunk = [0u8; 8192];
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body: Value = serde_json::from_slice(&buf[head_end..head_end + length]).unwrap();
                    sink.lock().unwrap().push(body);
                    buf.drain(..head_end + length);
                    let reply = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
                    if conn.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (endpoint, received)
}

/// An exported span: `(name, trace id, span id, parent span id, attributes)`.
type Span = (String, String, String, String, Vec<(String, Value)>);

/// Every exported span.
fn spans(bodies: &[Value]) -> Vec<Span> {
    let mut out = Vec::new();
    for body in bodies {
        for rs in body["resourceSpans"].as_array().into_iter().flatten() {
            let service = rs["resource"]["attributes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["key"] == "service.name")
                .map(|a| a["value"]["stringValue"].clone());
            assert_eq!(service, Some(Value::from("inventory-connect")), "{rs}");
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    let attributes = s["attributes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| (a["key"].as_str().unwrap().to_owned(), a["value"].clone()))
                        .collect();
                    let text = |k: &str| s[k].as_str().unwrap_or("").to_owned();
                    out.push((text("name"), text("traceId"), text("spanId"), text("parentSpanId"), attributes));
                }
            }
        }
    }
    out
}

/// With `OTEL_EXPORTER_OTLP_ENDPOINT` set, a request's work arrives as one trace: the HTTP span
/// (with the request id), the GraphQL operation inside it, the command and the append inside
/// that. What the client sent — names, email, password — is in no span.
#[tokio::test]
async fn traces_reach_an_otlp_receiver_without_personal_data() {
    let tdb = TestDatabase::sqlite();
    let (endpoint, received) = otlp_receiver().await;
    let server = Server::start(
        &tdb,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("RUST_LOG", "info"),
        ],
    )
    .await;
    let token = server.login().await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let created: Value = server
        .graphql(serde_json::json!({
            "query": "mutation Capture($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { id } errors { code } } }",
            "operationName": "Capture",
            "variables": {"input": {"name": "Quentin Tracemarker", "email": "quentin.tracemarker@example.test", "notes": "prefers steel sports models"}},
        }))
        .bearer_auth(&token)
        .header("x-request-id", &request_id)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(created["data"]["createCustomer"]["customer"]["id"].is_string(), "{created}");
    server.terminate();
    assert_eq!(server.exit_code().await, Some(0), "a clean exit, traces flushed");

    let bodies = received.lock().unwrap().clone();
    let all = serde_json::to_string(&bodies).unwrap();
    for secret in ["Tracemarker", "tracemarker@example", "steel sports", OWNER_PASSWORD, OWNER, &token] {
        assert!(!all.contains(secret), "{secret:?} reached a span");
    }
    let spans = spans(&bodies);
    let attr = |s: &Span, key: &str| s.4.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let http = spans
        .iter()
        .find(|s| attr(s, "request_id") == Some(serde_json::json!({"stringValue": request_id})))
        .unwrap_or_else(|| panic!("the HTTP span carries the request id: {all}"));
    assert_eq!(http.0, "POST /graphql");
    assert_eq!(attr(http, "http.response.status_code"), Some(serde_json::json!({"intValue": "200"})), "{all}");
    let graphql =
        spans.iter().find(|s| s.0 == "graphql Capture").unwrap_or_else(|| panic!("a span for the operation: {all}"));
    assert_eq!((&graphql.1, &graphql.3), (&http.1, &http.2), "the operation runs inside the HTTP span");
    assert_eq!(attr(graphql, "outcome"), Some(serde_json::json!({"stringValue": "ok"})));
    // The command's own span and the append below it belong to the same trace.
    let same_trace: Vec<&str> = spans.iter().filter(|s| s.1 == http.1).map(|s| s.0.as_str()).collect();
    assert!(same_trace.iter().any(|n| n.starts_with("append")), "{same_trace:?}");
}
