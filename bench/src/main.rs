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
//! `cargo run --release -p bench -- all` — every table in turn, with default options.
//!
//! `cargo run --release -p bench -- writes` — `acquireItem` over HTTP, 1 and 8 clients, against
//! the bare event-store append at the same concurrency.

mod latency;
mod reads;
mod rebuild;
mod subscriptions;
mod writes;

use clap::{Parser, Subcommand, ValueEnum};
use eventstore::testing::TestDatabase;
use eventstore::{Database, EventStore, MasterKey, Upcasters};

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
    /// Every table above in turn, each with its default options (appends: `cargo bench -p
    /// eventstore --bench append`).
    All,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A new database of `backend` holding a generated store (the generator of `inventory-connect
/// demo generate`), and the generator's row for the table.
pub async fn generated_store(
    backend: Backend,
    items: usize,
    events: usize,
    seed: u64,
) -> Result<(TestDatabase, Database, EventStore, api::generate::Generated, String), Error> {
    let tdb = match backend {
        Backend::Sqlite => TestDatabase::sqlite(),
        Backend::Postgres => TestDatabase::postgres().await.ok_or("PostgreSQL is not reachable")?,
    };
    let db = Database::connect(&tdb.url).await?;
    let store = EventStore::new(&db, MasterKey::generate(), Upcasters::default());
    let plan = api::generate::Plan {
        items,
        events,
        owner_email: OWNER_EMAIL.into(),
        owner_password: OWNER_PASSWORD.into(),
        seed,
    };
    let generated = api::generate::generate(&store, &eventstore::Accounts::new(&db), &plan, |_, _| {}).await?;
    let row = format!(
        "| {backend:?} | generate {items} items, {} events | {:.0} events/s | | |",
        generated.events,
        generated.events as f64 / generated.seconds
    );
    Ok((tdb, db, store, generated, row))
}

/// The generated store's owner.
pub const OWNER_EMAIL: &str = "owner@bench.test";
pub const OWNER_PASSWORD: &str = "amber-caliber-vault-2026";

/// A subcommand's options as its flags' defaults make them.
fn defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let cmd = T::augment_args(clap::Command::new("defaults"));
    T::from_arg_matches(&cmd.get_matches_from(["defaults"])).expect("every option has a default")
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
        Command::All => {
            println!("## reads\n\n{}", reads::HEADER);
            let o: reads::Options = defaults();
            for b in &cli.backend {
                print_rows(*b, reads::run(*b, &o).await);
            }
            println!("\n## writes\n\n{}", writes::HEADER);
            let o: writes::Options = defaults();
            for b in &cli.backend {
                print_rows(*b, writes::run(*b, &o).await);
            }
            println!("\n## rebuild\n\n{}", rebuild::HEADER);
            let o: rebuild::Options = defaults();
            for b in &cli.backend {
                print_rows(*b, rebuild::run(*b, &o).await);
            }
            println!("\n## subscriptions\n\n{}", subscriptions::HEADER);
            let o: subscriptions::Options = defaults();
            for b in &cli.backend {
                print_rows(*b, subscriptions::run(*b, &o).await.map(|row| vec![row]));
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
                print_rows(b, subscriptions::run(b, &o).await.map(|row| vec![row]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_benchmark_runs_with_its_defaults() {
        let reads: reads::Options = defaults();
        let writes: writes::Options = defaults();
        let rebuild: rebuild::Options = defaults();
        let subscriptions: subscriptions::Options = defaults();
        let _ = (reads, writes, rebuild, subscriptions);
        Cli::command().debug_assert();
    }
}
