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
    },
    /// Manage stores (tenants).
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Re-check the whole log (every stream's hash chain); exits non-zero at the first break.
    Verify,
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
        /// The owner's password (at least 10 characters).
        #[arg(long, env = "IC_OWNER_PASSWORD")]
        owner_password: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ProjectionsCommand {
    /// Each projection's checkpoint and how many events it is behind.
    Status,
    /// Empty a projection (or all) and replay it from the start of the log.
    Rebuild {
        /// One of: directory, inventory, customers, sales. All when omitted.
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

/// `IC_MASTER_KEY` (base64, 32 bytes), or a key generated into the data directory for local use.
pub fn master_key(data_dir: &Path) -> Result<MasterKey> {
    if let Ok(b64) = std::env::var("IC_MASTER_KEY") {
        return Ok(MasterKey::from_base64(&b64)?);
    }
    let path = data_dir.join("master.key");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        warn_local_key(&path);
        return Ok(MasterKey::from_base64(&existing)?);
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

async fn open(cli: &Cli) -> Result<(Database, EventStore)> {
    let url = cli.database_url()?;
    let key = master_key(&cli.data_dir)?;
    let db = Database::connect(&url).await?;
    let store = EventStore::new(&db, key, Upcasters::default());
    Ok((db, store))
}

/// Runs the CLI; returns the process exit code.
pub async fn run(cli: Cli) -> Result<i32> {
    match &cli.command {
        Command::Serve { listen, demo } => {
            let (db, store) = open(&cli).await?;
            let (stop, shutdown) = watch::channel(false);
            let state = AppState::start(db, store, shutdown.clone()).await?;
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
                let _ = tokio::signal::ctrl_c().await;
                let _ = stop.send(true);
            });
            app::serve(listener, state, shutdown).await?;
            Ok(0)
        }
        Command::Store { command: StoreCommand::Create { name, owner_email, owner_password } } => {
            let (db, store) = open(&cli).await?;
            match commands::stores::create_store(&store, "cli", name, owner_email, owner_password).await {
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
        Command::Verify => {
            let (_, store) = open(&cli).await?;
            let report = store.verify().await?;
            match report.broken {
                None => {
                    println!(
                        "OK: verified {} events in {} streams; head {}",
                        report.events, report.streams, report.head
                    );
                    Ok(0)
                }
                Some(broken) => {
                    println!("BROKEN at position {}: {broken}", broken.position());
                    println!("({} events before it verified)", report.events);
                    Ok(1)
                }
            }
        }
        Command::Projections { command } => {
            let (db, store) = open(&cli).await?;
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
                        Some(n) => match Kind::parse(n) {
                            Some(k) => vec![k],
                            None => {
                                eprintln!("unknown projection {n:?}; known: directory, inventory, customers, sales");
                                return Ok(2);
                            }
                        },
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
