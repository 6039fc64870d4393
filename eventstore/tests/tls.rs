//! PostgreSQL over TLS (sqlx with rustls): `sslmode=require` encrypts, `verify-full` also checks
//! the server's certificate and name. Tested against the local server, whose certificate is
//! Debian's self-signed snakeoil one for `localhost`.

use eventstore::testing::TestDatabase;
use eventstore::Database;

const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

async fn encrypted(db: &Database) -> bool {
    let Database::Postgres(b) = db else { panic!("PostgreSQL") };
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetch_one(b.pool()).await.unwrap()
}

#[tokio::test]
async fn postgres_connections_use_tls_when_the_url_asks_for_it() {
    let Some(tdb) = TestDatabase::postgres().await else { return };
    let plain = Database::connect(&tdb.url).await.unwrap();
    let sep = if tdb.url.contains('?') { '&' } else { '?' };
    let required = Database::connect(&format!("{}{sep}sslmode=require", tdb.url)).await.unwrap();
    assert!(encrypted(&required).await, "sslmode=require encrypts");
    // verify-full: the certificate must chain to the given root and name the host.
    let local = tdb.url.replacen("127.0.0.1", "localhost", 1);
    let verified = Database::connect(&format!("{local}{sep}sslmode=verify-full&sslrootcert={SNAKEOIL}")).await.unwrap();
    assert!(encrypted(&verified).await);
    let wrong_name = format!("{}{sep}sslmode=verify-full&sslrootcert={SNAKEOIL}", tdb.url);
    assert!(Database::connect(&wrong_name).await.is_err(), "the certificate names localhost, not 127.0.0.1");
    drop((plain, required, verified));
}
