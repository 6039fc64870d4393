//! Signing in and what a role reaches: wrong passwords, forged tokens, throttled guessing,
//! least privilege.

use super::*;

pub(crate) async fn a_wrong_password_or_unknown_email_is_unauthenticated(app: TestApp) {
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

pub(crate) async fn repeated_failed_logins_are_throttled(app: TestApp) {
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

pub(crate) async fn a_missing_or_forged_token_is_unauthenticated(app: TestApp) {
    let r = app.gql(None, "{ inventoryItems { totalCount } }", json!({})).await;
    assert_eq!(code(&r), "UNAUTHENTICATED");
    let token = app.owner().await;
    let forged = format!("{}x", &token[..token.len() - 1]);
    let r = app.gql(Some(&forged), "{ me { role } }", json!({})).await;
    assert_eq!(code(&r), "UNAUTHENTICATED");
    let r = app.gql(None, ACQUIRE, acquire_input("100.00")).await;
    assert_eq!(code(&r), "UNAUTHENTICATED");
}

pub(crate) async fn roles_are_enforced_least_privilege(app: TestApp) {
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

/// No data in the answer: none at all (a refused non-null root field nulls the whole answer), or
/// only nulls.
fn nothing_read(r: &Value) -> bool {
    r["data"].is_null() || r["data"].as_object().is_some_and(|d| d.values().all(Value::is_null))
}

/// Root fields are checked however the document reaches them — aliased, in a named or inline
/// fragment, beside fields the caller may read — and a refusal is that field's error alone.
pub(crate) async fn root_fields_are_checked_however_a_document_reaches_them(app: TestApp) {
    let count = |r: &Value| r["data"]["inventoryItems"]["totalCount"].as_i64().unwrap_or_else(|| panic!("{r}"));
    let owner = app.owner().await;
    let before = count(&app.gql(Some(&owner), "{ inventoryItems { totalCount } }", json!({})).await);
    let anonymous = [
        "{ ...F } fragment F on Query { inventoryItems { totalCount } }",
        "{ ... on Query { customers { totalCount } } }",
        "{ stock: inventoryItems { totalCount } }",
        "query A { me { role } } query B { customers { totalCount } }",
    ];
    for (i, query) in anonymous.iter().enumerate() {
        let body = json!({"query": query, "operationName": if i == 3 { json!("B") } else { json!(null) }});
        let r = app.post(None, &body).await;
        assert_eq!(code(&r), "UNAUTHENTICATED", "{query}: {r}");
        assert!(nothing_read(&r), "{query}: {r}");
    }

    // A technician reads stock but not customers: the one refused field, with its path, and
    // the rest of the answer.
    let tech = app.staff(Role::Technician).await;
    let r = app
        .gql(
            Some(&tech),
            "{ mine: inventoryItems { totalCount } ...C } fragment C on Query { theirs: customer(id: \"0190a000-0000-7000-8000-000000000000\") { name } }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["mine"]["totalCount"], before, "{r}");
    assert!(r["data"]["theirs"].is_null(), "{r}");
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    assert_eq!(r["errors"][0]["path"], json!(["theirs"]), "{r}");
    assert_eq!(r["errors"].as_array().unwrap().len(), 1, "{r}");

    // A mutation in a fragment is checked as one written out: nothing is written.
    let sales = app.staff(Role::Sales).await;
    for document in [
        "mutation($input: AcquireItemInput!) { ...M } fragment M on Mutation { acquireItem(input: $input) { position } }",
        "mutation($input: AcquireItemInput!) { ... on Mutation { a: acquireItem(input: $input) { position } } }",
    ] {
        let r = app.gql(Some(&sales), document, acquire_input("10.00")).await;
        assert_eq!(code(&r), "FORBIDDEN", "{document}: {r}");
    }
    // More mutations than allowed, hidden in fragments: refused whole, before any runs.
    let fields: String = (0..11).map(|i| format!("a{i}: acquireItem(input: $input) {{ position }} ")).collect();
    let r = app
        .gql(
            Some(&owner),
            &format!("mutation($input: AcquireItemInput!) {{ ...M }} fragment M on Mutation {{ ... on Mutation {{ {fields} }} }}"),
            acquire_input("10.00"),
        )
        .await;
    assert_eq!(code(&r), "BAD_REQUEST", "{r}");
    assert_eq!(count(&app.gql(Some(&owner), "{ inventoryItems { totalCount } }", json!({})).await), before);

    // Introspection is for signed-in staff, in either of its root fields, aliased or not; the
    // type name of the root is no secret.
    for query in ["{ __schema { queryType { name } } }", "{ t: __type(name: \"Query\") { name } }"] {
        let r = app.gql(None, query, json!({})).await;
        assert_eq!(code(&r), "UNAUTHENTICATED", "{query}: {r}");
        assert_eq!(r["errors"][0]["message"], "introspection is available to signed-in staff", "{r}");
        assert!(nothing_read(&r), "{r}");
        let r = app.gql(Some(&tech), query, json!({})).await;
        assert!(r["errors"].is_null(), "{query}: {r}");
    }
    let r = app.gql(None, "{ __typename }", json!({})).await;
    assert_eq!(r["data"]["__typename"], "Query", "{r}");
    // A server started with public introspection serves it to anyone.
    let settings = api::app::Settings { public_introspection: true, ..Default::default() };
    let (url, _state, _stop) = serve_on(&app.db.url, &app.key, settings).await;
    let anonymous_there = |query: &'static str| {
        let request = app.client.post(format!("{url}/graphql")).json(&json!({ "query": query }));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let r = anonymous_there("{ __type(name: \"Query\") { name } }").await;
    assert_eq!(r["data"]["__type"]["name"], "Query", "{r}");
    let r = anonymous_there("{ __type(name: \"Query\") { name } inventoryItems { totalCount } }").await;
    assert_eq!(code(&r), "UNAUTHENTICATED", "but not the store's data: {r}");
}
