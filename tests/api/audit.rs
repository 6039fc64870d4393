//! The audit trail and raw stream history, over real HTTP on both backends.

use super::{acquire_input, code, TestApp, ACQUIRE};
use domain::staff::Role;
use serde_json::{json, Value};

const TRAIL: &str = "query($w: AuditWhere, $after: String) { auditTrail(first: 100, where: $w, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { eventId position eventType summary reason correlationId requestId causationId
      actor { kind id role name } entity { type id label } action { eventType summary }
      changes { field value personal erased } } } } }";

impl TestApp {
    /// Every audit entry matching `w`, newest first.
    async fn trail(&self, token: &str, w: Value) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = Value::Null;
        loop {
            let r = self.gql(Some(token), TRAIL, json!({"w": w, "after": after})).await;
            let c = &r["data"]["auditTrail"];
            out.extend(c["edges"].as_array().unwrap_or_else(|| panic!("{r}")).iter().map(|e| e["node"].clone()));
            if c["pageInfo"]["hasNextPage"] != true {
                return out;
            }
            after = c["pageInfo"]["endCursor"].clone();
        }
    }

    async fn caught_up(&self) {
        let all = self.state.store.backend().read_committed(eventstore::Position::START, 1_000_000).await.unwrap();
        let last = all.last().unwrap().position;
        self.state.projections.wait_for(last, std::time::Duration::from_secs(20)).await.unwrap();
    }
}

pub(crate) async fn every_event_has_an_audit_entry_with_who_what_why_and_the_correlation(app: TestApp) {
    let owner = app.owner().await;
    let auditor = app.staff(Role::Auditor).await;
    let correlation = uuid::Uuid::now_v7().to_string();
    let post = |token: &str, body: Value| {
        let (client, url, token, correlation) =
            (app.client.clone(), app.url.clone(), token.to_owned(), correlation.clone());
        async move {
            let r: Value = client
                .post(format!("{url}/graphql"))
                .bearer_auth(token)
                .header("x-correlation-id", correlation)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r
        }
    };
    let mut input = acquire_input("31500.00");
    input["input"]["brand"] = json!("Rolex");
    input["input"]["model"] = json!("Daytona");
    let r = post(&owner, json!({"query": ACQUIRE, "variables": input})).await;
    let item = r["data"]["acquireItem"]["item"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let r = post(&owner, json!({"query": "mutation($i: ID!) { changeItemPrice(input: {itemId: $i, askingPrice: {amount: \"29900.00\", currency: \"USD\"}, reason: \"aged stock\"}) { errors { code } } }", "variables": {"i": item}})).await;
    assert_eq!(r["data"]["changeItemPrice"]["errors"], json!([]), "{r}");
    let r = post(&owner, json!({"query": "mutation { createCustomer(input: {name: \"Audrey Trail\", email: \"audrey@trail.example\"}) { customer { id } } }"})).await;
    let customer = r["data"]["createCustomer"]["customer"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    app.caught_up().await;

    // Every event of the store has exactly one entry.
    let store_id: uuid::Uuid = app.store_id(&owner).await.parse().unwrap();
    let events = app.state.store.backend().read_committed(eventstore::Position::START, 1_000_000).await.unwrap();
    let mut expected: Vec<String> =
        events.iter().filter(|e| e.store_id == store_id).map(|e| e.event_id.to_string()).collect();
    let all = app.trail(&auditor, json!(null)).await;
    let mut got: Vec<String> = all.iter().map(|e| e["eventId"].as_str().unwrap().to_owned()).collect();
    let positions: Vec<&str> = all.iter().map(|e| e["position"].as_str().unwrap()).collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "one entry per event");
    let order: Vec<(i64, i64)> = positions
        .iter()
        .map(|p| {
            let (a, b) = p.split_once('.').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] > w[1]), "newest first");

    // This request flow: who, what, why.
    let flow = app.trail(&auditor, json!({"correlationId": correlation})).await;
    let types: Vec<&str> = flow.iter().map(|e| e["eventType"].as_str().unwrap()).collect();
    assert!(
        types.contains(&"ItemAcquired") && types.contains(&"ItemPriceChanged") && types.contains(&"CustomerRegistered"),
        "{types:?}"
    );
    let owner_id = app.gql(Some(&owner), "{ me { userId } }", json!({})).await["data"]["me"]["userId"].clone();
    for e in &flow {
        assert_eq!(e["actor"]["id"], owner_id, "{e}");
        assert_eq!(e["actor"]["role"], "OWNER");
        assert!(e["requestId"].is_string() && e["causationId"] == e["requestId"], "{e}");
    }
    let price = flow.iter().find(|e| e["eventType"] == "ItemPriceChanged").unwrap();
    assert_eq!(price["summary"], "Asking price 31,500.00 USD → 29,900.00 USD", "{price}");
    assert_eq!(price["reason"], "aged stock");
    assert_eq!(price["entity"], json!({"type": "InventoryItem", "id": item, "label": "Rolex Daytona"}));
    assert!(price["changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["field"] == "askingPrice" && !c["personal"].as_bool().unwrap()));

    // Filters: by entity, by event type, by role.
    let on_item = app.trail(&auditor, json!({"entityType": "InventoryItem", "entityId": item})).await;
    assert_eq!(on_item.len(), 2, "{on_item:?}");
    let typed = app.trail(&auditor, json!({"eventTypes": ["CustomerRegistered"]})).await;
    assert!(typed.iter().all(|e| e["eventType"] == "CustomerRegistered") && !typed.is_empty());
    let by_sales = app.trail(&auditor, json!({"role": "SALES"})).await;
    assert!(by_sales.is_empty(), "no sales staff acted: {by_sales:?}");

    // Personal values: visible to the auditor while the key exists, erased after.
    let reg = app.trail(&auditor, json!({"entityType": "Customer", "entityId": customer})).await;
    let name = reg[0]["changes"].as_array().unwrap().iter().find(|c| c["field"] == "name").unwrap().clone();
    assert_eq!(name, json!({"field": "name", "value": "\"Audrey Trail\"", "personal": true, "erased": false}));
    let stored = sqlx_rows_text(&app).await;
    assert!(
        !stored.contains("Audrey Trail") && !stored.contains("audrey@trail.example"),
        "the audit read model holds no personal data"
    );
    app.state
        .store
        .destroy_subject_keys(store_id, customer.parse().unwrap(), &[domain::KeyClass::Profile])
        .await
        .unwrap();
    let reg = app.trail(&auditor, json!({"entityType": "Customer", "entityId": customer})).await;
    let name = reg[0]["changes"].as_array().unwrap().iter().find(|c| c["field"] == "name").unwrap().clone();
    assert_eq!(name, json!({"field": "name", "value": null, "personal": true, "erased": true}));

    // Raw history: the stream's envelopes, erased fields marked.
    let r = app
        .gql(Some(&auditor), "query($s: String!) { streamEvents(streamId: $s) { edges { node { version eventType payload metadata hash prevHash } } } }", json!({"s": format!("customer-{customer}")}))
        .await;
    let node = &r["data"]["streamEvents"]["edges"][0]["node"];
    let payload: Value = serde_json::from_str(node["payload"].as_str().unwrap_or_else(|| panic!("{r}"))).unwrap();
    assert_eq!(payload["name"], json!({"$erased": true, "class": "profile"}), "{payload}");
    assert_eq!(node["prevHash"], "0".repeat(64));
    let meta: Value = serde_json::from_str(node["metadata"].as_str().unwrap()).unwrap();
    assert_eq!(meta["correlation_id"], json!(correlation));
    let r = app
        .gql(
            Some(&auditor),
            "query($s: String!) { streamEvents(streamId: $s) { edges { node { payload } } } }",
            json!({"s": format!("item-{item}")}),
        )
        .await;
    let first: Value =
        serde_json::from_str(r["data"]["streamEvents"]["edges"][0]["node"]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(first["brand"], "Rolex");

    // Who may read it: not sales staff.
    let sales = app.staff(Role::Sales).await;
    assert_eq!(code(&app.gql(Some(&sales), TRAIL, json!({})).await), "FORBIDDEN");
    assert_eq!(
        code(&app.gql(Some(&sales), "{ streamEvents(streamId: \"x\") { edges { cursor } } }", json!({})).await),
        "FORBIDDEN"
    );
    // Another store's stream reads as empty.
    let (_, _, position) = commands::stores::create_store(
        &app.state.store,
        &app.state.accounts,
        "test",
        "Elsewhere",
        "else@where.test",
        "Quiet-Meadow-Lark-44",
    )
    .await
    .unwrap();
    app.state.projections.wait_for(position, std::time::Duration::from_secs(20)).await.unwrap();
    let other = app.login("else@where.test", "Quiet-Meadow-Lark-44").await;
    let r = app
        .gql(
            Some(&other),
            "query($s: String!) { streamEvents(streamId: $s) { edges { cursor } } }",
            json!({"s": format!("item-{item}")}),
        )
        .await;
    assert_eq!(r["data"]["streamEvents"]["edges"], json!([]), "{r}");
    let r = app.gql(Some(&other), "{ auditTrail { totalCount } }", json!({})).await;
    assert_eq!(r["data"]["auditTrail"]["totalCount"], 2, "only its own two events: {r}");
}

/// Every text column of the audit read model, concatenated.
async fn sqlx_rows_text(app: &TestApp) -> String {
    let rows = app.state.read.dump(projections::Kind::Audit).await.unwrap();
    rows.join("\n")
}
