//! Benchmarks that print figures for the README, each next to a baseline measured in the same
//! run (this machine is shared and noisy: ratios, not absolute numbers, are what compare).
//!
//! `cargo run --release -p bench -- subscriptions` — live-feed fan-out: events per second
//! delivered to 100 websocket subscribers while 8 writers run `acquireItem` over HTTP, the
//! writers' rate against the same writers with no subscriber, and the latency from an event's
//! commit to each client (p50/p99). Both backends; everything on 127.0.0.1.
//!
//! `cargo run --release -p bench -- reads` — the inventory page at scale (see `reads.rs`).
//!
//! `cargo run --release -p bench -- rebuild` — read-model rebuilds over a generated log, against
//! reading the whole log.
//!
//! `cargo run --release -p bench -- writes` — `acquireItem` over HTTP, 1 and 8 clients, against
//! the bare event-store append at the same concurrency.

mod latency;
mod reads;
mod rebuild;
mod subscriptions;
mod writes;

use clap::{Parser, Subcommand, ValueEnum};

/// The same allocator as the `inventory-connect` binary (the server runs in this process).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use serde_json::{json, Value};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Logs in over HTTP; the session token.
pub async fn login(graphql_url: &str, email: &str, password: &str) -> Result<String, Error> {
    let body = json!({"query": "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { token } }",
        "variables": {"e": email, "p": password}});
    let r: Value = reqwest::Client::new().post(graphql_url).json(&body).send().await?.json().await?;
    Ok(r["data"]["login"]["token"].as_str().ok_or_else(|| format!("login failed: {r}"))?.to_owned())
}

#[derive(Parser)]
#[command(about = "InventoryConnect benchmarks (figures with their same-run baselines)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Which backends to measure.
    #[arg(long, value_enum, global = true, default_values_t = [Backend::Sqlite, Backend::Postgres])]
    backend: Vec<Backend>,
}

#[derive(Subcommand)]
enum Command {
    /// Live-feed fan-out and commit-to-client latency.
    Subscriptions(subscriptions::Options),
    /// The inventory page at scale, against the page's SQL alone.
    Reads(reads::Options),
    /// `acquireItem` over HTTP (1 and 8 clients), against the bare append.
    Writes(writes::Options),
    /// Read-model rebuilds over a generated log, against reading the log.
    Rebuild(rebuild::Options),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Prints a backend's table rows, or its error and exits.
fn print_rows(backend: Backend, rows: Result<Vec<String>, Error>) {
    match rows {
        Ok(rows) => rows.iter().for_each(|r| println!("{r}")),
        Err(e) => {
            eprintln!("{backend:?}: {e}");
            std::process::exit(1);
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Reads(o) => {
            println!("{}", reads::HEADER);
            for b in cli.backend {
                print_rows(b, reads::run(b, &o).await);
            }
        }
        Command::Rebuild(o) => {
            println!("{}", rebuild::HEADER);
            for b in cli.backend {
                print_rows(b, rebuild::run(b, &o).await);
            }
        }
        Command::Writes(o) => {
            println!("{}", writes::HEADER);
            for b in cli.backend {
                print_rows(b, writes::run(b, &o).await);
            }
        }
        Command::Subscriptions(o) => {
            println!("{}", subscriptions::HEADER);
            for b in cli.backend {
                match subscriptions::run(b, &o).await {
                    Ok(row) => println!("{row}"),
                    Err(e) => {
                        eprintln!("{b:?}: {e}");
                        std::process::exit(1);
                    }
                }
            }
        }
    }
}
