//! API tests: the real HTTP server (the same `serve` the binary runs) on a random port, driven
//! over real HTTP, against both backends. Each test has its own database.

mod audit;
mod evolution;
mod http;
mod inputs;
mod isolation;
mod ledger;
mod live;
mod marketing;
mod matrix;
mod payloads;
mod privacy;
mod retention;
mod staff;

use audit::*;
use http::*;
use inputs::*;
use isolation::*;
use ledger::*;
use live::*;
use marketing::*;
use matrix::*;
use payloads::*;
use privacy::*;
use retention::*;
use staff::*;

use api::app::AppState;
use commands::CommandContext;
use domain::staff::Role;
use domain::StoreId;
use eventstore::testing::TestDatabase;
use eventstore::{Database, EventStore, MasterKey, Upcasters};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::watch;

struct TestApp {
    url: String,
    client: reqwest::Client,
    state: Arc<AppState>,
    key: MasterKey,
    _stop: watch::Sender<bool>,
    db: TestDatabase,
}

async fn spawn_app(tdb: TestDatabase) -> TestApp {
    spawn_app_with(tdb, api::app::Settings::default()).await
}

async fn spawn_app_with(tdb: TestDatabase, settings: api::app::Settings) -> TestApp {
    let key = MasterKey::generate();
    let (url, state, stop) = serve_on(&tdb.url, &key, settings).await;
    api::demo::seed(&state).await.unwrap();
    TestApp { url, client: reqwest::Client::new(), state, key, _stop: stop, db: tdb }
}

/// Another server on the same database (as after a restart, or a second replica).
async fn serve_on(
    url: &str,
    key: &MasterKey,
    settings: api::app::Settings,
) -> (String, Arc<AppState>, watch::Sender<bool>) {
    let db = Database::connect(url).await.unwrap();
    let store = EventStore::new(&db, key.clone(), Upcasters::default());
    let (stop, shutdown) = watch::channel(false);
    let state = AppState::start_with(db, store, shutdown.clone(), settings).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(api::app::serve(listener, state.clone(), shutdown));
    (url, state, stop)
}

impl TestApp {
    async fn post(&self, token: Option<&str>, body: &Value) -> Value {
        let mut req = self.client.post(format!("{}/graphql", self.url)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap().json().await.unwrap()
    }

    async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.post(token, &json!({"query": query, "variables": variables})).await
    }

    async fn login(&self, email: &str, password: &str) -> String {
        let r = self
            .gql(
                None,
                "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { token } }",
                json!({"e": email, "p": password}),
            )
            .await;
        r["data"]["login"]["token"].as_str().unwrap_or_else(|| panic!("login failed: {r}")).to_owned()
    }

    async fn owner(&self) -> String {
        self.login(api::demo::DEMO_EMAIL, api::demo::DEMO_PASSWORD).await
    }

    /// Adds a staff member with `role` to the demo store and returns their token.
    async fn staff(&self, role: Role) -> String {
        let owner = self.owner().await;
        let me = self.gql(Some(&owner), "{ me { storeId } }", json!({})).await;
        let store_id: StoreId = me["data"]["me"]["storeId"].as_str().unwrap().parse().unwrap();
        let email = format!("{}@demo.test", role.as_str().to_lowercase());
        let ctx = CommandContext::system(store_id, "test");
        let (_, position) = commands::staff::add_staff(
            &self.state.store,
            &self.state.accounts,
            &ctx,
            &email,
            None,
            "staff-password-1",
            role,
        )
        .await
        .unwrap();
        self.state.projections.wait_for(position, std::time::Duration::from_secs(20)).await.unwrap();
        self.login(&email, STAFF_PASSWORD).await
    }

    async fn store_id(&self, token: &str) -> String {
        let me = self.gql(Some(token), "{ me { storeId } }", json!({})).await;
        me["data"]["me"]["storeId"].as_str().unwrap_or_else(|| panic!("{me}")).to_owned()
    }
}

const STAFF_PASSWORD: &str = "staff-password-1";

fn code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {response}"))
}

const ACQUIRE: &str = "mutation($input: AcquireItemInput!) { acquireItem(input: $input) {
    item { id brand status askingPrice { amount currency } cost { amount } } position errors { field code message } } }";

fn acquire_input(price: &str) -> Value {
    json!({"input": {
        "category": "WATCH", "brand": "Tudor", "model": "Black Bay 58",
        "cost": {"amount": "2500.00", "currency": "USD"},
        "askingPrice": {"amount": price, "currency": "USD"},
        "acquisition": {"source": "PURCHASE"},
        "attributes": [{"key": "dial", "value": "blue"}],
        "vendor": "Chrono Dealers Ltd"
    }})
}

/// The `-d '…'` bodies of the README's example, in order.
fn readme_bodies() -> Vec<Value> {
    let readme = include_str!("../../README.md");
    let section = readme.split("## Example GraphQL exchange").nth(1).expect("README has the example section");
    let section = section.split("\n## ").next().unwrap();
    section
        .split("-d '")
        .skip(1)
        .map(|rest| serde_json::from_str(rest.split('\'').next().unwrap()).expect("README body is JSON"))
        .collect()
}

async fn the_readme_example_works_when_pasted(app: TestApp) {
    let bodies = readme_bodies();
    assert_eq!(bodies.len(), 3, "login, acquire, query");
    let login = app.post(None, &bodies[0]).await;
    let token = login["data"]["login"]["token"].as_str().unwrap_or_else(|| panic!("{login}")).to_owned();
    let acquired = app.post(Some(&token), &bodies[1]).await;
    let payload = &acquired["data"]["acquireItem"];
    assert_eq!(payload["errors"], json!([]), "{acquired}");
    assert_eq!(payload["item"]["status"], "IN_STOCK");
    assert!(payload["position"].is_string());
    let listed = app.post(Some(&token), &bodies[2]).await;
    let models: Vec<&str> = listed["data"]["inventoryItems"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .map(|e| e["node"]["model"].as_str().unwrap())
        .collect();
    assert!(models.contains(&"Daytona"), "{listed}");
}

async fn a_wrong_password_or_unknown_email_is_unauthenticated(app: TestApp) {
    for (email, password) in [(api::demo::DEMO_EMAIL, "wrong-password-1"), ("nobody@example.com", "whatever-password")]
    {
        let r = app
            .gql(
                None,
                "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { token } }",
                json!({"e": email, "p": password}),
            )
            .await;
        assert_eq!(code(&r), "UNAUTHENTICATED", "{r}");
        assert_eq!(r["errors"][0]["message"], "invalid email or password", "same answer either way");
        assert!(!r.to_string().contains("nobody@example.com"), "the email is not echoed");
    }
}

async fn repeated_failed_logins_are_throttled(app: TestApp) {
    const LOGIN: &str = "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { token } }";
    app.staff(Role::Sales).await; // another account, made before the owner is throttled
    for _ in 0..5 {
        let r = app.gql(None, LOGIN, json!({"e": api::demo::DEMO_EMAIL, "p": "guess-guess-guess"})).await;
        assert_eq!(code(&r), "UNAUTHENTICATED");
    }
    // Now even the right password is refused for a while, from this address.
    let r = app.gql(None, LOGIN, json!({"e": api::demo::DEMO_EMAIL, "p": api::demo::DEMO_PASSWORD})).await;
    assert_eq!(code(&r), "RATE_LIMITED", "{r}");
    // Other accounts are unaffected.
    assert!(!app.login("sales@demo.test", "staff-password-1").await.is_empty());
}

async fn a_missing_or_forged_token_is_unauthenticated(app: TestApp) {
    let r = app.gql(None, "{ inventoryItems { totalCount } }", json!({})).await;
    assert_eq!(code(&r), "UNAUTHENTICATED");
    let token = app.owner().await;
    let forged = format!("{}x", &token[..token.len() - 1]);
    let r = app.gql(Some(&forged), "{ me { role } }", json!({})).await;
    assert_eq!(code(&r), "UNAUTHENTICATED");
    let r = app.gql(None, ACQUIRE, acquire_input("100.00")).await;
    assert_eq!(code(&r), "UNAUTHENTICATED");
}

async fn malformed_input_gets_typed_errors_and_writes_nothing(app: TestApp) {
    let token = app.owner().await;
    let count = |r: &Value| r["data"]["inventoryItems"]["totalCount"].as_i64().unwrap();
    let before = count(&app.gql(Some(&token), "{ inventoryItems { totalCount } }", json!({})).await);
    // A bad amount is a user error on its field, in the payload.
    let r = app.gql(Some(&token), ACQUIRE, acquire_input("12,500.00")).await;
    let p = &r["data"]["acquireItem"];
    assert_eq!(p["errors"][0]["field"], "askingPrice", "{r}");
    assert_eq!(p["errors"][0]["code"], "INVALID");
    assert!(p["item"].is_null() && p["position"].is_null());
    // A domain rule (cost currency differs) likewise.
    let mut input = acquire_input("100.00");
    input["input"]["cost"]["currency"] = json!("EUR");
    let r = app.gql(Some(&token), ACQUIRE, input).await;
    assert_eq!(r["data"]["acquireItem"]["errors"][0]["code"], "CURRENCY_MISMATCH", "{r}");
    // A float where a Decimal string belongs, or a missing field, is a GraphQL input error.
    let mut input = acquire_input("100.00");
    input["input"]["askingPrice"]["amount"] = json!(100.5);
    assert_eq!(code(&app.gql(Some(&token), ACQUIRE, input).await), "BAD_USER_INPUT");
    let r = app.gql(Some(&token), "mutation { acquireItem(input: {brand: \"x\"}) { position } }", json!({})).await;
    assert_eq!(code(&r), "BAD_USER_INPUT");
    let r = app.gql(Some(&token), "{ inventoryItem(id: \"not-a-uuid\") { id } }", json!({})).await;
    assert_eq!(code(&r), "BAD_USER_INPUT");
    let r = app.gql(Some(&token), "{ inventoryItems(first: 101) { totalCount } }", json!({})).await;
    assert_eq!(code(&r), "BAD_USER_INPUT");
    let r = app.gql(Some(&token), "{ inventoryItems(minPosition: \"soon\") { totalCount } }", json!({})).await;
    assert_eq!(code(&r), "BAD_USER_INPUT");
    let r = app
        .gql(Some(&token), "mutation { changeItemPrice(input: {itemId: \"nope\", askingPrice: {amount: \"1.00\", currency: \"USD\"}}) { errors { field code } } }", json!({}))
        .await;
    assert_eq!(r["data"]["changeItemPrice"]["errors"][0]["field"], "itemId", "{r}");
    let after = count(&app.gql(Some(&token), "{ inventoryItems { totalCount } }", json!({})).await);
    assert_eq!(before, after, "rejected commands wrote nothing");
    assert!(app.state.store.verify().await.unwrap().broken.is_none());
}

async fn mutations_return_a_position_that_reads_your_writes(app: TestApp) {
    let token = app.owner().await;
    let r = app.gql(Some(&token), ACQUIRE, acquire_input("3900.00")).await;
    let p = &r["data"]["acquireItem"];
    let id = p["item"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    assert_eq!(p["item"]["askingPrice"], json!({"amount": "3900.00", "currency": "USD"}));
    let r = app
        .gql(
            Some(&token),
            "query($id: ID!) { inventoryItem(id: $id) { vendor attributes { key value } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        r["data"]["inventoryItem"],
        json!({"vendor": "Chrono Dealers Ltd", "attributes": [{"key": "dial", "value": "blue"}]}),
        "{r}"
    );
    let r = app
        .gql(
            Some(&token),
            "mutation($id: ID!) { changeItemPrice(input: {itemId: $id, askingPrice: {amount: \"3650.00\", currency: \"USD\"}, reason: \"slow mover\"}) { position item { askingPrice { amount } version } errors { code } } }",
            json!({"id": id}),
        )
        .await;
    let position = r["data"]["changeItemPrice"]["position"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    assert_eq!(r["data"]["changeItemPrice"]["item"]["version"], 2);
    let r = app
        .gql(
            Some(&token),
            "query($id: ID!, $p: String) { inventoryItem(id: $id, minPosition: $p) { askingPrice { amount } } }",
            json!({"id": id, "p": position}),
        )
        .await;
    assert_eq!(r["data"]["inventoryItem"]["askingPrice"]["amount"], "3650.00", "{r}");
    // History: as of before the price change, the item had its first price.
    let r = app
        .gql(
            Some(&token),
            "query($id: ID!) { inventoryItem(id: $id, asOf: \"2000-01-01T00:00:00Z\") { id } }",
            json!({"id": id}),
        )
        .await;
    assert!(r["data"]["inventoryItem"].is_null(), "did not exist in 2000: {r}");
    // ...and as of version 1 it had its first price.
    let r = app
        .gql(
            Some(&token),
            "query($id: ID!) { inventoryItem(id: $id, asOfVersion: 1) { askingPrice { amount } version } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r["data"]["inventoryItem"], json!({"askingPrice": {"amount": "3900.00"}, "version": 1}), "{r}");
    let r = app
        .gql(
            Some(&token),
            "query($id: ID!) { inventoryItem(id: $id, asOfVersion: 1, asOf: \"2030-01-01T00:00:00Z\") { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(code(&r), "BAD_USER_INPUT");
}

async fn a_store_never_sees_another_stores_data(app: TestApp) {
    let owner = app.owner().await;
    let r = app.gql(Some(&owner), ACQUIRE, acquire_input("100.00")).await;
    let id = r["data"]["acquireItem"]["item"]["id"].as_str().unwrap().to_owned();
    let (_, _, position) = commands::stores::create_store(
        &app.state.store,
        &app.state.accounts,
        "test",
        "Other Shop",
        "other@shop.test",
        "rival-counter-2026",
    )
    .await
    .unwrap();
    app.state.projections.wait_for(position, std::time::Duration::from_secs(20)).await.unwrap();
    let other = app.login("other@shop.test", "rival-counter-2026").await;
    let r = app.gql(Some(&other), "{ inventoryItems { totalCount } customers { totalCount } }", json!({})).await;
    assert_eq!(r["data"]["inventoryItems"]["totalCount"], 0, "{r}");
    assert_eq!(r["data"]["customers"]["totalCount"], 0, "{r}");
    let r = app.gql(Some(&other), "query($id: ID!) { inventoryItem(id: $id) { id } }", json!({"id": id})).await;
    assert!(r["data"]["inventoryItem"].is_null());
    let r = app
        .gql(Some(&other), "mutation($id: ID!) { changeItemPrice(input: {itemId: $id, askingPrice: {amount: \"1.00\", currency: \"USD\"}}) { errors { code } } }", json!({"id": id}))
        .await;
    assert_eq!(r["data"]["changeItemPrice"]["errors"][0]["code"], "NOT_FOUND", "{r}");
}

async fn roles_are_enforced_least_privilege(app: TestApp) {
    let sales = app.staff(Role::Sales).await;
    let r = app.gql(Some(&sales), ACQUIRE, acquire_input("100.00")).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    let r = app
        .gql(Some(&sales), "{ inventoryItems(first: 1) { edges { node { brand cost { amount } } } } }", json!({}))
        .await;
    assert!(r["data"]["inventoryItems"]["edges"][0]["node"]["brand"].is_string(), "{r}");
    assert!(r["data"]["inventoryItems"]["edges"][0]["node"]["cost"].is_null());
    assert_eq!(code(&r), "FORBIDDEN");
    let tech = app.staff(Role::Technician).await;
    assert_eq!(code(&app.gql(Some(&tech), "{ customers { totalCount } }", json!({})).await), "FORBIDDEN");
}

async fn lists_paginate_with_keyset_cursors(app: TestApp) {
    let token = app.owner().await;
    let q = "query($after: String) { inventoryItems(first: 2, after: $after, sortBy: {field: ASKING_PRICE, direction: DESC}) {
        totalCount pageInfo { hasNextPage endCursor } edges { node { askingPrice { amount } } } } }";
    let mut after = Value::Null;
    let mut prices = Vec::new();
    loop {
        let r = app.gql(Some(&token), q, json!({"after": after})).await;
        let c = &r["data"]["inventoryItems"];
        assert_eq!(c["totalCount"], 5, "{r}");
        for e in c["edges"].as_array().unwrap() {
            prices.push(e["node"]["askingPrice"]["amount"].as_str().unwrap().parse::<f64>().unwrap());
        }
        after = c["pageInfo"]["endCursor"].clone();
        if !c["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(prices.len(), 5);
    assert!(prices.windows(2).all(|w| w[0] >= w[1]), "{prices:?}");
    // Past the last page: no rows, and still the whole total.
    let r = app.gql(Some(&token), q, json!({"after": after})).await;
    assert_eq!(r["data"]["inventoryItems"]["edges"], json!([]), "{r}");
    assert_eq!(r["data"]["inventoryItems"]["totalCount"], 5, "{r}");
    // A cursor from one sort order is refused by another.
    let r = app
        .gql(
            Some(&token),
            "query($a: String) { inventoryItems(first: 2, after: $a) { totalCount } }",
            json!({"a": after}),
        )
        .await;
    assert_eq!(code(&r), "BAD_USER_INPUT");
}

async fn customers_are_created_updated_and_filtered(app: TestApp) {
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

async fn create_customer(app: &TestApp, token: &str, name: &str) -> String {
    let r = app
        .gql(Some(token), "mutation($n: String!) { createCustomer(input: {name: $n, email: \"x@example.com\"}) { customer { id } errors { code } } }", json!({"n": name}))
        .await;
    r["data"]["createCustomer"]["customer"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
}

async fn acquire_item(app: &TestApp, token: &str, price: &str) -> String {
    let r = app.gql(Some(token), ACQUIRE, acquire_input(price)).await;
    r["data"]["acquireItem"]["item"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
}

async fn item_status(app: &TestApp, token: &str, id: &str) -> String {
    let r = app.gql(Some(token), "query($id: ID!) { inventoryItem(id: $id) { status } }", json!({"id": id})).await;
    r["data"]["inventoryItem"]["status"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
}

async fn an_item_moves_through_its_lifecycle_and_illegal_moves_are_rejected(app: TestApp) {
    let owner = app.owner().await;
    let tech = app.staff(Role::Technician).await;
    let item = acquire_item(&app, &owner, "5000.00").await;
    let customer = create_customer(&app, &owner, "Robin Reserve").await;
    let step = |query: &'static str, token: String, vars: Value| {
        let app = &app;
        async move {
            let r = app.gql(Some(&token), query, vars).await;
            let payload =
                r["data"].as_object().and_then(|d| d.values().next()).cloned().unwrap_or_else(|| panic!("{r}"));
            (payload["item"]["status"].as_str().map(str::to_owned), payload["errors"].clone(), r)
        }
    };
    let (s, _, r) = step("mutation($i: ID!, $c: ID!) { reserveItem(input: {itemId: $i, customerId: $c}) { item { status heldForCustomerId } errors { code } } }", owner.clone(), json!({"i": item, "c": customer})).await;
    assert_eq!(s.as_deref(), Some("RESERVED"), "{r}");
    assert_eq!(r["data"]["reserveItem"]["item"]["heldForCustomerId"], json!(customer));
    let (_, errors, _) = step("mutation($i: ID!) { sendItemToService(input: {itemId: $i, provider: \"Service centre\"}) { item { status } errors { code } } }", tech.clone(), json!({"i": item})).await;
    assert_eq!(errors[0]["code"], "ILLEGAL_TRANSITION", "reserved items do not go to service");
    let (s, ..) = step(
        "mutation($i: ID!) { releaseItemReservation(input: {itemId: $i}) { item { status } errors { code } } }",
        owner.clone(),
        json!({"i": item}),
    )
    .await;
    assert_eq!(s.as_deref(), Some("IN_STOCK"));
    let (s, ..) = step("mutation($i: ID!, $c: ID!) { sendItemOnMemo(input: {itemId: $i, customerId: $c, due: \"2030-01-01T00:00:00Z\"}) { item { status } errors { code } } }", owner.clone(), json!({"i": item, "c": customer})).await;
    assert_eq!(s.as_deref(), Some("ON_MEMO"));
    let (s, ..) = step(
        "mutation($i: ID!) { returnItemFromMemo(input: {itemId: $i}) { item { status } errors { code } } }",
        owner.clone(),
        json!({"i": item}),
    )
    .await;
    assert_eq!(s.as_deref(), Some("IN_STOCK"));
    let (s, ..) = step("mutation($i: ID!) { sendItemToService(input: {itemId: $i, provider: \"Service centre\", reason: \"polish\"}) { item { status } errors { code } } }", tech.clone(), json!({"i": item})).await;
    assert_eq!(s.as_deref(), Some("IN_SERVICE"));
    let (s, ..) = step(
        "mutation($i: ID!) { returnItemFromService(input: {itemId: $i}) { item { status } errors { code } } }",
        tech.clone(),
        json!({"i": item}),
    )
    .await;
    assert_eq!(s.as_deref(), Some("IN_STOCK"));
    let (_, errors, _) = step(
        "mutation($i: ID!) { returnItemToConsignor(input: {itemId: $i}) { item { status } errors { code field } } }",
        owner.clone(),
        json!({"i": item}),
    )
    .await;
    assert_eq!(errors[0]["code"], "INVALID", "only consignments go back to a consignor");
    let (s, ..) = step("mutation($i: ID!) { updateItemDetails(input: {itemId: $i, condition: VERY_GOOD, notes: \"scratch on clasp\", authentication: {status: AUTHENTICATED, by: \"watchmaker\", certificate: \"C-9\"}, watch: {year: 2019, hasBox: true, hasPapers: false}}) { item { status } errors { code } } }", owner.clone(), json!({"i": item})).await;
    assert_eq!(s.as_deref(), Some("IN_STOCK"));
    let r = app.gql(Some(&owner), "query($i: ID!) { inventoryItem(id: $i) { condition notes authentication { status certificate } watch { year hasBox } version } }", json!({"i": item})).await;
    assert_eq!(
        r["data"]["inventoryItem"],
        json!({"condition": "VERY_GOOD", "notes": "scratch on clasp", "authentication": {"status": "AUTHENTICATED", "certificate": "C-9"}, "watch": {"year": 2019, "hasBox": true}, "version": 8}),
        "{r}"
    );
    let (s, ..) = step(
        "mutation($i: ID!) { archiveItem(input: {itemId: $i}) { item { status } errors { code } } }",
        owner.clone(),
        json!({"i": item}),
    )
    .await;
    assert_eq!(s.as_deref(), Some("ARCHIVED"));
    let (_, errors, _) = step(
        "mutation($i: ID!) { restockItem(input: {itemId: $i}) { item { status } errors { code } } }",
        owner.clone(),
        json!({"i": item}),
    )
    .await;
    assert_eq!(errors[0]["code"], "ILLEGAL_TRANSITION");
    // The technician may not reserve, the sales role may not archive.
    let r = app
        .gql(
            Some(&tech),
            "mutation($i: ID!, $c: ID!) { reserveItem(input: {itemId: $i, customerId: $c}) { errors { code } } }",
            json!({"i": item, "c": customer}),
        )
        .await;
    assert_eq!(code(&r), "FORBIDDEN");
}

const SALE_FIELDS: &str = "sale { id status salespersonId invoiceNumber total { amount } amountPaid { amount } balanceDue { amount } lines { itemId item { status } } payments { kind amount { amount } } customer { name } } position errors { field code message }";

async fn a_sale_is_drafted_confirmed_paid_refunded_and_fulfilled(app: TestApp) {
    let owner = app.owner().await;
    let customer = create_customer(&app, &owner, "Sam Sale").await;
    let item = acquire_item(&app, &owner, "1000.00").await;
    let r = app
        .gql(Some(&owner), &format!("mutation($c: ID!, $i: ID!) {{ createSale(input: {{customerId: $c, lines: [{{itemId: $i, price: {{amount: \"1000.00\", currency: \"USD\"}}, discount: {{amount: \"100.00\", currency: \"USD\"}}}}], tax: {{amount: \"72.00\", currency: \"USD\"}}, tradeIns: [{{category: WATCH, brand: \"Seiko\", model: \"SKX007\", credit: {{amount: \"172.00\", currency: \"USD\"}}}}], buyerName: \"Sam Sale\", buyerAddress: \"1 Main St\"}}) {{ {SALE_FIELDS} }} }}"), json!({"c": customer, "i": item}))
        .await;
    let sale = &r["data"]["createSale"]["sale"];
    assert_eq!(sale["status"], "DRAFT", "{r}");
    assert_eq!(sale["total"]["amount"], "800.00", "1000 - 100 + 72 tax - 172 trade-in");
    let id = sale["id"].as_str().unwrap().to_owned();
    let pay = |amount: &'static str, kind: &'static str, key: Option<&'static str>| {
        let (app, owner, id) = (&app, owner.clone(), id.clone());
        async move {
            app.gql(Some(&owner), &format!("mutation($s: ID!, $k: String) {{ recordPayment(input: {{saleId: $s, amount: {{amount: \"{amount}\", currency: \"USD\"}}, method: CARD, kind: {kind}, idempotencyKey: $k}}) {{ {SALE_FIELDS} }} }}"), json!({"s": id, "k": key})).await
        }
    };
    let r = pay("100.00", "DEPOSIT", None).await;
    assert_eq!(r["data"]["recordPayment"]["sale"]["status"], "DRAFT", "layaway deposit on a draft: {r}");
    let r = app
        .gql(
            Some(&owner),
            &format!("mutation($s: ID!) {{ confirmSale(input: {{saleId: $s}}) {{ {SALE_FIELDS} }} }}"),
            json!({"s": id}),
        )
        .await;
    let sale = &r["data"]["confirmSale"]["sale"];
    assert_eq!(sale["status"], "PARTIALLY_PAID", "{r}");
    assert_eq!(sale["invoiceNumber"], 1);
    assert_eq!(sale["lines"][0]["item"]["status"], "SOLD");
    assert_eq!(sale["customer"]["name"], "Sam Sale");
    let me = app.gql(Some(&owner), "{ me { userId } }", json!({})).await;
    assert_eq!(sale["salespersonId"], me["data"]["me"]["userId"], "the salesperson is who drafted it");
    // The trade-in is now inventory, acquired as TRADE_IN at its credit.
    let r = app.gql(Some(&owner), "{ inventoryItems(where: {brand: \"Seiko\"}) { edges { node { acquisitionSource cost { amount } status } } } }", json!({})).await;
    assert_eq!(
        r["data"]["inventoryItems"]["edges"][0]["node"],
        json!({"acquisitionSource": "TRADE_IN", "cost": {"amount": "172.00"}, "status": "IN_STOCK"}),
        "{r}"
    );
    // The same idempotency key twice records one payment.
    let first = pay("300.00", "PAYMENT", Some("pay-1")).await;
    let again = pay("300.00", "PAYMENT", Some("pay-1")).await;
    assert_eq!(first["data"]["recordPayment"]["sale"]["amountPaid"]["amount"], "400.00", "{first}");
    assert_eq!(again["data"]["recordPayment"]["sale"]["amountPaid"]["amount"], "400.00", "{again}");
    assert_eq!(again["data"]["recordPayment"]["errors"], json!([]));
    let r = pay("400.01", "PAYMENT", None).await;
    assert_eq!(r["data"]["recordPayment"]["errors"][0]["code"], "AMOUNT_NOT_ALLOWED", "{r}");
    let r = pay("400.00", "PAYMENT", None).await;
    assert_eq!(r["data"]["recordPayment"]["sale"]["status"], "PAID");
    assert_eq!(r["data"]["recordPayment"]["sale"]["balanceDue"]["amount"], "0.00");
    let refund = |amount: &'static str| {
        let (app, owner, id) = (&app, owner.clone(), id.clone());
        async move {
            app.gql(Some(&owner), &format!("mutation($s: ID!) {{ refundPayment(input: {{saleId: $s, amount: {{amount: \"{amount}\", currency: \"USD\"}}, reason: \"goodwill\"}}) {{ {SALE_FIELDS} }} }}"), json!({"s": id})).await
        }
    };
    assert_eq!(refund("800.01").await["data"]["refundPayment"]["errors"][0]["code"], "AMOUNT_NOT_ALLOWED");
    let r = refund("50.00").await;
    assert_eq!(r["data"]["refundPayment"]["sale"]["status"], "PARTIALLY_PAID", "{r}");
    pay("50.00", "PAYMENT", None).await;
    let r = app
        .gql(
            Some(&owner),
            &format!("mutation($s: ID!) {{ fulfilSale(input: {{saleId: $s}}) {{ {SALE_FIELDS} }} }}"),
            json!({"s": id}),
        )
        .await;
    assert_eq!(r["data"]["fulfilSale"]["sale"]["status"], "FULFILLED", "{r}");
    // Lifetime value is derived from the confirmed sale.
    let r = app
        .gql(
            Some(&owner),
            "query($c: ID!) { customer(id: $c) { lifetimeValue { amount currency } orderCount } }",
            json!({"c": customer}),
        )
        .await;
    assert_eq!(
        r["data"]["customer"],
        json!({"lifetimeValue": {"amount": "800.00", "currency": "USD"}, "orderCount": 1}),
        "{r}"
    );
    // The item cannot be sold again: a second sale of it is rejected on confirmation.
    let r = app
        .gql(Some(&owner), &format!("mutation($i: ID!) {{ createSale(input: {{lines: [{{itemId: $i, price: {{amount: \"900.00\", currency: \"USD\"}}}}]}}) {{ {SALE_FIELDS} }} }}"), json!({"i": item}))
        .await;
    let second = r["data"]["createSale"]["sale"]["id"].as_str().unwrap().to_owned();
    let r = app
        .gql(
            Some(&owner),
            &format!("mutation($s: ID!) {{ confirmSale(input: {{saleId: $s}}) {{ {SALE_FIELDS} }} }}"),
            json!({"s": second}),
        )
        .await;
    assert_eq!(r["data"]["confirmSale"]["errors"][0]["code"], "ILLEGAL_TRANSITION", "{r}");
    // Mixing currencies in one sale is rejected.
    let r = app
        .gql(Some(&owner), &format!("mutation($i: ID!) {{ createSale(input: {{lines: [{{itemId: $i, price: {{amount: \"900.00\", currency: \"USD\"}}}}], tax: {{amount: \"1.00\", currency: \"EUR\"}}}}) {{ {SALE_FIELDS} }} }}"), json!({"i": item}))
        .await;
    assert_eq!(r["data"]["createSale"]["errors"][0]["code"], "CURRENCY_MISMATCH", "{r}");
    // History: the sale as of a time before its confirmation was a draft.
    let r = app.gql(Some(&owner), "query($s: ID!) { sales(where: {status: FULFILLED}) { totalCount } sale(id: $s, asOf: \"2999-01-01T00:00:00Z\") { status invoiceNumber } }", json!({"s": id})).await;
    assert_eq!(r["data"]["sales"]["totalCount"], 1, "{r}");
    assert_eq!(r["data"]["sale"], json!({"status": "FULFILLED", "invoiceNumber": 1}));
    // Buyer identity is legal-hold personal data: not in the log in plaintext.
    let raw = raw_payloads(&app).await;
    assert!(raw.iter().all(|p| !p.contains("1 Main St") && !p.contains("Sam Sale")), "buyer identity in plaintext");
}

async fn raw_payloads(app: &TestApp) -> Vec<String> {
    match &app.state.db {
        Database::Sqlite(b) => sqlx::query_scalar("SELECT payload FROM events").fetch_all(b.reader()).await.unwrap(),
        Database::Postgres(b) => sqlx::query_scalar("SELECT payload FROM events").fetch_all(b.pool()).await.unwrap(),
    }
}

async fn events_record_who_why_and_the_correlation_the_client_sent(app: TestApp) {
    let owner = app.owner().await;
    let item = acquire_item(&app, &owner, "900.00").await;
    let correlation = uuid::Uuid::now_v7();
    let r = app
        .client
        .post(format!("{}/graphql", app.url))
        .bearer_auth(&owner)
        .header("x-correlation-id", correlation.to_string())
        .json(&json!({"query": "mutation($i: ID!) { changeItemPrice(input: {itemId: $i, askingPrice: {amount: \"850.00\", currency: \"USD\"}, reason: \"aged stock\"}) { errors { code } } }", "variables": {"i": item}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let events = app.state.store.read_stream(&format!("item-{item}"), 0).await.unwrap();
    let m = &events.last().unwrap().metadata;
    assert_eq!(m.correlation_id, correlation);
    assert_eq!(m.reason.as_deref(), Some("aged stock"));
    assert_eq!((m.actor.kind.as_str(), m.actor.role.as_deref()), ("user", Some("OWNER")));
    assert!(m.causation_id.is_some() && m.causation_id == m.request_id, "caused by the request");
    assert_eq!(m.source, "graphql");
}

async fn cancelling_a_confirmed_sale_voids_its_invoice_and_restocks_the_item(app: TestApp) {
    let owner = app.owner().await;
    let item = acquire_item(&app, &owner, "700.00").await;
    let r = app
        .gql(Some(&owner), &format!("mutation($i: ID!) {{ createSale(input: {{lines: [{{itemId: $i, price: {{amount: \"700.00\", currency: \"USD\"}}}}]}}) {{ {SALE_FIELDS} }} }}"), json!({"i": item}))
        .await;
    let id = r["data"]["createSale"]["sale"]["id"].as_str().unwrap().to_owned();
    let r = app
        .gql(
            Some(&owner),
            &format!("mutation($s: ID!) {{ confirmSale(input: {{saleId: $s}}) {{ {SALE_FIELDS} }} }}"),
            json!({"s": id}),
        )
        .await;
    assert_eq!(r["data"]["confirmSale"]["sale"]["invoiceNumber"], 1, "{r}");
    assert_eq!(item_status(&app, &owner, &item).await, "SOLD");
    let sales = app.staff(Role::Sales).await;
    let r = app.gql(Some(&sales), &format!("mutation($s: ID!) {{ cancelSale(input: {{saleId: $s, reason: \"changed mind\"}}) {{ {SALE_FIELDS} }} }}"), json!({"s": id})).await;
    assert_eq!(r["data"]["cancelSale"]["sale"]["status"], "CANCELLED", "{r}");
    assert_eq!(item_status(&app, &owner, &item).await, "IN_STOCK");
    let r = app
        .gql(
            Some(&sales),
            "mutation($s: ID!) { returnSale(input: {saleId: $s}) { errors { code } } }",
            json!({"s": id}),
        )
        .await;
    assert_eq!(code(&r), "FORBIDDEN", "sales staff cannot take money back");
}

async fn consent_is_granted_withdrawn_and_answerable_as_of_an_instant(app: TestApp) {
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

async fn a_retried_mutation_with_an_idempotency_key_returns_the_first_result(app: TestApp) {
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

async fn duplicate_customers_merge_into_a_survivor_that_keeps_their_history(app: TestApp) {
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

/// Everything the process logs, at every level, from the first test that asks.
fn captured_logs() -> &'static std::sync::Mutex<Vec<u8>> {
    static LOGS: std::sync::OnceLock<&'static std::sync::Mutex<Vec<u8>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer: &'static std::sync::Mutex<Vec<u8>> = Box::leak(Box::new(std::sync::Mutex::new(Vec::new())));
        struct Writer(&'static std::sync::Mutex<Vec<u8>>);
        impl std::io::Write for Writer {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
            .with_ansi(false)
            .with_writer(move || Writer(buffer))
            .try_init();
        buffer
    })
}

async fn personal_data_never_reaches_the_logs(app: TestApp) {
    let logs = captured_logs();
    let owner = app.owner().await;
    let secrets = ["Zelda Loggington", "zelda.logs@example.org", "+44 20 7946 0321", "77 Hidden Mews"];
    let r = app
        .gql(Some(&owner), "mutation($n: String!, $e: String, $p: String, $a: String) { createCustomer(input: {name: $n, email: $e, phone: $p, address: $a}) { customer { id } errors { code } } }", json!({"n": secrets[0], "e": secrets[1], "p": secrets[2], "a": secrets[3]}))
        .await;
    let id = r["data"]["createCustomer"]["customer"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    // Failures too: a bad email, a failed login, a query for it.
    app.gql(
        Some(&owner),
        "mutation($e: String) { createCustomer(input: {name: \"X\", email: $e}) { errors { message } } }",
        json!({"e": "zelda.logs@"}),
    )
    .await;
    app.gql(
        None,
        "mutation($e: String!) { login(input: {email: $e, password: \"not-her-password\"}) { token } }",
        json!({"e": secrets[1]}),
    )
    .await;
    app.gql(Some(&owner), "query($id: ID!) { customer(id: $id) { name email phone address } }", json!({"id": id}))
        .await;
    app.gql(None, &format!("{{ customers(where: {{email: \"{}\"}}) {{ totalCount }} }}", secrets[1]), json!({})).await;
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    assert!(text.contains("request"), "the capture works: requests are logged");
    for secret in secrets.iter().chain(["zelda.logs@", "not-her-password"].iter()) {
        assert!(!text.contains(secret), "{secret:?} reached the logs");
    }
}

async fn every_request_has_an_id_in_the_response_the_logs_and_its_events(app: TestApp) {
    let logs = captured_logs();
    let owner = app.owner().await;
    let mine = uuid::Uuid::now_v7().to_string();
    let r = app
        .client
        .post(format!("{}/graphql", app.url))
        .bearer_auth(&owner)
        .header("x-request-id", &mine)
        .json(&json!({"query": ACQUIRE, "variables": acquire_input("123.00")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"].to_str().unwrap(), mine, "the client's id is kept");
    let body: Value = r.json().await.unwrap();
    let item = body["data"]["acquireItem"]["item"]["id"].as_str().unwrap().to_owned();
    let events = app.state.store.read_stream(&format!("item-{item}"), 0).await.unwrap();
    assert_eq!(events[0].metadata.request_id.map(|u| u.to_string()), Some(mine.clone()), "and recorded with the event");
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    assert!(text.lines().any(|l| l.contains(&mine) && l.contains("request")), "and on the request's log line");
    // Without one, or with one that is not a UUID, the server makes one.
    for sent in [None, Some("not-a-uuid")] {
        let mut req = app.client.get(format!("{}/healthz", app.url));
        if let Some(s) = sent {
            req = req.header("x-request-id", s);
        }
        let r = req.send().await.unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    }
}

async fn rejected_commands_and_retried_conflicts_are_not_error_lines(app: TestApp) {
    let logs = captured_logs();
    let owner = app.owner().await;
    let r = app
        .gql(
            Some(&owner),
            "mutation { createCustomer(input: {name: \"Conflict Carla\"}) { customer { id } } }",
            json!({}),
        )
        .await;
    let id = r["data"]["createCustomer"]["customer"]["id"].as_str().unwrap().to_owned();
    const UPDATE: &str = "mutation($id: ID!, $n: String, $e: String) { updateCustomer(input: {customerId: $id, name: $n, email: $e}) { errors { code } } }";
    // Eight writers on one customer: their appends conflict and are retried.
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let (client, url, owner, id) = (app.client.clone(), app.url.clone(), owner.clone(), id.clone());
            tokio::spawn(async move {
                let body = json!({"query": UPDATE, "variables": {"id": id, "n": format!("Carla Writer {i}")}});
                let r: Value = client
                    .post(format!("{url}/graphql"))
                    .bearer_auth(owner)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(r["data"]["updateCustomer"]["errors"], json!([]), "{r}");
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    // And a command the domain rejects.
    let r = app.gql(Some(&owner), UPDATE, json!({"id": id, "e": "not-an-email"})).await;
    assert_eq!(r["data"]["updateCustomer"]["errors"][0]["code"], "INVALID", "{r}");
    let stream = format!("customer-{id}");
    assert_eq!(app.state.store.read_stream(&stream, 0).await.unwrap().len(), 9, "every update landed once");
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    let about: Vec<&str> = text.lines().filter(|l| l.contains(&stream)).collect();
    assert!(!about.is_empty(), "the capture sees this customer's commands");
    let errors: Vec<&&str> = about.iter().filter(|l| l.contains(" ERROR ")).collect();
    assert!(errors.is_empty(), "rejections and conflicts logged as errors: {errors:#?}");
}

macro_rules! api_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::spawn_app(eventstore::testing::TestDatabase::sqlite()).await).await
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(db) = eventstore::testing::TestDatabase::postgres().await else { return };
                super::$name(super::spawn_app(db).await).await
            })*
        }
    };
}

api_tests!(
    item_payloads_come_from_the_items_own_fold_without_waiting_for_the_read_model,
    the_readme_example_works_when_pasted,
    a_subscriber_gets_what_it_missed_then_live_events_without_gap_or_duplicate,
    the_feed_shows_only_the_callers_store_and_what_their_role_may_read,
    entity_feeds_carry_the_new_state,
    the_websocket_protocol_is_enforced_with_its_close_codes,
    trusted_documents_mode_runs_only_the_allowlist,
    ending_a_session_closes_its_sockets,
    connections_per_session_are_limited_and_slow_subscribers_are_disconnected,
    a_wrong_password_or_unknown_email_is_unauthenticated,
    a_missing_or_forged_token_is_unauthenticated,
    malformed_input_gets_typed_errors_and_writes_nothing,
    mutations_return_a_position_that_reads_your_writes,
    a_store_never_sees_another_stores_data,
    roles_are_enforced_least_privilege,
    lists_paginate_with_keyset_cursors,
    customers_are_created_updated_and_filtered,
    an_item_moves_through_its_lifecycle_and_illegal_moves_are_rejected,
    a_sale_is_drafted_confirmed_paid_refunded_and_fulfilled,
    cancelling_a_confirmed_sale_voids_its_invoice_and_restocks_the_item,
    consent_is_granted_withdrawn_and_answerable_as_of_an_instant,
    a_retried_mutation_with_an_idempotency_key_returns_the_first_result,
    duplicate_customers_merge_into_a_survivor_that_keeps_their_history,
    personal_data_never_reaches_the_logs,
    events_record_who_why_and_the_correlation_the_client_sent,
    repeated_failed_logins_are_throttled,
    rejected_commands_and_retried_conflicts_are_not_error_lines,
    every_request_has_an_id_in_the_response_the_logs_and_its_events,
    // staff.rs
    sales_auditor_and_compliance_are_invited_and_each_sees_what_their_role_allows,
    managers_cannot_make_owners_nobody_raises_their_own_role_and_a_store_keeps_an_owner,
    sessions_end_at_once_on_logout_revocation_role_change_deactivation_and_password_change,
    a_password_reset_is_single_use_and_ends_every_session,
    an_email_that_is_staff_of_two_stores_chooses_its_store,
    login_throttles_cover_spraying_and_distributed_guessing_and_survive_a_restart,
    hostile_requests_are_refused_with_clear_errors_and_write_nothing,
    a_connection_that_never_finishes_its_headers_is_closed,
    a_browser_origin_is_allowed_only_when_configured,
    readiness_fails_when_a_projection_stops,
    metrics_count_requests_appends_and_projection_lag_without_personal_data,
    // matrix.rs
    every_root_field_answers_every_role_as_the_permission_table_says,
    // inputs.rs
    selling_below_the_floor_price_needs_approve_discounts,
    references_to_records_that_do_not_exist_are_not_found,
    an_idempotency_key_reused_with_different_input_is_refused,
    only_active_iso_currencies_are_accepted,
    customer_tags_are_encrypted_in_the_log,
    holds_cannot_start_in_the_past_and_a_lapsed_reservation_stops_blocking,
    // isolation.rs
    store_a_reaches_none_of_store_b_through_any_id_argument,
    // ledger.rs
    an_auditor_saves_a_head_and_proves_inclusion_and_growth_independently,
    // audit.rs
    every_event_has_an_audit_entry_with_who_what_why_and_the_correlation,
    // privacy.rs
    an_erased_customer_leaves_no_plaintext_and_keeps_a_completed_case,
    erasure_requests_are_checked_before_anything_is_destroyed,
    a_deletion_certificate_proves_the_erasure_and_keeps_the_invoice,
    a_subject_export_holds_everything_about_them_and_is_itself_recorded,
    a_former_staff_member_is_erased_but_stays_a_pseudonym_in_the_audit_trail,
    // marketing.rs
    the_marketing_audience_follows_consent_restriction_and_erasure_as_of_any_instant,
    // retention.rs
    retention_ends_holds_trims_the_audit_and_shreds_a_closed_store,
    // http.rs
    graphql_over_http_follows_the_specification,
    automatic_persisted_queries_run_by_hash_once_registered,
);

#[test]
fn the_schema_matches_the_golden_file() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../api/schema.graphql");
    let sdl = api::schema_sdl();
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(path, &sdl).unwrap();
    }
    let golden = std::fs::read_to_string(path).unwrap_or_default();
    assert!(golden == sdl, "api/schema.graphql is out of date: rerun with UPDATE_GOLDEN=1 and review the diff");
}
