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
    10 => "0010_privacy.sql",
    11 => "0011_marketing.sql",
    12 => "0012_item_indexes.sql",
    13 => "0013_customer_counts.sql",
    14 => "0014_sale_counts.sql",
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
    10 => "0010_privacy.sql",
    11 => "0011_marketing.sql",
    12 => "0012_item_indexes.sql",
    13 => "0013_customer_counts.sql",
    14 => "0014_sale_counts.sql",
);

pub(crate) const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL,
    checksum TEXT
)";

/// SHA-256 (hex) of a migration's SQL as this build embeds it.
pub(crate) fn checksum(m: &Migration) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(m.sql.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks what the database says was applied against what this build knows: a migration whose
/// text changed since it was applied, or a version this build does not know (a newer build
/// migrated the database), refuses to run. Returns the applied versions whose checksum was not
/// recorded yet (databases from before checksums), to be recorded now.
pub(crate) fn check_applied(
    known: &[Migration],
    applied: &[(i64, String, Option<String>)],
) -> crate::error::Result<Vec<(i64, String)>> {
    let mut backfill = Vec::new();
    for (version, name, sum) in applied {
        let Some(m) = known.iter().find(|m| m.version == *version) else {
            return Err(crate::error::StoreError::Config(format!(
                "the database was migrated by a newer version (migration {version} {name} is unknown to this build); run that version or newer"
            )));
        };
        let expected = checksum(m);
        match sum {
            Some(s) if *s != expected => {
                return Err(crate::error::StoreError::Config(format!(
                    "migration {version} ({name}) was changed after it was applied; refusing to run against a schema that may differ"
                )))
            }
            Some(_) => {}
            None => backfill.push((*version, expected)),
        }
    }
    Ok(backfill)
}
