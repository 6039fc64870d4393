//! Tenancy, walked from the schema: every Query and Mutation field that takes an id (as an
//! argument or inside its input) is called by store A's owner with store B's ids. Each must
//! answer "not found" (or "forbidden"), never B's data, and B's log must not change. A new field
//! is covered without touching this test.

use super::{acquire_input, TestApp, ACQUIRE};
use api::auth::{root_field_access, Access};
use serde_json::{json, Value};
use std::collections::HashMap;

const INTROSPECTION: &str = "{ __schema { types {
    name kind enumValues { name } inputFields { name defaultValue type { ...T } }
    fields { name args { name defaultValue type { ...T } } type { ...T } } } } }
  fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

/// Store B's ids, by the name of the argument or input field that carries them.
struct Foreign {
    ids: HashMap<&'static str, String>,
}

impl Foreign {
    fn id_for(&self, root: &str, name: &str) -> String {
        let kind = match name {
            "itemId" => "item",
            "customerId" | "counterpartyId" | "survivorId" => "customer",
            "saleId" => "sale",
            "staffId" | "assignedToId" => "staff",
            "sessionId" => "session",
            "storeId" => "store",
            "id" => match root {
                "inventoryItem" => "item",
                "customer" => "customer",
                "sale" => "sale",
                "staffMember" => "staff",
                _ => "item",
            },
            _ => "item",
        };
        self.ids[kind].clone()
    }
}

struct Types(HashMap<String, Value>);

fn string_for(name: &str) -> &'static str {
    match name {
        "currency" => "\"USD\"",
        "amount" => "\"1.00\"",
        "email" => "\"iso@test.test\"",
        "password" | "newPassword" | "currentPassword" => "\"Iso-Test-Strong-Pass-1\"",
        _ => "\"Iso Test\"",
    }
}

impl Types {
    /// A literal of type `t` for `name`, with B's ids wherever an id goes. Returns whether an id
    /// was placed.
    fn literal(&self, root: &str, name: &str, t: &Value, foreign: &Foreign, placed: &mut bool) -> String {
        match t["kind"].as_str().unwrap() {
            "NON_NULL" => self.literal(root, name, &t["ofType"], foreign, placed),
            "LIST" => format!("[{}]", self.literal(root, name, &t["ofType"], foreign, placed)),
            "SCALAR" => match t["name"].as_str().unwrap() {
                "ID" => {
                    *placed = true;
                    format!("\"{}\"", foreign.id_for(root, name))
                }
                "Int" => "1".into(),
                "Boolean" => "true".into(),
                "Decimal" => "\"1.00\"".into(),
                "DateTime" => "\"2030-01-01T00:00:00Z\"".into(),
                "NaiveDate" | "Date" => "\"2000-01-01\"".into(),
                _ => string_for(name).into(),
            },
            "ENUM" => self.0[t["name"].as_str().unwrap()]["enumValues"][0]["name"].as_str().unwrap().to_owned(),
            "INPUT_OBJECT" => {
                let ty = &self.0[t["name"].as_str().unwrap()];
                let fields: Vec<String> = ty["inputFields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    // Required fields, and every optional id (an optional reference must be
                    // checked as much as a required one).
                    .filter(|f| (f["type"]["kind"] == "NON_NULL" && f["defaultValue"].is_null()) || is_id(&f["type"]))
                    .map(|f| {
                        let n = f["name"].as_str().unwrap();
                        format!("{n}: {}", self.literal(root, n, &f["type"], foreign, placed))
                    })
                    .collect();
                format!("{{{}}}", fields.join(", "))
            }
            other => panic!("unexpected input kind {other}"),
        }
    }

    fn selection(&self, t: &Value) -> String {
        match t["kind"].as_str().unwrap() {
            "NON_NULL" | "LIST" => self.selection(&t["ofType"]),
            "OBJECT" => {
                let ty = &self.0[t["name"].as_str().unwrap()];
                let names: Vec<&str> =
                    ty["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
                let mut sel = vec!["__typename".to_owned()];
                if names.contains(&"errors") {
                    sel.push("errors { field code }".into());
                }
                if names.contains(&"totalCount") {
                    sel.push("totalCount".into());
                }
                if names.contains(&"id") {
                    sel.push("id".into());
                }
                if names.contains(&"changes") {
                    sel.push("changes { __typename }".into());
                }
                format!(" {{ {} }}", sel.join(" "))
            }
            _ => String::new(),
        }
    }
}

fn is_id(t: &Value) -> bool {
    match t["kind"].as_str().unwrap_or("") {
        "NON_NULL" | "LIST" => is_id(&t["ofType"]),
        _ => t["name"] == "ID",
    }
}

/// Every event of a store, as (stream, version): what must not change.
async fn log_of(app: &TestApp, store_id: uuid::Uuid) -> Vec<(String, u64)> {
    let events = app.state.store.backend().read_committed(eventstore::Position::START, 1_000_000).await.unwrap();
    events.into_iter().filter(|e| e.store_id == store_id).map(|e| (e.stream_id, e.version)).collect()
}

pub(crate) async fn store_a_reaches_none_of_store_b_through_any_id_argument(app: TestApp) {
    // Store B, with one of everything.
    let (b_store, b_owner, position) = commands::stores::create_store(
        &app.state.store,
        &app.state.accounts,
        "test",
        "Branch B",
        "b-owner@shop.test",
        "Honey-Comb-Vault-2026",
    )
    .await
    .unwrap();
    app.state.projections.wait_for(position, std::time::Duration::from_secs(20)).await.unwrap();
    let b = app.login("b-owner@shop.test", "Honey-Comb-Vault-2026").await;
    let item = app.gql(Some(&b), super::ACQUIRE, super::acquire_input("900.00")).await["data"]["acquireItem"]["item"]
        ["id"]
        .clone();
    let customer = app
        .gql(Some(&b), "mutation { createCustomer(input: {name: \"Bea Bee\"}) { customer { id } } }", json!({}))
        .await["data"]["createCustomer"]["customer"]["id"]
        .clone();
    let sale = app
        .gql(
            Some(&b),
            "mutation($i: ID!, $c: ID) { createSale(input: {customerId: $c, lines: [{itemId: $i, price: {amount: \"900.00\", currency: \"USD\"}}]}) { sale { id } } }",
            json!({"i": item, "c": customer}),
        )
        .await["data"]["createSale"]["sale"]["id"]
        .clone();
    let session = app.gql(Some(&b), "{ me { sessionId } }", json!({})).await["data"]["me"]["sessionId"].clone();
    let s = |v: &Value| v.as_str().unwrap_or_else(|| panic!("setup failed: {v}")).to_owned();
    let foreign = Foreign {
        ids: HashMap::from([
            ("item", s(&item)),
            ("customer", s(&customer)),
            ("sale", s(&sale)),
            ("staff", b_owner.to_string()),
            ("session", s(&session)),
            ("store", b_store.to_string()),
        ]),
    };
    let before = log_of(&app, b_store.as_uuid()).await;

    let a = app.owner().await;
    let schema = app.gql(Some(&a), INTROSPECTION, json!({})).await;
    let types = schema["data"]["__schema"]["types"].as_array().unwrap_or_else(|| panic!("{schema}"));
    let types = Types(types.iter().map(|t| (t["name"].as_str().unwrap().to_owned(), t.clone())).collect());

    let mut walked = Vec::new();
    for (op, parent) in [("query", "Query"), ("mutation", "Mutation")] {
        for field in types.0[parent]["fields"].as_array().unwrap() {
            let name = field["name"].as_str().unwrap();
            if root_field_access(parent, name) == Some(Access::Public) {
                continue; // no session, so no store to escape from
            }
            let mut placed = false;
            let args: Vec<String> = field["args"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| {
                    (a["type"]["kind"] == "NON_NULL" && a["defaultValue"].is_null())
                        || is_id(&a["type"])
                        || a["type"]["kind"] == "INPUT_OBJECT" && a["name"] == "where"
                })
                .map(|a| {
                    let n = a["name"].as_str().unwrap();
                    format!("{n}: {}", types.literal(name, n, &a["type"], &foreign, &mut placed))
                })
                .collect();
            if !placed {
                continue;
            }
            let args = if args.is_empty() { String::new() } else { format!("({})", args.join(", ")) };
            let operation = format!("{op} {{ {name}{args}{} }}", types.selection(&field["type"]));
            // A fresh session each time (revokeSession and the like end nothing of A's here, but
            // keep the calls independent).
            let r = app.gql(Some(&a), &operation, json!({})).await;
            let data = &r["data"][name];
            let error = r["errors"][0]["extensions"]["code"].as_str();
            let payload_error = data["errors"][0]["code"].as_str();
            let refused = matches!(error, Some("NOT_FOUND" | "FORBIDDEN"))
                || matches!(payload_error, Some("NOT_FOUND" | "FORBIDDEN"))
                || data.is_null()
                || data["totalCount"] == 0
                || data["changes"].as_array().is_some_and(|c| c.is_empty());
            assert!(refused, "store A reached store B through {operation}: {r}");
            // Nothing of B's comes back, beyond an echo of the id that was asked about.
            if data["id"].is_string() {
                assert!(!foreign.ids.values().any(|id| data["id"] == json!(id)), "{operation}: {r}");
            }
            walked.push(name.to_owned());
        }
    }
    for must in [
        "inventoryItem",
        "customer",
        "sale",
        "staffMember",
        "changeItemPrice",
        "reserveItem",
        "createSale",
        "confirmSale",
        "recordPayment",
        "grantConsent",
        "changeStaffRole",
        "deactivateStaff",
        "revokeSession",
        "consentLedger",
    ] {
        assert!(walked.iter().any(|w| w == must), "{must} was walked: {walked:?}");
    }
    assert_eq!(log_of(&app, b_store.as_uuid()).await, before, "store B's log is unchanged");
    // B still works.
    let r = app.gql(Some(&b), "{ inventoryItems { totalCount } sales { totalCount } }", json!({})).await;
    assert_eq!(r["data"]["inventoryItems"]["totalCount"], 1, "{r}");
}

pub(crate) async fn a_store_never_sees_another_stores_data(app: TestApp) {
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
