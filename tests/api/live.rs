//! Subscriptions over `/graphql/ws` (graphql-transport-ws), on both backends: replay then live
//! with no gap and no duplicate, scoping by store and role, entity feeds, the protocol's close
//! codes, revocation, connection limits and slow subscribers.

use super::{acquire_input, serve_on, TestApp, ACQUIRE};
use domain::staff::Role;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A minimal graphql-transport-ws client, written from the protocol text (not the server's code).
pub(crate) struct Ws {
    socket: Socket,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Frame {
    Json(Value),
    /// Close code and reason (1006: the connection dropped without one).
    Closed(u16, String),
}

impl Ws {
    pub(crate) async fn connect(http_url: &str, protocol: Option<&str>) -> Ws {
        let url = format!("{}/graphql/ws", http_url.replacen("http://", "ws://", 1));
        let mut req = url.into_client_request().unwrap();
        if let Some(p) = protocol {
            req.headers_mut().insert("sec-websocket-protocol", p.parse().unwrap());
        }
        let (socket, response) = tokio_tungstenite::connect_async(req).await.unwrap();
        if let Some(p) = protocol {
            assert_eq!(response.headers()["sec-websocket-protocol"], p);
        }
        Ws { socket }
    }

    /// Connected and acknowledged as the session of `token`.
    pub(crate) async fn open(http_url: &str, token: &str) -> Ws {
        let mut ws = Ws::connect(http_url, Some("graphql-transport-ws")).await;
        ws.send(json!({"type": "connection_init", "payload": {"token": token}})).await;
        assert_eq!(ws.recv().await, Frame::Json(json!({"type": "connection_ack"})));
        ws
    }

    pub(crate) async fn send(&mut self, v: Value) {
        self.socket.send(Message::Text(v.to_string().into())).await.unwrap();
    }

    pub(crate) async fn send_text(&mut self, text: &str) {
        self.socket.send(Message::Text(text.to_owned().into())).await.unwrap();
    }

    pub(crate) async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({"type": "subscribe", "id": id, "payload": {"query": query, "variables": variables}})).await;
    }

    /// The next protocol message or the close, skipping websocket pings.
    pub(crate) async fn recv(&mut self) -> Frame {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(20), self.socket.next())
                .await
                .expect("nothing from the server for 20 s");
            match next {
                Some(Ok(Message::Text(t))) => return Frame::Json(serde_json::from_str(t.as_str()).unwrap()),
                Some(Ok(Message::Close(Some(f)))) => return Frame::Closed(u16::from(f.code), f.reason.to_string()),
                Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return Frame::Closed(1006, String::new()),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The payload of the next `next` message for `id`.
    pub(crate) async fn next(&mut self, id: &str) -> Value {
        match self.recv().await {
            Frame::Json(m) if m["type"] == "next" && m["id"] == id => m["payload"].clone(),
            other => panic!("expected next for {id}, got {other:?}"),
        }
    }

    /// The next message if one arrives within `for_`.
    pub(crate) async fn within(&mut self, for_: Duration) -> Option<Frame> {
        tokio::time::timeout(for_, self.recv()).await.ok()
    }

    /// Whether nothing arrives for a moment.
    pub(crate) async fn quiet(&mut self, for_: Duration) -> bool {
        loop {
            match tokio::time::timeout(for_, self.socket.next()).await {
                Err(_) => return true,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(_) => return false,
            }
        }
    }

    pub(crate) async fn closed_with(&mut self) -> (u16, String) {
        loop {
            match self.recv().await {
                Frame::Closed(code, reason) => return (code, reason),
                Frame::Json(_) => continue,
            }
        }
    }
}

const EVENTS: &str = "subscription($w: EventWhere, $from: String) {
    events(where: $w, fromPosition: $from) { position streamId eventType entityType entityId } }";

/// The store's events after `after` in log order, read straight from the log: what a feed with
/// `prefix` must deliver.
async fn log_after(app: &TestApp, store: &str, after: &str, prefix: &str) -> Vec<(String, String)> {
    let after: eventstore::Position = after.parse().unwrap();
    let store: uuid::Uuid = store.parse().unwrap();
    let events = app.state.store.backend().read_committed(after, 1_000_000).await.unwrap();
    events
        .into_iter()
        .filter(|e| e.store_id == store && e.stream_id.starts_with(prefix))
        .map(|e| (e.position.to_string(), e.event_type))
        .collect()
}

fn notice(payload: &Value) -> (String, String) {
    let e = &payload["data"]["events"];
    (
        e["position"].as_str().unwrap_or_else(|| panic!("{payload}")).to_owned(),
        e["eventType"].as_str().unwrap().to_owned(),
    )
}

pub(crate) async fn a_subscriber_gets_what_it_missed_then_live_events_without_gap_or_duplicate(app: TestApp) {
    let owner = app.owner().await;
    let store = app.store_id(&owner).await;
    let first = app.gql(Some(&owner), ACQUIRE, acquire_input("1000.00")).await;
    let from = first["data"]["acquireItem"]["position"].as_str().unwrap().to_owned();
    for price in ["1100.00", "1200.00", "1300.00"] {
        app.gql(Some(&owner), ACQUIRE, acquire_input(price)).await;
    }
    // Writers keep appending while the subscriber replays and joins the live feed: the bridge
    // from the log to the live feed happens under load.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (client, url, owner) = (app.client.clone(), app.url.clone(), owner.clone());
            tokio::spawn(async move {
                for i in 0..15 {
                    let body =
                        json!({"query": ACQUIRE, "variables": acquire_input(&format!("{}.00", 2000 + w * 100 + i))});
                    let r: Value = client
                        .post(format!("{url}/graphql"))
                        .bearer_auth(&owner)
                        .json(&body)
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    assert_eq!(r["data"]["acquireItem"]["errors"], json!([]), "{r}");
                }
            })
        })
        .collect();
    let mut ws = Ws::open(&app.url, &owner).await;
    ws.subscribe("feed", EVENTS, json!({"w": {"streamPrefix": "item-"}, "from": from})).await;
    for w in writers {
        w.await.unwrap();
    }
    let expected = log_after(&app, &store, &from, "item-").await;
    assert!(expected.len() >= 3 + 60, "{}", expected.len());
    let mut got = Vec::new();
    while got.len() < expected.len() {
        got.push(notice(&ws.next("feed").await));
    }
    assert_eq!(got, expected, "exactly the log's events after fromPosition, in log order");
    assert!(ws.quiet(Duration::from_millis(300)).await, "and nothing twice");

    // Live: another session's change arrives.
    let other = app.owner().await;
    let r = app.gql(Some(&other), ACQUIRE, acquire_input("777.00")).await;
    let position = r["data"]["acquireItem"]["position"].as_str().unwrap();
    let live = notice(&ws.next("feed").await);
    assert_eq!(live, (position.to_owned(), "ItemAcquired".to_owned()));

    // Dropped and resumed from the last position seen: exactly what was missed.
    drop(ws);
    let last = live.0;
    for price in ["501.00", "502.00"] {
        app.gql(Some(&owner), ACQUIRE, acquire_input(price)).await;
    }
    let mut ws = Ws::open(&app.url, &owner).await;
    ws.subscribe("again", EVENTS, json!({"w": {"streamPrefix": "item-"}, "from": last})).await;
    let missed = log_after(&app, &store, &last, "item-").await;
    assert_eq!(missed.len(), 2);
    for m in &missed {
        let p = ws.next("again").await;
        assert_eq!(&notice(&p.clone()), m);
        assert_eq!(p["data"]["events"]["entityType"], "item");
    }
    assert!(ws.quiet(Duration::from_millis(300)).await);
}

pub(crate) async fn the_feed_shows_only_the_callers_store_and_what_their_role_may_read(app: TestApp) {
    let owner = app.owner().await;
    let technician = app.staff(Role::Technician).await;
    let (_, _, position) = commands::stores::create_store(
        &app.state.store,
        &app.state.accounts,
        "test",
        "Branch B",
        "b-owner@shop.test",
        "Honey-Comb-Vault-2026",
    )
    .await
    .unwrap();
    app.state.projections.wait_for(position, Duration::from_secs(20)).await.unwrap();
    let other_store = app.login("b-owner@shop.test", "Honey-Comb-Vault-2026").await;

    // From the last position before the test's writes: however long the subscriptions take to
    // join, they miss nothing.
    let from = position.to_string();
    let mut tech = Ws::open(&app.url, &technician).await;
    tech.subscribe("t", EVENTS, json!({"from": from})).await;
    let mut own = Ws::open(&app.url, &owner).await;
    own.subscribe("o", EVENTS, json!({"w": {"eventTypes": ["CustomerRegistered", "ItemAcquired"]}, "from": from}))
        .await;
    app.gql(Some(&other_store), ACQUIRE, acquire_input("900.00")).await;
    let customer = app.new_customer(&owner, "Ada Lovelace").await;
    let item = app.gql(Some(&owner), ACQUIRE, acquire_input("950.00")).await;
    let item_id = item["data"]["acquireItem"]["item"]["id"].as_str().unwrap();
    let item_position = item["data"]["acquireItem"]["position"].as_str().unwrap().to_owned();

    // The technician sees the item, not the customer, and nothing of the other store.
    let t = tech.next("t").await;
    assert_eq!(t["data"]["events"]["entityId"], item_id, "{t}");
    assert!(tech.quiet(Duration::from_millis(300)).await);
    // The owner sees both of their store's events, in log order, not the other store's.
    let o1 = own.next("o").await;
    let o2 = own.next("o").await;
    assert_eq!(o1["data"]["events"]["entityId"], customer.as_str());
    assert_eq!(o1["data"]["events"]["eventType"], "CustomerRegistered");
    assert_eq!(o2["data"]["events"]["entityId"], item_id);
    assert!(own.quiet(Duration::from_millis(300)).await);

    // Payloads are for auditing roles: the technician may not read them.
    tech.send(json!({"type": "complete", "id": "t"})).await;
    tech.subscribe(
        "p",
        "subscription($from: String) { events(fromPosition: $from) { eventType payload } }",
        json!({"from": item_position}),
    )
    .await;
    app.gql(Some(&owner), ACQUIRE, acquire_input("960.00")).await;
    let p = tech.next("p").await;
    assert_eq!(p["errors"][0]["extensions"]["code"], "FORBIDDEN", "{p}");
    // And a technician cannot open a sale's feed at all.
    tech.subscribe("s", "subscription($id: ID!) { saleChanged(id: $id) { status } }", json!({"id": item_id})).await;
    match tech.recv().await {
        Frame::Json(m) => {
            assert_eq!(m["type"], "error", "{m}");
            assert_eq!(m["payload"][0]["extensions"]["code"], "FORBIDDEN", "{m}");
        }
        other => panic!("{other:?}"),
    }
}

pub(crate) async fn entity_feeds_carry_the_new_state(app: TestApp) {
    let owner = app.owner().await;
    let sales = app.staff(Role::Sales).await;
    let item = app.new_item(&owner, "5000.00").await;
    let mut ws = Ws::open(&app.url, &sales).await;
    ws.subscribe(
        "item",
        "subscription($id: ID!) { inventoryItemChanged(id: $id) { id status askingPrice { amount } } }",
        json!({"id": item}),
    )
    .await;
    let now = ws.next("item").await;
    assert_eq!(now["data"]["inventoryItemChanged"]["askingPrice"]["amount"], "5000.00", "first the state as it is");
    let r = app
        .gql(
            Some(&owner),
            "mutation($i: ID!) { changeItemPrice(input: {itemId: $i, askingPrice: {amount: \"4800.00\", currency: \"USD\"}}) { errors { code } } }",
            json!({"i": item}),
        )
        .await;
    assert_eq!(r["data"]["changeItemPrice"]["errors"], json!([]), "{r}");
    let changed = ws.next("item").await;
    assert_eq!(changed["data"]["inventoryItemChanged"]["askingPrice"]["amount"], "4800.00", "{changed}");

    // A sale made at another desk: its feed follows it from draft to confirmed.
    let r = app
        .gql(
            Some(&owner),
            "mutation($i: ID!) { createSale(input: {lines: [{itemId: $i, price: {amount: \"4800.00\", currency: \"USD\"}}]}) { sale { id } errors { code } } }",
            json!({"i": item}),
        )
        .await;
    let sale = r["data"]["createSale"]["sale"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    ws.subscribe("sale", "subscription($id: ID!) { saleChanged(id: $id) { id status } }", json!({"id": sale})).await;
    // The item's feed saw the draft's hold, or not: drain item messages until the sale's first.
    let mut statuses = Vec::new();
    while statuses.is_empty() {
        match ws.recv().await {
            Frame::Json(m) if m["id"] == "sale" => statuses.push(m["payload"]["data"]["saleChanged"]["status"].clone()),
            Frame::Json(m) if m["id"] == "item" => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(statuses[0], "DRAFT");
    app.gql(
        Some(&owner),
        "mutation($s: ID!) { confirmSale(input: {saleId: $s}) { errors { code } } }",
        json!({"s": sale}),
    )
    .await;
    let (mut sale_done, mut item_sold) = (false, false);
    while !(sale_done && item_sold) {
        match ws.recv().await {
            Frame::Json(m) if m["id"] == "sale" => {
                sale_done |= m["payload"]["data"]["saleChanged"]["status"] == "CONFIRMED";
            }
            Frame::Json(m) if m["id"] == "item" => {
                item_sold |= m["payload"]["data"]["inventoryItemChanged"]["status"] == "SOLD";
            }
            other => panic!("{other:?}"),
        }
    }
    // `complete` from the client ends a subscription: nothing more arrives for it.
    ws.send(json!({"type": "complete", "id": "item"})).await;
    ws.send(json!({"type": "complete", "id": "sale"})).await;
    app.gql(
        Some(&owner),
        "mutation($i: ID!) { changeItemPrice(input: {itemId: $i, askingPrice: {amount: \"4700.00\", currency: \"USD\"}}) { errors { code } } }",
        json!({"i": item}),
    )
    .await;
    assert!(ws.quiet(Duration::from_millis(500)).await);
}

pub(crate) async fn the_websocket_protocol_is_enforced_with_its_close_codes(app: TestApp) {
    let owner = app.owner().await;
    // No subprotocol offered.
    let mut ws = Ws::connect(&app.url, None).await;
    assert_eq!(ws.closed_with().await.0, 4406);
    // A bad token, no token, a subscribe before the ack.
    for init in
        [json!({"type": "connection_init", "payload": {"token": "ics_forged"}}), json!({"type": "connection_init"})]
    {
        let mut ws = Ws::connect(&app.url, Some("graphql-transport-ws")).await;
        ws.send(init).await;
        assert_eq!(ws.closed_with().await.0, 4401);
    }
    let mut ws = Ws::connect(&app.url, Some("graphql-transport-ws")).await;
    ws.subscribe("1", "subscription { events { position } }", json!({})).await;
    assert_eq!(ws.closed_with().await.0, 4401);
    // Not JSON, not a message.
    for text in ["{not json", "{\"type\": \"shout\"}", "{\"type\": \"subscribe\", \"id\": \"1\", \"payload\": 7}"] {
        let mut ws = Ws::open(&app.url, &owner).await;
        ws.send_text(text).await;
        assert_eq!(ws.closed_with().await.0, 4400, "{text}");
    }
    // A second init; a reused id.
    let mut ws = Ws::open(&app.url, &owner).await;
    ws.send(json!({"type": "connection_init", "payload": {"token": owner}})).await;
    assert_eq!(ws.closed_with().await.0, 4429);
    let mut ws = Ws::open(&app.url, &owner).await;
    ws.subscribe("x", "subscription { events { position } }", json!({})).await;
    ws.subscribe("x", "subscription { events { position } }", json!({})).await;
    assert_eq!(ws.closed_with().await.0, 4409);
    // Ping is answered; a query runs once and completes; a document that does not validate is
    // an `error` with the GraphQL errors, and the socket stays open.
    let mut ws = Ws::open(&app.url, &owner).await;
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await, Frame::Json(json!({"type": "pong"})));
    ws.subscribe("q", "{ me { role } }", json!({})).await;
    assert_eq!(ws.next("q").await["data"]["me"]["role"], "OWNER");
    assert_eq!(ws.recv().await, Frame::Json(json!({"type": "complete", "id": "q"})));
    ws.subscribe("bad", "subscription { events { noSuchField } }", json!({})).await;
    match ws.recv().await {
        Frame::Json(m) => {
            assert_eq!((m["type"].as_str(), m["id"].as_str()), (Some("error"), Some("bad")), "{m}");
            assert!(m["payload"][0]["message"].as_str().unwrap().contains("noSuchField"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    ws.subscribe("pos", "subscription { events(fromPosition: \"nonsense\") { position } }", json!({})).await;
    match ws.recv().await {
        Frame::Json(m) => assert_eq!(m["payload"][0]["extensions"]["code"], "BAD_USER_INPUT", "{m}"),
        other => panic!("{other:?}"),
    }
    // The socket keeps the same limits as HTTP: eleven mutations in one document are refused
    // before any runs.
    let fields: String = (0..11).map(|i| format!("a{i}: acquireItem(input: $input) {{ position }} ")).collect();
    let document = format!("mutation($input: AcquireItemInput!) {{ {fields} }}");
    ws.subscribe("many", &document, super::acquire_input("10.00")).await;
    match ws.recv().await {
        Frame::Json(m) => {
            assert_eq!((m["type"].as_str(), m["id"].as_str()), (Some("error"), Some("many")), "{m}");
            assert_eq!(m["payload"][0]["extensions"]["code"], "BAD_REQUEST", "{m}");
        }
        other => panic!("{other:?}"),
    }
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await, Frame::Json(json!({"type": "pong"})), "still open");
}

pub(crate) async fn ending_a_session_closes_its_sockets(app: TestApp) {
    let owner = app.owner().await;
    let mut a = Ws::open(&app.url, &owner).await;
    a.subscribe("1", "subscription { events { position } }", json!({})).await;
    let mut b = Ws::open(&app.url, &owner).await;
    let other = app.owner().await;
    let mut c = Ws::open(&app.url, &other).await;
    let r = app.gql(Some(&owner), "mutation { logout { revoked } }", json!({})).await;
    assert!(r["errors"].is_null(), "{r}");
    assert_eq!(a.closed_with().await.0, 4401, "a socket of the revoked session closes at once");
    assert_eq!(b.closed_with().await.0, 4401);
    c.send(json!({"type": "ping"})).await;
    assert_eq!(c.recv().await, Frame::Json(json!({"type": "pong"})), "another session's socket stays");
    // Revoking another of one's sessions closes that session's sockets.
    let third = app.owner().await;
    let session = app.gql(Some(&third), "{ me { sessionId } }", json!({})).await["data"]["me"]["sessionId"].clone();
    let mut d = Ws::open(&app.url, &third).await;
    app.gql(
        Some(&other),
        "mutation($s: ID!) { revokeSession(input: {sessionId: $s}) { revoked } }",
        json!({"s": session}),
    )
    .await;
    assert_eq!(d.closed_with().await.0, 4401);
}

pub(crate) async fn connections_per_session_are_limited_and_slow_subscribers_are_disconnected(app: TestApp) {
    let settings = api::app::Settings {
        ws: api::ws::WsSettings {
            connections_per_session: 2,
            feed_capacity: 16,
            init_timeout: Duration::from_millis(300),
            ..Default::default()
        },
        ..Default::default()
    };
    let (url, state, _stop) = serve_on(&app.db.url, &app.key, settings).await;
    let owner = app.owner().await;
    let _one = Ws::open(&url, &owner).await;
    let mut two = Ws::open(&url, &owner).await;
    let mut three = Ws::connect(&url, Some("graphql-transport-ws")).await;
    three.send(json!({"type": "connection_init", "payload": {"token": owner}})).await;
    assert_eq!(three.closed_with().await.0, 4430, "a third socket for the same session");
    // No init in time.
    let mut idle = Ws::connect(&url, Some("graphql-transport-ws")).await;
    assert_eq!(idle.closed_with().await.0, 4408);

    // 100 events in one append pass the feed faster than any subscriber can take them from a
    // ring of 16: the subscriber is disconnected with 4431, and may resume from its position.
    two.subscribe("feed", "subscription { events { position } }", json!({})).await;
    // Live for sure once a change made now arrives.
    let mut joined = false;
    for _ in 0..50 {
        let r = app.gql(Some(&owner), ACQUIRE, acquire_input("100.00")).await;
        assert_eq!(r["data"]["acquireItem"]["errors"], json!([]), "{r}");
        if !two.quiet(Duration::from_millis(200)).await {
            joined = true;
            break;
        }
    }
    assert!(joined, "the subscription went live");
    let store_id: uuid::Uuid = app.store_id(&owner).await.parse().unwrap();
    let burst: Vec<_> = (0..100)
        .map(|i| eventstore::NewEvent {
            event_id: uuid::Uuid::now_v7(),
            store_id,
            event_type: "Noise".into(),
            schema_version: 1,
            payload: json!({"n": i}),
            metadata: eventstore::Metadata::system("test"),
            data_subject: None,
        })
        .collect();
    state
        .store
        .append(&format!("noise-{}", uuid::Uuid::now_v7()), eventstore::ExpectedVersion::NoStream, burst)
        .await
        .unwrap();
    assert_eq!(two.closed_with().await.0, 4431);
    // Once closed, the session has room for a socket again.
    let mut again = Ws::open(&url, &owner).await;
    again.send(json!({"type": "ping"})).await;
    assert_eq!(again.recv().await, Frame::Json(json!({"type": "pong"})));
}
