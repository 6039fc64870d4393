//! Prometheus metrics at `GET /metrics`: GraphQL requests by operation and outcome, their
//! latency, events appended, each projection's position and lag, and database pool use. Labels
//! are operation names (sanitised, bounded), error codes and projection names — never anything
//! personal.

use crate::app::AppState;
use eventstore::Database;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// The process-wide recorder (installed once, however many servers a test starts).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("duration_seconds".into()),
                &[0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
            )
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (an embedding application's): then ours
        // only renders what it sees.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// A client-chosen operation name as a bounded, safe label.
pub fn operation_label(name: Option<&str>) -> String {
    match name {
        Some(n) if !n.is_empty() && n.len() <= 64 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            n.to_owned()
        }
        Some(_) => "invalid".into(),
        None => "anonymous".into(),
    }
}

/// Refreshes the gauges that are read, not counted, then renders everything.
pub async fn render(state: &AppState) -> String {
    let now = chrono::Utc::now();
    for (kind, at) in state.projections.status() {
        metrics::gauge!("ic_projection_position", "projection" => kind.name()).set(at.seq as f64);
        let lag = match state.db.backend().read_committed(at, 1).await {
            Ok(next) => next.first().map_or(0.0, |e| (now - e.recorded_at).num_milliseconds().max(0) as f64 / 1000.0),
            Err(_) => f64::NAN,
        };
        metrics::gauge!("ic_projection_lag_seconds", "projection" => kind.name()).set(lag);
    }
    let pools: Vec<(&'static str, u32, usize)> = match &state.db {
        Database::Sqlite(b) => vec![
            ("sqlite_reader", b.reader().size(), b.reader().num_idle()),
            ("sqlite_writer", b.writer().size(), b.writer().num_idle()),
        ],
        Database::Postgres(b) => vec![("postgres", b.pool().size(), b.pool().num_idle())],
    };
    for (pool, size, idle) in pools {
        metrics::gauge!("ic_db_pool_connections", "pool" => pool, "state" => "idle").set(idle as f64);
        metrics::gauge!("ic_db_pool_connections", "pool" => pool, "state" => "busy")
            .set(size.saturating_sub(idle as u32) as f64);
    }
    handle().render()
}
