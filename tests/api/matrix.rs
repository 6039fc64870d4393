//! The permission matrix, walked from the schema itself: every Query and Mutation field is
//! called by every role (and by an anonymous caller) with generated arguments, and the answer
//! must be what the permission table says. A field added to the schema but not to the table
//! fails here, because the table refuses what it does not list.

use super::{TestApp, STAFF_PASSWORD};
use api::auth::{allows, root_field_access, Access};
use domain::staff::Role;
use serde_json::{json, Value};
use std::collections::HashMap;

const INTROSPECTION: &str = "{ __schema { queryType { name } mutationType { name } types {
    name kind enumValues { name } inputFields { name defaultValue type { ...T } }
    fields { name args { name defaultValue type { ...T } } type { ...T } } } } }
  fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

struct Types(HashMap<String, Value>);

impl Types {
    /// A GraphQL literal of type `t` (required input fields only).
    fn literal(&self, t: &Value, depth: usize) -> String {
        match t["kind"].as_str().unwrap() {
            "NON_NULL" => self.literal(&t["ofType"], depth),
            "LIST" => format!("[{}]", self.literal(&t["ofType"], depth)),
            "SCALAR" => match t["name"].as_str().unwrap() {
                "ID" => format!("\"{}\"", uuid::Uuid::now_v7()),
                "Int" => "1".into(),
                "Float" => "1.0".into(),
                "Boolean" => "true".into(),
                "Decimal" => "\"1.00\"".into(),
                "DateTime" => "\"2030-01-01T00:00:00Z\"".into(),
                "NaiveDate" | "Date" => "\"2000-01-01\"".into(),
                _ => "\"x\"".into(),
            },
            "ENUM" => {
                let ty = &self.0[t["name"].as_str().unwrap()];
                ty["enumValues"][0]["name"].as_str().unwrap().to_owned()
            }
            "INPUT_OBJECT" => {
                assert!(depth < 6, "input nesting too deep");
                let ty = &self.0[t["name"].as_str().unwrap()];
                let fields: Vec<String> = ty["inputFields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|f| f["type"]["kind"] == "NON_NULL" && f["defaultValue"].is_null())
                    .map(|f| format!("{}: {}", f["name"].as_str().unwrap(), self.literal(&f["type"], depth + 1)))
                    .collect();
                format!("{{{}}}", fields.join(", "))
            }
            other => panic!("unexpected input kind {other}"),
        }
    }

    fn selection(&self, t: &Value) -> &'static str {
        match t["kind"].as_str().unwrap() {
            "NON_NULL" | "LIST" => self.selection(&t["ofType"]),
            "OBJECT" | "INTERFACE" | "UNION" => " { __typename }",
            _ => "",
        }
    }

    /// `query { field(requiredArgs) { __typename } }` for one root field.
    fn operation(&self, op: &str, field: &Value) -> String {
        let args: Vec<String> = field["args"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["type"]["kind"] == "NON_NULL" && a["defaultValue"].is_null())
            .map(|a| format!("{}: {}", a["name"].as_str().unwrap(), self.literal(&a["type"], 0)))
            .collect();
        let args = if args.is_empty() { String::new() } else { format!("({})", args.join(", ")) };
        format!("{op} {{ {}{args}{} }}", field["name"].as_str().unwrap(), self.selection(&field["type"]))
    }
}

/// The error code the response carries for the field, if any.
fn error_code(r: &Value) -> Option<String> {
    r["errors"]
        .as_array()
        .and_then(|errs| errs.first())
        .and_then(|e| e["extensions"]["code"].as_str())
        .map(str::to_owned)
}

pub(crate) async fn every_root_field_answers_every_role_as_the_permission_table_says(app: TestApp) {
    let owner = app.owner().await;
    let schema = app.gql(Some(&owner), INTROSPECTION, json!({})).await;
    let types = schema["data"]["__schema"]["types"].as_array().unwrap_or_else(|| panic!("{schema}"));
    let types = Types(types.iter().map(|t| (t["name"].as_str().unwrap().to_owned(), t.clone())).collect());

    // A member for each role (the owner exists); sessions are opened directly, one per call,
    // because some calls (logout) end the session they run in.
    let store_id = app.store_id(&owner).await.parse().unwrap();
    let mut members = vec![(Role::Owner, None)];
    for role in [Role::Manager, Role::Sales, Role::Technician, Role::Auditor, Role::Compliance] {
        let email = format!("matrix-{}@demo.test", role.as_str().to_lowercase());
        let ctx = commands::CommandContext::system(domain::StoreId::from_uuid(store_id), "test");
        let (user_id, position) =
            commands::staff::add_staff(&app.state.store, &app.state.accounts, &ctx, &email, None, STAFF_PASSWORD, role)
                .await
                .unwrap();
        app.state.projections.wait_for(position, std::time::Duration::from_secs(20)).await.unwrap();
        members.push((role, Some(user_id.as_uuid())));
    }
    let owner_id: uuid::Uuid = app.gql(Some(&owner), "{ me { userId } }", json!({})).await["data"]["me"]["userId"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    let mut checked = 0;
    for (op, parent) in [("query", "Query"), ("mutation", "Mutation")] {
        for field in types.0[parent]["fields"].as_array().unwrap() {
            let name = field["name"].as_str().unwrap();
            let access = root_field_access(parent, name)
                .unwrap_or_else(|| panic!("{parent}.{name} is in the schema but not in the permission table"));
            let operation = types.operation(op, field);

            let anonymous = app.gql(None, &operation, json!({})).await;
            if access != Access::Public {
                assert_eq!(
                    error_code(&anonymous).as_deref(),
                    Some("UNAUTHENTICATED"),
                    "anonymous {operation}: {anonymous}"
                );
            }
            for (role, user) in &members {
                let (token, _) = app
                    .state
                    .sessions
                    .open(user.unwrap_or(owner_id), store_id, *role, Default::default())
                    .await
                    .unwrap();
                let r = app.gql(Some(&token), &operation, json!({})).await;
                let code = error_code(&r);
                let allowed = match access {
                    Access::Public | Access::SignedIn => true,
                    Access::Requires(p) => allows(*role, p),
                };
                if allowed {
                    assert_ne!(code.as_deref(), Some("FORBIDDEN"), "{role:?} may call {operation}: {r}");
                    if access != Access::Public {
                        assert_ne!(code.as_deref(), Some("UNAUTHENTICATED"), "{role:?} {operation}: {r}");
                    }
                } else {
                    assert_eq!(code.as_deref(), Some("FORBIDDEN"), "{role:?} must not call {operation}: {r}");
                    assert!(r["data"].is_null() || r["data"][name].is_null(), "{r}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 6 * 40, "walked {checked} (field, role) pairs");
    // Spot checks of the table itself, in words: auditors change nothing (sealing a tree head
    // records no business change); technicians never reach customers.
    for field in types.0["Mutation"]["fields"].as_array().unwrap() {
        let name = field["name"].as_str().unwrap();
        if let Some(Access::Requires(p)) = root_field_access("Mutation", name) {
            assert!(!allows(Role::Auditor, p) || name == "sealLedgerHead", "auditors may not {name}");
        }
    }
    for name in ["customers", "customer", "consentLedger", "sales"] {
        let Some(Access::Requires(p)) = root_field_access("Query", name) else { panic!("{name}") };
        assert!(!allows(Role::Technician, p), "technicians may not read {name}");
    }
}

#[test]
fn the_readme_permission_matrix_is_the_codes() {
    let readme = include_str!("../../README.md");
    let table = readme.split("| permission | OWNER |").nth(1).expect("README has the permission matrix");
    let header = ["OWNER", "MANAGER", "SALES", "TECHNICIAN", "AUDITOR", "COMPLIANCE"];
    let roles: Vec<Role> = header.iter().map(|r| Role::parse(r).unwrap()).collect();
    let mut seen = Vec::new();
    for line in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let permission = api::auth::Permission::ALL
            .into_iter()
            .find(|p| p.name() == cells[0])
            .unwrap_or_else(|| panic!("README names an unknown permission {}", cells[0]));
        for (role, cell) in roles.iter().zip(&cells[1..]) {
            assert_eq!(*cell == "✓", allows(*role, permission), "README says {cell:?} for {role:?} × {}", cells[0]);
        }
        seen.push(permission);
    }
    assert_eq!(seen.len(), api::auth::Permission::ALL.len(), "every permission has a row");
}
