//! Privacy requests and erasure, over real HTTP on both backends: a compliance officer opens an
//! erasure case and erases a customer; afterwards no value of theirs is stored in plaintext
//! anywhere (byte scan of the SQLite file and WAL, or every PostgreSQL row as text).

use super::{code, TestApp};
use domain::staff::Role;
use eventstore::testing::plaintext_left;
use serde_json::{json, Value};
use sha2::Digest;

const CREATE: &str = "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) {
    customer { id } position errors { field code } } }";
const GRANT: &str = "mutation($input: ConsentInput!) { grantConsent(input: $input) { position errors { code } } }";
const OPEN: &str = "mutation($input: OpenPrivacyRequestInput!) { openPrivacyRequest(input: $input) {
    privacyRequest { id kind status customerId receivedVia dueAt overdue openedBy } position errors { field code message } } }";
const ERASE: &str = "mutation($input: RequestErasureInput!) { requestErasure(input: $input) {
    erasureRequest { id kind status completedAt handledBy destroyedKeys { class keyId fingerprint } }
    position errors { field code message } } }";
const CUSTOMER: &str = "query($id: ID!, $p: String) { customer(id: $id, minPosition: $p) {
    id name email phone notes tags address birthday externalIds { system id } erased } }";

/// Every personal value the test customer has, each unique enough to be found by a byte scan.
const SECRETS: [&str; 9] = [
    "Quillon Zephyrine",
    "quillon.zephyrine@example.test",
    "+41 79 555 01 23",
    "collects Zephyrine-grade tourbillons",
    "Rue des Zephyrines 17",
    "zephyrine-vip",
    "shopify-zeph-7788",
    "203.0.113.77",
    "ZephyrBrowser/9.9",
];

/// Creates the test customer (every personal field filled, consent with evidence); returns its id.
async fn capture(app: &TestApp, owner: &str) -> String {
    let r = app
        .gql(
            Some(owner),
            CREATE,
            json!({"input": {
                "name": SECRETS[0], "email": SECRETS[1], "phone": SECRETS[2], "notes": SECRETS[3],
                "address": SECRETS[4], "tags": [SECRETS[5]], "birthday": "1980-02-03",
                "externalIds": [{"system": "shopify", "id": SECRETS[6]}],
            }}),
        )
        .await;
    let id = r["data"]["createCustomer"]["customer"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let g = app
        .gql(
            Some(owner),
            GRANT,
            json!({"input": {"customerId": id, "purpose": "MARKETING_EMAIL", "channel": "EMAIL",
                "noticeVersion": "2026-01", "method": "IN_STORE",
                "evidence": {"ip": SECRETS[7], "userAgent": SECRETS[8]}}}),
        )
        .await;
    assert_eq!(g["data"]["grantConsent"]["errors"], json!([]), "{g}");
    let p = g["data"]["grantConsent"]["position"].as_str().unwrap().parse().unwrap();
    app.state.projections.wait_for(p, std::time::Duration::from_secs(20)).await.unwrap();
    id
}

fn payload<'a>(r: &'a Value, field: &str) -> &'a Value {
    let p = &r["data"][field];
    assert!(p.is_object(), "{r}");
    p
}

pub(crate) async fn an_erased_customer_leaves_no_plaintext_and_keeps_a_completed_case(app: TestApp) {
    let owner = app.owner().await;
    let compliance = app.staff(Role::Compliance).await;
    let customer = capture(&app, &owner).await;
    // The scan finds the values while they are stored (so it can fail).
    let before = plaintext_left(&app.db.url, &SECRETS[..7]).await;
    assert!(!before.is_empty(), "the scan sees the customer's values before the erasure");

    // A case first: received by email, identity checked, due in 30 days.
    let opened = app
        .gql(
            Some(&compliance),
            OPEN,
            json!({"input": {"customerId": customer, "kind": "ERASURE", "receivedVia": "EMAIL",
                "identityVerifiedBy": "replied from Quillon's address on file", "notes": "asked at Zephyrine gala",
                "receivedAt": "2026-11-01T09:00:00Z"}}),
        )
        .await;
    let case = payload(&opened, "openPrivacyRequest");
    assert_eq!(case["errors"], json!([]), "{opened}");
    let request = &case["privacyRequest"];
    assert_eq!(
        (&request["kind"], &request["status"], &request["receivedVia"], &request["dueAt"]),
        (&json!("ERASURE"), &json!("OPEN"), &json!("EMAIL"), &json!("2026-12-01T09:00:00+00:00")),
        "{opened}"
    );
    let request_id = request["id"].as_str().unwrap().to_owned();

    let erased = app
        .gql(
            Some(&compliance),
            ERASE,
            json!({"input": {"customerId": customer, "reason": "data subject request", "privacyRequestId": request_id}}),
        )
        .await;
    let p = payload(&erased, "requestErasure");
    assert_eq!(p["errors"], json!([]), "{erased}");
    assert_eq!(p["erasureRequest"]["id"], json!(request_id));
    assert_eq!(p["erasureRequest"]["status"], "COMPLETED", "{erased}");
    let classes: Vec<&str> =
        p["erasureRequest"]["destroyedKeys"].as_array().unwrap().iter().map(|k| k["class"].as_str().unwrap()).collect();
    assert!(classes.contains(&"profile") && classes.contains(&"consent_evidence"), "{erased}");
    assert!(!classes.contains(&"legal_hold"), "legal-hold identity stays until its retention ends");
    for k in p["erasureRequest"]["destroyedKeys"].as_array().unwrap() {
        assert_eq!(k["fingerprint"].as_str().unwrap().len(), 64, "{k}");
    }
    let position = p["position"].as_str().unwrap().to_owned();

    // The customer reads as erased; nothing personal is left in the row or its lookups.
    let c = app.gql(Some(&owner), CUSTOMER, json!({"id": customer, "p": position})).await;
    let c = &c["data"]["customer"];
    assert_eq!(c["erased"], true, "{c}");
    for field in ["name", "email", "phone", "notes", "address", "birthday"] {
        assert!(c[field].is_null(), "{field} survived: {c}");
    }
    assert_eq!((&c["tags"], &c["externalIds"]), (&json!([]), &json!([])));
    let by_email = app
        .gql(
            Some(&owner),
            "query($e: String) { customers(where: {email: $e}) { totalCount } }",
            json!({"e": SECRETS[1]}),
        )
        .await;
    assert_eq!(by_email["data"]["customers"]["totalCount"], 0, "{by_email}");
    // The history still replays, with the personal fields erased.
    let history = app
        .gql(
            Some(&owner),
            "query($id: ID!) { customer(id: $id, asOfVersion: 1) { name erased } }",
            json!({"id": customer}),
        )
        .await;
    assert_eq!(history["data"]["customer"], json!({"name": null, "erased": true}), "{history}");

    // No plaintext anywhere in storage.
    let left = plaintext_left(&app.db.url, &SECRETS).await;
    assert!(left.is_empty(), "plaintext left after the erasure: {left:?}");

    // An erased customer takes no more changes; erasing again is not an error.
    let update = app
        .gql(
            Some(&owner),
            "mutation($id: ID!) { updateCustomer(input: {customerId: $id, notes: \"back\"}) { errors { code } } }",
            json!({"id": customer}),
        )
        .await;
    assert_eq!(update["data"]["updateCustomer"]["errors"][0]["code"], "ERASED", "{update}");
    let again = app
        .gql(
            Some(&compliance),
            ERASE,
            json!({"input": {"customerId": customer, "reason": "retry", "privacyRequestId": request_id}}),
        )
        .await;
    assert_eq!(payload(&again, "requestErasure")["erasureRequest"]["status"], "COMPLETED", "{again}");
    let fresh =
        app.gql(Some(&compliance), ERASE, json!({"input": {"customerId": customer, "reason": "second request"}})).await;
    let fresh = payload(&fresh, "requestErasure");
    assert_eq!(fresh["errors"], json!([]), "{fresh}");
    assert_ne!(fresh["erasureRequest"]["id"], json!(request_id), "a request opened for it");

    // The compliance desk's list.
    let list = app
        .gql(
            Some(&compliance),
            "{ privacyRequests(where: {kind: ERASURE, status: COMPLETED}) { totalCount nodes { id customerId handledBy } } }",
            json!({}),
        )
        .await;
    assert_eq!(list["data"]["privacyRequests"]["totalCount"], 2, "{list}");
    assert!(list["data"]["privacyRequests"]["nodes"].as_array().unwrap().iter().all(|n| n["customerId"] == customer));
}

pub(crate) async fn erasure_requests_are_checked_before_anything_is_destroyed(app: TestApp) {
    let owner = app.owner().await;
    let compliance = app.staff(Role::Compliance).await;
    let customer = capture(&app, &owner).await;
    let other = capture(&app, &owner).await;
    let access = app
        .gql(
            Some(&compliance),
            OPEN,
            json!({"input": {"customerId": customer, "kind": "ACCESS", "receivedVia": "POST"}}),
        )
        .await;
    let access_id = payload(&access, "openPrivacyRequest")["privacyRequest"]["id"].as_str().unwrap().to_owned();
    let about_other = app
        .gql(
            Some(&compliance),
            OPEN,
            json!({"input": {"customerId": other, "kind": "ERASURE", "receivedVia": "EMAIL"}}),
        )
        .await;
    let other_id = payload(&about_other, "openPrivacyRequest")["privacyRequest"]["id"].as_str().unwrap().to_owned();
    let cases = [
        (json!({"customerId": customer, "reason": "x", "privacyRequestId": access_id}), "privacyRequestId", "INVALID"),
        (json!({"customerId": customer, "reason": "x", "privacyRequestId": other_id}), "privacyRequestId", "INVALID"),
        (
            json!({"customerId": customer, "reason": "x", "privacyRequestId": uuid::Uuid::now_v7().to_string()}),
            "privacyRequestId",
            "NOT_FOUND",
        ),
        (json!({"customerId": uuid::Uuid::now_v7().to_string(), "reason": "x"}), "customerId", "NOT_FOUND"),
        (json!({"customerId": "not-an-id", "reason": "x"}), "customerId", "INVALID"),
        (json!({"customerId": customer, "reason": "  "}), "reason", "INVALID"),
    ];
    for (input, field, expected) in cases {
        let r = app.gql(Some(&compliance), ERASE, json!({"input": input})).await;
        let e = &payload(&r, "requestErasure")["errors"][0];
        assert_eq!((e["field"].as_str(), e["code"].as_str()), (Some(field), Some(expected)), "{input}: {r}");
    }
    // Nothing was destroyed: the customer still reads in full.
    let c = app.gql(Some(&owner), CUSTOMER, json!({"id": customer})).await;
    assert_eq!(c["data"]["customer"]["name"], SECRETS[0], "{c}");
    // Neither subject nor both.
    let neither = app.gql(Some(&compliance), OPEN, json!({"input": {"kind": "ACCESS", "receivedVia": "POST"}})).await;
    assert_eq!(payload(&neither, "openPrivacyRequest")["errors"][0]["code"], "INVALID", "{neither}");
    // A manager may not erase.
    let manager = app.staff(Role::Manager).await;
    let r = app.gql(Some(&manager), ERASE, json!({"input": {"customerId": customer, "reason": "x"}})).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
}

/// RFC 8785 for the documents here (objects, arrays, ASCII-keyed members, strings, integers,
/// booleans, null), written from the RFC: members sorted by key, no whitespace.
fn jcs(v: &Value) -> String {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            let members: Vec<String> =
                keys.iter().map(|k| format!("{}:{}", serde_json::to_string(k).unwrap(), jcs(&o[*k]))).collect();
            format!("{{{}}}", members.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(jcs).collect::<Vec<_>>().join(",")),
        other => serde_json::to_string(other).unwrap(),
    }
}

/// Checks a certificate with this file's own code: the Ed25519 signature over the canonical
/// form, the checkpoint, and each inclusion proof. Returns whether all hold.
fn independently_valid(document: &str, verifier_key: &str) -> bool {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;
    let Ok(Value::Object(mut doc)) = serde_json::from_str::<Value>(document) else { return false };
    let Some(Value::String(sig)) = doc.remove("signature") else { return false };
    if doc.get("ledger_key") != Some(&json!(verifier_key)) {
        return false;
    }
    let key = B64.decode(verifier_key.splitn(3, '+').nth(2).unwrap()).unwrap();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&key[1..].try_into().unwrap()).unwrap();
    let Ok(sig) = B64.decode(sig) else { return false };
    let Ok(sig) = ed25519_dalek::Signature::from_slice(&sig) else { return false };
    if vk.verify_strict(jcs(&Value::Object(doc.clone())).as_bytes(), &sig).is_err() {
        return false;
    }
    let (_, size, root) =
        super::ledger::independent::checkpoint(doc["tree_head"]["checkpoint"].as_str().unwrap(), verifier_key);
    doc["erasure_events"].as_array().unwrap().iter().all(|e| {
        let path: Vec<_> = e["audit_path"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| super::ledger::independent::unhex(h.as_str().unwrap()))
            .collect();
        super::ledger::independent::inclusion(
            super::ledger::independent::unhex(e["leaf_hash"].as_str().unwrap()),
            e["leaf_index"].as_u64().unwrap(),
            size,
            &path,
            root,
        )
    })
}

pub(crate) async fn a_deletion_certificate_proves_the_erasure_and_keeps_the_invoice(app: TestApp) {
    let owner = app.owner().await;
    let compliance = app.staff(Role::Compliance).await;
    let customer = capture(&app, &owner).await;
    // A sale with the buyer's identity on the invoice (legal hold).
    let item = app.gql(Some(&owner), super::ACQUIRE, super::acquire_input("4100.00")).await;
    let item = item["data"]["acquireItem"]["item"]["id"].as_str().unwrap_or_else(|| panic!("{item}")).to_owned();
    let sale = app
        .gql(
            Some(&owner),
            "mutation($c: ID, $i: ID!) { createSale(input: {customerId: $c, lines: [{itemId: $i, price: {amount: \"4100.00\", currency: \"USD\"}}], buyerName: \"Quillon Zephyrine\", buyerAddress: \"Rue des Zephyrines 17\"}) { sale { id } errors { code } } }",
            json!({"c": customer, "i": item}),
        )
        .await;
    let sale = sale["data"]["createSale"]["sale"]["id"].as_str().unwrap_or_else(|| panic!("{sale}")).to_owned();
    let confirmed = app
        .gql(
            Some(&owner),
            "mutation($s: ID!) { confirmSale(input: {saleId: $s}) { sale { invoiceNumber } errors { code } } }",
            json!({"s": sale}),
        )
        .await;
    let invoice = confirmed["data"]["confirmSale"]["sale"]["invoiceNumber"].clone();
    assert!(invoice.is_number(), "{confirmed}");

    let erased = app
        .gql(Some(&compliance), ERASE, json!({"input": {"customerId": customer, "reason": "data subject request"}}))
        .await;
    let request = payload(&erased, "requestErasure")["erasureRequest"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{erased}"))
        .to_owned();
    let query = "query($r: ID!) { deletionCertificate(requestId: $r) { id document } ledgerPublicKey }";
    let r = app.gql(Some(&compliance), query, json!({"r": request})).await;
    let document = r["data"]["deletionCertificate"]["document"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let key = r["data"]["ledgerPublicKey"].as_str().unwrap().to_owned();
    assert!(independently_valid(&document, &key), "{document}");
    // The same file every time.
    let again = app.gql(Some(&compliance), query, json!({"r": request})).await;
    assert_eq!(again["data"]["deletionCertificate"]["document"].as_str(), Some(document.as_str()));

    let cert: Value = serde_json::from_str(&document).unwrap();
    assert_eq!(cert["subject"]["pseudonymous_id"], json!(customer));
    assert_eq!(cert["certificate_id"], r["data"]["deletionCertificate"]["id"]);
    let classes: Vec<&str> =
        cert["destroyed_keys"].as_array().unwrap().iter().map(|k| k["class"].as_str().unwrap()).collect();
    assert_eq!(classes.len(), 2, "{classes:?}");
    let kept =
        cert["retained"].as_array().unwrap().iter().find(|r| r["what"].as_str().unwrap().contains("sale")).unwrap();
    let until: chrono::DateTime<chrono::Utc> = kept["until"].as_str().unwrap().parse().unwrap();
    assert!(until > chrono::Utc::now() + chrono::Duration::days(365 * 7 - 2), "kept 7 years: {kept}");
    let types: Vec<&str> =
        cert["erasure_events"].as_array().unwrap().iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert_eq!(types, ["ErasureStarted", "CustomerErased", "ErasureCompleted"]);
    // Each proven leaf is the event's own chain hash (RFC 6962 leaf), as the log serves it.
    for e in cert["erasure_events"].as_array().unwrap() {
        let stream = app
            .gql(
                Some(&owner),
                "query($s: String!) { streamEvents(streamId: $s) { nodes { eventId hash } } }",
                json!({"s": e["stream_id"]}),
            )
            .await;
        let hash = stream["data"]["streamEvents"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["eventId"] == e["event_id"])
            .unwrap()["hash"]
            .clone();
        let mut bytes = vec![0u8];
        bytes.extend(super::ledger::independent::unhex(hash.as_str().unwrap()));
        let leaf = sha2::Sha256::digest(&bytes);
        assert_eq!(e["leaf_hash"].as_str().unwrap(), leaf.iter().map(|b| format!("{b:02x}")).collect::<String>());
    }
    // Any change breaks it.
    for (from, to) in [(customer.as_str(), "00000000-0000-0000-0000-000000000000"), ("\"profile\"", "\"legal_hold\"")] {
        let altered = document.replacen(from, to, 1);
        assert_ne!(altered, document);
        assert!(!independently_valid(&altered, &key), "a change to {from} went unnoticed");
    }
    // The invoice is kept, with its buyer identity readable to compliance.
    let s = app
        .gql(Some(&compliance), "query($s: ID!) { sale(id: $s) { invoiceNumber buyerName } }", json!({"s": sale}))
        .await;
    assert_eq!(s["data"]["sale"], json!({"invoiceNumber": invoice, "buyerName": "Quillon Zephyrine"}), "{s}");
    // Not for an open or unknown request.
    let open = app
        .gql(
            Some(&compliance),
            OPEN,
            json!({"input": {"customerId": customer, "kind": "ACCESS", "receivedVia": "EMAIL"}}),
        )
        .await;
    let open_id = payload(&open, "openPrivacyRequest")["privacyRequest"]["id"].clone();
    let r = app.gql(Some(&compliance), query, json!({"r": open_id})).await;
    assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");
    let r = app.gql(Some(&compliance), query, json!({"r": uuid::Uuid::now_v7().to_string()})).await;
    assert!(r["data"]["deletionCertificate"].is_null(), "{r}");
}

/// Validates an export against the JSON Schema in the repository.
fn matches_schema(document: &Value) {
    let errors = schema_errors(document);
    assert!(errors.is_empty(), "the export does not match its schema: {errors:#?}");
    // The schema is strict enough to notice a wrong type or a missing section.
    let mut broken = document.clone();
    broken["profile"]["erased"] = json!("no");
    assert!(!schema_errors(&broken).is_empty());
    let mut broken = document.clone();
    broken.as_object_mut().unwrap().remove("processing");
    assert!(!schema_errors(&broken).is_empty());
}

fn schema_errors(document: &Value) -> Vec<String> {
    let schema: Value = serde_json::from_str(include_str!("../../docs/schemas/subject-export.schema.json")).unwrap();
    let validator = jsonschema::options().should_validate_formats(true).build(&schema).expect("a valid schema");
    validator.iter_errors(document).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

const EXPORT: &str = "mutation($input: ExportSubjectDataInput!) { exportSubjectData(input: $input) {
    document privacyRequest { id kind status } position errors { field code message } } }";

pub(crate) async fn a_subject_export_holds_everything_about_them_and_is_itself_recorded(app: TestApp) {
    let owner = app.owner().await;
    let compliance = app.staff(Role::Compliance).await;
    let customer = capture(&app, &owner).await;
    let item = app.gql(Some(&owner), super::ACQUIRE, super::acquire_input("5200.00")).await;
    let item = item["data"]["acquireItem"]["item"]["id"].as_str().unwrap().to_owned();
    let held = app
        .gql(
            Some(&owner),
            "mutation($i: ID!, $c: ID!) { reserveItem(input: {itemId: $i, customerId: $c}) { errors { field code } } }",
            json!({"i": item, "c": customer}),
        )
        .await;
    assert_eq!(held["data"]["reserveItem"]["errors"], json!([]), "{held}");
    let sale = app
        .gql(
            Some(&owner),
            "mutation($c: ID, $i: ID!) { createSale(input: {customerId: $c, lines: [{itemId: $i, price: {amount: \"5200.00\", currency: \"USD\"}}], buyerName: \"Quillon Zephyrine\"}) { sale { id } errors { code } } }",
            json!({"c": customer, "i": item}),
        )
        .await;
    let sale = sale["data"]["createSale"]["sale"]["id"].as_str().unwrap_or_else(|| panic!("{sale}")).to_owned();
    app.gql(
        Some(&owner),
        "mutation($s: ID!) { confirmSale(input: {saleId: $s}) { errors { code } } }",
        json!({"s": sale}),
    )
    .await;
    let access = app
        .gql(
            Some(&compliance),
            OPEN,
            json!({"input": {"customerId": customer, "kind": "ACCESS", "receivedVia": "EMAIL"}}),
        )
        .await;
    let request = payload(&access, "openPrivacyRequest")["privacyRequest"]["id"].as_str().unwrap().to_owned();

    let r = app
        .gql(Some(&compliance), EXPORT, json!({"input": {"customerId": customer, "privacyRequestId": request}}))
        .await;
    let p = payload(&r, "exportSubjectData");
    assert_eq!(p["errors"], json!([]), "{r}");
    assert_eq!(
        (&p["privacyRequest"]["id"], &p["privacyRequest"]["status"]),
        (&json!(request), &json!("COMPLETED")),
        "{r}"
    );
    let doc: Value = serde_json::from_str(p["document"].as_str().unwrap()).unwrap();
    matches_schema(&doc);
    assert_eq!(doc["subject"], json!({"kind": "customer", "id": customer}));
    assert_eq!(doc["profile"]["name"], SECRETS[0]);
    assert_eq!(doc["profile"]["external_ids"]["shopify"], SECRETS[6]);
    assert_eq!(doc["consent"]["history"][0]["evidence"]["ip"], SECRETS[7]);
    assert_eq!(doc["consent"]["current"][0]["granted"], true);
    assert_eq!(doc["purchases"][0]["sale_id"], json!(sale));
    assert_eq!(doc["purchases"][0]["buyer_name"], SECRETS[0]);
    assert!(doc["holds"].as_array().unwrap().iter().any(|h| h["event_type"] == "ItemReserved"), "{}", doc["holds"]);
    let audited: Vec<&str> =
        doc["audit"].as_array().unwrap().iter().map(|a| a["event_type"].as_str().unwrap()).collect();
    for t in ["CustomerRegistered", "ConsentGranted", "SaleDrafted", "PrivacyRequestOpened"] {
        assert!(audited.contains(&t), "{t} missing from {audited:?}");
    }
    assert!(!doc["processing"]["recipients"].as_array().unwrap().is_empty());
    // The export is an event on the request's stream, naming sections, never content.
    let events = app
        .gql(
            Some(&owner),
            "query($s: String!) { streamEvents(streamId: $s) { nodes { eventType payload } } }",
            json!({"s": format!("privacy_request-{request}")}),
        )
        .await;
    let exported = events["data"]["streamEvents"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["eventType"] == "SubjectDataExported")
        .cloned();
    let payload_text = exported.unwrap_or_else(|| panic!("{events}"))["payload"].to_string();
    assert!(payload_text.contains("purchases") && !payload_text.contains("Zephyrine"), "{payload_text}");

    // Without a request one is opened; an erasure request cannot be answered with an export.
    let r = app.gql(Some(&compliance), EXPORT, json!({"input": {"customerId": customer}})).await;
    assert_eq!(payload(&r, "exportSubjectData")["privacyRequest"]["kind"], "ACCESS", "{r}");
    let erasure = app
        .gql(
            Some(&compliance),
            OPEN,
            json!({"input": {"customerId": customer, "kind": "ERASURE", "receivedVia": "EMAIL"}}),
        )
        .await;
    let erasure_id = payload(&erasure, "openPrivacyRequest")["privacyRequest"]["id"].clone();
    let r = app
        .gql(Some(&compliance), EXPORT, json!({"input": {"customerId": customer, "privacyRequestId": erasure_id}}))
        .await;
    assert_eq!(payload(&r, "exportSubjectData")["errors"][0]["field"], "privacyRequestId", "{r}");
    assert!(payload(&r, "exportSubjectData")["document"].is_null());

    // After erasure the export says so and holds nothing personal but the legal-hold identity.
    app.gql(
        Some(&compliance),
        ERASE,
        json!({"input": {"customerId": customer, "reason": "subject request", "privacyRequestId": erasure_id}}),
    )
    .await;
    let r = app.gql(Some(&compliance), EXPORT, json!({"input": {"customerId": customer}})).await;
    let doc: Value =
        serde_json::from_str(payload(&r, "exportSubjectData")["document"].as_str().unwrap_or_else(|| panic!("{r}")))
            .unwrap();
    matches_schema(&doc);
    assert_eq!((&doc["profile"]["erased"], &doc["profile"]["name"]), (&json!(true), &Value::Null));
    assert_eq!(doc["consent"]["history"][0]["evidence"], json!({"ip": null, "user_agent": null, "erased": true}));
    assert_eq!(doc["purchases"][0]["buyer_name"], SECRETS[0], "kept under legal hold");

    // A staff member is a data subject too.
    let me = app.gql(Some(&compliance), "{ me { userId } }", json!({})).await;
    let staff_id = me["data"]["me"]["userId"].as_str().unwrap().to_owned();
    let r = app.gql(Some(&owner), EXPORT, json!({"input": {"staffId": staff_id}})).await;
    let doc: Value =
        serde_json::from_str(payload(&r, "exportSubjectData")["document"].as_str().unwrap_or_else(|| panic!("{r}")))
            .unwrap();
    matches_schema(&doc);
    assert_eq!(doc["profile"]["role"], "COMPLIANCE");
    assert!(
        doc["actions"].as_array().unwrap().iter().any(|a| a["event_type"] == "ErasureCompleted"),
        "{}",
        doc["actions"]
    );
    assert!(!doc["sessions"].as_array().unwrap().is_empty());
}

pub(crate) async fn a_former_staff_member_is_erased_but_stays_a_pseudonym_in_the_audit_trail(app: TestApp) {
    let owner = app.owner().await;
    let compliance = app.staff(Role::Compliance).await;
    let (name, email, password) =
        ("Wilhelmina Staffscan", "wilhelmina.staffscan@example.test", "a-long-staff-password-77");
    let invited = app
        .gql(
            Some(&owner),
            "mutation($i: InviteStaffInput!) { inviteStaff(input: $i) { invitationToken errors { code } } }",
            json!({"i": {"email": email, "name": name, "role": "SALES"}}),
        )
        .await;
    let token =
        invited["data"]["inviteStaff"]["invitationToken"].as_str().unwrap_or_else(|| panic!("{invited}")).to_owned();
    let accepted = app
        .gql(
            None,
            "mutation($i: AcceptInvitationInput!) { acceptInvitation(input: $i) { token staffMember { id } errors { code } } }",
            json!({"i": {"invitationToken": token, "password": password}}),
        )
        .await;
    let session =
        accepted["data"]["acceptInvitation"]["token"].as_str().unwrap_or_else(|| panic!("{accepted}")).to_owned();
    let staff_id = accepted["data"]["acceptInvitation"]["staffMember"]["id"].as_str().unwrap().to_owned();
    let made = app.gql(Some(&session), CREATE, json!({"input": {"name": "Walk In"}})).await;
    let made_customer =
        made["data"]["createCustomer"]["customer"]["id"].as_str().unwrap_or_else(|| panic!("{made}")).to_owned();
    assert!(!plaintext_left(&app.db.url, &[name, email]).await.is_empty(), "the scan sees the member first");

    const ERASE_STAFF: &str =
        "mutation($s: ID!) { eraseStaffMember(input: {staffId: $s, reason: \"left the company\"}) {
        erasureRequest { id status } position errors { code } } }";
    let active = app.gql(Some(&compliance), ERASE_STAFF, json!({"s": staff_id})).await;
    assert_eq!(payload(&active, "eraseStaffMember")["errors"][0]["code"], "ILLEGAL_TRANSITION", "{active}");
    let off = app
        .gql(
            Some(&owner),
            "mutation($s: ID!) { deactivateStaff(input: {staffId: $s, reason: \"left\"}) { errors { code } } }",
            json!({"s": staff_id}),
        )
        .await;
    assert_eq!(off["data"]["deactivateStaff"]["errors"], json!([]), "{off}");
    let erased = app.gql(Some(&compliance), ERASE_STAFF, json!({"s": staff_id})).await;
    let p = payload(&erased, "eraseStaffMember");
    assert_eq!(p["erasureRequest"]["status"], "COMPLETED", "{erased}");
    let request = p["erasureRequest"]["id"].as_str().unwrap().to_owned();

    let member = app
        .gql(Some(&owner), "query($s: ID!) { staffMember(id: $s) { id name email active } }", json!({"s": staff_id}))
        .await;
    assert_eq!(
        member["data"]["staffMember"],
        json!({"id": staff_id, "name": null, "email": null, "active": false}),
        "{member}"
    );
    // The audit trail keeps the actor id (a pseudonym) on what they did.
    let trail = app
        .gql(
            Some(&owner),
            "query($e: String) { auditTrail(where: {entityId: $e}) { nodes { eventType actor { id } } } }",
            json!({"e": made_customer}),
        )
        .await;
    assert_eq!(trail["data"]["auditTrail"]["nodes"][0]["actor"]["id"], json!(staff_id), "{trail}");
    // No way back in: no password, no sessions.
    let login = app
        .gql(
            None,
            "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { token } }",
            json!({"e": email, "p": password}),
        )
        .await;
    assert!(login["data"]["login"].is_null() || login["data"]["login"]["token"].is_null(), "{login}");
    let me = app.gql(Some(&session), "{ me { role } }", json!({})).await;
    assert_eq!(code(&me), "UNAUTHENTICATED", "{me}");
    let left = plaintext_left(&app.db.url, &[name, email]).await;
    assert!(left.is_empty(), "plaintext left after the staff erasure: {left:?}");
    // Its certificate verifies like a customer's.
    let r = app
        .gql(
            Some(&compliance),
            "query($r: ID!) { deletionCertificate(requestId: $r) { document } ledgerPublicKey }",
            json!({"r": request}),
        )
        .await;
    let document = r["data"]["deletionCertificate"]["document"].as_str().unwrap_or_else(|| panic!("{r}"));
    assert!(independently_valid(document, r["data"]["ledgerPublicKey"].as_str().unwrap()));
    let cert: Value = serde_json::from_str(document).unwrap();
    assert_eq!(cert["subject"], json!({"kind": "staff", "pseudonymous_id": staff_id}));
    assert!(cert["erasure_events"].as_array().unwrap().iter().any(|e| e["event_type"] == "StaffErased"), "{document}");
}
