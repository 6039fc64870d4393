//! Items over the API: the README's example pasted, keyset pages, an item's lifecycle,
//! positions that read your writes, and malformed input refused without writing.

use super::*;

/// The `-d '…'` bodies of the README's example, in order.
pub(crate) fn readme_bodies() -> Vec<Value> {
    let readme = include_str!("../../README.md");
    let section = readme.split("## Example GraphQL exchange").nth(1).expect("README has the example section");
    let section = section.split("\n## ").next().unwrap();
    section
        .split("-d '")
        .skip(1)
        .map(|rest| serde_json::from_str(rest.split('\'').next().unwrap()).expect("README body is JSON"))
        .collect()
}

pub(crate) async fn the_readme_example_works_when_pasted(app: TestApp) {
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

pub(crate) async fn malformed_input_gets_typed_errors_and_writes_nothing(app: TestApp) {
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

pub(crate) async fn mutations_return_a_position_that_reads_your_writes(app: TestApp) {
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

pub(crate) async fn lists_paginate_with_keyset_cursors(app: TestApp) {
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

pub(crate) async fn an_item_moves_through_its_lifecycle_and_illegal_moves_are_rejected(app: TestApp) {
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
