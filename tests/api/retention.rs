//! The retention job driven with an injected clock, on both backends: legal-hold identities end
//! seven years after the last sale, audit entries leave the read model after twelve months, and
//! a closed store's customers are erased after its 90-day export window. Each run is an event;
//! one server at a time runs it.

use super::TestApp;
use chrono::{DateTime, Duration, Months, Utc};
use domain::retention::RetentionEvent;
use domain::staff::Role;
use serde_json::{json, Value};

async fn run(app: &TestApp, store: uuid::Uuid, at: DateTime<Utc>) -> (usize, u64, usize) {
    let RetentionEvent::RetentionRun { legal_hold_destroyed, audit_entries_removed, profiles_shredded, .. } =
        api::retention::run_store(&app.state, store, at).await.unwrap();
    (legal_hold_destroyed.len(), audit_entries_removed, profiles_shredded.len())
}

async fn audit_count(app: &TestApp, token: &str) -> i64 {
    let r = app.gql(Some(token), "{ auditTrail { totalCount } }", json!({})).await;
    r["data"]["auditTrail"]["totalCount"].as_i64().unwrap_or_else(|| panic!("{r}"))
}

async fn buyer_name(app: &TestApp, token: &str, sale: &str) -> Value {
    let r =
        app.gql(Some(token), "query($s: ID!) { sale(id: $s) { buyerName invoiceNumber } }", json!({"s": sale})).await;
    r["data"]["sale"].clone()
}

pub(crate) async fn retention_ends_holds_trims_the_audit_and_shreds_a_closed_store(app: TestApp) {
    let owner = app.owner().await;
    let compliance = app.staff(Role::Compliance).await;
    let store: uuid::Uuid = app.store_id(&owner).await.parse().unwrap();
    let c = app
        .gql(Some(&owner), "mutation { createCustomer(input: {name: \"Hold Ender\"}) { customer { id } } }", json!({}))
        .await;
    let customer = c["data"]["createCustomer"]["customer"]["id"].as_str().unwrap().to_owned();
    let other = app
        .gql(
            Some(&owner),
            "mutation { createCustomer(input: {name: \"Other Onlooker\"}) { customer { id } } }",
            json!({}),
        )
        .await;
    let other = other["data"]["createCustomer"]["customer"]["id"].as_str().unwrap().to_owned();
    let item = app.gql(Some(&owner), super::ACQUIRE, super::acquire_input("3000.00")).await;
    let item = item["data"]["acquireItem"]["item"]["id"].as_str().unwrap().to_owned();
    let sale = app
        .gql(
            Some(&owner),
            "mutation($c: ID, $i: ID!) { createSale(input: {customerId: $c, lines: [{itemId: $i, price: {amount: \"3000.00\", currency: \"USD\"}}], buyerName: \"Hold Ender\"}) { sale { id } } }",
            json!({"c": customer, "i": item}),
        )
        .await;
    let sale = sale["data"]["createSale"]["sale"]["id"].as_str().unwrap_or_else(|| panic!("{sale}")).to_owned();
    let done = app
        .gql(Some(&owner), "mutation($s: ID!) { confirmSale(input: {saleId: $s}) { position } }", json!({"s": sale}))
        .await;
    let p = done["data"]["confirmSale"]["position"].as_str().unwrap().parse().unwrap();
    app.state.projections.wait_for(p, std::time::Duration::from_secs(20)).await.unwrap();
    let now = Utc::now();

    let schedule = app
        .gql(Some(&compliance), "{ retentionSchedule { policy { legalHoldYears auditMonths closureExportDays } closedAt items { what customerId dueAt } } }", json!({}))
        .await;
    let s = &schedule["data"]["retentionSchedule"];
    assert_eq!(s["policy"], json!({"legalHoldYears": 7, "auditMonths": 12, "closureExportDays": 90}), "{schedule}");
    let hold = s["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["what"] == "LEGAL_HOLD_IDENTITY")
        .cloned()
        .unwrap_or_else(|| panic!("{schedule}"));
    assert_eq!(hold["customerId"], json!(customer));
    let due: DateTime<Utc> = hold["dueAt"].as_str().unwrap().parse().unwrap();
    assert!((due - (now + Months::new(84))).num_minutes().abs() < 10, "{hold}");

    // Within the windows nothing goes; past them, each thing goes once.
    assert_eq!(run(&app, store, now + Months::new(11)).await, (0, 0, 0));
    assert!(audit_count(&app, &owner).await > 0);
    let (_, removed, _) = run(&app, store, now + Months::new(13)).await;
    assert!(removed > 0, "entries older than 12 months leave the read model");
    // What is left was recorded after the cutoff: the retention runs themselves.
    let left = app.gql(Some(&owner), "{ auditTrail { nodes { eventType } } }", json!({})).await;
    let left = left["data"]["auditTrail"]["nodes"].as_array().unwrap().clone();
    assert!(!left.is_empty() && left.iter().all(|n| n["eventType"] == "RetentionRun"), "{left:?}");
    let (holds, _, shredded) = run(&app, store, now + Months::new(6 * 12)).await;
    assert_eq!((holds, shredded), (0, 0));
    assert_eq!(buyer_name(&app, &compliance, &sale).await["buyerName"], "Hold Ender", "still under legal hold");
    assert_eq!(run(&app, store, now + Months::new(7 * 12) + Duration::days(1)).await.0, 1);
    let after = buyer_name(&app, &compliance, &sale).await;
    assert_eq!((&after["buyerName"], after["invoiceNumber"].is_number()), (&Value::Null, true), "{after}");
    assert_eq!(run(&app, store, now + Months::new(7 * 12) + Duration::days(2)).await.0, 0, "idempotent");

    // Closing: 90 days to export, reopening within them, then every profile is shredded.
    let closed = app.gql(Some(&owner), "mutation { closeStore { closedAt errors { code } } }", json!({})).await;
    assert!(closed["data"]["closeStore"]["closedAt"].is_string(), "{closed}");
    let r = app.gql(Some(&compliance), "mutation { closeStore { closedAt } }", json!({})).await;
    assert_eq!(super::code(&r), "FORBIDDEN", "only an owner closes the store");
    assert_eq!(run(&app, store, now + Duration::days(89)).await.2, 0);
    let reopened = app.gql(Some(&owner), "mutation { reopenStore { closedAt errors { code } } }", json!({})).await;
    assert_eq!(reopened["data"]["reopenStore"], json!({"closedAt": null, "errors": []}), "{reopened}");
    assert_eq!(run(&app, store, now + Duration::days(91)).await.2, 0, "reopened: nothing shredded");
    app.gql(Some(&owner), "mutation { closeStore { closedAt } }", json!({})).await;
    let all = app.gql(Some(&owner), "{ customers { totalCount } }", json!({})).await;
    let all = all["data"]["customers"]["totalCount"].as_u64().unwrap() as usize;
    let (_, _, shredded) = run(&app, store, now + Duration::days(91)).await;
    assert!(all >= 2 && shredded == all, "every customer: {shredded} of {all}");
    let c = app.gql(Some(&owner), "query($id: ID!) { customer(id: $id) { erased name } }", json!({"id": other})).await;
    assert_eq!(c["data"]["customer"], json!({"erased": true, "name": null}), "{c}");
    let requests = app
        .gql(
            Some(&compliance),
            "{ privacyRequests(where: {kind: ERASURE}) { totalCount nodes { receivedVia status } } }",
            json!({}),
        )
        .await;
    let nodes = requests["data"]["privacyRequests"]["nodes"].as_array().unwrap();
    assert!(
        nodes.len() == all && nodes.iter().all(|n| n["receivedVia"] == "RETENTION" && n["status"] == "COMPLETED"),
        "{requests}"
    );
    assert_eq!(run(&app, store, now + Duration::days(92)).await.2, 0, "already erased");
    // Every run is an event.
    let runs = app
        .gql(
            Some(&owner),
            "query($s: String!) { streamEvents(streamId: $s) { nodes { eventType } } }",
            json!({"s": format!("retention-{store}")}),
        )
        .await;
    assert_eq!(runs["data"]["streamEvents"]["nodes"].as_array().unwrap().len(), 9, "{runs}");

    // The owner sets the store's own periods, within bounds.
    let set = "mutation($p: RetentionPolicyInput!) { setRetentionPolicy(input: $p) { errors { field code } } }";
    let longer = json!({"p": {"legalHoldYears": 10, "auditMonths": 24, "closureExportDays": 120}});
    let r = app.gql(Some(&owner), set, longer.clone()).await;
    assert_eq!(r["data"]["setRetentionPolicy"]["errors"], json!([]), "{r}");
    let r = app
        .gql(
            Some(&compliance),
            "{ retentionSchedule { policy { legalHoldYears auditMonths closureExportDays } } }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["retentionSchedule"]["policy"], longer["p"], "{r}");
    let r = app
        .gql(Some(&owner), set, json!({"p": {"legalHoldYears": 2, "auditMonths": 24, "closureExportDays": 120}}))
        .await;
    assert_eq!(
        r["data"]["setRetentionPolicy"]["errors"],
        json!([{"field": "legalHoldYears", "code": "INVALID"}]),
        "{r}"
    );
    let r = app.gql(Some(&compliance), set, longer).await;
    assert_eq!(super::code(&r), "FORBIDDEN");

    // One server at a time: while another holds the job's lock, a run is skipped.
    let lock = app.state.db.try_job_lock(0x7265_7465_6e74).await.unwrap().expect("free");
    let second = api::retention::run_all(&app.state, Utc::now()).await.unwrap();
    if app.db.url.starts_with("postgres") {
        assert!(second.is_none(), "the lock is held elsewhere");
    } else {
        assert!(second.is_some(), "SQLite has one server");
    }
    drop(lock);
}
