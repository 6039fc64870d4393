//! Live-feed fan-out: 8 writers run `acquireItem` over HTTP for a fixed time, first alone (the
//! baseline), then with 100 websocket clients subscribed to the feed. Prints the writers' rate
//! both ways, the events per second delivered to the clients, whether every client received
//! every event, and the latency from commit to client.
//!
//! Latency is the client's clock at receipt minus the event's `recordedAt`, which the server
//! stamps just before the append commits: it includes the commit, so it slightly overstates
//! commit-to-client. Server and clients share this machine's clock.

use crate::{Backend, Error};
use api::app::{AppState, Settings};
use eventstore::testing::TestDatabase;
use eventstore::{Database, EventStore, MasterKey, Upcasters};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args)]
pub struct Options {
    /// Subscribed websocket clients.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Concurrent writers (HTTP connections running acquireItem back to back).
    #[arg(long, default_value_t = 8)]
    writers: usize,
    /// How long each phase writes.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

pub const HEADER: &str = "| backend | writers alone | writers with subscribers (ratio) | events delivered/s | every client got every event | commit → client p50 / p99 |\n|---|---|---|---|---|---|";

pub(crate) const ACQUIRE: &str =
    "mutation($p: Decimal!) { acquireItem(input: {category: WATCH, brand: \"Rolex\", model: \"Submariner\",
    cost: {amount: \"8000.00\", currency: \"USD\"}, askingPrice: {amount: $p, currency: \"USD\"},
    acquisition: {source: PURCHASE}}) { errors { code } } }";

pub(crate) struct Server {
    pub(crate) url: String,
    _state: Arc<AppState>,
    _stop: watch::Sender<bool>,
    _db: TestDatabase,
}

pub(crate) async fn server(backend: Backend) -> Result<Server, Error> {
    let tdb = match backend {
        Backend::Sqlite => TestDatabase::sqlite(),
        Backend::Postgres => TestDatabase::postgres().await.ok_or("PostgreSQL is not reachable")?,
    };
    let db = Database::connect(&tdb.url).await?;
    let store = EventStore::new(&db, MasterKey::generate(), Upcasters::default());
    let (stop, shutdown) = watch::channel(false);
    let mut settings = Settings::default();
    // All clients share one session here (logins are deliberately slow).
    settings.ws.connections_per_session = 10_000;
    let state = AppState::start_with(db, store, shutdown.clone(), settings).await?;
    api::demo::seed(&state).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(api::app::serve(listener, state.clone(), shutdown));
    Ok(Server { url, _state: state, _stop: stop, _db: tdb })
}

/// Writers for `seconds`; returns successful appends per second.
async fn write(url: &str, token: &str, writers: usize, seconds: u64) -> Result<(u64, f64), Error> {
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (url, token, done) = (url.to_owned(), token.to_owned(), done.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let body =
                    json!({"query": ACQUIRE, "variables": {"p": format!("{}.00", 10_000 + w as u64 * 100_000 + i)}});
                let r: Value =
                    client.post(format!("{url}/graphql")).bearer_auth(&token).json(&body).send().await?.json().await?;
                if r["data"]["acquireItem"]["errors"] != json!([]) {
                    return Err(format!("acquireItem failed: {r}").into());
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let n = done.load(Ordering::Relaxed);
    Ok((n, n as f64 / started.elapsed().as_secs_f64()))
}

/// One subscribed client: counts `ItemAcquired` events and their latencies until `expect`
/// arrive or `stop` turns true.
struct Client {
    received: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<Result<Vec<f64>, Error>>,
}

async fn subscribe(
    url: &str,
    token: &str,
    after: chrono::DateTime<chrono::Utc>,
    stop: watch::Receiver<bool>,
) -> Result<Client, Error> {
    let mut req = format!("{}/graphql/ws", url.replacen("http://", "ws://", 1)).into_client_request()?;
    req.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(req).await?;
    socket
        .send(Message::Text(json!({"type": "connection_init", "payload": {"token": token}}).to_string().into()))
        .await?;
    let ack = socket.next().await.ok_or("closed before the ack")??;
    if !ack.to_text()?.contains("connection_ack") {
        return Err(format!("no ack: {ack:?}").into());
    }
    let sub = json!({"type": "subscribe", "id": "1", "payload": {"query":
        "subscription { events(where: {eventTypes: [\"ItemAcquired\"]}) { recordedAt } }"}});
    socket.send(Message::Text(sub.to_string().into())).await?;
    let received = Arc::new(AtomicU64::new(0));
    let count = received.clone();
    let mut stop = stop;
    let task = tokio::spawn(async move {
        let mut latencies = Vec::new();
        loop {
            let msg = tokio::select! {
                m = socket.next() => m,
                _ = stop.wait_for(|s| *s) => break,
            };
            let Some(Ok(Message::Text(t))) = msg else {
                if matches!(msg, Some(Ok(Message::Ping(_) | Message::Pong(_)))) {
                    continue;
                }
                return Err(format!("socket ended: {msg:?}").into());
            };
            let now = chrono::Utc::now();
            let v: Value = serde_json::from_str(t.as_str())?;
            let Some(at) = v["payload"]["data"]["events"]["recordedAt"].as_str() else {
                return Err(format!("unexpected message: {v}").into());
            };
            let at = chrono::DateTime::parse_from_rfc3339(at)?;
            // The baseline's last events may still be on their way when a client joins.
            if at < after {
                continue;
            }
            latencies.push((now - at.with_timezone(&chrono::Utc)).num_microseconds().unwrap_or(0) as f64 / 1000.0);
            count.fetch_add(1, Ordering::Relaxed);
        }
        Ok(latencies)
    });
    Ok(Client { received, task })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub async fn run(backend: Backend, o: &Options) -> Result<String, Error> {
    let s = server(backend).await?;
    let token = crate::login(&format!("{}/graphql", s.url), api::demo::DEMO_EMAIL, api::demo::DEMO_PASSWORD).await?;
    // Baseline: the same writers, nobody subscribed.
    let (_, alone) = write(&s.url, &token, o.writers, o.seconds).await?;
    let baseline_end = chrono::Utc::now();

    let (stop_tx, stop) = watch::channel(false);
    let mut clients = Vec::with_capacity(o.clients);
    for _ in 0..o.clients {
        clients.push(subscribe(&s.url, &token, baseline_end, stop.clone()).await?);
    }
    // Let every subscription join the feed before the first write.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let (written, with_subscribers) = write(&s.url, &token, o.writers, o.seconds).await?;
    // Drain: every client should get every event; give them a bounded time to.
    let drain = Instant::now() + Duration::from_secs(30);
    let mut last_delivery = started.elapsed();
    loop {
        let total: u64 = clients.iter().map(|c| c.received.load(Ordering::Relaxed)).sum();
        if total >= written * o.clients as u64 || Instant::now() > drain {
            break;
        }
        last_delivery = started.elapsed();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop_tx.send(true);
    let mut latencies = Vec::new();
    let mut complete = true;
    let (mut least, mut most) = (u64::MAX, 0);
    for c in clients {
        let got = c.received.load(Ordering::Relaxed);
        complete &= got == written;
        least = least.min(got);
        most = most.max(got);
        latencies.extend(c.task.await??);
    }
    if !complete {
        eprintln!("{backend:?}: {written} written; clients received between {least} and {most}");
    }
    latencies.sort_by(f64::total_cmp);
    let delivered = latencies.len() as f64 / last_delivery.as_secs_f64().max(o.seconds as f64);
    Ok(format!(
        "| {backend:?} | {alone:.0} acquireItem/s | {with_subscribers:.0}/s ({:.2}) | {delivered:.0} to {} clients | {} ({written} events × {}) | {:.1} ms / {:.1} ms |",
        with_subscribers / alone,
        o.clients,
        if complete { "yes" } else { "NO" },
        o.clients,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    ))
}
