//! The API and the `inventory-connect` binary: GraphQL over axum, authentication and
//! authorisation, tenancy, limits, and the operational CLI (serve, store create, verify,
//! projections).
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod certificates;
pub mod cli;
pub mod demo;
pub mod error;
pub mod exports;
pub mod generate;
pub mod graphql;
pub mod http;
pub mod live;
pub mod metrics;
pub mod parsed;
pub mod persisted;
pub mod progress;
pub mod retention;
pub mod sessions;
pub mod telemetry;
pub mod throttle;
pub mod ws;

/// The schema in SDL, for the golden file `api/schema.graphql`.
pub fn schema_sdl() -> String {
    graphql::build_schema(None).sdl()
}
