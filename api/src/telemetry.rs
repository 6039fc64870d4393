//! Logs and traces: the `tracing` subscriber the binary installs.
//!
//! Log lines go to stderr as pretty text (colour only on a terminal) or JSON. When
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set and the binary
//! was built with the `otel` feature (the default), spans are also exported over OTLP/HTTP
//! (`OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf`, the default, or `http/json`). The other
//! standard `OTEL_*` variables (headers, timeout, `OTEL_SERVICE_NAME`, resource attributes) are
//! honoured by the exporter itself.
//!
//! Span attributes are chosen, never captured wholesale: request id, method, route, GraphQL
//! operation name and type, outcome. No query text, variables or personal data reach a span.

use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, EnvFilter, Layer};

/// Flushes and stops the trace exporter when dropped (at the end of `main`).
#[must_use = "traces are flushed when the guard is dropped"]
pub struct Guard {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.provider.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("warning: trace export did not finish: {e}");
            }
        }
    }
}

/// Installs the global subscriber. `json` selects JSON log lines.
pub fn init(json: bool) -> Guard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = if json {
        logs.json().boxed()
    } else {
        // Colour codes only where a person reads them, never in a log file.
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).boxed()
    };
    #[cfg_attr(not(feature = "otel"), allow(unused_mut))]
    let mut layers = vec![logs.with_filter(filter).boxed()];

    #[cfg(feature = "otel")]
    let provider = match otlp::layer() {
        Ok(Some((layer, provider))) => {
            layers.push(layer);
            Some(provider)
        }
        Ok(None) => None,
        Err(e) => {
            eprintln!("warning: traces are not exported: {e}");
            None
        }
    };
    tracing_subscriber::registry().with(layers).init();
    Guard {
        #[cfg(feature = "otel")]
        provider,
    }
}

#[cfg(feature = "otel")]
mod otlp {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::{filter::Targets, Layer, Registry};

    type Boxed = Box<dyn Layer<Registry> + Send + Sync>;

    /// The OTLP layer when an endpoint is configured; `None` when tracing export is off.
    pub(super) fn layer() -> Result<Option<(Boxed, SdkTracerProvider)>, String> {
        let configured = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
            .iter()
            .any(|var| std::env::var(var).is_ok_and(|v| !v.trim().is_empty()));
        if !configured {
            return Ok(None);
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder().with_http().build().map_err(|e| e.to_string())?;
        let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "inventory-connect".into());
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(service)
            .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
        let tracer = provider.tracer("inventory-connect");
        // Only this application's spans: library internals (sqlx, hyper, the exporter's own
        // HTTP client) would flood the collector, and the exporter must never trace itself.
        let ours = Targets::new()
            .with_target("api", tracing::Level::INFO)
            .with_target("inventory_connect", tracing::Level::INFO)
            .with_target("eventstore", tracing::Level::INFO)
            .with_target("commands", tracing::Level::INFO)
            .with_target("projections", tracing::Level::INFO);
        let layer = tracing_opentelemetry::layer().with_tracer(tracer).with_filter(ours).boxed();
        Ok(Some((layer, provider)))
    }
}
