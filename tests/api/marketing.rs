//! The marketing audience over real HTTP on both backends: consent in force at an instant,
//! restrictions of processing, withdrawals at once, erased customers never, and no marketing
//! consent under 16.

use super::TestApp;
use domain::staff::Role;
use serde_json::{json, Value};

const CREATE: &str = "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) {
    customer { id } errors { code } } }";
const AUDIENCE: &str =
    "query($p: ConsentPurpose!, $c: ConsentChannel!, $at: DateTime, $first: Int, $after: String, $min: String) {
    marketingAudience(purpose: $p, channel: $c, asOf: $at, first: $first, after: $after, minPosition: $min) {
      totalCount pageInfo { hasNextPage endCursor } nodes { customerId consentEventId customer { id } } } }";

async fn customer(app: &TestApp, token: &str, name: &str, birthday: Option<&str>) -> String {
    let r = app.gql(Some(token), CREATE, json!({"input": {"name": name, "birthday": birthday}})).await;
    r["data"]["createCustomer"]["customer"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
}

/// Grants or withdraws email marketing effective at `at`; returns the payload.
async fn consent(app: &TestApp, token: &str, customer: &str, grant: bool, purpose: &str, at: &str) -> Value {
    let field = if grant { "grantConsent" } else { "withdrawConsent" };
    let q = format!("mutation($i: ConsentInput!) {{ {field}(input: $i) {{ position errors {{ field code }} }} }}");
    let channel = if purpose == "MARKETING_SMS" { "SMS" } else { "EMAIL" };
    let r = app
        .gql(
            Some(token),
            &q,
            json!({"i": {"customerId": customer, "purpose": purpose, "channel": channel, "noticeVersion": "2026-01",
                "method": "IN_STORE", "effectiveAt": at}}),
        )
        .await;
    r["data"][field].clone()
}

async fn restriction(app: &TestApp, token: &str, customer: &str, restrict: bool, at: &str) -> Value {
    let field = if restrict { "restrictProcessing" } else { "liftRestriction" };
    let q = format!("mutation($i: RestrictionInput!) {{ {field}(input: $i) {{ restrictedPurposes position errors {{ field code }} }} }}");
    let r = app
        .gql(
            Some(token),
            &q,
            json!({"i": {"customerId": customer, "purposes": ["MARKETING_EMAIL"], "reason": "complaint under review", "effectiveAt": at}}),
        )
        .await;
    r["data"][field].clone()
}

/// The customer ids in the email audience as of `at` (all pages of two).
async fn audience(app: &TestApp, token: &str, at: &str, min: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let r = app
            .gql(
                Some(token),
                AUDIENCE,
                json!({"p": "MARKETING_EMAIL", "c": "EMAIL", "at": at, "first": 2, "after": after, "min": min}),
            )
            .await;
        let a = &r["data"]["marketingAudience"];
        for n in a["nodes"].as_array().unwrap_or_else(|| panic!("{r}")) {
            assert_eq!(n["customer"]["id"], n["customerId"]);
            out.push(n["customerId"].as_str().unwrap().to_owned());
        }
        if a["pageInfo"]["hasNextPage"] != true {
            assert_eq!(a["totalCount"].as_u64(), Some(out.len() as u64), "{r}");
            return out;
        }
        after = a["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
}

pub(crate) async fn the_marketing_audience_follows_consent_restriction_and_erasure_as_of_any_instant(app: TestApp) {
    let owner = app.owner().await;
    let compliance = app.staff(Role::Compliance).await;
    let ann = customer(&app, &owner, "Ann Audience", None).await;
    let bo = customer(&app, &owner, "Bo Audience", None).await;
    let cy = customer(&app, &owner, "Cy Audience", None).await;
    let dee = customer(&app, &owner, "Dee Audience", None).await;
    let kid = customer(&app, &owner, "Kid Audience", Some("2015-03-01")).await;

    for c in [&ann, &bo, &cy] {
        assert_eq!(
            consent(&app, &owner, c, true, "MARKETING_EMAIL", "2026-01-01T00:00:00Z").await["errors"],
            json!([])
        );
    }
    // SMS consent does not put Dee in the email audience.
    assert_eq!(consent(&app, &owner, &dee, true, "MARKETING_SMS", "2026-01-01T00:00:00Z").await["errors"], json!([]));
    // Under 16: refused, nothing recorded.
    let refused = consent(&app, &owner, &kid, true, "MARKETING_EMAIL", "2026-01-01T00:00:00Z").await;
    assert_eq!(refused["errors"], json!([{"field": "customerId", "code": "UNDER_AGE"}]), "{refused}");
    // Ann withdraws on 1 March; Bo is restricted from 1 February to 1 April.
    assert_eq!(
        consent(&app, &owner, &ann, false, "MARKETING_EMAIL", "2026-03-01T00:00:00Z").await["errors"],
        json!([])
    );
    let r = restriction(&app, &compliance, &bo, true, "2026-02-01T00:00:00Z").await;
    assert_eq!((&r["errors"], &r["restrictedPurposes"]), (&json!([]), &json!(["MARKETING_EMAIL"])), "{r}");
    let r = restriction(&app, &compliance, &bo, false, "2026-04-01T00:00:00Z").await;
    assert_eq!(r["restrictedPurposes"], json!([]), "{r}");
    let min = r["position"].as_str().unwrap().to_owned();

    let sorted = |mut v: Vec<&String>| {
        v.sort();
        v.into_iter().cloned().collect::<Vec<_>>()
    };
    let expectations = [
        ("2025-12-31T23:59:59Z", vec![]),
        ("2026-01-01T00:00:00Z", sorted(vec![&ann, &bo, &cy])),
        ("2026-02-01T00:00:00Z", sorted(vec![&ann, &cy])), // restricted from that instant
        ("2026-02-28T23:59:59Z", sorted(vec![&ann, &cy])),
        ("2026-03-01T00:00:00Z", sorted(vec![&cy])), // the withdrawal applies at once
        ("2026-04-01T00:00:00Z", sorted(vec![&bo, &cy])),
    ];
    for (at, expected) in &expectations {
        assert_eq!(&audience(&app, &owner, at, &min).await, expected, "as of {at}");
    }
    // The receipt is the grant in force.
    let events = app
        .gql(
            Some(&owner),
            "query($s: String!) { streamEvents(streamId: $s) { nodes { eventId eventType } } }",
            json!({"s": format!("consent-{cy}")}),
        )
        .await;
    let grant = events["data"]["streamEvents"]["nodes"][0]["eventId"].clone();
    let r = app
        .gql(
            Some(&owner),
            AUDIENCE,
            json!({"p": "MARKETING_EMAIL", "c": "EMAIL", "at": "2026-05-01T00:00:00Z", "min": min}),
        )
        .await;
    let node = r["data"]["marketingAudience"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["customerId"] == json!(cy))
        .cloned();
    assert_eq!(node.unwrap()["consentEventId"], grant, "{r}");

    // Erased: never listed again, at any instant.
    let erased = app
        .gql(
            Some(&compliance),
            "mutation($c: ID!) { requestErasure(input: {customerId: $c, reason: \"subject request\"}) { position errors { code } } }",
            json!({"c": cy}),
        )
        .await;
    let min = erased["data"]["requestErasure"]["position"].as_str().unwrap_or_else(|| panic!("{erased}")).to_owned();
    assert_eq!(audience(&app, &owner, "2026-01-01T00:00:00Z", &min).await, sorted(vec![&ann, &bo]));
    assert_eq!(audience(&app, &owner, "2026-04-01T00:00:00Z", &min).await, vec![bo.clone()]);
    // No consent for the erased customer either.
    let after_erasure = consent(&app, &owner, &cy, true, "MARKETING_EMAIL", "2026-06-01T00:00:00Z").await;
    assert_eq!(after_erasure["errors"][0]["code"], "ERASED", "{after_erasure}");
    // Restriction needs a reason and a purpose; a sales role may read the audience but not restrict.
    let sales = app.staff(Role::Sales).await;
    let r = app
        .gql(Some(&sales), "mutation($c: ID!) { restrictProcessing(input: {customerId: $c, purposes: [PROFILING], reason: \"x\"}) { position } }", json!({"c": bo}))
        .await;
    assert_eq!(super::code(&r), "FORBIDDEN");
    let r = app
        .gql(Some(&compliance), "mutation($c: ID!) { restrictProcessing(input: {customerId: $c, purposes: [], reason: \"x\"}) { errors { field code } } }", json!({"c": bo}))
        .await;
    assert_eq!(r["data"]["restrictProcessing"]["errors"], json!([{"field": "purposes", "code": "INVALID"}]), "{r}");
    assert_eq!(audience(&app, &sales, "2026-04-01T00:00:00Z", &min).await, vec![bo]);
}
