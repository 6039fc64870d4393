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
