//! The `inventory-connect` binary: bootstraps logging and hands over to the CLI.
#![forbid(unsafe_code)]

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    let cli = api::cli::Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if cli.log_format == "json" {
        logs.json().init();
    } else {
        // Colour codes only where a person reads them, never in a log file.
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
    }
    match api::cli::run(cli).await {
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
