//! The account store on both backends: sessions end when revoked, idle or expired; one-time
//! tokens are single use and expire; failure counters count per bucket within a window; the
//! master-key check refuses a different key before anything is written.

use chrono::{Duration, Utc};
use eventstore::accounts::{bucket, new_token, OneTimeToken, SessionRecord, TokenPurpose};
use eventstore::testing::TestDatabase;
use eventstore::{Accounts, Database, KeyCheck, MasterKey, StoreError};
use uuid::Uuid;

/// Now, at the stores' precision (microseconds).
fn now() -> chrono::DateTime<Utc> {
    chrono::DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

fn session(user_id: Uuid, now: chrono::DateTime<Utc>) -> SessionRecord {
    SessionRecord {
        session_id: Uuid::now_v7(),
        user_id,
        store_id: Uuid::now_v7(),
        role: "SALES".into(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + Duration::hours(8),
        client_ip: Some("192.0.2.1".into()),
        user_agent: Some("test".into()),
    }
}

async fn sessions_end_when_revoked_idle_or_expired(tdb: &TestDatabase) {
    let db = Database::connect(&tdb.url).await.unwrap();
    let accounts = Accounts::new(&db);
    let now = now();
    let idle = Duration::minutes(30);
    let user = Uuid::now_v7();
    let s = session(user, now);
    let (token, _) = new_token("ics");
    accounts.create_session(&s, &token).await.unwrap();
    assert_eq!(accounts.live_session(&token, now, idle).await.unwrap().as_ref(), Some(&s));
    assert!(accounts.live_session("ics_not-a-token", now, idle).await.unwrap().is_none());
    // Idle: unused for longer than the idle limit.
    assert!(accounts.live_session(&token, now + Duration::minutes(31), idle).await.unwrap().is_none());
    // Activity keeps it alive.
    accounts.touch_session(s.session_id, now + Duration::minutes(20)).await.unwrap();
    assert!(accounts.live_session(&token, now + Duration::minutes(31), idle).await.unwrap().is_some());
    // Absolute lifetime: however active.
    accounts.touch_session(s.session_id, now + Duration::hours(8)).await.unwrap();
    assert!(accounts
        .live_session(&token, now + Duration::hours(8) + Duration::seconds(1), idle)
        .await
        .unwrap()
        .is_none());

    // Revocation: one, all but one, all; never another member's.
    let (t2, _) = new_token("ics");
    let (t3, _) = new_token("ics");
    let s2 = session(user, now);
    let s3 = session(user, now);
    accounts.create_session(&s2, &t2).await.unwrap();
    accounts.create_session(&s3, &t3).await.unwrap();
    let (t_other, _) = new_token("ics");
    let other = session(Uuid::now_v7(), now);
    accounts.create_session(&other, &t_other).await.unwrap();
    assert!(!accounts.revoke_session(user, other.session_id).await.unwrap(), "not theirs");
    assert_eq!(accounts.live_sessions_of(user, now, idle).await.unwrap().len(), 3);
    assert_eq!(accounts.revoke_all_sessions(user, Some(s3.session_id)).await.unwrap(), 2);
    assert!(accounts.live_session(&t2, now, idle).await.unwrap().is_none());
    assert!(accounts.live_session(&t3, now, idle).await.unwrap().is_some());
    assert!(accounts.revoke_session(user, s3.session_id).await.unwrap());
    assert!(accounts.live_session(&t3, now, idle).await.unwrap().is_none());
    assert!(accounts.live_session(&t_other, now, idle).await.unwrap().is_some(), "others untouched");
}

async fn one_time_tokens_are_single_use_and_expire(tdb: &TestDatabase) {
    let db = Database::connect(&tdb.url).await.unwrap();
    let accounts = Accounts::new(&db);
    let record = OneTimeToken {
        store_id: Uuid::now_v7(),
        user_id: Uuid::now_v7(),
        ref_id: Some(Uuid::now_v7()),
        expires_at: now() + Duration::days(7),
    };
    let (token, _) = new_token("ici");
    accounts.put_token(&token, TokenPurpose::Invitation, &record).await.unwrap();
    assert_eq!(accounts.token(&token, TokenPurpose::Invitation).await.unwrap().as_ref(), Some(&record));
    assert!(accounts.token(&token, TokenPurpose::PasswordReset).await.unwrap().is_none(), "purpose-bound");
    // Two racing consumers: exactly one wins.
    let (a, b) = tokio::join!(
        accounts.consume_token(&token, TokenPurpose::Invitation),
        accounts.consume_token(&token, TokenPurpose::Invitation)
    );
    assert!(a.unwrap() ^ b.unwrap(), "exactly one consumer wins");
    assert!(accounts.token(&token, TokenPurpose::Invitation).await.unwrap().is_none());

    let (expired, _) = new_token("icr");
    let old = OneTimeToken { expires_at: Utc::now() - Duration::seconds(1), ref_id: None, ..record.clone() };
    accounts.put_token(&expired, TokenPurpose::PasswordReset, &old).await.unwrap();
    assert!(accounts.token(&expired, TokenPurpose::PasswordReset).await.unwrap().is_none());
    assert!(!accounts.consume_token(&expired, TokenPurpose::PasswordReset).await.unwrap());

    let (fresh, _) = new_token("icr");
    let live = OneTimeToken { ref_id: None, ..record.clone() };
    accounts.put_token(&fresh, TokenPurpose::PasswordReset, &live).await.unwrap();
    accounts.retire_tokens(record.user_id, TokenPurpose::PasswordReset).await.unwrap();
    assert!(accounts.token(&fresh, TokenPurpose::PasswordReset).await.unwrap().is_none(), "retired");
}

async fn failures_count_per_bucket_within_the_window(tdb: &TestDatabase) {
    let db = Database::connect(&tdb.url).await.unwrap();
    let accounts = Accounts::new(&db);
    let window = Duration::minutes(15);
    let now = now();
    let (a, b) = (bucket("account", "a@b.test"), bucket("address", "192.0.2.1"));
    accounts.record_failure(&[a, b], now - Duration::minutes(20), window).await.unwrap();
    for i in 0..3 {
        accounts.record_failure(&[a], now - Duration::minutes(3 - i), window).await.unwrap();
    }
    let (n, oldest) = accounts.failures(&a, now - window).await.unwrap();
    assert_eq!(n, 3, "the failure 20 minutes ago is outside the window");
    assert_eq!(oldest.unwrap().timestamp(), (now - Duration::minutes(3)).timestamp());
    assert_eq!(accounts.failures(&b, now - window).await.unwrap().0, 0);
    accounts.clear_failures(&a).await.unwrap();
    assert_eq!(accounts.failures(&a, now - window).await.unwrap().0, 0);
}

async fn a_database_refuses_a_master_key_other_than_its_own(tdb: &TestDatabase) {
    let db = Database::connect(&tdb.url).await.unwrap();
    let (right, wrong) = (MasterKey::generate(), MasterKey::generate());
    assert!(db.key_check_value().await.unwrap().is_none());
    assert_eq!(db.check_master_key(&right).await.unwrap(), KeyCheck::Recorded);
    assert_eq!(db.check_master_key(&right).await.unwrap(), KeyCheck::Matches);
    assert!(matches!(db.check_master_key(&wrong).await, Err(StoreError::WrongMasterKey)));
    // Reopened, it still knows its key.
    let again = Database::connect(&tdb.url).await.unwrap();
    assert!(matches!(again.check_master_key(&wrong).await, Err(StoreError::WrongMasterKey)));
    assert_eq!(again.key_check_value().await.unwrap(), Some(right.check_value()));
}

async fn a_database_with_data_keys_but_no_check_value_accepts_only_the_key_that_opens_them(tdb: &TestDatabase) {
    // A database initialised before check values existed: its data keys decide.
    let db = Database::connect(&tdb.url).await.unwrap();
    let right = MasterKey::generate();
    let store = eventstore::EventStore::new(&db, right.clone(), eventstore::Upcasters::default());
    let subject = Uuid::now_v7();
    let event = eventstore::NewEvent {
        event_id: Uuid::now_v7(),
        store_id: Uuid::now_v7(),
        event_type: "Noted".into(),
        schema_version: 1,
        payload: serde_json::json!({"who": {"$pii": {"class": "profile", "value": "Ann"}}}),
        metadata: eventstore::Metadata::system("test"),
        data_subject: Some(subject),
    };
    store.append("note-1", eventstore::ExpectedVersion::NoStream, vec![event]).await.unwrap();
    assert!(matches!(db.check_master_key(&MasterKey::generate()).await, Err(StoreError::WrongMasterKey)));
    assert!(db.key_check_value().await.unwrap().is_none(), "a refused key records nothing");
    assert_eq!(db.check_master_key(&right).await.unwrap(), KeyCheck::Recorded);
}

eventstore::backend_contract!(
    sessions_end_when_revoked_idle_or_expired,
    one_time_tokens_are_single_use_and_expire,
    failures_count_per_bucket_within_the_window,
    a_database_refuses_a_master_key_other_than_its_own,
    a_database_with_data_keys_but_no_check_value_accepts_only_the_key_that_opens_them,
);
