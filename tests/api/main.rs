//! API tests: the real HTTP server (the same `serve` the binary runs) on a random port, driven
//! over real HTTP, against both backends. Each test has its own database.

mod access;
mod audit;
mod customers;
mod evolution;
mod http;
mod inputs;
mod inventory;
mod isolation;
mod ledger;
mod live;
mod marketing;
mod matrix;
mod payloads;
mod privacy;
mod records;
mod retention;
mod sales;
mod staff;

use access::*;
use audit::*;
use customers::*;
use http::*;
use inputs::*;
use inventory::*;
use isolation::*;
use ledger::*;
use live::*;
use marketing::*;
use matrix::*;
use payloads::*;
use privacy::*;
use records::*;
use retention::*;
use sales::*;
use staff::*;

use api::app::AppState;
use commands::CommandContext;
use domain::staff::Role;
use domain::StoreId;
use eventstore::testing::TestDatabase;
use eventstore::{Database, EventStore, MasterKey, Upcasters};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::watch;

struct TestApp {
    url: String,
    client: reqwest::Client,
    state: Arc<AppState>,
    key: MasterKey,
    _stop: watch::Sender<bool>,
    db: TestDatabase,
}

async fn spawn_app(tdb: TestDatabase) -> TestApp {
    spawn_app_with(tdb, api::app::Settings::default()).await
}

async fn spawn_app_with(tdb: TestDatabase, settings: api::app::Settings) -> TestApp {
    let key = MasterKey::generate();
    let (url, state, stop) = serve_on(&tdb.url, &key, settings).await;
    api::demo::seed(&state).await.unwrap();
    TestApp { url, client: reqwest::Client::new(), state, key, _stop: stop, db: tdb }
}

/// Another server on the same database (as after a restart, or a second replica).
async fn serve_on(
    url: &str,
    key: &MasterKey,
    settings: api::app::Settings,
) -> (String, Arc<AppState>, watch::Sender<bool>) {
    let db = Database::connect(url).await.unwrap();
    let store = EventStore::new(&db, key.clone(), Upcasters::default());
    let (stop, shutdown) = watch::channel(false);
    let state = AppState::start_with(db, store, shutdown.clone(), settings).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(api::app::serve(listener, state.clone(), shutdown));
    (url, state, stop)
}

impl TestApp {
    async fn post(&self, token: Option<&str>, body: &Value) -> Value {
        let mut req = self.client.post(format!("{}/graphql", self.url)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap().json().await.unwrap()
    }

    async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.post(token, &json!({"query": query, "variables": variables})).await
    }

    async fn login(&self, email: &str, password: &str) -> String {
        let r = self
            .gql(
                None,
                "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { token } }",
                json!({"e": email, "p": password}),
            )
            .await;
        r["data"]["login"]["token"].as_str().unwrap_or_else(|| panic!("login failed: {r}")).to_owned()
    }

    async fn owner(&self) -> String {
        self.login(api::demo::DEMO_EMAIL, api::demo::DEMO_PASSWORD).await
    }

    /// Adds a staff member with `role` to the demo store and returns their token.
    async fn staff(&self, role: Role) -> String {
        let owner = self.owner().await;
        let me = self.gql(Some(&owner), "{ me { storeId } }", json!({})).await;
        let store_id: StoreId = me["data"]["me"]["storeId"].as_str().unwrap().parse().unwrap();
        let email = format!("{}@demo.test", role.as_str().to_lowercase());
        let ctx = CommandContext::system(store_id, "test");
        let (_, position) = commands::staff::add_staff(
            &self.state.store,
            &self.state.accounts,
            &ctx,
            &email,
            None,
            "staff-password-1",
            role,
        )
        .await
        .unwrap();
        self.state.projections.wait_for(position, std::time::Duration::from_secs(20)).await.unwrap();
        self.login(&email, STAFF_PASSWORD).await
    }

    async fn store_id(&self, token: &str) -> String {
        let me = self.gql(Some(token), "{ me { storeId } }", json!({})).await;
        me["data"]["me"]["storeId"].as_str().unwrap_or_else(|| panic!("{me}")).to_owned()
    }
}

const STAFF_PASSWORD: &str = "staff-password-1";

fn code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {response}"))
}

const ACQUIRE: &str = "mutation($input: AcquireItemInput!) { acquireItem(input: $input) {
    item { id brand status askingPrice { amount currency } cost { amount } } position errors { field code message } } }";

fn acquire_input(price: &str) -> Value {
    json!({"input": {
        "category": "WATCH", "brand": "Tudor", "model": "Black Bay 58",
        "cost": {"amount": "2500.00", "currency": "USD"},
        "askingPrice": {"amount": price, "currency": "USD"},
        "acquisition": {"source": "PURCHASE"},
        "attributes": [{"key": "dial", "value": "blue"}],
        "vendor": "Chrono Dealers Ltd"
    }})
}

async fn create_customer(app: &TestApp, token: &str, name: &str) -> String {
    let r = app
        .gql(Some(token), "mutation($n: String!) { createCustomer(input: {name: $n, email: \"x@example.com\"}) { customer { id } errors { code } } }", json!({"n": name}))
        .await;
    r["data"]["createCustomer"]["customer"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
}

async fn acquire_item(app: &TestApp, token: &str, price: &str) -> String {
    let r = app.gql(Some(token), ACQUIRE, acquire_input(price)).await;
    r["data"]["acquireItem"]["item"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
}

async fn item_status(app: &TestApp, token: &str, id: &str) -> String {
    let r = app.gql(Some(token), "query($id: ID!) { inventoryItem(id: $id) { status } }", json!({"id": id})).await;
    r["data"]["inventoryItem"]["status"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
}

macro_rules! api_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::spawn_app(eventstore::testing::TestDatabase::sqlite()).await).await
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(db) = eventstore::testing::TestDatabase::postgres().await else { return };
                super::$name(super::spawn_app(db).await).await
            })*
        }
    };
}

api_tests!(
    item_payloads_come_from_the_items_own_fold_without_waiting_for_the_read_model,
    the_readme_example_works_when_pasted,
    a_subscriber_gets_what_it_missed_then_live_events_without_gap_or_duplicate,
    the_feed_shows_only_the_callers_store_and_what_their_role_may_read,
    entity_feeds_carry_the_new_state,
    the_websocket_protocol_is_enforced_with_its_close_codes,
    trusted_documents_mode_runs_only_the_allowlist,
    ending_a_session_closes_its_sockets,
    connections_per_session_are_limited_and_slow_subscribers_are_disconnected,
    a_wrong_password_or_unknown_email_is_unauthenticated,
    a_missing_or_forged_token_is_unauthenticated,
    malformed_input_gets_typed_errors_and_writes_nothing,
    mutations_return_a_position_that_reads_your_writes,
    a_store_never_sees_another_stores_data,
    roles_are_enforced_least_privilege,
    root_fields_are_checked_however_a_document_reaches_them,
    lists_paginate_with_keyset_cursors,
    customers_are_created_updated_and_filtered,
    an_item_moves_through_its_lifecycle_and_illegal_moves_are_rejected,
    a_sale_is_drafted_confirmed_paid_refunded_and_fulfilled,
    cancelling_a_confirmed_sale_voids_its_invoice_and_restocks_the_item,
    consent_is_granted_withdrawn_and_answerable_as_of_an_instant,
    a_retried_mutation_with_an_idempotency_key_returns_the_first_result,
    duplicate_customers_merge_into_a_survivor_that_keeps_their_history,
    personal_data_never_reaches_the_logs,
    events_record_who_why_and_the_correlation_the_client_sent,
    repeated_failed_logins_are_throttled,
    rejected_commands_and_retried_conflicts_are_not_error_lines,
    every_request_has_an_id_in_the_response_the_logs_and_its_events,
    // staff.rs
    sales_auditor_and_compliance_are_invited_and_each_sees_what_their_role_allows,
    managers_cannot_make_owners_nobody_raises_their_own_role_and_a_store_keeps_an_owner,
    sessions_end_at_once_on_logout_revocation_role_change_deactivation_and_password_change,
    a_password_reset_is_single_use_and_ends_every_session,
    an_email_that_is_staff_of_two_stores_chooses_its_store,
    login_throttles_cover_spraying_and_distributed_guessing_and_survive_a_restart,
    hostile_requests_are_refused_with_clear_errors_and_write_nothing,
    a_connection_that_never_finishes_its_headers_is_closed,
    a_browser_origin_is_allowed_only_when_configured,
    readiness_fails_when_a_projection_stops,
    metrics_count_requests_appends_and_projection_lag_without_personal_data,
    // matrix.rs
    every_root_field_answers_every_role_as_the_permission_table_says,
    // inputs.rs
    selling_below_the_floor_price_needs_approve_discounts,
    references_to_records_that_do_not_exist_are_not_found,
    an_idempotency_key_reused_with_different_input_is_refused,
    only_active_iso_currencies_are_accepted,
    customer_tags_are_encrypted_in_the_log,
    holds_cannot_start_in_the_past_and_a_lapsed_reservation_stops_blocking,
    // isolation.rs
    store_a_reaches_none_of_store_b_through_any_id_argument,
    // ledger.rs
    an_auditor_saves_a_head_and_proves_inclusion_and_growth_independently,
    // audit.rs
    every_event_has_an_audit_entry_with_who_what_why_and_the_correlation,
    // privacy.rs
    an_erased_customer_leaves_no_plaintext_and_keeps_a_completed_case,
    erasure_requests_are_checked_before_anything_is_destroyed,
    a_deletion_certificate_proves_the_erasure_and_keeps_the_invoice,
    a_subject_export_holds_everything_about_them_and_is_itself_recorded,
    a_former_staff_member_is_erased_but_stays_a_pseudonym_in_the_audit_trail,
    // marketing.rs
    the_marketing_audience_follows_consent_restriction_and_erasure_as_of_any_instant,
    // retention.rs
    retention_ends_holds_trims_the_audit_and_shreds_a_closed_store,
    // http.rs
    graphql_over_http_follows_the_specification,
    automatic_persisted_queries_run_by_hash_once_registered,
);

#[test]
fn the_schema_matches_the_golden_file() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../api/schema.graphql");
    let sdl = api::schema_sdl();
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(path, &sdl).unwrap();
    }
    let golden = std::fs::read_to_string(path).unwrap_or_default();
    assert!(golden == sdl, "api/schema.graphql is out of date: rerun with UPDATE_GOLDEN=1 and review the diff");
}
