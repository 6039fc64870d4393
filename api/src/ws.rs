//! GraphQL over WebSocket at `/graphql/ws`: the `graphql-transport-ws` protocol (the one the
//! `graphql-ws` library speaks; Apollo, urql and Relay use it through that library).
//!
//! 1. The client offers the `graphql-transport-ws` subprotocol (else: close 4406) and sends
//!    `connection_init` within the init timeout (else: 4408) with its session token in the
//!    payload (`{"token": "…"}` or `{"authorization": "Bearer …"}`; else: 4401). One session may
//!    hold a limited number of sockets (else: 4430).
//! 2. `subscribe` runs an operation as that staff member; `next` carries each result, `error`
//!    a request that could not run (with no `complete` after it), `complete` the end of a stream.
//!    Either side ends one subscription with `complete`; `ping`/`pong` at any time.
//! 3. The server closes the socket when the session ends (revoked, logged out, expired, idle:
//!    4401), when a subscriber falls behind the live feed (4431: reconnect and resume with
//!    `fromPosition`), when a message is not valid (4400), on a reused subscription id (4409) or
//!    a second `connection_init` (4429), and on shutdown (1001).
//!
//! Memory stays bounded per connection: each subscription's results pass through one bounded
//! queue to the socket, and a client that does not read in time is disconnected.

use crate::app::AppState;
use crate::graphql::{AppSchema, RequestContext};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The subprotocol this endpoint speaks.
pub const PROTOCOL: &str = "graphql-transport-ws";

/// The close codes this server uses (the protocol's own, and two of its own in 4430–4431).
pub mod close {
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// A message that is not valid JSON or not a message of the protocol.
    pub const BAD_REQUEST: u16 = 4400;
    /// No valid session in `connection_init`, a `subscribe` before the ack, or the session
    /// ended (logout, revocation, deactivation, expiry, idle timeout) while connected.
    pub const UNAUTHORIZED: u16 = 4401;
    /// The client did not offer the `graphql-transport-ws` subprotocol.
    pub const SUBPROTOCOL_NOT_ACCEPTABLE: u16 = 4406;
    /// No `connection_init` within the init timeout.
    pub const INIT_TIMEOUT: u16 = 4408;
    /// A `subscribe` reused the id of a subscription still running.
    pub const SUBSCRIBER_EXISTS: u16 = 4409;
    /// A second `connection_init`.
    pub const TOO_MANY_INITS: u16 = 4429;
    /// The session already holds as many sockets as allowed.
    pub const TOO_MANY_CONNECTIONS: u16 = 4430;
    /// The client fell behind the live feed (or did not read what was sent in time);
    /// reconnect and resume with `fromPosition`.
    pub const SLOW_CONSUMER: u16 = 4431;
    /// Something failed on the server.
    pub const INTERNAL: u16 = 4500;
}

/// Websocket settings (each a `serve` flag; see the CLI).
#[derive(Debug, Clone)]
pub struct WsSettings {
    /// Sockets one session may hold at once.
    pub connections_per_session: usize,
    /// Subscriptions one socket may run at once.
    pub subscriptions_per_connection: usize,
    /// How long a client has to send `connection_init`.
    pub init_timeout: Duration,
    /// How long one message may take to be written to the client before it is dropped.
    pub send_timeout: Duration,
    /// How often a socket re-checks its session when no revocation was seen in this process
    /// (one made by another server process, expiry, idle timeout).
    pub session_check: Duration,
    /// How many events one subscriber may fall behind the live feed.
    pub feed_capacity: usize,
}

impl Default for WsSettings {
    fn default() -> Self {
        Self {
            connections_per_session: 8,
            subscriptions_per_connection: 32,
            init_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(10),
            session_check: Duration::from_secs(15),
            feed_capacity: 4096,
        }
    }
}

/// How resolvers ask a connection to close (a subscriber that fell behind).
#[derive(Clone)]
pub struct ConnectionControl(mpsc::Sender<(u16, &'static str)>);

impl ConnectionControl {
    pub fn close(&self, code: u16, reason: &'static str) {
        let _ = self.0.try_send((code, reason));
    }
}

/// Sockets per session, so a session's share is bounded.
#[derive(Default)]
pub struct Sockets {
    per_session: Mutex<HashMap<Uuid, usize>>,
}

/// Holds one session's place; gives it back when the socket ends.
struct Seat<'a> {
    sockets: &'a Sockets,
    session: Uuid,
}

impl Sockets {
    fn take(&self, session: Uuid, limit: usize) -> Option<Seat<'_>> {
        let mut map = self.per_session.lock().expect("never poisoned");
        let n = map.entry(session).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        metrics::gauge!("ic_websocket_connections").increment(1.0);
        Some(Seat { sockets: self, session })
    }
}

impl Drop for Seat<'_> {
    fn drop(&mut self) {
        let mut map = self.sockets.per_session.lock().expect("never poisoned");
        if let Some(n) = map.get_mut(&self.session) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.session);
            }
        }
        metrics::gauge!("ic_websocket_connections").decrement(1.0);
    }
}

/// Who opened the socket (from the upgrade request).
pub struct Peer {
    pub ip: IpAddr,
    pub user_agent: Option<String>,
    pub request_id: Uuid,
}

/// What a subscription task hands to the socket.
/// Each carries the subscription's id and its serial on this socket (an id may be reused once
/// its subscription has ended).
enum Out {
    Next(String, u64, async_graphql::Response),
    Error(String, u64, Vec<async_graphql::ServerError>),
    Complete(String, u64),
}

/// What woke the connection up.
enum Event {
    Message(Option<Result<Message, axum::Error>>),
    Out(Box<Out>),
    Close((u16, &'static str)),
    /// Re-check the session (`false`: the revocation channel is gone).
    CheckSession(bool),
    Keepalive,
}

/// Why the loop ended: a close frame to send, or none (the client is gone).
type Ending = Option<(u16, &'static str)>;

struct Connection {
    state: Arc<AppState>,
    schema: AppSchema,
    peer: Peer,
    socket: WebSocket,
    shutdown: watch::Receiver<bool>,
}

/// Serves one upgraded socket until it closes.
pub async fn serve(
    state: Arc<AppState>,
    schema: AppSchema,
    socket: WebSocket,
    peer: Peer,
    shutdown: watch::Receiver<bool>,
    protocol_ok: bool,
) {
    let mut c = Connection { state, schema, peer, socket, shutdown };
    if !protocol_ok {
        c.close(close::SUBPROTOCOL_NOT_ACCEPTABLE, "Subprotocol not acceptable").await;
        return;
    }
    let ending = c.run().await;
    if let Some((code, reason)) = ending {
        c.close(code, reason).await;
    }
}

impl Connection {
    async fn send(&mut self, text: String) -> Result<(), ()> {
        match tokio::time::timeout(self.state.settings.ws.send_timeout, self.socket.send(Message::Text(text.into())))
            .await
        {
            Ok(Ok(())) => Ok(()),
            _ => Err(()),
        }
    }

    async fn close(&mut self, code: u16, reason: &'static str) {
        let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
        let _ = tokio::time::timeout(Duration::from_secs(1), self.socket.send(Message::Close(Some(frame)))).await;
        metrics::counter!("ic_websocket_closes_total", "code" => code.to_string()).increment(1);
    }

    /// Waits for `connection_init`; the session it names, or how to close.
    async fn init(&mut self) -> Result<crate::auth::Viewer, Ending> {
        let deadline = tokio::time::sleep(self.state.settings.ws.init_timeout);
        tokio::pin!(deadline);
        loop {
            let msg = tokio::select! {
                m = self.socket.recv() => m,
                _ = &mut deadline => return Err(Some((close::INIT_TIMEOUT, "Connection initialisation timeout"))),
                _ = async { let _ = self.shutdown.wait_for(|s| *s).await; } => {
                    return Err(Some((close::GOING_AWAY, "Server shutting down")))
                }
            };
            let text = match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Err(None),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Binary(_))) => return Err(Some((close::BAD_REQUEST, "Invalid message received"))),
                Some(Ok(Message::Text(t))) => t,
            };
            let Ok(msg) = serde_json::from_str::<Value>(text.as_str()) else {
                return Err(Some((close::BAD_REQUEST, "Invalid message received")));
            };
            match msg.get("type").and_then(Value::as_str) {
                Some("connection_init") => {}
                Some("ping") => {
                    self.send(json!({"type": "pong"}).to_string()).await.map_err(|_| None)?;
                    continue;
                }
                Some("pong") => continue,
                Some("subscribe") => return Err(Some((close::UNAUTHORIZED, "Unauthorized"))),
                _ => return Err(Some((close::BAD_REQUEST, "Invalid message received"))),
            }
            let payload = msg.get("payload").cloned().unwrap_or(Value::Null);
            if !(payload.is_null() || payload.is_object()) {
                return Err(Some((close::BAD_REQUEST, "Invalid message received")));
            }
            let token = payload
                .get("token")
                .and_then(Value::as_str)
                .or_else(|| {
                    ["authorization", "Authorization"]
                        .iter()
                        .find_map(|k| payload.get(*k).and_then(Value::as_str))
                        .map(|h| h.strip_prefix("Bearer ").unwrap_or(h))
                })
                .map(str::trim);
            let Some(token) = token else { return Err(Some((close::UNAUTHORIZED, "Unauthorized"))) };
            return match self.state.sessions.authenticate(token).await {
                Ok(Some(v)) => Ok(v),
                Ok(None) => Err(Some((close::UNAUTHORIZED, "Unauthorized"))),
                Err(e) => {
                    crate::error::ApiError::internal("websocket session", &e);
                    Err(Some((close::INTERNAL, "Internal error")))
                }
            };
        }
    }

    async fn run(&mut self) -> Ending {
        let viewer = match self.init().await {
            Ok(v) => v,
            Err(ending) => return ending,
        };
        let state = self.state.clone();
        let settings = state.settings.ws.clone();
        let Some(_seat) = state.sockets.take(viewer.session_id, settings.connections_per_session) else {
            return Some((close::TOO_MANY_CONNECTIONS, "Too many connections for this session"));
        };
        self.send(json!({"type": "connection_ack"}).to_string()).await.ok()?;

        let (out_tx, mut out_rx) = mpsc::channel::<Out>(64);
        let (control_tx, mut control_rx) = mpsc::channel(4);
        let control = ConnectionControl(control_tx);
        let mut running: HashMap<String, (u64, JoinHandle<()>)> = HashMap::new();
        let mut serial = 0u64;
        let mut revocations = state.accounts.revocations();
        let mut check = tokio::time::interval(settings.session_check);
        check.tick().await;
        let mut keepalive = tokio::time::interval(Duration::from_secs(30));
        keepalive.tick().await;
        let ending = loop {
            let event = {
                let (socket, shutdown) = (&mut self.socket, &mut self.shutdown);
                tokio::select! {
                    m = socket.recv() => Event::Message(m),
                    Some(out) = out_rx.recv() => Event::Out(Box::new(out)),
                    Some(c) = control_rx.recv() => Event::Close(c),
                    changed = revocations.changed() => Event::CheckSession(changed.is_ok()),
                    _ = check.tick() => Event::CheckSession(true),
                    _ = keepalive.tick() => Event::Keepalive,
                    _ = async { let _ = shutdown.wait_for(|s| *s).await; } => {
                        Event::Close((close::GOING_AWAY, "Server shutting down"))
                    }
                }
            };
            match event {
                Event::Message(msg) => {
                    let text = match msg {
                        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break None,
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                        Some(Ok(Message::Binary(_))) => break Some((close::BAD_REQUEST, "Invalid message received")),
                        Some(Ok(Message::Text(t))) => t,
                    };
                    let Ok(msg) = serde_json::from_str::<Value>(text.as_str()) else {
                        break Some((close::BAD_REQUEST, "Invalid message received"));
                    };
                    match (msg.get("type").and_then(Value::as_str), msg.get("id").and_then(Value::as_str)) {
                        (Some("ping"), _) => {
                            if self.send(json!({"type": "pong"}).to_string()).await.is_err() {
                                break None;
                            }
                        }
                        (Some("pong"), _) => {}
                        (Some("connection_init"), _) => {
                            break Some((close::TOO_MANY_INITS, "Too many initialisation requests"))
                        }
                        (Some("complete"), Some(id)) => {
                            if let Some((_, task)) = running.remove(id) {
                                task.abort()
                            }
                        }
                        (Some("subscribe"), Some(id)) if !id.is_empty() => {
                            if running.contains_key(id) {
                                break Some((close::SUBSCRIBER_EXISTS, "Subscriber for this id already exists"));
                            }
                            let Ok(mut req) = serde_json::from_value::<async_graphql::Request>(msg["payload"].clone())
                            else {
                                break Some((close::BAD_REQUEST, "Invalid message received"));
                            };
                            let document_id = msg["payload"].get("documentId").and_then(Value::as_str);
                            if crate::persisted::adopt_document_id(&mut req, document_id).is_err() {
                                break Some((close::BAD_REQUEST, "Invalid message received"));
                            }
                            let prepared = if running.len() >= settings.subscriptions_per_connection {
                                Err(refusal("TOO_MANY_SUBSCRIPTIONS", "too many subscriptions on this connection"))
                            } else {
                                self.prepare(req, &viewer, &control)
                            };
                            match prepared {
                                Ok(req) => {
                                    serial += 1;
                                    let task = tokio::spawn(pump(
                                        self.schema.clone(),
                                        req,
                                        id.to_owned(),
                                        serial,
                                        out_tx.clone(),
                                    ));
                                    running.insert(id.to_owned(), (serial, task));
                                }
                                Err(e) => {
                                    if self.send(error_message(id, &[e])).await.is_err() {
                                        break None;
                                    }
                                }
                            }
                        }
                        _ => break Some((close::BAD_REQUEST, "Invalid message received")),
                    }
                }
                Event::Out(out) => {
                    let current = |id: &String, n: u64| running.get(id).map(|r| r.0) == Some(n);
                    // A subscription the client completed says nothing more.
                    let text = match *out {
                        Out::Next(id, n, response) if current(&id, n) => {
                            json!({"type": "next", "id": id, "payload": response}).to_string()
                        }
                        Out::Error(id, n, errors) if current(&id, n) => {
                            running.remove(&id);
                            error_message(&id, &errors)
                        }
                        Out::Complete(id, n) if current(&id, n) => {
                            running.remove(&id);
                            json!({"type": "complete", "id": id}).to_string()
                        }
                        _ => continue,
                    };
                    if self.send(text).await.is_err() {
                        break Some((close::SLOW_CONSUMER, "Client did not read in time"));
                    }
                }
                Event::Close(c) => break Some(c),
                Event::CheckSession(ok) => {
                    if !ok || !session_live(&state, &viewer).await {
                        break Some((close::UNAUTHORIZED, "Session ended"));
                    }
                }
                Event::Keepalive => {
                    let ping = self.socket.send(Message::Ping(Default::default()));
                    if !matches!(tokio::time::timeout(settings.send_timeout, ping).await, Ok(Ok(()))) {
                        break None;
                    }
                }
            }
        };
        for (_, (_, task)) in running {
            task.abort();
        }
        ending
    }

    /// The request as the connection's staff member, with a persisted query resolved.
    fn prepare(
        &self,
        mut req: async_graphql::Request,
        viewer: &crate::auth::Viewer,
        control: &ConnectionControl,
    ) -> Result<async_graphql::Request, async_graphql::ServerError> {
        if let Err((_, code, message)) = self.state.persisted_queries.resolve(&mut req) {
            return Err(refusal(code, message));
        }
        self.state.parsed.prepare(&mut req);
        let settings = &self.state.settings;
        crate::auth::admit(&mut req, true, settings.max_mutations, settings.public_introspection)?;
        let (items, customers) = crate::graphql::loaders::for_request(&self.state.read, viewer.store_id);
        let request_id = Uuid::now_v7();
        Ok(req.data(items).data(customers).data(control.clone()).data(RequestContext {
            viewer: Some(viewer.clone()),
            request_id,
            correlation_id: self.peer.request_id,
            client_ip: Some(self.peer.ip),
            user_agent: self.peer.user_agent.clone(),
        }))
    }
}

/// Whether the session is still live (revoked, expired or idle: not). Does not count as
/// activity: an open socket alone does not keep a session from idling out.
async fn session_live(state: &AppState, viewer: &crate::auth::Viewer) -> bool {
    match state.sessions.live_sessions_of(viewer.user_id).await {
        Ok(sessions) => sessions.iter().any(|s| s.session_id == viewer.session_id),
        // A database hiccup does not end sessions; the next check decides.
        Err(e) => {
            tracing::warn!(error = %e, "websocket session check failed");
            true
        }
    }
}

fn refusal(code: &str, message: &str) -> async_graphql::ServerError {
    let mut e = async_graphql::ServerError::new(message, None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", code);
    e.extensions = Some(ext);
    e
}

fn error_message(id: &str, errors: &[async_graphql::ServerError]) -> String {
    json!({"type": "error", "id": id, "payload": errors}).to_string()
}

/// Runs one operation and hands its results to the socket. A request that fails before it
/// runs (syntax, validation, access) is an `error`, with nothing after it.
async fn pump(schema: AppSchema, req: async_graphql::Request, id: String, serial: u64, out: mpsc::Sender<Out>) {
    let mut stream = schema.execute_stream(req);
    let mut first = true;
    while let Some(mut response) = stream.next().await {
        for e in &mut response.errors {
            let ext = e.extensions.get_or_insert_with(Default::default);
            if ext.get("code").is_none() {
                ext.set("code", "BAD_USER_INPUT");
            }
        }
        if first && response.data == async_graphql::Value::Null && !response.errors.is_empty() {
            let _ = out.send(Out::Error(id, serial, response.errors)).await;
            return;
        }
        first = false;
        if out.send(Out::Next(id.clone(), serial, response)).await.is_err() {
            return;
        }
    }
    let _ = out.send(Out::Complete(id, serial)).await;
}
