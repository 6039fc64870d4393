//! Test databases: each test gets its own uniquely named PostgreSQL database (dropped when the
//! handle drops, even on panic) or its own SQLite file. Nothing else on the server is touched.
//!
//! PostgreSQL suites need a server at `IC_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Without one they skip with a message, unless
//! `CI=true` or `IC_REQUIRE_POSTGRES=1`, where a missing server fails the test.

use sqlx::Connection;
use std::path::PathBuf;
use uuid::Uuid;

pub fn postgres_admin_url() -> String {
    std::env::var("IC_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn postgres_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true") || std::env::var("IC_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// A throwaway database; removed on drop.
pub struct TestDatabase {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Postgres { name: String },
    Sqlite { path: PathBuf },
}

impl TestDatabase {
    pub fn sqlite() -> Self {
        let path = std::env::temp_dir().join(format!("ic-test-{}.db", Uuid::new_v4().simple()));
        Self { url: format!("sqlite://{}", path.display()), cleanup: Cleanup::Sqlite { path } }
    }

    /// A fresh PostgreSQL database, or `None` (with a message) when no server is reachable and
    /// PostgreSQL is not required.
    pub async fn postgres() -> Option<Self> {
        let admin = postgres_admin_url();
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(c) => c,
            Err(e) if !postgres_required() => {
                eprintln!("SKIPPED PostgreSQL test: no server at {admin} ({e})");
                return None;
            }
            Err(e) => panic!("PostgreSQL is required (CI=true) but not reachable at {admin}: {e}"),
        };
        let name = format!("ic_test_{}", Uuid::new_v4().simple());
        sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
        let _ = conn.close().await;
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b).to_owned();
        Some(Self { url: format!("{base}/{name}"), cleanup: Cleanup::Postgres { name } })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Sqlite { path } => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Postgres { name } => {
                let name = name.clone();
                // Drop may run inside a runtime (or during a panic): use a thread of its own.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                    rt.block_on(async {
                        let mut conn = sqlx::PgConnection::connect(&postgres_admin_url()).await.ok()?;
                        sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut conn)
                            .await
                            .ok()
                    })
                })
                .join();
            }
        }
    }
}

/// Instantiates each listed `async fn name(&TestDatabase)` once per backend, as `sqlite::name`
/// and `postgres::name` (the latter skipped without a server, unless PostgreSQL is required):
/// one contract suite, run against both.
#[macro_export]
macro_rules! backend_contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                super::$name(&$crate::testing::TestDatabase::sqlite()).await
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let Some(db) = $crate::testing::TestDatabase::postgres().await else { return };
                super::$name(&db).await
            })*
        }
    };
}

/// Where any of `needles` is still stored in plaintext: for SQLite, the bytes of the database
/// file and its WAL (read as they are on disk, nothing checkpointed first); for PostgreSQL,
/// every row of every table of the public schema cast to text. Each hit reads
/// `"<file or table>: <needle>"`.
pub async fn plaintext_left(url: &str, needles: &[&str]) -> Vec<String> {
    let mut hits = Vec::new();
    if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        for suffix in ["", "-wal"] {
            let file = format!("{path}{suffix}");
            let Ok(bytes) = std::fs::read(&file) else { continue };
            for needle in needles {
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    hits.push(format!("{file}: {needle}"));
                }
            }
        }
        return hits;
    }
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect for the plaintext scan");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(!tables.is_empty(), "no tables to scan");
    for table in tables {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("SELECT t::text FROM \"{table}\" t")).fetch_all(&mut conn).await.unwrap();
        for needle in needles {
            if rows.iter().any(|r| r.contains(needle)) {
                hits.push(format!("{table}: {needle}"));
            }
        }
    }
    let _ = conn.close().await;
    hits
}
