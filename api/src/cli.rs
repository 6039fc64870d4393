//! Command-line interface: one `clap` struct; every flag has an environment variable.

use crate::app::{self, anyhow_free::Result, AppState};
use clap::{Parser, Subcommand};

mod audit;
mod certificate;
mod maintenance;
use eventstore::{Database, EventStore, MasterKey, Position, Upcasters};
use projections::{Kind, ReadDb};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Parser, Debug)]
#[command(
    name = "inventory-connect",
    version,
    about = "InventoryConnect backend: event-sourced system of record for luxury dealers"
)]
pub struct Cli {
    /// Database URL: `postgres://…` selects PostgreSQL, `sqlite://path` SQLite. Default: the
    /// SQLite file `<data-dir>/inventory-connect.db`.
    #[arg(long, env = "IC_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Directory for local data: the default SQLite database and a generated master key.
    #[arg(long, env = "IC_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
    /// The erasure ledger: every erasure is also recorded here, outside the database, and
    /// re-applied at startup and after `restore`. Keep it on storage that is not restored with
    /// the database. Default: `<data-dir>/erasure-ledger.jsonl`.
    #[arg(long, env = "IC_ERASURE_LEDGER", global = true)]
    pub erasure_ledger: Option<PathBuf>,
    /// Log lines as `pretty` text (colours only on a terminal) or `json` (one object a line).
    #[arg(long, env = "IC_LOG_FORMAT", default_value = "pretty", value_parser = ["pretty", "json"], global = true)]
    pub log_format: String,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The erasure ledger's path (the flag, or the default in the data directory).
    pub fn erasure_ledger_path(&self) -> PathBuf {
        self.erasure_ledger.clone().unwrap_or_else(|| self.data_dir.join("erasure-ledger.jsonl"))
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP server (migrations run on start).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "IC_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Seed a demo store with sample data on first run and print how to log in.
        #[arg(long)]
        demo: bool,
        /// Minutes of inactivity after which a session ends.
        #[arg(long, env = "IC_SESSION_IDLE_MINUTES", default_value_t = 30)]
        session_idle_minutes: u32,
        /// Hours after login at which a session ends, however active.
        #[arg(long, env = "IC_SESSION_LIFETIME_HOURS", default_value_t = 8)]
        session_lifetime_hours: u32,
        /// Milliseconds this server may reuse a token's session check (0: every request is
        /// checked; at most 60000).
        /// Revocations through this server take effect at once; through another server or the
        /// CLI, within this time.
        #[arg(long, env = "IC_SESSION_CACHE_MS", default_value_t = 1000)]
        session_cache_ms: u64,
        /// A reverse proxy whose `X-Forwarded-For` header names the client (repeatable; env:
        /// comma-separated). Without it, the peer address is the client's.
        #[arg(long = "trusted-proxy", env = "IC_TRUSTED_PROXIES", value_delimiter = ',')]
        trusted_proxies: Vec<std::net::IpAddr>,
        /// Most mutations a single request may run.
        #[arg(long, env = "IC_MAX_MUTATIONS", default_value_t = 10)]
        max_mutations: usize,
        /// Serve schema introspection to callers who are not signed in (off: only staff).
        #[arg(long, env = "IC_PUBLIC_INTROSPECTION")]
        public_introspection: bool,
        /// Seconds a connection may take to send its request headers before it is closed.
        #[arg(long, env = "IC_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
        header_read_timeout_secs: u64,
        /// Seconds requests in flight may take to finish after SIGTERM or SIGINT.
        #[arg(long, env = "IC_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
        shutdown_grace_secs: u64,
        /// Seconds between automatic seals of new events into a signed tree head.
        #[arg(long, env = "IC_SEAL_INTERVAL_SECS", default_value_t = 60)]
        seal_interval_secs: u64,
        /// A browser origin allowed to call the API, e.g. `https://dashboard.example.com`
        /// (repeatable; env: comma-separated). None by default.
        #[arg(long = "cors-origin", env = "IC_CORS_ORIGINS", value_delimiter = ',')]
        cors_origins: Vec<String>,
        /// `/readyz` fails when a projection has left an event unapplied this many seconds.
        #[arg(long, env = "IC_READINESS_MAX_LAG_SECS", default_value_t = 30)]
        readiness_max_lag_secs: u64,
        /// Hours between runs of the retention job (it also runs at startup); 0: never.
        #[arg(long, env = "IC_RETENTION_INTERVAL_HOURS", default_value_t = 24)]
        retention_interval_hours: u32,
        /// Run only the operations in this file (trusted documents): a JSON object mapping each
        /// document's SHA-256 (hex, optionally prefixed `sha256:`) to its text, as GraphQL
        /// Codegen's `persisted-documents.json`. Automatic persisted queries are then off.
        #[arg(long, env = "IC_TRUSTED_DOCUMENTS")]
        trusted_documents: Option<std::path::PathBuf>,
        /// Websockets (`/graphql/ws`) one session may hold open at once.
        #[arg(long, env = "IC_WS_CONNECTIONS_PER_SESSION", default_value_t = 8)]
        ws_connections_per_session: usize,
    },
    /// Demo data.
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
    /// Manage stores (tenants).
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Re-check the whole log: every stream's hash chain, the Merkle tree against what was
    /// sealed and, with `--trusted-head`, that the log is an extension of a head saved earlier.
    /// Exit 0 verified, 1 tampering found, 2 could not check.
    Verify {
        /// A signed checkpoint saved earlier (from `ledger seal --out`, `ledgerHead.checkpoint`).
        #[arg(long)]
        trusted_head: Option<PathBuf>,
        /// The ledger's verifier key (`ledgerPublicKey`) to check the trusted head with; by
        /// default the database's own key.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Write a consistent copy of the database to FILE (SQLite: online copy; PostgreSQL:
    /// `pg_dump` custom format).
    Backup {
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a backup into an empty target (`--database-url`), then verify every hash chain
    /// and the Merkle tree before reporting success.
    Restore { file: PathBuf },
    /// Master-key management (run with every server stopped).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The retention job: run it now (or as of another instant).
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// Deletion certificates: export one, verify one (offline, or against the database).
    Certificate {
        #[command(subcommand)]
        command: certificate::CertificateCommand,
    },
    /// For auditors: export the trail, write and check offline bundles.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The verifiable ledger: signed tree heads.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Staff accounts (for operators: a locked-out owner).
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Inspect or rebuild read models.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum DemoCommand {
    /// A new store with a realistic history at scale (items from the usual houses with price
    /// changes, customers with consents, sales), for benchmarks and trials. Prints how to log in.
    Generate {
        #[arg(long, default_value_t = 100_000)]
        items: usize,
        /// The log's size to aim for; price changes fill what items, customers and sales leave.
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        #[arg(long, default_value = "owner@generated.inventoryconnect.test")]
        owner_email: String,
        #[arg(long, env = "IC_OWNER_PASSWORD", default_value = "amber-caliber-vault-2026")]
        owner_password: String,
        /// Same seed, same data (ids and times aside).
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Create a store and its owner; prints the store id.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        owner_email: String,
        /// The owner's password (at least 12 characters, not guessable, not containing the email or
        /// store name).
        #[arg(long, env = "IC_OWNER_PASSWORD")]
        owner_password: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Re-wrap every data key and the ledger's signing key under the master key given in
    /// `IC_NEW_MASTER_KEY` (base64, 32 bytes), in one transaction, and record it as an event.
    /// Afterwards start everything with `IC_MASTER_KEY` set to the new key.
    RotateMaster,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Write a store's audit trail as JSON Lines, oldest first.
    Export {
        #[arg(long)]
        store: uuid::Uuid,
        /// Entries at or after this instant (RFC 3339).
        #[arg(long)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// Entries before this instant (RFC 3339).
        #[arg(long)]
        to: Option<chrono::DateTime<chrono::Utc>>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Write an offline audit bundle: every event as stored, the signed heads, the verifier key.
    Bundle {
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a bundle with no database: hash chains, Merkle tree, head signatures, and that the
    /// log extends `--trusted-head`. Exit 0 verified, 1 tampering found, 2 could not check.
    VerifyBundle {
        dir: PathBuf,
        #[arg(long)]
        trusted_head: Option<PathBuf>,
        /// The verifier key to trust instead of the bundle's own `ledger-key.txt`.
        #[arg(long)]
        public_key: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum LedgerCommand {
    /// Seal the log into a new signed tree head and print its checkpoint (or write it to a file,
    /// to keep as a trusted head).
    Seal {
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the ledger's signed-note verifier key.
    Key,
}

#[derive(Subcommand, Debug)]
pub enum StaffCommand {
    /// Issue a one-time password-reset token for a member (prints it; valid 24 hours). The
    /// member sets a new password with the `resetPassword` mutation.
    ResetPassword {
        #[arg(long)]
        email: String,
        /// The store, when the email is staff of several.
        #[arg(long)]
        store: Option<uuid::Uuid>,
    },
}

#[derive(Subcommand, Debug)]
pub enum RetentionCommand {
    /// Apply the retention rules to every store once (one server at a time) and print what was
    /// destroyed or removed.
    Run {
        /// Apply the rules as of this instant (RFC 3339) instead of now.
        #[arg(long)]
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ProjectionsCommand {
    /// Each projection's checkpoint and how many events it is behind.
    Status,
    /// Empty a projection (or all) and replay it from the start of the log.
    Rebuild {
        /// One of: directory, inventory, customers, sales, audit. All when omitted.
        name: Option<String>,
    },
}

impl Cli {
    pub fn database_url(&self) -> Result<String> {
        match &self.database_url {
            Some(url) => Ok(url.clone()),
            None => {
                std::fs::create_dir_all(&self.data_dir)?;
                Ok(format!("sqlite://{}", self.data_dir.join("inventory-connect.db").display()))
            }
        }
    }
}

/// Opens an existing database for a read-only command: nothing is created, migrated or written,
/// and no key file is generated. A missing database or key is an error (exit 2).
async fn open_read_only(cli: &Cli) -> Result<(Database, EventStore)> {
    let url = match &cli.database_url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", cli.data_dir.join("inventory-connect.db").display()),
    };
    let db = Database::open_existing(&url).await?;
    let key = match std::env::var("IC_MASTER_KEY") {
        Ok(b64) => MasterKey::from_base64(&b64)?,
        Err(_) => match std::fs::read_to_string(cli.data_dir.join("master.key")) {
            Ok(existing) => MasterKey::from_base64(&existing)?,
            Err(_) => return Err("IC_MASTER_KEY is not set and there is no local key file".into()),
        },
    };
    db.verify_master_key(&key).await?;
    let store = EventStore::new(&db, key, Upcasters::default());
    Ok((db, store))
}

/// `IC_MASTER_KEY` (base64, 32 bytes), or the local key file in the data directory. A new key
/// file is generated only for a database that was never initialised: for one that was, a
/// missing key is an error, never a fresh key.
pub fn master_key(data_dir: &Path, database_initialised: bool) -> Result<MasterKey> {
    if let Ok(b64) = std::env::var("IC_MASTER_KEY") {
        return Ok(MasterKey::from_base64(&b64)?);
    }
    let path = data_dir.join("master.key");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        warn_local_key(&path);
        return Ok(MasterKey::from_base64(&existing)?);
    }
    if database_initialised {
        return Err(format!(
            "this database was initialised with a master key, but IC_MASTER_KEY is not set and {} does not exist; \
             set IC_MASTER_KEY to the database's key",
            path.display()
        )
        .into());
    }
    std::fs::create_dir_all(data_dir)?;
    let key = MasterKey::generate();
    write_private(&path, &key.to_base64())?;
    warn_local_key(&path);
    Ok(key)
}

fn warn_local_key(path: &Path) {
    eprintln!(
        "WARNING: IC_MASTER_KEY is not set; using the local key file {} . This is for local use only, \
         NOT for production: whoever reads that file can decrypt all personal data.",
        path.display()
    );
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

/// Connects, then checks the master key against the database's before anything is written
/// with it (`StoreError::WrongMasterKey`, exit 2).
async fn open(cli: &Cli) -> Result<(Database, EventStore)> {
    let url = cli.database_url()?;
    let db = Database::connect(&url).await?;
    let initialised = db.key_check_value().await?.is_some();
    let key = master_key(&cli.data_dir, initialised)?;
    db.check_master_key(&key).await?;
    let store = EventStore::new(&db, key, Upcasters::default());
    Ok((db, store))
}

/// Runs the CLI; returns the process exit code.
pub async fn run(cli: Cli) -> Result<i32> {
    match &cli.command {
        Command::Serve {
            listen,
            demo,
            session_idle_minutes,
            session_lifetime_hours,
            session_cache_ms,
            trusted_proxies,
            max_mutations,
            public_introspection,
            header_read_timeout_secs,
            shutdown_grace_secs,
            seal_interval_secs,
            cors_origins,
            readiness_max_lag_secs,
            retention_interval_hours,
            trusted_documents,
            ws_connections_per_session,
        } => {
            let trusted = match trusted_documents {
                None => None,
                Some(path) => match crate::persisted::TrustedDocuments::load(path) {
                    Ok(t) => Some(t),
                    Err(why) => {
                        eprintln!("error: --trusted-documents {}: {why}", path.display());
                        return Ok(2);
                    }
                },
            };
            let mut origins = Vec::new();
            for o in cors_origins {
                match axum::http::HeaderValue::from_str(o.trim().trim_end_matches('/')) {
                    Ok(v) if o.starts_with("http://") || o.starts_with("https://") => origins.push(v),
                    _ => {
                        eprintln!("error: --cors-origin {o:?} is not an origin like https://dashboard.example.com");
                        return Ok(2);
                    }
                }
            }
            let (db, store) = open(&cli).await?;
            let (stop, shutdown) = watch::channel(false);
            let settings = app::Settings {
                sessions: crate::sessions::SessionSettings {
                    idle: chrono::Duration::minutes(i64::from(*session_idle_minutes).max(1)),
                    lifetime: chrono::Duration::hours(i64::from(*session_lifetime_hours).max(1)),
                    reuse: Duration::from_millis((*session_cache_ms).min(60_000)),
                },
                trusted_proxies: trusted_proxies.clone(),
                max_mutations: (*max_mutations).max(1),
                public_introspection: *public_introspection,
                header_read_timeout: Duration::from_secs((*header_read_timeout_secs).max(1)),
                shutdown_grace: Duration::from_secs(*shutdown_grace_secs),
                seal_interval: Duration::from_secs((*seal_interval_secs).max(1)),
                cors_origins: origins,
                readiness_max_lag: Duration::from_secs((*readiness_max_lag_secs).max(1)),
                erasure_ledger: Some(cli.erasure_ledger_path()),
                retention_interval: (*retention_interval_hours > 0)
                    .then(|| Duration::from_secs(3600 * u64::from(*retention_interval_hours))),
                trusted_documents: trusted,
                ws: crate::ws::WsSettings {
                    connections_per_session: (*ws_connections_per_session).max(1),
                    ..Default::default()
                },
                ..app::Settings::default()
            };
            let state = AppState::start_with(db, store, shutdown.clone(), settings).await?;
            if *demo {
                let created = crate::demo::seed(&state).await?;
                println!(
                    "Demo store {}. Log in with email {} and password {}",
                    if created { "created" } else { "already present" },
                    crate::demo::DEMO_EMAIL,
                    crate::demo::DEMO_PASSWORD
                );
            }
            let listener = tokio::net::TcpListener::bind(listen).await?;
            println!("InventoryConnect listening on http://{} (GraphiQL at /graphql)", listener.local_addr()?);
            tokio::spawn(async move {
                let signal = termination().await;
                eprintln!("{signal} received: finishing requests in flight, then exiting");
                let _ = stop.send(true);
            });
            app::serve(listener, state, shutdown).await?;
            Ok(0)
        }
        Command::Store { command: StoreCommand::Create { name, owner_email, owner_password } } => {
            let (db, store) = open(&cli).await?;
            let accounts = eventstore::Accounts::new(&db);
            match commands::stores::create_store(&store, &accounts, "cli", name, owner_email, owner_password).await {
                Ok((store_id, _, _)) => {
                    projections::catch_up_all(&ReadDb::new(&db), &store).await?;
                    println!("{store_id}");
                    Ok(0)
                }
                Err(commands::CommandError::Rejected(e)) => {
                    eprintln!("error: {e}");
                    Ok(2)
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::Demo { command: DemoCommand::Generate { items, events, owner_email, owner_password, seed } } => {
            let (db, store) = open(&cli).await?;
            let accounts = eventstore::Accounts::new(&db);
            let plan = crate::generate::Plan {
                items: *items,
                events: *events,
                owner_email: owner_email.clone(),
                owner_password: owner_password.clone(),
                seed: *seed,
            };
            let bar = crate::progress::Progress::new("generating", *events as u64);
            let done = match crate::generate::generate(&store, &accounts, &plan, |n, total| bar.set(n, total)).await {
                Ok(g) => g,
                Err(e) => match e.downcast::<commands::CommandError>() {
                    Ok(e) => {
                        eprintln!("error: {e}");
                        return Ok(2);
                    }
                    Err(e) => return Err(e),
                },
            };
            bar.finish_with(done.events, "events in the log");
            println!(
                "Generated store {}: {} items, {} customers, {} sales; the log holds {} events ({:.0} s, {:.0} events/s).",
                done.store_id,
                done.items,
                done.customers,
                done.sales,
                done.events,
                done.seconds,
                done.events as f64 / done.seconds.max(0.001)
            );
            println!("Log in with email {owner_email} and password {owner_password} (read models catch up when `serve` starts).");
            Ok(0)
        }
        Command::Verify { trusted_head, public_key } => audit::verify(&cli, trusted_head, public_key).await,
        Command::Backup { out } => maintenance::backup(&cli, out).await,
        Command::Restore { file } => maintenance::restore(&cli, file).await,
        Command::Keys { command: KeysCommand::RotateMaster } => maintenance::rotate_master(&cli).await,
        Command::Audit { command: AuditCommand::VerifyBundle { dir, trusted_head, public_key } } => {
            audit::verify_bundle(dir, trusted_head, public_key)
        }
        Command::Audit { command: AuditCommand::Bundle { out } } => audit::bundle(&cli, out).await,
        Command::Audit { command: AuditCommand::Export { store: store_id, from, to, out } } => {
            audit::export(&cli, store_id, from, to, out).await
        }
        Command::Ledger { command } => audit::ledger(&cli, command).await,
        Command::Certificate { command } => certificate::run(&cli, command).await,
        Command::Retention { command: RetentionCommand::Run { as_of } } => maintenance::retention(&cli, *as_of).await,
        Command::Staff { command: StaffCommand::ResetPassword { email, store: store_filter } } => {
            maintenance::reset_password(&cli, email, store_filter).await
        }
        Command::Projections { command } => {
            let (db, store) = match command {
                ProjectionsCommand::Status => open_read_only(&cli).await?,
                ProjectionsCommand::Rebuild { .. } => open(&cli).await?,
            };
            let read = ReadDb::new(&db);
            match command {
                ProjectionsCommand::Status => {
                    for kind in Kind::ALL {
                        let at = read.checkpoint(kind).await?;
                        let behind = store.count_after(at).await?;
                        println!("{:<10} checkpoint {:<16} behind {behind}", kind.name(), at.to_string());
                    }
                    Ok(0)
                }
                ProjectionsCommand::Rebuild { name } => {
                    let kinds = match name {
                        None => Kind::ALL.to_vec(),
                        Some(n) => {
                            match Kind::parse(n) {
                                Some(k) => vec![k],
                                None => {
                                    eprintln!("unknown projection {n:?}; known: directory, inventory, customers, sales, audit");
                                    return Ok(2);
                                }
                            }
                        }
                    };
                    for kind in kinds {
                        rebuild(&read, &store, kind).await?;
                    }
                    Ok(0)
                }
            }
        }
    }
}

/// Waits for SIGTERM (systemd, Kubernetes, `docker stop`) or SIGINT (Ctrl-C); names it.
async fn termination() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

async fn rebuild(read: &ReadDb, store: &EventStore, kind: Kind) -> Result<()> {
    let bar = crate::progress::Progress::new(kind.name(), 0);
    let done = projections::rebuild(read, store, kind, |done, total| bar.set(done, total)).await?;
    bar.finish_with(done.applied, "events rebuilt");
    eprintln!("{}: swapped in for the live model in {} ms", kind.name(), done.swap.as_millis());
    Ok(())
}
