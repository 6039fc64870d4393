//! `certificate export` and `certificate verify`: deletion certificates for compliance staff and
//! for whoever they hand one to.

use super::*;
use crate::certificates::{deletion_certificate, CertificateError};
use ledger::certificate::{verify as verify_offline, CertificateProblem, Verified};

#[derive(Subcommand, Debug)]
pub enum CertificateCommand {
    /// Write the signed deletion certificate of a completed erasure request (the same file
    /// `deletionCertificate` returns).
    Export {
        #[arg(long)]
        request: uuid::Uuid,
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a certificate offline: its signature and every inclusion proof. With
    /// `--database-url` (or `IC_DATABASE_URL`), also that the keys it names are destroyed, its
    /// events are in the store's ledger, and nothing of the subject is readable. Exit 0 valid,
    /// 1 invalid, 2 could not check.
    Verify {
        file: PathBuf,
        /// The ledger's verifier key to trust (see `ledger key`); without it the certificate
        /// is only checked against the key it names.
        #[arg(long)]
        public_key: Option<String>,
    },
}

pub(super) async fn run(cli: &Cli, command: &CertificateCommand) -> Result<i32> {
    match command {
        CertificateCommand::Export { request, out } => export(cli, *request, out).await,
        CertificateCommand::Verify { file, public_key } => verify(cli, file, public_key.as_deref()).await,
    }
}

async fn export(cli: &Cli, request: uuid::Uuid, out: &Path) -> Result<i32> {
    if out.exists() {
        eprintln!("error: {} exists; an export never overwrites a file", out.display());
        return Ok(2);
    }
    let (db, store) = open_read_only(cli).await?;
    let Some(first) = store.read_stream(&format!("privacy_request-{request}"), 0).await?.into_iter().next() else {
        eprintln!("error: no privacy request {request}");
        return Ok(2);
    };
    let ledger = eventstore::ledger::Ledger::new(&db, store.master_key());
    let read = ReadDb::new(&db);
    match deletion_certificate(&store, &read, &ledger, first.store_id, request).await {
        Ok(text) => {
            std::fs::write(out, text)?;
            println!("certificate written to {}", out.display());
            Ok(0)
        }
        Err(e @ (CertificateError::NotFound | CertificateError::NotCompleted | CertificateError::NotSealed)) => {
            eprintln!("error: {e}");
            Ok(2)
        }
        Err(e) => Err(e.into()),
    }
}

async fn verify(cli: &Cli, file: &Path, public_key: Option<&str>) -> Result<i32> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return Ok(2);
        }
    };
    let verified = match verify_offline(&text, public_key) {
        Ok(v) => v,
        Err(CertificateProblem::Malformed(why)) => {
            println!("INVALID: not a deletion certificate: {why}");
            return Ok(1);
        }
        Err(problem) => {
            println!("INVALID: {problem}");
            return Ok(1);
        }
    };
    if public_key.is_none() {
        eprintln!("note: checked against the key the certificate names; pass --public-key to pin the store's key");
    }
    let mut report = format!(
        "OK: certificate {} verified: signature, tree head of size {}, {} inclusion proof(s)",
        verified.certificate_id,
        verified.tree_size,
        verified.events.len()
    );
    if cli.database_url.is_some() {
        let (db, store) = open_read_only(cli).await?;
        if let Err(problem) = against_database(&db, &store, &verified).await? {
            println!("INVALID: {problem}");
            return Ok(1);
        }
        report.push_str("; in the database: keys destroyed, events in the ledger, nothing of the subject readable");
    }
    println!("{report}");
    Ok(0)
}

/// The database's side of a certificate: `Err(problem)` when it contradicts it.
async fn against_database(db: &Database, store: &EventStore, v: &Verified) -> Result<std::result::Result<(), String>> {
    let parse = |s: &str| uuid::Uuid::parse_str(s).map_err(|_| format!("{s} is not an id"));
    let (store_id, subject) = match (parse(&v.store_id), parse(&v.subject_id)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
    };
    let keys = store.subject_keys(store_id, subject).await?;
    for (class, key_id, fingerprint) in &v.keys {
        match keys.iter().find(|k| k.key_id.to_string() == *key_id) {
            None => return Ok(Err(format!("the {class} key {key_id} is not in the key store"))),
            Some(k) if k.wrapped.is_some() => return Ok(Err(format!("the {class} key {key_id} is not destroyed"))),
            Some(k) if k.fingerprint != *fingerprint => {
                return Ok(Err(format!("the {class} key {key_id} has another fingerprint")))
            }
            Some(_) => {}
        }
    }
    for k in &keys {
        if domain::privacy::ERASED_NOW.contains(&k.class) && k.wrapped.is_some() {
            return Ok(Err(format!("a live {} key of the subject exists", k.class.as_str())));
        }
    }
    let ledger = eventstore::ledger::Ledger::new(db, store.master_key());
    for (event_id, index, leaf) in &v.events {
        let id = match parse(event_id) {
            Ok(id) => id,
            Err(e) => return Ok(Err(e)),
        };
        match ledger.inclusion_proof(id, v.tree_size).await? {
            Some(p) if p.leaf_index == *index && p.leaf_hash == *leaf => {}
            _ => return Ok(Err(format!("event {event_id} is not in this store's ledger as the certificate says"))),
        }
    }
    // Nothing of the subject is readable: the read model row is purged, and no personal field
    // of their streams opens.
    let read = ReadDb::new(db);
    if let Some(row) = read.customer(store_id, subject).await? {
        let personal = [&row.name, &row.email, &row.phone, &row.notes, &row.address].iter().any(|f| f.is_some())
            || row.birthday.is_some()
            || !row.tags.is_empty()
            || !row.external_ids.is_empty();
        if personal || !row.erased {
            return Ok(Err("the customer's read-model row still holds personal data".into()));
        }
    }
    for stream in [format!("customer-{subject}"), format!("consent-{subject}")] {
        for e in store.read_stream(&stream, 0).await? {
            if opens(&e.payload) {
                return Ok(Err(format!("a personal field of {stream} still decrypts")));
            }
        }
    }
    Ok(Ok(()))
}

/// Whether any personal field of a payload (other than under the legal-hold key) is readable.
fn opens(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Object(o) => match o.get(domain::pii::PII_MARKER) {
            Some(m) => m.get("value").is_some() && m.get("class").and_then(|c| c.as_str()) != Some("legal_hold"),
            None => o.values().any(opens),
        },
        serde_json::Value::Array(a) => a.iter().any(opens),
        _ => false,
    }
}
