//! Mutation payloads that come from the command's own fold rather than the read model.

use super::*;
use sqlx::Connection;

/// An item mutation answers with the item as its stream folds to, at once: on PostgreSQL the
/// inventory read model is locked while the mutations run (a payload that waited for the
/// projection would time out and be `null`). Afterwards the read model, reached with the
/// returned position, shows exactly the payload's item.
pub async fn item_payloads_come_from_the_items_own_fold_without_waiting_for_the_read_model(app: TestApp) {
    let token = app.owner().await;
    let fields = "id brand model status version askingPrice { amount currency } cost { amount } vendor attributes { key value } updatedAt";
    let hold = if app.db.url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
        sqlx::raw_sql("BEGIN; LOCK TABLE rm_inventory_items IN ACCESS EXCLUSIVE MODE")
            .execute(&mut conn)
            .await
            .unwrap();
        Some(conn)
    } else {
        None
    };
    let started = std::time::Instant::now();
    let acquire = format!("mutation($input: AcquireItemInput!) {{ acquireItem(input: $input) {{ item {{ {fields} }} position errors {{ code }} }} }}");
    let r = app.gql(Some(&token), &acquire, acquire_input("3900.00")).await;
    let acquired = r["data"]["acquireItem"]["item"].clone();
    assert_eq!(acquired["askingPrice"], json!({"amount": "3900.00", "currency": "USD"}), "{r}");
    assert_eq!((acquired["status"].as_str(), acquired["version"].as_i64()), (Some("IN_STOCK"), Some(1)));
    let id = acquired["id"].as_str().unwrap().to_owned();
    let change = format!("mutation($id: ID!) {{ changeItemPrice(input: {{itemId: $id, askingPrice: {{amount: \"3650.00\", currency: \"USD\"}}, reason: \"slow mover\"}}) {{ item {{ {fields} }} position errors {{ code }} }} }}");
    let r = app.gql(Some(&token), &change, json!({"id": id})).await;
    let changed = r["data"]["changeItemPrice"]["item"].clone();
    assert_eq!(changed["askingPrice"]["amount"], "3650.00", "{r}");
    assert_eq!(changed["version"], 2);
    let position = r["data"]["changeItemPrice"]["position"].as_str().unwrap().to_owned();
    if let Some(mut conn) = hold {
        assert!(started.elapsed() < app.state.consistency_timeout, "the payloads waited for the locked read model");
        sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.unwrap();
    }
    let query = format!("query($id: ID!, $p: String) {{ inventoryItem(id: $id, minPosition: $p) {{ {fields} }} }}");
    let r = app.gql(Some(&token), &query, json!({"id": id, "p": position})).await;
    assert_eq!(r["data"]["inventoryItem"], changed, "the read model and the payload's fold disagree");

    // The session that wrote reads its writes without passing a position: its queries wait
    // for what it last wrote (here the read model is held again, so a query that did not wait
    // would see the old price or no item).
    let hold = if app.db.url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
        sqlx::raw_sql("BEGIN; LOCK TABLE rm_inventory_items IN EXCLUSIVE MODE").execute(&mut conn).await.unwrap();
        Some(conn)
    } else {
        None
    };
    let again = "mutation($id: ID!) { changeItemPrice(input: {itemId: $id, askingPrice: {amount: \"3500.00\", currency: \"USD\"}, reason: \"older stock\"}) { errors { code } } }";
    let r = app.gql(Some(&token), again, json!({"id": id})).await;
    assert_eq!(r["data"]["changeItemPrice"]["errors"], json!([]), "{r}");
    let reader = {
        let (app_url, token, id) = (app.url.clone(), token.clone(), id.clone());
        tokio::spawn(async move {
            let body = json!({"query": "query($id: ID!) { inventoryItem(id: $id) { askingPrice { amount } } }", "variables": {"id": id}});
            let r: Value = reqwest::Client::new()
                .post(format!("{app_url}/graphql"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r
        })
    };
    if let Some(mut conn) = hold {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!reader.is_finished(), "the writer's query did not wait for its write");
        sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.unwrap();
    }
    let r = reader.await.unwrap();
    assert_eq!(r["data"]["inventoryItem"]["askingPrice"]["amount"], "3500.00", "{r}");
}
