//! Command-line interface: one `clap` struct; every flag has an environment variable.

use crate::app::{self, anyhow_free::Result, AppState};
use clap::{Parser, Subcommand};
use eventstore::{Database, EventStore, MasterKey, Position, Upcasters};
use projections::{Kind, ReadDb, Runner};
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
    /// Log lines as `pretty` text (colours only on a terminal) or `json` (one object a line).
    #[arg(long, env = "IC_LOG_FORMAT", default_value = "pretty", value_parser = ["pretty", "json"], global = true)]
    pub log_format: String,
    #[command(subcommand)]
    pub command: Command,
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
            trusted_proxies,
            max_mutations,
            public_introspection,
            header_read_timeout_secs,
            shutdown_grace_secs,
            seal_interval_secs,
            cors_origins,
            readiness_max_lag_secs,
        } => {
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
                },
                trusted_proxies: trusted_proxies.clone(),
                max_mutations: (*max_mutations).max(1),
                public_introspection: *public_introspection,
                header_read_timeout: Duration::from_secs((*header_read_timeout_secs).max(1)),
                shutdown_grace: Duration::from_secs(*shutdown_grace_secs),
                seal_interval: Duration::from_secs((*seal_interval_secs).max(1)),
                cors_origins: origins,
                readiness_max_lag: Duration::from_secs((*readiness_max_lag_secs).max(1)),
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
        Command::Verify { trusted_head, public_key } => {
            // Read the trusted head first: a bad file is "could not check" (2), before any work.
            let trusted_text = match trusted_head {
                None => None,
                Some(path) => match std::fs::read_to_string(path) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        eprintln!("error: cannot read the trusted head {}: {e}", path.display());
                        return Ok(2);
                    }
                },
            };
            let (db, store) = open_read_only(&cli).await?;
            let report = store.verify().await?;
            if let Some(broken) = report.broken {
                println!("BROKEN at position {}: {broken}", broken.position());
                println!("({} events before it verified)", report.events);
                return Ok(1);
            }
            let ledger = eventstore::ledger::Ledger::new(&db, store.master_key());
            let trusted = match &trusted_text {
                None => None,
                Some(text) => {
                    let key = match public_key {
                        Some(k) => k.clone(),
                        None => ledger.signer().await?.verifier_key(),
                    };
                    let verifier = match ledger::NoteVerifier::parse(&key) {
                        Ok(v) => v,
                        Err(e) => {
                            eprintln!("error: {e}");
                            return Ok(2);
                        }
                    };
                    match verifier.verify_checkpoint(text) {
                        Ok(cp) => Some(cp),
                        Err(e @ (ledger::NoteError::BadSignature(_) | ledger::NoteError::NoSignature(_))) => {
                            println!("BROKEN: the trusted head does not verify: {e}");
                            return Ok(1);
                        }
                        Err(e) => {
                            eprintln!("error: the trusted head is not a signed checkpoint: {e}");
                            return Ok(2);
                        }
                    }
                }
            };
            match ledger.check(trusted.as_ref()).await? {
                Err(problem) => {
                    println!("BROKEN: {problem}");
                    Ok(1)
                }
                Ok(size) => {
                    println!(
                        "OK: verified {} events in {} streams; head {}; Merkle tree of {size} events{}",
                        report.events,
                        report.streams,
                        report.head,
                        match &trusted {
                            Some(t) => format!(" extends the trusted head of {} events", t.size),
                            None => String::new(),
                        }
                    );
                    Ok(0)
                }
            }
        }
        Command::Backup { out } => {
            if out.exists() {
                eprintln!("error: {} exists; a backup never overwrites a file", out.display());
                return Ok(2);
            }
            let (db, _) = open_read_only(&cli).await?;
            match &db {
                Database::Sqlite(_) => {
                    // VACUUM INTO: a transactionally consistent copy while the server runs.
                    let path = out.to_str().ok_or("the backup path is not UTF-8")?.replace('\'', "''");
                    db.execute_raw(&format!("VACUUM INTO '{path}'")).await?;
                }
                Database::Postgres(_) => {
                    let url = cli.database_url.clone().unwrap_or_default();
                    let status = std::process::Command::new("pg_dump")
                        .args(["--format=custom", "--no-owner", "--file"])
                        .arg(out)
                        .arg(url)
                        .status();
                    match status {
                        Ok(s) if s.success() => {}
                        Ok(s) => return Err(format!("pg_dump failed ({s})").into()),
                        Err(e) => return Err(format!("pg_dump is needed for PostgreSQL backups: {e}").into()),
                    }
                }
            }
            println!("backup written to {}", out.display());
            Ok(0)
        }
        Command::Restore { file } => {
            if !file.exists() {
                eprintln!("error: no backup at {}", file.display());
                return Ok(2);
            }
            let url = match &cli.database_url {
                Some(u) => u.clone(),
                None => format!("sqlite://{}", cli.data_dir.join("inventory-connect.db").display()),
            };
            if url.starts_with("sqlite:") {
                let target = PathBuf::from(url.trim_start_matches("sqlite://").trim_start_matches("sqlite:"));
                if target.exists() {
                    eprintln!("error: {} exists; restore only into an empty target", target.display());
                    return Ok(2);
                }
                if let Some(dir) = target.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::copy(file, &target)?;
            } else {
                // The target database must exist and be empty.
                let db = Database::connect_raw(&url).await?;
                if db.has_tables().await? {
                    eprintln!("error: the target database is not empty; restore only into an empty one");
                    return Ok(2);
                }
                let status = std::process::Command::new("pg_restore")
                    .args(["--no-owner", "--exit-on-error", "--dbname"])
                    .arg(&url)
                    .arg(file)
                    .status();
                match status {
                    Ok(s) if s.success() => {}
                    Ok(s) => return Err(format!("pg_restore failed ({s})").into()),
                    Err(e) => return Err(format!("pg_restore is needed for PostgreSQL restores: {e}").into()),
                }
            }
            let (db, store) = open_read_only(&cli).await?;
            let report = store.verify().await?;
            if let Some(broken) = report.broken {
                println!("BROKEN: the restored log fails verification at position {}: {broken}", broken.position());
                return Ok(1);
            }
            let ledger = eventstore::ledger::Ledger::new(&db, store.master_key());
            if let Err(problem) = ledger.check(None).await? {
                println!("BROKEN: {problem}");
                return Ok(1);
            }
            println!("restored and verified {} events in {} streams", report.events, report.streams);
            Ok(0)
        }
        Command::Keys { command: KeysCommand::RotateMaster } => {
            let Ok(new_b64) = std::env::var("IC_NEW_MASTER_KEY") else {
                eprintln!("error: set IC_NEW_MASTER_KEY to the new master key (base64, 32 bytes); it is never a flag, so it stays out of process lists");
                return Ok(2);
            };
            let new = MasterKey::from_base64(&new_b64)?;
            let (db, store) = open(&cli).await?;
            let rotation = db.rotate_master_key(store.master_key(), &new).await?;
            // The record: what was re-wrapped and which key check is now in force (a prefix of
            // an HMAC of the key, which reveals nothing of it).
            let event = eventstore::NewEvent {
                event_id: uuid::Uuid::now_v7(),
                store_id: uuid::Uuid::nil(),
                event_type: "MasterKeyRotated".into(),
                schema_version: 1,
                payload: serde_json::json!({
                    "data_keys": rotation.data_keys, "ledger_keys": rotation.ledger_keys,
                    "key_check": &new.check_value()[..16],
                }),
                metadata: eventstore::Metadata::system("cli"),
                data_subject: None,
            };
            let rotated = EventStore::new(&db, new.clone(), Upcasters::default());
            rotated.append("system-keys", eventstore::ExpectedVersion::Any, vec![event]).await?;
            if std::env::var("IC_MASTER_KEY").is_err() {
                // The local key file follows the database.
                std::fs::write(cli.data_dir.join("master.key"), new.to_base64())?;
            }
            println!(
                "Re-wrapped {} data keys and {} ledger key(s) under the new master key. Start every server and command with IC_MASTER_KEY set to it.",
                rotation.data_keys, rotation.ledger_keys
            );
            Ok(0)
        }
        Command::Audit { command: AuditCommand::VerifyBundle { dir, trusted_head, public_key } } => {
            // No database: this is what an outside auditor runs on their own machine.
            let trusted = match trusted_head {
                None => None,
                Some(p) => match std::fs::read_to_string(p) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        eprintln!("error: cannot read the trusted head {}: {e}", p.display());
                        return Ok(2);
                    }
                },
            };
            match eventstore::bundle::verify_bundle(dir, trusted.as_deref(), public_key.as_deref()) {
                Ok(eventstore::bundle::BundleVerdict::Verified { events, heads }) => {
                    println!(
                        "OK: {events} events, every hash chain intact; {heads} signed heads verified{}",
                        if trusted.is_some() { "; the log extends the trusted head" } else { "" }
                    );
                    Ok(0)
                }
                Ok(eventstore::bundle::BundleVerdict::Broken(what)) => {
                    println!("BROKEN: {what}");
                    Ok(1)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(2)
                }
            }
        }
        Command::Audit { command: AuditCommand::Bundle { out } } => {
            let (db, store) = open(&cli).await?;
            let ledger = eventstore::ledger::Ledger::new(&db, store.master_key());
            let (events, heads) = eventstore::bundle::write_bundle(&db, &ledger, out).await?;
            println!("wrote {events} events and {heads} signed heads to {}", out.display());
            Ok(0)
        }
        Command::Audit { command: AuditCommand::Export { store: store_id, from, to, out } } => {
            use std::io::Write;
            // Read-only and straight from the log (the same fold as the audit read model), so
            // the export is complete whether or not a server has projected everything.
            let (db, store) = open_read_only(&cli).await?;
            let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
            let mut memos: std::collections::HashMap<String, projections::audit::Memo> = Default::default();
            let (mut after, mut n) = (Position::START, 0u64);
            loop {
                let page = db.backend().read_committed(after, 1000).await?;
                let Some(last) = page.last() else { break };
                after = last.position;
                for e in store.open_batch(page).await? {
                    if e.store_id != *store_id {
                        continue;
                    }
                    let memo = memos.entry(e.stream_id.clone()).or_default();
                    let (r, next) = projections::audit::entry(&e, memo);
                    *memo = next;
                    let at = e.recorded_at;
                    if from.is_some_and(|f| at < f) || to.is_some_and(|t| at >= t) {
                        continue;
                    }
                    let line = serde_json::json!({
                        "eventId": r.event_id, "position": format!("{}.{}", r.commit_pos, r.seq_pos),
                        "recordedAt": at,
                        "actor": {"kind": r.actor_kind, "id": r.actor_id, "role": r.actor_role},
                        "eventType": r.event_type, "summary": r.summary,
                        "entity": {"type": r.entity_type, "id": r.entity_id, "label": r.entity_label},
                        "streamId": r.stream_id, "streamVersion": r.stream_version, "reason": r.reason,
                        "correlationId": r.correlation_id, "causationId": r.causation_id, "requestId": r.request_id,
                        "changes": r.changes,
                    });
                    writeln!(file, "{line}")?;
                    n += 1;
                }
            }
            file.flush()?;
            println!("wrote {n} audit entries to {}", out.display());
            Ok(0)
        }
        Command::Ledger { command } => {
            let (db, store) = open(&cli).await?;
            let ledger = eventstore::ledger::Ledger::new(&db, store.master_key());
            match command {
                LedgerCommand::Key => println!("{}", ledger.signer().await?.verifier_key()),
                LedgerCommand::Seal { out } => {
                    let head = ledger.seal_all(Duration::from_secs(30)).await?;
                    match out {
                        Some(path) => {
                            std::fs::write(path, &head.checkpoint)?;
                            eprintln!("sealed {} events; checkpoint written to {}", head.tree_size, path.display());
                        }
                        None => print!("{}", head.checkpoint),
                    }
                }
            }
            Ok(0)
        }
        Command::Staff { command: StaffCommand::ResetPassword { email, store: store_filter } } => {
            let (db, store) = open(&cli).await?;
            let read = ReadDb::new(&db);
            projections::catch_up_all(&read, &store).await?;
            let members: Vec<_> = read
                .staff_by_email(email)
                .await?
                .into_iter()
                .filter(|m| store_filter.is_none_or(|s| s == m.store_id))
                .collect();
            let member = match members.as_slice() {
                [] => {
                    eprintln!(
                        "error: no staff member with that email{}",
                        if store_filter.is_some() { " in that store" } else { "" }
                    );
                    return Ok(2);
                }
                [one] => one.clone(),
                several => {
                    eprintln!("error: that email is staff of several stores; choose one with --store:");
                    for m in several {
                        eprintln!("  {}", m.store_id);
                    }
                    return Ok(2);
                }
            };
            let accounts = eventstore::Accounts::new(&db);
            let ctx = commands::CommandContext::system(domain::StoreId::from_uuid(member.store_id), "cli");
            let by = domain::store::RosterActor::System;
            let user = domain::UserId::from_uuid(member.user_id);
            match commands::staff::issue_password_reset(&store, &accounts, &ctx, by, user).await {
                Ok((token, expires_at, _)) => {
                    println!("{token}");
                    eprintln!(
                        "One-time reset token for staff member {} (valid until {expires_at}). The member sets a new \
                         password with the resetPassword mutation.",
                        member.user_id
                    );
                    Ok(0)
                }
                Err(commands::CommandError::Rejected(e)) => {
                    eprintln!("error: {e}");
                    Ok(2)
                }
                Err(e) => Err(e.into()),
            }
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
    let total = store.count_after(Position::START).await?;
    read.reset(kind).await?;
    let mut runner = Runner::new(kind, read, store).await?;
    let mut done = 0u64;
    let mut idle = 0;
    while done < total && idle < 100 {
        let n = runner.run_batch().await? as u64;
        if n == 0 {
            idle += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        done += n;
        let pct = (done * 100).checked_div(total).unwrap_or(100).min(100);
        let bar = "#".repeat((pct / 5) as usize);
        eprint!("\r{:<10} [{bar:<20}] {pct:>3}% ({done}/{total})", kind.name());
    }
    eprintln!("\r{:<10} [{:<20}] 100% ({done}/{total}) rebuilt", kind.name(), "#".repeat(20));
    Ok(())
}
