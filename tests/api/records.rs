//! What the server records about a request: who, why and the correlation on its events, a
//! request id everywhere, and logs without personal data or errors for refused commands.

use super::*;

pub(crate) async fn raw_payloads(app: &TestApp) -> Vec<String> {
    match &app.state.db {
        Database::Sqlite(b) => sqlx::query_scalar("SELECT payload FROM events").fetch_all(b.reader()).await.unwrap(),
        Database::Postgres(b) => sqlx::query_scalar("SELECT payload FROM events").fetch_all(b.pool()).await.unwrap(),
    }
}

pub(crate) async fn events_record_who_why_and_the_correlation_the_client_sent(app: TestApp) {
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

/// Everything the process logs, at every level, from the first test that asks.
pub(crate) fn captured_logs() -> &'static std::sync::Mutex<Vec<u8>> {
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

pub(crate) async fn personal_data_never_reaches_the_logs(app: TestApp) {
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

pub(crate) async fn every_request_has_an_id_in_the_response_the_logs_and_its_events(app: TestApp) {
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

pub(crate) async fn rejected_commands_and_retried_conflicts_are_not_error_lines(app: TestApp) {
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
