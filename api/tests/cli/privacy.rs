//! Erasure survives restores: a backup taken before an erasure, restored with `restore` or put
//! back by hand and served, does not bring the subject back — their keys are destroyed again,
//! their rows purged and no plaintext is left, before the first request is answered.

use super::server::Server;
use super::{another, cli_at, stderr, stdout, temp_dir, KEY};
use eventstore::testing::{plaintext_left, TestDatabase};
use serde_json::json;

const SECRETS: [&str; 3] = ["Ottoline Restorova", "ottoline.restorova@example.test", "met at the Restorova auction"];

/// Puts a backup in place without the CLI (a copy of the file, or `pg_restore`).
fn put_back(backup: &std::path::Path, target: &TestDatabase) {
    if let Some(path) = target.url.strip_prefix("sqlite://") {
        std::fs::copy(backup, path).unwrap();
    } else {
        let status = std::process::Command::new("pg_restore")
            .args(["--no-owner", "--exit-on-error", "--dbname", &target.url])
            .arg(backup)
            .status()
            .expect("pg_restore runs");
        assert!(status.success());
    }
}

async fn reads_as_erased(url: &str, dir: &std::path::Path, customer: &str) {
    let server = Server::start_in(url, dir.to_path_buf(), &[]).await;
    let token = server.login().await;
    let r = server
        .gql(&token, "query($id: ID!) { customer(id: $id) { erased name email notes } }", json!({"id": customer}))
        .await;
    assert_eq!(r["data"]["customer"], json!({"erased": true, "name": null, "email": null, "notes": null}), "{r}");
    server.stop().await;
}

pub(super) async fn a_backup_older_than_an_erasure_never_brings_the_subject_back(tdb: &TestDatabase) {
    let dir = temp_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let server = Server::start_in(&tdb.url, dir.clone(), &[]).await;
    let token = server.login().await;
    let created = server
        .gql(
            &token,
            "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } position } }",
            json!({"i": {"name": SECRETS[0], "email": SECRETS[1], "notes": SECRETS[2]}}),
        )
        .await;
    let customer = created["data"]["createCustomer"]["customer"]["id"].as_str().unwrap_or_else(|| panic!("{created}"));
    // Wait until the read model holds the customer, so the backup has their row too.
    let p = created["data"]["createCustomer"]["position"].as_str().unwrap();
    let seen = server
        .gql(
            &token,
            "query($id: ID!, $p: String) { customer(id: $id, minPosition: $p) { name } }",
            json!({"id": customer, "p": p}),
        )
        .await;
    assert_eq!(seen["data"]["customer"]["name"], SECRETS[0], "{seen}");

    let backup = dir.join("before-erasure.backup");
    let out = cli_at(&tdb.url, &dir, Some(KEY), &["backup", "--out", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));

    let erased = server
        .gql(
            &token,
            "mutation($c: ID!) { requestErasure(input: {customerId: $c, reason: \"subject request\"}) { erasureRequest { status } errors { code } } }",
            json!({"c": customer}),
        )
        .await;
    assert_eq!(erased["data"]["requestErasure"]["erasureRequest"]["status"], "COMPLETED", "{erased}");
    server.stop().await;
    let ledger = std::fs::read_to_string(dir.join("erasure-ledger.jsonl")).unwrap();
    assert_eq!(ledger.lines().count(), 1, "one erasure recorded outside the database");
    for s in SECRETS {
        assert!(!ledger.contains(s), "the erasure ledger holds ids only");
    }

    // 1. `restore` into an empty target re-applies the erasure before it reports success.
    let restored = another(tdb).await;
    let out = cli_at(&restored.url, &dir, Some(KEY), &["restore", backup.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 erasure(s) re-applied"), "{}", stdout(&out));
    let left = plaintext_left(&restored.url, &SECRETS).await;
    assert!(left.is_empty(), "plaintext in the restored copy: {left:?}");
    reads_as_erased(&restored.url, &dir, customer).await;

    // 2. The old copy put back by hand: the server re-applies it at startup.
    let put = another(tdb).await;
    put_back(&backup, &put);
    assert!(!plaintext_left(&put.url, &SECRETS).await.is_empty(), "the old copy holds the subject");
    reads_as_erased(&put.url, &dir, customer).await;
    let left = plaintext_left(&put.url, &SECRETS).await;
    assert!(left.is_empty(), "plaintext after serving the old copy: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The binary with no database at all (offline checks).
fn offline(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_inventory-connect"))
        .args(["--data-dir", temp_dir().to_str().unwrap()])
        .args(args)
        .env_remove("IC_DATABASE_URL")
        .env_remove("IC_MASTER_KEY")
        .output()
        .unwrap()
}

pub(super) async fn a_certificate_from_the_cli_is_the_api_document_and_verifies_offline(tdb: &TestDatabase) {
    let dir = temp_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let server = Server::start_in(&tdb.url, dir.clone(), &[]).await;
    let token = server.login().await;
    let created = server
        .gql(&token, "mutation { createCustomer(input: {name: \"Certa Fied\"}) { customer { id } } }", json!({}))
        .await;
    let customer = created["data"]["createCustomer"]["customer"]["id"].as_str().unwrap().to_owned();
    let erased = server
        .gql(
            &token,
            "mutation($c: ID!) { requestErasure(input: {customerId: $c, reason: \"subject request\"}) { erasureRequest { id } } }",
            json!({"c": customer}),
        )
        .await;
    let request = erased["data"]["requestErasure"]["erasureRequest"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{erased}"))
        .to_owned();
    let r = server
        .gql(
            &token,
            "query($r: ID!) { deletionCertificate(requestId: $r) { document } ledgerPublicKey }",
            json!({"r": request}),
        )
        .await;
    let document = r["data"]["deletionCertificate"]["document"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let key = r["data"]["ledgerPublicKey"].as_str().unwrap().to_owned();
    server.stop().await;

    let file = dir.join("certificate.json");
    let out = cli_at(
        &tdb.url,
        &dir,
        Some(KEY),
        &["certificate", "export", "--request", &request, "--out", file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), document, "the CLI writes the API's document");
    let path = file.to_str().unwrap();

    let ok = offline(&["certificate", "verify", path, "--public-key", &key]);
    assert_eq!(ok.status.code(), Some(0), "{}{}", stdout(&ok), stderr(&ok));
    assert!(stdout(&ok).starts_with("OK: certificate"), "{}", stdout(&ok));
    let with_db = cli_at(&tdb.url, &dir, Some(KEY), &["certificate", "verify", path, "--public-key", &key]);
    assert_eq!(with_db.status.code(), Some(0), "{}{}", stdout(&with_db), stderr(&with_db));
    assert!(stdout(&with_db).contains("keys destroyed"), "{}", stdout(&with_db));

    // Any byte changed fails; so does another key; a missing file cannot be checked.
    let altered = dir.join("altered.json");
    let subject_pos = document.find(&customer).unwrap();
    let mut bytes = document.clone().into_bytes();
    bytes[subject_pos] = if bytes[subject_pos] == b'0' { b'1' } else { b'0' };
    std::fs::write(&altered, bytes).unwrap();
    let bad = offline(&["certificate", "verify", altered.to_str().unwrap(), "--public-key", &key]);
    assert_eq!(bad.status.code(), Some(1), "{}", stdout(&bad));
    assert!(stdout(&bad).starts_with("INVALID"), "{}", stdout(&bad));
    let other_key = key.replace(&key[key.len() - 8..key.len() - 1], "AAAAAAA");
    let wrong = offline(&["certificate", "verify", path, "--public-key", &other_key]);
    assert_eq!(wrong.status.code(), Some(1), "{}", stdout(&wrong));
    let missing = offline(&["certificate", "verify", dir.join("nope.json").to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(2));
    let unknown = cli_at(
        &tdb.url,
        &dir,
        Some(KEY),
        &[
            "certificate",
            "export",
            "--request",
            &uuid::Uuid::now_v7().to_string(),
            "--out",
            dir.join("x.json").to_str().unwrap(),
        ],
    );
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr(&unknown));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The compliance officer's whole job, through GraphQL and the CLI only: capture a customer
/// with consent, sell them a watch, withdraw consent, open an erasure request, erase, then prove
/// the consent history as of three instants, verify the certificate offline, show no plaintext
/// remains, that the invoice is kept with its legal basis and date, that an old backup restored
/// does not bring the subject back, and that the marketing audience never listed them after
/// the withdrawal.
pub(super) async fn a_compliance_officer_proves_an_erasure_end_to_end(tdb: &TestDatabase) {
    const SECRETS: [&str; 4] =
        ["Theodora Complyworth", "theodora.complyworth@example.test", "+44 20 7946 0321", "prefers Complyworth straps"];
    let dir = temp_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let server = Server::start_in(&tdb.url, dir.clone(), &[]).await;
    let owner = server.login().await;
    let gql = |token: &str, q: &str, v: serde_json::Value| {
        let (server, token, q) = (&server, token.to_owned(), q.to_owned());
        async move { server.gql(&token, &q, v).await }
    };

    // A compliance officer joins.
    let invited = gql(&owner, "mutation { inviteStaff(input: {email: \"dpo@shop.test\", name: \"Dee Pio\", role: COMPLIANCE}) { invitationToken } }", json!({})).await;
    let invitation =
        invited["data"]["inviteStaff"]["invitationToken"].as_str().unwrap_or_else(|| panic!("{invited}")).to_owned();
    let joined = server
        .graphql(json!({"query": "mutation($t: String!) { acceptInvitation(input: {invitationToken: $t, password: \"officer-password-2026\"}) { token } }", "variables": {"t": invitation}}))
        .send().await.unwrap().json::<serde_json::Value>().await.unwrap();
    let officer = joined["data"]["acceptInvitation"]["token"].as_str().unwrap_or_else(|| panic!("{joined}")).to_owned();

    // Capture with consent; sell a watch with the buyer's identity on the invoice.
    let c = gql(
        &owner,
        "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } } }",
        json!({"i": {"name": SECRETS[0], "email": SECRETS[1], "phone": SECRETS[2], "notes": SECRETS[3]}}),
    )
    .await;
    let customer = c["data"]["createCustomer"]["customer"]["id"].as_str().unwrap_or_else(|| panic!("{c}")).to_owned();
    let consent = "mutation($i: ConsentInput!, $g: Boolean!) { grantConsent(input: $i) @include(if: $g) { position errors { code } } withdrawConsent(input: $i) @skip(if: $g) { position errors { code } } }";
    let input = |at: &str| json!({"customerId": customer, "purpose": "MARKETING_EMAIL", "channel": "EMAIL", "noticeVersion": "2026-01", "method": "IN_STORE", "effectiveAt": at});
    let g = gql(&owner, consent, json!({"i": input("2026-01-10T10:00:00Z"), "g": true})).await;
    assert_eq!(g["data"]["grantConsent"]["errors"], json!([]), "{g}");
    let item = gql(&owner, "mutation { acquireItem(input: {category: WATCH, brand: \"Omega\", model: \"Speedmaster\", cost: {amount: \"5000.00\", currency: \"USD\"}, askingPrice: {amount: \"6400.00\", currency: \"USD\"}, acquisition: {source: PURCHASE}, vendor: \"Chrono Dealers Ltd\"}) { item { id } errors { field code message } } }", json!({})).await;
    let item = item["data"]["acquireItem"]["item"]["id"].as_str().unwrap_or_else(|| panic!("{item}")).to_owned();
    let sale = gql(&owner, "mutation($c: ID, $i: ID!, $n: String) { createSale(input: {customerId: $c, lines: [{itemId: $i, price: {amount: \"6400.00\", currency: \"USD\"}}], buyerName: $n}) { sale { id } } }",
        json!({"c": customer, "i": item, "n": SECRETS[0]})).await;
    let sale = sale["data"]["createSale"]["sale"]["id"].as_str().unwrap_or_else(|| panic!("{sale}")).to_owned();
    let confirmed = gql(
        &owner,
        "mutation($s: ID!) { confirmSale(input: {saleId: $s}) { sale { invoiceNumber } } }",
        json!({"s": sale}),
    )
    .await;
    let invoice = confirmed["data"]["confirmSale"]["sale"]["invoiceNumber"].clone();
    assert!(invoice.is_number(), "{confirmed}");

    // The nightly backup, before anything is withdrawn or erased.
    let backup = dir.join("nightly.backup");
    let out = cli_at(&tdb.url, &dir, Some(KEY), &["backup", "--out", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));

    let w = gql(&owner, consent, json!({"i": input("2026-02-10T10:00:00Z"), "g": false})).await;
    let min = w["data"]["withdrawConsent"]["position"].as_str().unwrap_or_else(|| panic!("{w}")).to_owned();
    let audience = |at: &'static str| {
        let (gql, officer, min) = (&gql, officer.clone(), min.clone());
        async move {
            let r = gql(&officer, "query($at: DateTime, $m: String) { marketingAudience(purpose: MARKETING_EMAIL, channel: EMAIL, asOf: $at, minPosition: $m) { nodes { customerId } } }", json!({"at": at, "m": min})).await;
            r["data"]["marketingAudience"]["nodes"]
                .as_array()
                .unwrap_or_else(|| panic!("{r}"))
                .iter()
                .map(|n| n["customerId"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert!(audience("2026-01-20T00:00:00Z").await.contains(&customer), "listed while consent was in force");
    assert!(!audience("2026-02-10T10:00:00Z").await.contains(&customer), "not from the withdrawal on");

    // The case and the erasure.
    let opened = gql(&officer, "mutation($c: ID!) { openPrivacyRequest(input: {customerId: $c, kind: ERASURE, receivedVia: EMAIL, identityVerifiedBy: \"reply from the address on file\"}) { privacyRequest { id dueAt } errors { code } } }", json!({"c": customer})).await;
    let request = opened["data"]["openPrivacyRequest"]["privacyRequest"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{opened}"))
        .to_owned();
    let erased = gql(&officer, "mutation($c: ID!, $r: ID) { requestErasure(input: {customerId: $c, reason: \"data subject request\", privacyRequestId: $r}) { erasureRequest { status } errors { code } } }", json!({"c": customer, "r": request})).await;
    assert_eq!(erased["data"]["requestErasure"]["erasureRequest"]["status"], "COMPLETED", "{erased}");

    // The consent history as of three instants.
    for (at, expected) in
        [("2026-01-01T00:00:00Z", None), ("2026-01-20T00:00:00Z", Some(true)), ("2026-03-01T00:00:00Z", Some(false))]
    {
        let l = gql(&officer, "query($c: ID!, $at: DateTime) { consentLedger(customerId: $c, asOf: $at) { current { purpose granted } changes { kind evidence { erased } } } }", json!({"c": customer, "at": at})).await;
        let current = l["data"]["consentLedger"]["current"]
            .as_array()
            .unwrap_or_else(|| panic!("{l}"))
            .first()
            .map(|s| s["granted"].as_bool().unwrap());
        assert_eq!(current, expected, "as of {at}: {l}");
        assert_eq!(l["data"]["consentLedger"]["changes"].as_array().unwrap().len(), 2, "every change is kept");
    }

    // The certificate: exported by the CLI, the same as the API's, verified offline.
    let r = gql(
        &officer,
        "query($r: ID!) { deletionCertificate(requestId: $r) { document } ledgerPublicKey }",
        json!({"r": request}),
    )
    .await;
    let document = r["data"]["deletionCertificate"]["document"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let key = r["data"]["ledgerPublicKey"].as_str().unwrap().to_owned();
    let file = dir.join("certificate.json");
    let out = cli_at(
        &tdb.url,
        &dir,
        Some(KEY),
        &["certificate", "export", "--request", &request, "--out", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), document);
    let ok = offline(&["certificate", "verify", file.to_str().unwrap(), "--public-key", &key]);
    assert_eq!(ok.status.code(), Some(0), "{}{}", stdout(&ok), stderr(&ok));
    // The invoice is kept, with its legal basis and until when.
    let cert: serde_json::Value = serde_json::from_str(&document).unwrap();
    let kept = cert["retained"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["what"].as_str().unwrap().contains("sale"))
        .cloned()
        .unwrap_or_else(|| panic!("{document}"));
    assert!(kept["legal_basis"].as_str().unwrap().contains("tax") && kept["until"].is_string(), "{kept}");
    let s = gql(&officer, "query($s: ID!) { sale(id: $s) { invoiceNumber buyerName } }", json!({"s": sale})).await;
    assert_eq!(s["data"]["sale"], json!({"invoiceNumber": invoice, "buyerName": SECRETS[0]}), "{s}");
    // No plaintext left of what was erased (the invoice's buyer name is under legal hold, so
    // only the other values are looked for).
    let left = plaintext_left(&tdb.url, &SECRETS[1..]).await;
    assert!(left.is_empty(), "plaintext left: {left:?}");
    assert!(audience("2026-01-20T00:00:00Z").await.is_empty(), "an erased customer is never listed again");
    server.stop().await;

    // The old backup, restored, does not bring them back.
    let restored = another(tdb).await;
    let out = cli_at(&restored.url, &dir, Some(KEY), &["restore", backup.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 erasure(s) re-applied"), "{}", stdout(&out));
    let left = plaintext_left(&restored.url, &SECRETS[1..]).await;
    assert!(left.is_empty(), "plaintext in the restored copy: {left:?}");
    reads_as_erased(&restored.url, &dir, &customer).await;
    let _ = std::fs::remove_dir_all(&dir);
}
