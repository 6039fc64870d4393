//! Staff lifecycle, sessions and login abuse, over real HTTP on both backends.

use super::{code, serve_on, TestApp, ACQUIRE, STAFF_PASSWORD};
use domain::staff::Role;
use serde_json::{json, Value};

const INVITE: &str = "mutation($input: InviteStaffInput!) { inviteStaff(input: $input) {
    invitation { id email role expiresAt } invitationToken position errors { field code message } } }";
const ACCEPT: &str = "mutation($input: AcceptInvitationInput!) { acceptInvitation(input: $input) {
    token viewer { role permissions } staffMember { id role active } errors { field code message } } }";
const LOGIN: &str =
    "mutation($e: String!, $p: String!, $s: ID) { login(input: {email: $e, password: $p, storeId: $s}) {
    token viewer { role storeId } stores { id name } errors { field code } } }";

impl TestApp {
    /// Invites `email` with `role` as `by`; returns the invitation token.
    async fn invite(&self, by: &str, email: &str, role: &str) -> String {
        let r =
            self.gql(Some(by), INVITE, json!({"input": {"email": email, "name": "New Person", "role": role}})).await;
        let p = &r["data"]["inviteStaff"];
        assert_eq!(p["errors"], json!([]), "{r}");
        p["invitationToken"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
    }

    /// Accepts an invitation; returns the new member's session token and id.
    async fn accept(&self, invitation: &str, password: &str) -> (String, String) {
        let r = self.gql(None, ACCEPT, json!({"input": {"invitationToken": invitation, "password": password}})).await;
        let p = &r["data"]["acceptInvitation"];
        assert_eq!(p["errors"], json!([]), "{r}");
        (
            p["token"].as_str().unwrap().to_owned(),
            p["staffMember"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned(),
        )
    }

    async fn login_as(&self, email: &str, password: &str) -> Value {
        self.gql(None, LOGIN, json!({"e": email, "p": password})).await
    }

    /// Whether a token still opens a session.
    async fn signed_in(&self, token: &str) -> bool {
        let r = self.gql(Some(token), "{ me { role } }", json!({})).await;
        match r["data"]["me"]["role"].as_str() {
            Some(_) => true,
            None => {
                assert_eq!(code(&r), "UNAUTHENTICATED", "{r}");
                false
            }
        }
    }

    async fn role_of(&self, token: &str) -> String {
        let r = self.gql(Some(token), "{ me { role } }", json!({})).await;
        r["data"]["me"]["role"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
    }
}

fn permissions(r: &Value) -> Vec<String> {
    r["permissions"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_owned()).collect()
}

pub(crate) async fn sales_auditor_and_compliance_are_invited_and_each_sees_what_their_role_allows(app: TestApp) {
    let owner = app.owner().await;
    // A weak password is refused and does not use the invitation up.
    let sales_invite = app.invite(&owner, "sam@shop.test", "SALES").await;
    let r =
        app.gql(None, ACCEPT, json!({"input": {"invitationToken": sales_invite, "password": "password1234"}})).await;
    assert_eq!(r["data"]["acceptInvitation"]["errors"][0]["field"], "password", "{r}");
    assert!(r["data"]["acceptInvitation"]["token"].is_null());
    let (sales, _) = app.accept(&sales_invite, "Rolex-Counter-Blue-88").await;
    // Single use.
    let again = app
        .gql(None, ACCEPT, json!({"input": {"invitationToken": sales_invite, "password": "Rolex-Counter-Blue-88"}}))
        .await;
    assert_eq!(again["data"]["acceptInvitation"]["errors"][0]["code"], "NOT_FOUND", "{again}");
    // The same email cannot be invited twice.
    let dup = app
        .gql(Some(&owner), INVITE, json!({"input": {"email": "SAM@shop.test", "name": "Sam", "role": "SALES"}}))
        .await;
    assert_eq!(dup["data"]["inviteStaff"]["errors"][0]["code"], "ALREADY_EXISTS", "{dup}");

    let (auditor, _) =
        app.accept(&app.invite(&owner, "ada@audit.test", "AUDITOR").await, "Ledger-Lantern-Quiet-41").await;
    let (compliance, _) =
        app.accept(&app.invite(&owner, "cora@privacy.test", "COMPLIANCE").await, "Consent-Harbor-Tide-19").await;

    // Each logs in with their password and sees their role's permissions.
    let login = app.login_as("ada@audit.test", "Ledger-Lantern-Quiet-41").await;
    assert_eq!(login["data"]["login"]["viewer"]["role"], "AUDITOR", "{login}");
    let me = |t: String| {
        let app = &app;
        async move { app.gql(Some(&t), "{ me { role permissions } }", json!({})).await["data"]["me"].clone() }
    };
    let s = permissions(&me(sales.clone()).await);
    assert!(
        s.contains(&"MANAGE_SALES".into()) && !s.contains(&"VIEW_COSTS".into()) && !s.contains(&"MANAGE_STAFF".into())
    );
    let a = permissions(&me(auditor.clone()).await);
    assert!(a.contains(&"VIEW_AUDIT".into()) && a.contains(&"VIEW_COSTS".into()));
    assert!(a.iter().all(|p| !p.starts_with("MANAGE_") && p != "CHANGE_PRICES" && p != "REFUND"), "{a:?}");
    let c = permissions(&me(compliance.clone()).await);
    assert!(
        c.contains(&"MANAGE_PRIVACY".into())
            && !c.contains(&"VIEW_COSTS".into())
            && !c.contains(&"READ_INVENTORY".into())
    );

    // What each may do, through the API.
    assert_eq!(code(&app.gql(Some(&auditor), ACQUIRE, super::acquire_input("100.00")).await), "FORBIDDEN");
    let r =
        app.gql(Some(&auditor), "{ inventoryItems(first: 1) { edges { node { cost { amount } } } } }", json!({})).await;
    assert!(r["data"]["inventoryItems"]["edges"][0]["node"]["cost"]["amount"].is_string(), "auditors see costs: {r}");
    assert_eq!(code(&app.gql(Some(&compliance), "{ inventoryItems { totalCount } }", json!({})).await), "FORBIDDEN");
    let r = app.gql(Some(&compliance), "{ customers { totalCount } }", json!({})).await;
    assert!(r["data"]["customers"]["totalCount"].is_number(), "{r}");
    let r = app
        .gql(Some(&sales), "{ inventoryItems(first: 1) { edges { node { brand cost { amount } } } } }", json!({}))
        .await;
    assert_eq!(code(&r), "FORBIDDEN", "sales staff do not see costs: {r}");
    assert_eq!(
        code(
            &app.gql(Some(&sales), INVITE, json!({"input": {"email": "x@y.test", "name": "X", "role": "SALES"}})).await
        ),
        "FORBIDDEN"
    );

    // The directory lists everyone with their role.
    let r = app
        .gql(
            Some(&auditor),
            "{ staffMembers(first: 10) { totalCount edges { node { email role active } } } }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["staffMembers"]["totalCount"], 4, "{r}");
    let roles: Vec<&str> = r["data"]["staffMembers"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["OWNER", "SALES", "AUDITOR", "COMPLIANCE"], "{r}");
    // Keyset pages: two, then the rest after the cursor.
    const PAGE: &str = "query($a: String) { staffMembers(first: 2, after: $a) { pageInfo { hasNextPage endCursor } edges { node { role } } } }";
    let p1 = app.gql(Some(&owner), PAGE, json!({"a": null})).await;
    assert_eq!(p1["data"]["staffMembers"]["pageInfo"]["hasNextPage"], true, "{p1}");
    let p2 = app.gql(Some(&owner), PAGE, json!({"a": p1["data"]["staffMembers"]["pageInfo"]["endCursor"]})).await;
    let rest: Vec<&str> = p2["data"]["staffMembers"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["role"].as_str().unwrap())
        .collect();
    assert_eq!(rest, ["AUDITOR", "COMPLIANCE"], "{p2}");
    let bad = app.gql(Some(&owner), PAGE, json!({"a": "not-a-cursor"})).await;
    assert_eq!(code(&bad), "BAD_USER_INPUT", "{bad}");
    let r = app
        .gql(
            Some(&owner),
            "{ staffMembers(where: {role: AUDITOR}) { totalCount edges { node { email } } } }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["staffMembers"]["totalCount"], 1, "{r}");
    assert_eq!(r["data"]["staffMembers"]["edges"][0]["node"]["email"], "ada@audit.test");

    // Invitations and joins are events; tokens and passwords are not in the log.
    let events = app.state.store.backend().read_committed(eventstore::Position::START, 100_000).await.unwrap();
    let text: String = events.iter().map(|e| format!("{} {} {} ", e.event_type, e.payload, e.metadata)).collect();
    assert!(text.contains("StaffInvited") && text.contains("StaffJoined"));
    for secret in [sales_invite.as_str(), "Rolex-Counter-Blue-88", "Ledger-Lantern-Quiet-41"] {
        assert!(!text.contains(secret), "a secret reached the log");
    }
}

pub(crate) async fn managers_cannot_make_owners_nobody_raises_their_own_role_and_a_store_keeps_an_owner(app: TestApp) {
    let owner = app.owner().await;
    let (manager, manager_id) =
        app.accept(&app.invite(&owner, "max@shop.test", "MANAGER").await, "Strap-Buckle-Field-62").await;
    let r = app
        .gql(Some(&manager), INVITE, json!({"input": {"email": "o2@shop.test", "name": "O", "role": "OWNER"}}))
        .await;
    assert_eq!(r["data"]["inviteStaff"]["errors"][0]["code"], "FORBIDDEN", "{r}");
    let r = app
        .gql(Some(&manager), INVITE, json!({"input": {"email": "m2@shop.test", "name": "M", "role": "MANAGER"}}))
        .await;
    assert_eq!(r["data"]["inviteStaff"]["errors"][0]["code"], "FORBIDDEN", "{r}");
    let (_, tech_id) =
        app.accept(&app.invite(&manager, "tess@shop.test", "TECHNICIAN").await, "Mainspring-Oil-Ruby-27").await;

    const ROLE: &str =
        "mutation($id: ID!, $r: Role!) { changeStaffRole(input: {staffId: $id, role: $r, reason: \"test\"}) {
        staffMember { role } errors { code } } }";
    let r = app.gql(Some(&manager), ROLE, json!({"id": manager_id, "r": "OWNER"})).await;
    assert_eq!(r["data"]["changeStaffRole"]["errors"][0]["code"], "FORBIDDEN", "nobody raises their own role: {r}");
    let r = app.gql(Some(&manager), ROLE, json!({"id": tech_id, "r": "MANAGER"})).await;
    assert_eq!(r["data"]["changeStaffRole"]["errors"][0]["code"], "FORBIDDEN", "{r}");
    let r = app.gql(Some(&manager), ROLE, json!({"id": tech_id, "r": "SALES"})).await;
    assert_eq!(r["data"]["changeStaffRole"]["staffMember"]["role"], "SALES", "{r}");

    // The only owner can neither leave nor step down.
    let owner_id = app.gql(Some(&owner), "{ me { userId } }", json!({})).await["data"]["me"]["userId"].clone();
    let r = app.gql(Some(&owner), ROLE, json!({"id": owner_id, "r": "MANAGER"})).await;
    assert_eq!(r["data"]["changeStaffRole"]["errors"][0]["code"], "LAST_OWNER", "{r}");
    let r = app
        .gql(
            Some(&owner),
            "mutation($id: ID!) { deactivateStaff(input: {staffId: $id}) { errors { code } } }",
            json!({"id": owner_id}),
        )
        .await;
    assert_eq!(r["data"]["deactivateStaff"]["errors"][0]["code"], "LAST_OWNER", "{r}");
    let r = app
        .gql(
            Some(&manager),
            "mutation($id: ID!) { deactivateStaff(input: {staffId: $id}) { errors { code } } }",
            json!({"id": owner_id}),
        )
        .await;
    assert_eq!(r["data"]["deactivateStaff"]["errors"][0]["code"], "FORBIDDEN", "{r}");
    // An id that is not a member of this store is not found.
    let r = app
        .gql(
            Some(&owner),
            "mutation($id: ID!) { deactivateStaff(input: {staffId: $id}) { errors { code } } }",
            json!({"id": uuid::Uuid::now_v7().to_string()}),
        )
        .await;
    assert_eq!(r["data"]["deactivateStaff"]["errors"][0]["code"], "NOT_FOUND", "{r}");
    assert!(app.signed_in(&owner).await, "a refused change logs nobody out");
}

pub(crate) async fn sessions_end_at_once_on_logout_revocation_role_change_deactivation_and_password_change(
    app: TestApp,
) {
    let owner = app.owner().await;
    let second = app.owner().await;
    let r = app.gql(Some(&owner), "{ mySessions { id current userAgent } }", json!({})).await;
    let sessions = r["data"]["mySessions"].as_array().unwrap_or_else(|| panic!("{r}")).clone();
    assert_eq!(sessions.len(), 2, "{r}");
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let other_id = sessions.iter().find(|s| s["current"] == false).unwrap()["id"].as_str().unwrap().to_owned();
    const REVOKE: &str = "mutation($id: ID!) { revokeSession(input: {sessionId: $id}) { revoked errors { code } } }";
    let r = app.gql(Some(&owner), REVOKE, json!({"id": other_id})).await;
    assert_eq!(r["data"]["revokeSession"]["revoked"], 1, "{r}");
    assert!(!app.signed_in(&second).await, "a revoked session ends at once");
    assert!(app.signed_in(&owner).await);

    // A member: role change and deactivation end every session before the next request.
    let (member, member_id) =
        app.accept(&app.invite(&owner, "rita@shop.test", "SALES").await, "Bezel-Sapphire-Crown-55").await;
    let member2 = app.login_as("rita@shop.test", "Bezel-Sapphire-Crown-55").await["data"]["login"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Someone else's session id cannot be revoked (and is not found).
    let r = app.gql(Some(&member), REVOKE, json!({"id": sessions[0]["id"]})).await;
    assert_eq!(r["data"]["revokeSession"]["errors"][0]["code"], "NOT_FOUND", "{r}");
    assert!(app.signed_in(&owner).await);
    let r = app
        .gql(
            Some(&owner),
            "mutation($id: ID!) { changeStaffRole(input: {staffId: $id, role: TECHNICIAN}) { errors { code } } }",
            json!({"id": member_id}),
        )
        .await;
    assert_eq!(r["data"]["changeStaffRole"]["errors"], json!([]), "{r}");
    assert!(!app.signed_in(&member).await && !app.signed_in(&member2).await, "old tokens end with the old role");
    let again = app.login_as("rita@shop.test", "Bezel-Sapphire-Crown-55").await;
    let member = again["data"]["login"]["token"].as_str().unwrap_or_else(|| panic!("{again}")).to_owned();
    assert_eq!(app.role_of(&member).await, "TECHNICIAN", "signing in again gives the new role");

    const DEACTIVATE: &str = "mutation($id: ID!) { deactivateStaff(input: {staffId: $id, reason: \"left\"}) { staffMember { active } errors { code } } }";
    let r = app.gql(Some(&owner), DEACTIVATE, json!({"id": member_id})).await;
    assert_eq!(r["data"]["deactivateStaff"]["staffMember"]["active"], false, "{r}");
    assert!(!app.signed_in(&member).await);
    let r = app.login_as("rita@shop.test", "Bezel-Sapphire-Crown-55").await;
    assert_eq!(code(&r), "UNAUTHENTICATED", "a deactivated member cannot sign in: {r}");
    let r = app
        .gql(
            Some(&owner),
            "mutation($id: ID!) { reactivateStaff(input: {staffId: $id}) { staffMember { active } errors { code } } }",
            json!({"id": member_id}),
        )
        .await;
    assert_eq!(r["data"]["reactivateStaff"]["staffMember"]["active"], true, "{r}");
    let member = app.login_as("rita@shop.test", "Bezel-Sapphire-Crown-55").await["data"]["login"]["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // A password change keeps this session and ends the others; the old password stops working.
    let other = app.login_as("rita@shop.test", "Bezel-Sapphire-Crown-55").await["data"]["login"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    const CHANGE: &str = "mutation($c: String!, $n: String!) { changePassword(input: {currentPassword: $c, newPassword: $n}) { position errors { field code } } }";
    let r = app.gql(Some(&member), CHANGE, json!({"c": "not-my-password-x", "n": "Chronograph-Pusher-Gold-31"})).await;
    assert_eq!(r["data"]["changePassword"]["errors"][0]["field"], "currentPassword", "{r}");
    let r = app.gql(Some(&member), CHANGE, json!({"c": "Bezel-Sapphire-Crown-55", "n": "short"})).await;
    assert_eq!(r["data"]["changePassword"]["errors"][0]["field"], "newPassword", "{r}");
    assert!(app.signed_in(&other).await, "a refused change ends nothing");
    let r = app
        .gql(Some(&member), CHANGE, json!({"c": "Bezel-Sapphire-Crown-55", "n": "Chronograph-Pusher-Gold-31"}))
        .await;
    assert_eq!(r["data"]["changePassword"]["errors"], json!([]), "{r}");
    assert!(app.signed_in(&member).await && !app.signed_in(&other).await);
    assert_eq!(code(&app.login_as("rita@shop.test", "Bezel-Sapphire-Crown-55").await), "UNAUTHENTICATED");
    let newer = app.login_as("rita@shop.test", "Chronograph-Pusher-Gold-31").await["data"]["login"]["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Logout, then logout everywhere.
    let r = app.gql(Some(&member), "mutation { logout { revoked } }", json!({})).await;
    assert_eq!(r["data"]["logout"]["revoked"], 1, "{r}");
    assert!(!app.signed_in(&member).await && app.signed_in(&newer).await);
    let r = app.gql(Some(&owner), "mutation { logoutEverywhere { revoked } }", json!({})).await;
    assert!(r["data"]["logoutEverywhere"]["revoked"].as_i64().unwrap() >= 1, "{r}");
    assert!(!app.signed_in(&owner).await);
}

pub(crate) async fn a_password_reset_is_single_use_and_ends_every_session(app: TestApp) {
    let owner = app.owner().await;
    let (member, member_id) =
        app.accept(&app.invite(&owner, "paul@shop.test", "SALES").await, "Tourbillon-Cage-Swift-73").await;
    const ISSUE: &str =
        "mutation($id: ID!) { issuePasswordReset(input: {staffId: $id}) { resetToken expiresAt errors { code } } }";
    const RESET: &str = "mutation($t: String!, $p: String!) { resetPassword(input: {resetToken: $t, newPassword: $p}) { position errors { field code } } }";
    let first = app.gql(Some(&owner), ISSUE, json!({"id": member_id})).await["data"]["issuePasswordReset"]
        ["resetToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app.gql(Some(&owner), ISSUE, json!({"id": member_id})).await;
    let token = r["data"]["issuePasswordReset"]["resetToken"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let r = app.gql(None, RESET, json!({"t": first, "p": "Perpetual-Calendar-Moon-90"})).await;
    assert_eq!(r["data"]["resetPassword"]["errors"][0]["code"], "NOT_FOUND", "a newer reset voids the older: {r}");
    let r = app.gql(None, RESET, json!({"t": token, "p": "weak"})).await;
    assert_eq!(r["data"]["resetPassword"]["errors"][0]["field"], "newPassword", "{r}");
    let r = app.gql(None, RESET, json!({"t": token, "p": "Perpetual-Calendar-Moon-90"})).await;
    assert_eq!(r["data"]["resetPassword"]["errors"], json!([]), "{r}");
    assert!(!app.signed_in(&member).await, "the reset ends every session");
    let r = app.gql(None, RESET, json!({"t": token, "p": "Another-Strong-Phrase-12"})).await;
    assert_eq!(r["data"]["resetPassword"]["errors"][0]["code"], "NOT_FOUND", "single use: {r}");
    assert!(app.login_as("paul@shop.test", "Perpetual-Calendar-Moon-90").await["data"]["login"]["token"].is_string());

    // A manager cannot reset an owner's password; a sales member cannot reset anyone's.
    let (manager, _) = app.accept(&app.invite(&owner, "mia@shop.test", "MANAGER").await, "Crown-Guard-Steel-48").await;
    let owner_id = app.gql(Some(&owner), "{ me { userId } }", json!({})).await["data"]["me"]["userId"].clone();
    let r = app.gql(Some(&manager), ISSUE, json!({"id": owner_id})).await;
    assert_eq!(r["data"]["issuePasswordReset"]["errors"][0]["code"], "FORBIDDEN", "{r}");
    let sales = app.login_as("paul@shop.test", "Perpetual-Calendar-Moon-90").await["data"]["login"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(code(&app.gql(Some(&sales), ISSUE, json!({"id": owner_id})).await), "FORBIDDEN");
}

pub(crate) async fn an_email_that_is_staff_of_two_stores_chooses_its_store(app: TestApp) {
    let (other_store, _, position) = commands::stores::create_store(
        &app.state.store,
        &app.state.accounts,
        "test",
        "Second Branch",
        api::demo::DEMO_EMAIL,
        api::demo::DEMO_PASSWORD,
    )
    .await
    .unwrap();
    app.state.projections.wait_for(position, std::time::Duration::from_secs(20)).await.unwrap();
    let r = app.login_as(api::demo::DEMO_EMAIL, api::demo::DEMO_PASSWORD).await;
    let p = &r["data"]["login"];
    assert!(p["token"].is_null(), "never picks a store silently: {r}");
    assert_eq!(p["errors"][0]["code"], "STORE_REQUIRED");
    assert_eq!(p["stores"].as_array().unwrap().len(), 2, "{r}");
    let r = app
        .gql(
            None,
            LOGIN,
            json!({"e": api::demo::DEMO_EMAIL, "p": api::demo::DEMO_PASSWORD, "s": other_store.to_string()}),
        )
        .await;
    assert_eq!(r["data"]["login"]["viewer"]["storeId"], other_store.to_string(), "{r}");
    let token = r["data"]["login"]["token"].as_str().unwrap().to_owned();
    assert_eq!(app.store_id(&token).await, other_store.to_string());
    let r = app.gql(Some(&token), "{ inventoryItems { totalCount } }", json!({})).await;
    assert_eq!(r["data"]["inventoryItems"]["totalCount"], 0, "the second store is reachable and empty: {r}");
    // A wrong password with a store id is still just wrong.
    let r = app
        .gql(
            None,
            LOGIN,
            json!({"e": api::demo::DEMO_EMAIL, "p": "Wrong-But-Long-Pass-1", "s": other_store.to_string()}),
        )
        .await;
    assert_eq!(code(&r), "UNAUTHENTICATED");
}

/// Logs in through a trusted proxy that says the client is `ip`.
async fn login_from(app_url: &str, client: &reqwest::Client, ip: &str, email: &str, password: &str) -> Value {
    client
        .post(format!("{app_url}/graphql"))
        .header("x-forwarded-for", ip)
        .json(&json!({"query": LOGIN, "variables": {"e": email, "p": password}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub(crate) async fn login_throttles_cover_spraying_and_distributed_guessing_and_survive_a_restart(app: TestApp) {
    app.staff(Role::Sales).await;
    // A server behind a proxy it trusts (127.0.0.1), so each request can say its client.
    let settings = || api::app::Settings { trusted_proxies: vec!["127.0.0.1".parse().unwrap()], ..Default::default() };
    let (url, _state, _stop) = serve_on(&app.db.url, &app.key, settings()).await;
    // Spraying: one address, twenty different accounts.
    for i in 0..20 {
        let r =
            login_from(&url, &app.client, "203.0.113.9", &format!("guess{i}@shop.test"), "Guessed-Password-1").await;
        assert_eq!(code(&r), "UNAUTHENTICATED", "{r}");
    }
    let r = login_from(&url, &app.client, "203.0.113.9", api::demo::DEMO_EMAIL, api::demo::DEMO_PASSWORD).await;
    assert_eq!(code(&r), "RATE_LIMITED", "{r}");
    let retry = r["errors"][0]["extensions"]["retryAfterSeconds"].as_u64().unwrap();
    assert!((1..=15 * 60 + 1).contains(&retry), "{retry}");
    let r = login_from(&url, &app.client, "198.51.100.1", api::demo::DEMO_EMAIL, api::demo::DEMO_PASSWORD).await;
    assert!(r["data"]["login"]["token"].is_string(), "other addresses are not affected: {r}");

    // Distributed guessing: one account, ten addresses.
    for i in 0..10 {
        let r = login_from(&url, &app.client, &format!("192.0.2.{i}"), "sales@demo.test", "Guessed-Password-1").await;
        assert_eq!(code(&r), "UNAUTHENTICATED", "{r}");
    }
    let r = login_from(&url, &app.client, "192.0.2.200", "sales@demo.test", STAFF_PASSWORD).await;
    assert_eq!(code(&r), "RATE_LIMITED", "{r}");

    // Without the proxy setting, X-Forwarded-For is ignored: the peer (127.0.0.1) is the client.
    let r = login_from(&app.url, &app.client, "203.0.113.9", api::demo::DEMO_EMAIL, api::demo::DEMO_PASSWORD).await;
    assert!(r["data"]["login"]["token"].is_string(), "a spoofed header changes nothing: {r}");

    // A restarted server (or another replica) remembers.
    let (restarted, _state2, _stop2) = serve_on(&app.db.url, &app.key, settings()).await;
    let r = login_from(&restarted, &app.client, "203.0.113.9", api::demo::DEMO_EMAIL, api::demo::DEMO_PASSWORD).await;
    assert_eq!(code(&r), "RATE_LIMITED", "{r}");
    let r = login_from(&restarted, &app.client, "192.0.2.201", "sales@demo.test", STAFF_PASSWORD).await;
    assert_eq!(code(&r), "RATE_LIMITED", "{r}");
}

pub(crate) async fn hostile_requests_are_refused_with_clear_errors_and_write_nothing(app: TestApp) {
    let owner = app.owner().await;
    let count = |r: &Value| r["data"]["inventoryItems"]["totalCount"].as_i64().unwrap();
    let before = count(&app.gql(Some(&owner), "{ inventoryItems { totalCount } }", json!({})).await);
    // Eleven aliased mutations in one request: refused whole, before any runs.
    let body: String = (0..11).map(|i| format!("a{i}: acquireItem(input: $input) {{ position }} ")).collect();
    let r = app
        .gql(Some(&owner), &format!("mutation($input: AcquireItemInput!) {{ {body} }}"), super::acquire_input("10.00"))
        .await;
    assert_eq!(code(&r), "BAD_REQUEST", "{r}");
    // Ten are fine.
    let body: String = (0..10).map(|i| format!("a{i}: acquireItem(input: $input) {{ position }} ")).collect();
    let r = app
        .gql(Some(&owner), &format!("mutation($input: AcquireItemInput!) {{ {body} }}"), super::acquire_input("10.00"))
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let after = count(&app.gql(Some(&owner), "{ inventoryItems { totalCount } }", json!({})).await);
    assert_eq!(after - before, 10);

    // A malformed body gets a GraphQL-shaped error, not a Rust debug string.
    let res = app
        .client
        .post(format!("{}/graphql", app.url))
        .header("content-type", "application/json")
        .body("{\"query\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let r: Value = res.json().await.unwrap();
    assert_eq!(code(&r), "BAD_REQUEST", "{r}");

    // Introspection is for signed-in staff.
    let r = app.gql(None, "{ __schema { queryType { name } } }", json!({})).await;
    assert!(r["data"].is_null() || r["data"]["__schema"].is_null(), "{r}");
    assert!(r["errors"].is_array(), "{r}");
    let r = app.gql(Some(&owner), "{ __schema { queryType { name } } }", json!({})).await;
    assert_eq!(r["data"]["__schema"]["queryType"]["name"], "Query", "{r}");
}

pub(crate) async fn a_connection_that_never_finishes_its_headers_is_closed(app: TestApp) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let settings = api::app::Settings { header_read_timeout: std::time::Duration::from_secs(1), ..Default::default() };
    let (url, _state, _stop) = serve_on(&app.db.url, &app.key, settings).await;
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n").await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    // The server closes (EOF, perhaps after a 408) instead of waiting for the rest forever.
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection was still open after 10 s");
    assert!(started.elapsed() < std::time::Duration::from_secs(9));
    // Complete requests are served as usual.
    let r = app.client.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

pub(crate) async fn a_browser_origin_is_allowed_only_when_configured(app: TestApp) {
    let preflight = |url: String, origin: &'static str| {
        let client = app.client.clone();
        async move {
            client
                .request(reqwest::Method::OPTIONS, format!("{url}/graphql"))
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "authorization, content-type")
                .send()
                .await
                .unwrap()
        }
    };
    let allow =
        |r: &reqwest::Response| r.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned());
    // Nothing is allowed by default, but the preflight is answered (not 405).
    let r = preflight(app.url.clone(), "https://dash.example").await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(allow(&r), None);
    let settings =
        api::app::Settings { cors_origins: vec!["https://dash.example".parse().unwrap()], ..Default::default() };
    let (url, _state, _stop) = serve_on(&app.db.url, &app.key, settings).await;
    let r = preflight(url.clone(), "https://dash.example").await;
    assert!(r.status().is_success());
    assert_eq!(allow(&r).as_deref(), Some("https://dash.example"));
    let methods = r.headers()["access-control-allow-methods"].to_str().unwrap().to_owned();
    assert!(methods.contains("POST"), "{methods}");
    let r = preflight(url.clone(), "https://evil.example").await;
    assert_eq!(allow(&r), None, "an origin not listed gets no permission");
    // The actual request carries the header too.
    let r = app
        .client
        .post(format!("{url}/graphql"))
        .header("origin", "https://dash.example")
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(allow(&r).as_deref(), Some("https://dash.example"));
}

pub(crate) async fn readiness_fails_when_a_projection_stops(app: TestApp) {
    let settings = api::app::Settings { readiness_max_lag: std::time::Duration::from_secs(1), ..Default::default() };
    let (url, state, _stop) = serve_on(&app.db.url, &app.key, settings).await;
    let ready = |url: String| {
        let client = app.client.clone();
        async move {
            let r = client.get(format!("{url}/readyz")).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(ready(url.clone()).await, (200, "ready".into()));
    // An event the inventory projection cannot apply (a corrupt payload): it stops there.
    let bad = eventstore::NewEvent {
        event_id: uuid::Uuid::now_v7(),
        store_id: uuid::Uuid::now_v7(),
        event_type: "ItemAcquired".into(),
        schema_version: 1,
        payload: json!({"nonsense": true}),
        metadata: eventstore::Metadata::system("test"),
        data_subject: None,
    };
    state
        .store
        .append(&format!("item-{}", uuid::Uuid::now_v7()), eventstore::ExpectedVersion::NoStream, vec![bad])
        .await
        .unwrap();
    let mut last = (0, String::new());
    for _ in 0..60 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        last = ready(url.clone()).await;
        if last.0 == 503 {
            break;
        }
    }
    assert_eq!(last.0, 503, "{last:?}");
    assert!(last.1.contains("inventory"), "names the projection: {last:?}");
    // Liveness is a different question: the process is up.
    assert_eq!(app.client.get(format!("{url}/healthz")).send().await.unwrap().status(), 200);
}

pub(crate) async fn metrics_count_requests_appends_and_projection_lag_without_personal_data(app: TestApp) {
    let owner = app.owner().await;
    let body = json!({"operationName": "AddCustomer", "query": "mutation AddCustomer { createCustomer(input: {name: \"Metric Maria\", email: \"maria@metrics.example\"}) { errors { code } } }"});
    let r: Value = app
        .client
        .post(format!("{}/graphql", app.url))
        .bearer_auth(&owner)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["data"]["createCustomer"]["errors"], json!([]), "{r}");
    let r = app
        .client
        .post(format!("{}/graphql", app.url))
        .json(&json!({"operationName": "Peek", "query": "query Peek { me { role } }"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let text = app.client.get(format!("{}/metrics", app.url)).send().await.unwrap().text().await.unwrap();
    for needle in [
        r#"ic_graphql_requests_total{operation="AddCustomer",outcome="ok"}"#,
        r#"ic_graphql_requests_total{operation="Peek",outcome="UNAUTHENTICATED"}"#,
        "ic_graphql_request_duration_seconds_bucket{operation=\"AddCustomer\"",
        "ic_events_appended_total",
        r#"ic_projection_lag_seconds{projection="customers"}"#,
        r#"ic_projection_position{projection="audit"}"#,
        "ic_db_pool_connections{pool=",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    for secret in ["Metric Maria", "maria@metrics.example"] {
        assert!(!text.contains(secret), "personal data in metrics");
    }
}
