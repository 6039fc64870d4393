//! The `inventory-connect` binary: bootstraps logging and hands over to the CLI.
#![forbid(unsafe_code)]

use clap::Parser;

/// mimalloc: under concurrent requests glibc malloc took a quarter of the CPU (profiled with
/// `perf` on the inventory page benchmark).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let cli = api::cli::Cli::parse();
    let telemetry = api::telemetry::init(cli.log_format == "json");
    let outcome = api::cli::run(cli).await;
    // Traces still buffered are sent before the process exits.
    drop(telemetry);
    match outcome {
        Ok(code) => std::process::exit(code),
        // Exit codes: 0 ok, 1 a check failed (the command says so itself), 2 could not run
        // (usage, connection, configuration, wrong master key). The whole cause chain is
        // printed; no error in it carries personal data.
        Err(e) => {
            let mut message = e.to_string();
            let mut source = e.source();
            while let Some(s) = source {
                message.push_str(": ");
                message.push_str(&s.to_string());
                source = s.source();
            }
            eprintln!("error: {message}");
            std::process::exit(2);
        }
    }
}
