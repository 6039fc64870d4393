//! Inputs that must be refused, and the floor-price rule, over real HTTP on both backends.

use super::{acquire_input, TestApp, ACQUIRE};
use domain::staff::Role;
use serde_json::{json, Value};

const CUSTOMER: &str = "mutation($n: String!, $t: [String!]) { createCustomer(input: {name: $n, tags: $t}) { customer { id tags } position errors { code } } }";
const SALE: &str = "mutation($c: ID, $i: ID!, $p: Decimal!) { createSale(input: {customerId: $c, lines: [{itemId: $i, price: {amount: $p, currency: \"USD\"}}]}) {
    sale { id status } errors { field code } } }";
const CONFIRM: &str =
    "mutation($s: ID!) { confirmSale(input: {saleId: $s}) { sale { status } errors { field code } } }";

impl TestApp {
    pub(crate) async fn new_item(&self, token: &str, price: &str) -> String {
        let r = self.gql(Some(token), ACQUIRE, acquire_input(price)).await;
        r["data"]["acquireItem"]["item"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
    }

    pub(crate) async fn new_customer(&self, token: &str, name: &str) -> String {
        let r = self.gql(Some(token), CUSTOMER, json!({"n": name})).await;
        r["data"]["createCustomer"]["customer"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
    }
}

fn payload_code<'a>(r: &'a Value, field: &str) -> &'a str {
    r["data"][field]["errors"][0]["code"].as_str().unwrap_or_else(|| panic!("no payload error in {r}"))
}

pub(crate) async fn selling_below_the_floor_price_needs_approve_discounts(app: TestApp) {
    let owner = app.owner().await;
    let sales = app.staff(Role::Sales).await;
    let item = app.new_item(&owner, "12500.00").await;
    // The floor price given to changeItemPrice is applied, not dropped.
    let r = app
        .gql(
            Some(&owner),
            "mutation($i: ID!) { changeItemPrice(input: {itemId: $i, askingPrice: {amount: \"12500.00\", currency: \"USD\"}, floorPrice: {amount: \"12000.00\", currency: \"USD\"}}) { item { floorPrice { amount } } errors { code } } }",
            json!({"i": item}),
        )
        .await;
    assert_eq!(r["data"]["changeItemPrice"]["item"]["floorPrice"]["amount"], "12000.00", "{r}");

    // A sales user cannot draft or confirm a line under the floor.
    let r = app.gql(Some(&sales), SALE, json!({"i": item, "p": "100.00"})).await;
    assert_eq!(payload_code(&r, "createSale"), "BELOW_FLOOR_PRICE", "{r}");
    let r = app.gql(Some(&owner), SALE, json!({"i": item, "p": "100.00"})).await;
    let sale = r["data"]["createSale"]["sale"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let r = app.gql(Some(&sales), CONFIRM, json!({"s": sale})).await;
    assert_eq!(payload_code(&r, "confirmSale"), "BELOW_FLOOR_PRICE", "the confirming seller needs the approval: {r}");
    // At the floor, a sales user sells; below it, an owner approves by confirming.
    let at_floor = app.new_item(&owner, "12500.00").await;
    app.gql(
        Some(&owner),
        "mutation($i: ID!) { changeItemPrice(input: {itemId: $i, askingPrice: {amount: \"12500.00\", currency: \"USD\"}, floorPrice: {amount: \"12000.00\", currency: \"USD\"}}) { errors { code } } }",
        json!({"i": at_floor}),
    )
    .await;
    let r = app.gql(Some(&sales), SALE, json!({"i": at_floor, "p": "12000.00"})).await;
    let s2 = r["data"]["createSale"]["sale"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let r = app.gql(Some(&sales), CONFIRM, json!({"s": s2})).await;
    assert_eq!(r["data"]["confirmSale"]["sale"]["status"], "CONFIRMED", "{r}");
    let r = app.gql(Some(&owner), CONFIRM, json!({"s": sale})).await;
    assert_eq!(r["data"]["confirmSale"]["sale"]["status"], "CONFIRMED", "{r}");
}

pub(crate) async fn references_to_records_that_do_not_exist_are_not_found(app: TestApp) {
    let owner = app.owner().await;
    let item = app.new_item(&owner, "500.00").await;
    let nobody = uuid::Uuid::now_v7().to_string();
    let r = app
        .gql(Some(&owner), "mutation($i: ID!, $c: ID!) { reserveItem(input: {itemId: $i, customerId: $c}) { item { status } errors { field code } } }", json!({"i": item, "c": nobody}))
        .await;
    assert_eq!(r["data"]["reserveItem"]["errors"][0], json!({"field": "customerId", "code": "NOT_FOUND"}), "{r}");
    let r = app.gql(Some(&owner), SALE, json!({"i": nobody, "p": "500.00"})).await;
    assert_eq!(r["data"]["createSale"]["errors"][0], json!({"field": "lines.itemId", "code": "NOT_FOUND"}), "{r}");
    let r = app.gql(Some(&owner), SALE, json!({"i": item, "c": nobody, "p": "500.00"})).await;
    assert_eq!(r["data"]["createSale"]["errors"][0], json!({"field": "customerId", "code": "NOT_FOUND"}), "{r}");
    let mut input = acquire_input("500.00");
    input["input"]["counterpartyId"] = json!(nobody);
    let r = app.gql(Some(&owner), ACQUIRE, input).await;
    assert_eq!(r["data"]["acquireItem"]["errors"][0]["field"], "counterpartyId", "{r}");
    let r = app
        .gql(
            Some(&owner),
            "mutation($a: ID!) { createCustomer(input: {name: \"Ann\", assignedToId: $a}) { errors { field code } } }",
            json!({"a": nobody}),
        )
        .await;
    assert_eq!(r["data"]["createCustomer"]["errors"][0], json!({"field": "assignedToId", "code": "NOT_FOUND"}), "{r}");
    let owner_id = app.gql(Some(&owner), "{ me { userId } }", json!({})).await["data"]["me"]["userId"].clone();
    let r = app
        .gql(
            Some(&owner),
            "mutation($a: ID!) { createCustomer(input: {name: \"Ann\", assignedToId: $a}) { errors { field code } } }",
            json!({"a": owner_id}),
        )
        .await;
    assert_eq!(r["data"]["createCustomer"]["errors"], json!([]), "a member of this store is fine: {r}");
}

pub(crate) async fn an_idempotency_key_reused_with_different_input_is_refused(app: TestApp) {
    let owner = app.owner().await;
    const PAY: &str = "mutation($s: ID!, $a: Decimal!, $k: String) { recordPayment(input: {saleId: $s, amount: {amount: $a, currency: \"USD\"}, method: CARD, kind: DEPOSIT, idempotencyKey: $k}) { sale { amountPaid { amount } } errors { field code } } }";
    let item = app.new_item(&owner, "5000.00").await;
    let r = app.gql(Some(&owner), SALE, json!({"i": item, "p": "5000.00"})).await;
    let sale = r["data"]["createSale"]["sale"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let r = app.gql(Some(&owner), PAY, json!({"s": sale, "a": "100.00", "k": "pay-1"})).await;
    assert_eq!(r["data"]["recordPayment"]["sale"]["amountPaid"]["amount"], "100.00", "{r}");
    let r = app.gql(Some(&owner), PAY, json!({"s": sale, "a": "900.00", "k": "pay-1"})).await;
    assert_eq!(
        r["data"]["recordPayment"]["errors"][0],
        json!({"field": "idempotencyKey", "code": "IDEMPOTENCY_KEY_REUSED"}),
        "{r}"
    );
    let r = app.gql(Some(&owner), PAY, json!({"s": sale, "a": "100.00", "k": "pay-1"})).await;
    assert_eq!(r["data"]["recordPayment"]["errors"], json!([]), "the same input still replays: {r}");
    assert_eq!(r["data"]["recordPayment"]["sale"]["amountPaid"]["amount"], "100.00");

    // The same for any mutation's key: the input is fingerprinted with the claim.
    const ADD: &str = "mutation($n: String!, $k: String) { createCustomer(input: {name: $n, idempotencyKey: $k}) { customer { id } errors { field code } } }";
    let first = app.gql(Some(&owner), ADD, json!({"n": "Ann Lee", "k": "cust-1"})).await;
    let again = app.gql(Some(&owner), ADD, json!({"n": "Ann Lee", "k": "cust-1"})).await;
    assert_eq!(
        first["data"]["createCustomer"]["customer"]["id"], again["data"]["createCustomer"]["customer"]["id"],
        "{again}"
    );
    let other = app.gql(Some(&owner), ADD, json!({"n": "Bob Other", "k": "cust-1"})).await;
    assert_eq!(other["data"]["createCustomer"]["errors"][0]["code"], "IDEMPOTENCY_KEY_REUSED", "{other}");
}

pub(crate) async fn only_active_iso_currencies_are_accepted(app: TestApp) {
    let owner = app.owner().await;
    for bad in ["XYZ", "BTC", "usd"] {
        let mut input = acquire_input("100.00");
        input["input"]["askingPrice"]["currency"] = json!(bad);
        input["input"]["cost"]["currency"] = json!(bad);
        let r = app.gql(Some(&owner), ACQUIRE, input).await;
        assert_eq!(r["data"]["acquireItem"]["errors"][0]["field"], "currency", "{bad}: {r}");
    }
    let mut input = acquire_input("100.5");
    input["input"]["askingPrice"]["currency"] = json!("JPY");
    input["input"]["cost"] = json!({"amount": "80", "currency": "JPY"});
    let r = app.gql(Some(&owner), ACQUIRE, input.clone()).await;
    assert_eq!(r["data"]["acquireItem"]["errors"][0]["code"], "INVALID", "yen have no minor unit: {r}");
    input["input"]["askingPrice"]["amount"] = json!("15000");
    let r = app.gql(Some(&owner), ACQUIRE, input).await;
    assert_eq!(r["data"]["acquireItem"]["item"]["askingPrice"], json!({"amount": "15000", "currency": "JPY"}), "{r}");
}

pub(crate) async fn customer_tags_are_encrypted_in_the_log(app: TestApp) {
    let owner = app.owner().await;
    let r = app.gql(Some(&owner), CUSTOMER, json!({"n": "Tag Person", "t": ["collects-patek-quietly"]})).await;
    assert_eq!(r["data"]["createCustomer"]["customer"]["tags"], json!(["collects-patek-quietly"]), "{r}");
    let stored = app.state.store.backend().read_committed(eventstore::Position::START, 100_000).await.unwrap();
    assert!(stored.iter().any(|e| e.event_type == "CustomerRegistered"));
    assert!(stored.iter().all(|e| !e.payload.contains("collects-patek-quietly")), "tags are ciphertext in the log");
    let r = app
        .gql(Some(&owner), "{ customers(where: {tag: \"collects-patek-quietly\"}) { totalCount } }", json!({}))
        .await;
    assert_eq!(r["data"]["customers"]["totalCount"], 1, "still filterable in the read model: {r}");
}

pub(crate) async fn holds_cannot_start_in_the_past_and_a_lapsed_reservation_stops_blocking(app: TestApp) {
    let owner = app.owner().await;
    let (ann, bob) = (app.new_customer(&owner, "Ann Hold").await, app.new_customer(&owner, "Bob Buyer").await);
    let item = app.new_item(&owner, "800.00").await;
    const RESERVE: &str = "mutation($i: ID!, $c: ID!, $u: DateTime) { reserveItem(input: {itemId: $i, customerId: $c, until: $u}) { item { status } errors { field code } } }";
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let r = app.gql(Some(&owner), RESERVE, json!({"i": item, "c": ann, "u": past})).await;
    assert_eq!(r["data"]["reserveItem"]["errors"][0], json!({"field": "until", "code": "INVALID"}), "{r}");
    let r = app
        .gql(Some(&owner), "mutation($i: ID!, $c: ID!, $d: DateTime!) { sendItemOnMemo(input: {itemId: $i, customerId: $c, due: $d}) { errors { field code } } }", json!({"i": item, "c": ann, "d": past}))
        .await;
    assert_eq!(r["data"]["sendItemOnMemo"]["errors"][0], json!({"field": "due", "code": "INVALID"}), "{r}");

    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let r = app.gql(Some(&owner), RESERVE, json!({"i": item, "c": ann, "u": soon})).await;
    assert_eq!(r["data"]["reserveItem"]["item"]["status"], "RESERVED", "{r}");
    let r = app.gql(Some(&owner), SALE, json!({"i": item, "c": bob, "p": "800.00"})).await;
    let sale = r["data"]["createSale"]["sale"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let r = app.gql(Some(&owner), CONFIRM, json!({"s": sale})).await;
    assert_eq!(payload_code(&r, "confirmSale"), "RESERVED_FOR_ANOTHER_CUSTOMER", "{r}");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let r = app.gql(Some(&owner), CONFIRM, json!({"s": sale})).await;
    assert_eq!(r["data"]["confirmSale"]["sale"]["status"], "CONFIRMED", "the reservation lapsed: {r}");
}

pub(crate) async fn a_retried_mutation_with_an_idempotency_key_returns_the_first_result(app: TestApp) {
    let owner = app.owner().await;
    let count = |r: Value| r["data"]["inventoryItems"]["totalCount"].as_i64().unwrap();
    let before = count(app.gql(Some(&owner), "{ inventoryItems { totalCount } }", json!({})).await);
    let mut input = acquire_input("2500.00");
    input["input"]["idempotencyKey"] = json!("acq-7f3a");
    let first = app.gql(Some(&owner), ACQUIRE, input.clone()).await;
    let again = app.gql(Some(&owner), ACQUIRE, input.clone()).await;
    let id = |r: &Value| r["data"]["acquireItem"]["item"]["id"].clone();
    assert!(id(&first).is_string(), "{first}");
    assert_eq!(id(&first), id(&again), "the retry returns the first item: {again}");
    assert_eq!(first["data"]["acquireItem"]["position"], again["data"]["acquireItem"]["position"]);
    assert_eq!(count(app.gql(Some(&owner), "{ inventoryItems { totalCount } }", json!({})).await), before + 1);
    let q = "mutation($k: String) { createCustomer(input: {name: \"Idem Potent\", idempotencyKey: $k}) { customer { id } errors { field code } } }";
    let a = app.gql(Some(&owner), q, json!({"k": "cust-1"})).await;
    let b = app.gql(Some(&owner), q, json!({"k": "cust-1"})).await;
    assert_eq!(a["data"]["createCustomer"]["customer"]["id"], b["data"]["createCustomer"]["customer"]["id"], "{a} {b}");
    // The same key for another mutation is an error, not a replay.
    let r = app.gql(Some(&owner), q, json!({"k": "acq-7f3a"})).await;
    assert_eq!(r["data"]["createCustomer"]["errors"], json!([{"field": "idempotencyKey", "code": "INVALID"}]), "{r}");
}
