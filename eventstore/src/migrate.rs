//! A small migration runner: numbered SQL files from `migrations/<backend>/`, embedded at build
//! time, applied in order, each in its own transaction, recorded in `schema_migrations`.
//! (sqlx's own migrator needs its macro crate; this keeps builds lean.)

pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migrations {
    ($dir:literal: $($version:literal => $file:literal),* $(,)?) => {
        &[$(Migration {
            version: $version,
            name: $file,
            sql: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations/", $dir, "/", $file)),
        }),*]
    };
}

pub(crate) const POSTGRES: &[Migration] = migrations!("postgres":
    1 => "0001_event_log.sql",
    2 => "0002_read_models.sql",
    3 => "0003_item_lifecycle.sql",
    4 => "0004_customer_profile.sql",
    5 => "0005_sale_salesperson.sql",
    6 => "0006_accounts.sql",
    7 => "0007_staff_directory.sql",
    8 => "0008_ledger.sql",
    9 => "0009_audit.sql",
);

pub(crate) const SQLITE: &[Migration] = migrations!("sqlite":
    1 => "0001_event_log.sql",
    2 => "0002_read_models.sql",
    3 => "0003_item_lifecycle.sql",
    4 => "0004_customer_profile.sql",
    5 => "0005_sale_salesperson.sql",
    6 => "0006_accounts.sql",
    7 => "0007_staff_directory.sql",
    8 => "0008_ledger.sql",
    9 => "0009_audit.sql",
);

pub(crate) const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";
