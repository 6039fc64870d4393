//! Customers over the API: created, updated, filtered, merged, and their consent as of an
//! instant.

use super::*;

pub(crate) async fn customers_are_created_updated_and_filtered(app: TestApp) {
    let token = app.owner().await;
    let r = app
        .gql(Some(&token), "mutation { createCustomer(input: {name: \"Casey Client\", email: \"casey@example.com\", tags: [\"vip\"]}) { customer { id name email tags } position errors { field code } } }", json!({}))
        .await;
    let id = r["data"]["createCustomer"]["customer"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let between_create_and_update = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let r = app
        .gql(Some(&token), "mutation($id: ID!) { updateCustomer(input: {customerId: $id, email: \"\", phone: \"+1 212 555 0142\"}) { customer { email phone version } errors { code } } }", json!({"id": id}))
        .await;
    assert_eq!(
        r["data"]["updateCustomer"]["customer"],
        json!({"email": null, "phone": "+1 212 555 0142", "version": 2}),
        "{r}"
    );
    let r = app.gql(Some(&token), "{ customers(where: {tag: \"vip\"}) { totalCount } }", json!({})).await;
    assert_eq!(r["data"]["customers"]["totalCount"], 2, "demo Avery + Casey: {r}");
    let r = app
        .gql(Some(&token), "{ customers(where: {nameContains: \"casey\"}) { edges { node { name } } } }", json!({}))
        .await;
    assert_eq!(r["data"]["customers"]["edges"][0]["node"]["name"], "Casey Client");
    let r = app
        .gql(Some(&token), "mutation { createCustomer(input: {name: \"X\", email: \"not-an-email\"}) { customer { id } errors { field code } } }", json!({}))
        .await;
    assert_eq!(r["data"]["createCustomer"]["errors"], json!([{"field": "email", "code": "INVALID"}]), "{r}");
    // History by replay: between creation and update the email was still set.
    let r = app
        .gql(
            Some(&token),
            "query($id: ID!, $at: DateTime) { customer(id: $id, asOf: $at) { email phone version } }",
            json!({"id": id, "at": between_create_and_update}),
        )
        .await;
    assert_eq!(r["data"]["customer"], json!({"email": "casey@example.com", "phone": null, "version": 1}), "{r}");
}

pub(crate) async fn consent_is_granted_withdrawn_and_answerable_as_of_an_instant(app: TestApp) {
    let owner = app.owner().await;
    let customer = create_customer(&app, &owner, "Casey Consent").await;
    const GRANT: &str = "mutation($c: ID!, $at: DateTime) { grantConsent(input: {customerId: $c, purpose: MARKETING_EMAIL, channel: EMAIL, noticeVersion: \"2026-05-08\", method: WEB_FORM, evidence: {ip: \"198.51.100.77\", userAgent: \"Mozilla/5.0 (Evidence)\"}, effectiveAt: $at}) { ledger { current { purpose granted } } position errors { field code } } }";
    const WITHDRAW: &str = "mutation($c: ID!, $at: DateTime) { withdrawConsent(input: {customerId: $c, purpose: MARKETING_EMAIL, channel: EMAIL, noticeVersion: \"2026-05-08\", method: IN_STORE, effectiveAt: $at}) { ledger { current { purpose granted } } errors { code } } }";
    let r = app.gql(Some(&owner), GRANT, json!({"c": customer, "at": "2026-06-01T10:00:00Z"})).await;
    assert_eq!(
        r["data"]["grantConsent"]["ledger"]["current"],
        json!([{"purpose": "MARKETING_EMAIL", "granted": true}]),
        "{r}"
    );
    let r = app.gql(Some(&owner), WITHDRAW, json!({"c": customer, "at": "2026-07-01T10:00:00Z"})).await;
    assert_eq!(
        r["data"]["withdrawConsent"]["ledger"]["current"],
        json!([{"purpose": "MARKETING_EMAIL", "granted": false}]),
        "{r}"
    );
    const LEDGER: &str = "query($c: ID!, $at: DateTime) { consentLedger(customerId: $c, asOf: $at) { current { granted noticeVersion } changes { kind method evidence { ip userAgent erased } } } }";
    let r = app.gql(Some(&owner), LEDGER, json!({"c": customer, "at": "2026-06-15T00:00:00Z"})).await;
    let ledger = &r["data"]["consentLedger"];
    assert_eq!(ledger["current"], json!([{"granted": true, "noticeVersion": "2026-05-08"}]), "{r}");
    assert_eq!(ledger["changes"].as_array().unwrap().len(), 2);
    assert_eq!(
        ledger["changes"][0]["evidence"],
        json!({"ip": "198.51.100.77", "userAgent": "Mozilla/5.0 (Evidence)", "erased": false})
    );
    let r = app.gql(Some(&owner), LEDGER, json!({"c": customer, "at": "2026-05-01T00:00:00Z"})).await;
    assert_eq!(r["data"]["consentLedger"]["current"], json!([]), "nothing before the first grant");
    // Sales staff see the ledger but not the evidence; compliance sees both.
    let sales = app.staff(Role::Sales).await;
    let r = app.gql(Some(&sales), LEDGER, json!({"c": customer})).await;
    assert_eq!(r["data"]["consentLedger"]["changes"][0]["evidence"], Value::Null, "{r}");
    let compliance = app.staff(Role::Compliance).await;
    let r = app.gql(Some(&compliance), LEDGER, json!({"c": customer})).await;
    assert_eq!(r["data"]["consentLedger"]["changes"][0]["evidence"]["ip"], "198.51.100.77", "{r}");
    // Evidence never reaches the log in plaintext.
    assert!(raw_payloads(&app).await.iter().all(|p| !p.contains("198.51.100.77") && !p.contains("(Evidence)")));
    // Unknown customers get a typed error and nothing is written.
    let r = app.gql(Some(&owner), GRANT, json!({"c": uuid::Uuid::now_v7().to_string(), "at": null})).await;
    assert_eq!(r["data"]["grantConsent"]["errors"][0]["code"], "NOT_FOUND", "{r}");
}

pub(crate) async fn duplicate_customers_merge_into_a_survivor_that_keeps_their_history(app: TestApp) {
    let owner = app.owner().await;
    let r = app
        .gql(Some(&owner), "mutation { createCustomer(input: {name: \"Dup Licate\", address: \"9 Secret Lane\", birthday: \"1980-02-29\", source: \"walk-in\", externalIds: [{system: \"shopify\", id: \"SHOP-55501\"}]}) { customer { id address birthday source externalIds { system id } } errors { code field } } }", json!({}))
        .await;
    let c = &r["data"]["createCustomer"]["customer"];
    assert_eq!(c["birthday"], "1980-02-29", "{r}");
    assert_eq!(c["externalIds"], json!([{"system": "shopify", "id": "SHOP-55501"}]));
    let dup = c["id"].as_str().unwrap().to_owned();
    let survivor = create_customer(&app, &owner, "Sur Vivor").await;
    let item = acquire_item(&app, &owner, "500.00").await;
    let r = app
        .gql(Some(&owner), &format!("mutation($c: ID!, $i: ID!) {{ createSale(input: {{customerId: $c, lines: [{{itemId: $i, price: {{amount: \"500.00\", currency: \"USD\"}}}}]}}) {{ {SALE_FIELDS} }} }}"), json!({"c": dup, "i": item}))
        .await;
    let sale = r["data"]["createSale"]["sale"]["id"].as_str().unwrap().to_owned();
    app.gql(
        Some(&owner),
        &format!("mutation($s: ID!) {{ confirmSale(input: {{saleId: $s}}) {{ {SALE_FIELDS} }} }}"),
        json!({"s": sale}),
    )
    .await;
    let r = app
        .gql(Some(&owner), "mutation($c: ID!, $s: ID!) { mergeCustomers(input: {customerId: $c, survivorId: $s}) { customer { id lifetimeValue { amount } orderCount } errors { code field } } }", json!({"c": dup, "s": survivor}))
        .await;
    assert_eq!(
        r["data"]["mergeCustomers"]["customer"],
        json!({"id": survivor, "lifetimeValue": {"amount": "500.00"}, "orderCount": 1}),
        "{r}"
    );
    let r = app.gql(Some(&owner), "query($c: ID!) { customer(id: $c) { mergedIntoId lifetimeValue { amount } } customers(where: {nameContains: \"licate\"}) { totalCount } }", json!({"c": dup})).await;
    assert_eq!(r["data"]["customer"]["mergedIntoId"], json!(survivor), "{r}");
    assert_eq!(r["data"]["customers"]["totalCount"], 0, "merged duplicates are hidden from lists");
    let r = app
        .gql(
            Some(&owner),
            "mutation($c: ID!) { updateCustomer(input: {customerId: $c, name: \"Again\"}) { errors { code } } }",
            json!({"c": dup}),
        )
        .await;
    assert_eq!(r["data"]["updateCustomer"]["errors"][0]["code"], "ILLEGAL_TRANSITION", "{r}");
    let r = app
        .gql(Some(&owner), &format!("mutation($c: ID!, $i: ID!) {{ createSale(input: {{customerId: $c, lines: [{{itemId: $i, price: {{amount: \"1.00\", currency: \"USD\"}}}}]}}) {{ {SALE_FIELDS} }} }}"), json!({"c": dup, "i": item}))
        .await;
    assert_eq!(r["data"]["createSale"]["errors"][0]["field"], "customerId", "{r}");
    let r = app
        .gql(
            Some(&owner),
            "mutation($c: ID!) { mergeCustomers(input: {customerId: $c, survivorId: $c}) { errors { code } } }",
            json!({"c": survivor}),
        )
        .await;
    assert_eq!(r["data"]["mergeCustomers"]["errors"][0]["code"], "INVALID", "{r}");
    // The duplicate's history still replays, including the merge.
    let r = app
        .gql(
            Some(&owner),
            "query($c: ID!) { customer(id: $c, asOf: \"2999-01-01T00:00:00Z\") { name mergedIntoId } }",
            json!({"c": dup}),
        )
        .await;
    assert_eq!(r["data"]["customer"], json!({"name": "Dup Licate", "mergedIntoId": survivor}), "{r}");
    let raw = raw_payloads(&app).await;
    for secret in ["9 Secret Lane", "SHOP-55501", "1980-02-29"] {
        assert!(raw.iter().all(|p| !p.contains(secret)), "{secret} in plaintext in the log");
    }
}
