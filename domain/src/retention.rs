//! Retention (policy §4): how long what is kept, and the record of each retention run.
//!
//! - The buyer identity on invoices (`legal_hold` key) is kept 7 years after the customer's
//!   last confirmed sale (tax / AML), then its key is destroyed.
//! - Audit read-model entries are kept 12 months (the log keeps the events; their personal
//!   fields are shredded by erasures and the rules here).
//! - After a store closes, its data stays 90 days for export; then every customer's profile is
//!   shredded (each as an erasure, with its certificate).
//!
//! Each run appends a `RetentionRun` to the store's `retention-<store>` stream.

use crate::aggregate::{Aggregate, DomainEvent};
use crate::{DomainError, StoreId};
use chrono::{DateTime, Duration, Months, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A store's retention periods. The defaults are the privacy policy's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    pub legal_hold_years: u32,
    pub audit_months: u32,
    pub closure_export_days: u32,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self { legal_hold_years: 7, audit_months: 12, closure_export_days: 90 }
    }
}

impl RetentionPolicy {
    /// Bounds a store may choose within: never shorter than tax and accounting rules commonly
    /// require, never so long that "kept as long as needed" stops meaning anything.
    pub fn validate(&self) -> Result<(), DomainError> {
        if !(5..=30).contains(&self.legal_hold_years) {
            return Err(DomainError::invalid("legalHoldYears", "must be 5 to 30"));
        }
        if !(6..=120).contains(&self.audit_months) {
            return Err(DomainError::invalid("auditMonths", "must be 6 to 120"));
        }
        if !(30..=365).contains(&self.closure_export_days) {
            return Err(DomainError::invalid("closureExportDays", "must be 30 to 365"));
        }
        Ok(())
    }

    /// When the buyer identity of a sale confirmed at `confirmed_at` may be destroyed.
    pub fn legal_hold_until(&self, confirmed_at: DateTime<Utc>) -> DateTime<Utc> {
        confirmed_at
            .checked_add_months(Months::new(12 * self.legal_hold_years))
            .unwrap_or(confirmed_at + Duration::days(366 * i64::from(self.legal_hold_years)))
    }

    /// Audit entries recorded before this instant are removed at `now`.
    pub fn audit_cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now.checked_sub_months(Months::new(self.audit_months)).unwrap_or(now)
    }

    /// When a store closed at `closed_at` has its customers' profiles shredded.
    pub fn closure_shred_at(&self, closed_at: DateTime<Utc>) -> DateTime<Utc> {
        closed_at + Duration::days(i64::from(self.closure_export_days))
    }
}

/// The stream of a store's retention runs.
pub fn retention_stream(store: StoreId) -> String {
    format!("retention-{store}")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum RetentionEvent {
    /// One run of the retention job, with what it destroyed or removed.
    RetentionRun {
        run_id: Uuid,
        store_id: StoreId,
        /// The instant the run applied the rules at.
        at: DateTime<Utc>,
        /// Customers whose legal-hold key was destroyed.
        legal_hold_destroyed: Vec<Uuid>,
        /// Audit entries recorded before this were removed from the read model.
        audit_before: DateTime<Utc>,
        audit_entries_removed: u64,
        /// Customers erased because the store closed more than the export window ago.
        profiles_shredded: Vec<Uuid>,
    },
}

impl DomainEvent for RetentionEvent {}

#[derive(Debug, Clone)]
pub struct RecordRun(pub RetentionEvent);

/// The store's retention log (only appends; a run is a fact).
#[derive(Debug, Clone, Default)]
pub struct RetentionLog {
    pub runs: usize,
    pub last_run: Option<DateTime<Utc>>,
}

impl Aggregate for RetentionLog {
    type Command = RecordRun;
    type Event = RetentionEvent;
    const KIND: &'static str = "retention log";

    fn decide(&self, command: &RecordRun) -> Result<Vec<RetentionEvent>, DomainError> {
        Ok(vec![command.0.clone()])
    }

    fn evolve(mut self, event: &RetentionEvent) -> Self {
        let RetentionEvent::RetentionRun { at, .. } = event;
        self.runs += 1;
        self.last_run = Some(*at);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_defaults_are_the_privacy_policys() {
        let p = RetentionPolicy::default();
        let sold: DateTime<Utc> = "2026-02-28T10:00:00Z".parse().unwrap();
        assert_eq!(p.legal_hold_until(sold), "2033-02-28T10:00:00Z".parse::<DateTime<Utc>>().unwrap());
        let now: DateTime<Utc> = "2027-03-31T00:00:00Z".parse().unwrap();
        assert_eq!(p.audit_cutoff(now), "2026-03-31T00:00:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(p.closure_shred_at(sold), "2026-05-29T10:00:00Z".parse::<DateTime<Utc>>().unwrap());
    }
}
