//! Privacy requests and erasure over GraphQL (COMPLIANCE and OWNER). Rules live in
//! `domain::privacy`, the workflow in `commands::privacy`; this file parses, calls and maps.

use super::types::{ConnectionFields, UserError};
use super::{command_context, outcome, page_size, parse_id, state, viewer};
use crate::certificates::CertificateError;
use crate::error::ApiError;
use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};
use domain::privacy::{OpenPrivacyRequest, PrivacyRequestId, Subject};
use domain::{CustomerId, StoreId, UserId};
use eventstore::Position;
use projections::privacy::{PrivacyQuery as PrivacyPage, PrivacyRequestRow};
use projections::rows::{Cursor, CursorValue};
use uuid::Uuid;

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "domain::privacy::RequestKind")]
pub enum PrivacyRequestKind {
    Access,
    Erasure,
    Rectification,
    Restriction,
    Portability,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "domain::privacy::RequestStatus")]
pub enum PrivacyRequestStatus {
    Open,
    InProgress,
    Completed,
}

/// How a request reached the store.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum PrivacyRequestChannel {
    Email,
    Phone,
    InStore,
    Post,
    WebForm,
    /// Raised by staff (e.g. an erasure requested without a prior case).
    Staff,
    /// Raised by the retention job (a closed store's customers after the export window).
    Retention,
}

impl PrivacyRequestChannel {
    fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::InStore => "in_store",
            Self::Post => "post",
            Self::WebForm => "web_form",
            Self::Staff => "staff",
            Self::Retention => "retention",
        }
    }

    fn parse(s: &str) -> Self {
        [Self::Email, Self::Phone, Self::InStore, Self::Post, Self::WebForm, Self::Staff, Self::Retention]
            .into_iter()
            .find(|c| c.as_str() == s)
            .unwrap_or(Self::Staff)
    }
}

/// A key an erasure destroyed: its class, id in the key store, and fingerprint (SHA-256 taken
/// while it existed).
#[derive(SimpleObject, Clone, Debug)]
pub struct DestroyedKey {
    pub class: String,
    pub key_id: ID,
    pub fingerprint: String,
}

/// A privacy request handled as a case (policy §6).
#[derive(SimpleObject, Clone, Debug)]
pub struct PrivacyRequest {
    pub id: ID,
    pub kind: PrivacyRequestKind,
    pub status: PrivacyRequestStatus,
    /// The data subject, when it is a customer.
    pub customer_id: Option<ID>,
    /// The data subject, when it is a staff member.
    pub staff_id: Option<ID>,
    pub received_via: PrivacyRequestChannel,
    pub received_at: DateTime<Utc>,
    /// 30 days after it was received.
    pub due_at: DateTime<Utc>,
    /// Not completed and past its due date.
    pub overdue: bool,
    pub completed_at: Option<DateTime<Utc>>,
    /// Who opened the case (a staff id).
    pub opened_by: Option<ID>,
    /// Who took the latest step.
    pub handled_by: Option<ID>,
    /// For erasures: the keys destroyed (named when the erasure started).
    pub destroyed_keys: Vec<DestroyedKey>,
}

fn at(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

impl PrivacyRequest {
    fn from_row(r: PrivacyRequestRow) -> Result<Self, ApiError> {
        let kind: domain::privacy::RequestKind = serde_json::from_value(serde_json::Value::String(r.kind.clone()))
            .map_err(|e| ApiError::internal("privacy request kind", &e))?;
        let status: domain::privacy::RequestStatus =
            serde_json::from_value(serde_json::Value::String(r.status.clone()))
                .map_err(|e| ApiError::internal("privacy request status", &e))?;
        let keys: Vec<domain::privacy::DestroyedKey> =
            serde_json::from_str(&r.destroyed_keys).map_err(|e| ApiError::internal("destroyed keys", &e))?;
        let subject = ID(r.subject_id.to_string());
        let completed = status == domain::privacy::RequestStatus::Completed;
        Ok(Self {
            id: ID(r.request_id.to_string()),
            kind: kind.into(),
            status: status.into(),
            customer_id: (r.subject_kind == "customer").then(|| subject.clone()),
            staff_id: (r.subject_kind == "staff").then_some(subject),
            received_via: PrivacyRequestChannel::parse(&r.received_via),
            received_at: at(r.received_at),
            due_at: at(r.due_at),
            overdue: !completed && Utc::now() > at(r.due_at),
            completed_at: r.completed_at.map(at),
            opened_by: r.opened_by.map(|u| ID(u.to_string())),
            handled_by: r.handled_by.map(|u| ID(u.to_string())),
            destroyed_keys: keys
                .into_iter()
                .map(|k| DestroyedKey {
                    class: k.class.as_str().to_owned(),
                    key_id: ID(k.key_id.to_string()),
                    fingerprint: k.fingerprint,
                })
                .collect(),
        })
    }
}

/// A signed deletion certificate.
#[derive(SimpleObject, Clone, Debug)]
pub struct DeletionCertificate {
    pub id: ID,
    /// The certificate: one JSON document whose `signature` member signs all the others.
    pub document: String,
}

#[derive(InputObject, Default)]
pub struct PrivacyRequestWhere {
    pub kind: Option<PrivacyRequestKind>,
    pub status: Option<PrivacyRequestStatus>,
    pub customer_id: Option<ID>,
    pub staff_id: Option<ID>,
}

/// Exactly one of `customerId` and `staffId` names the data subject.
#[derive(InputObject)]
pub struct OpenPrivacyRequestInput {
    pub customer_id: Option<ID>,
    pub staff_id: Option<ID>,
    pub kind: PrivacyRequestKind,
    pub received_via: PrivacyRequestChannel,
    /// How the requester's identity was checked (kept encrypted under the subject's key).
    pub identity_verified_by: Option<String>,
    /// Case notes (kept encrypted under the subject's key; erased with them).
    pub notes: Option<String>,
    /// When the request reached the store; defaults to now. The 30 days run from here.
    pub received_at: Option<DateTime<Utc>>,
}

#[derive(InputObject)]
pub struct RequestErasureInput {
    pub customer_id: ID,
    /// Why (a business reason, never personal data): kept with the events.
    pub reason: String,
    /// The erasure request this carries out; without one, a request is opened for it.
    pub privacy_request_id: Option<ID>,
}

/// Exactly one of `customerId` and `staffId` names the data subject.
#[derive(InputObject)]
pub struct ExportSubjectDataInput {
    pub customer_id: Option<ID>,
    pub staff_id: Option<ID>,
    /// The access or portability request this answers; without one, an access request is
    /// opened for it.
    pub privacy_request_id: Option<ID>,
}

#[derive(SimpleObject, Default)]
pub struct SubjectExportPayload {
    /// The export: one JSON document (schema: `docs/schemas/subject-export.schema.json`).
    pub document: Option<String>,
    pub privacy_request: Option<PrivacyRequest>,
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct EraseStaffMemberInput {
    /// A deactivated member of this store.
    pub staff_id: ID,
    /// Why (a business reason, never personal data): kept with the events.
    pub reason: String,
    /// The erasure request this carries out; without one, a request is opened for it.
    pub privacy_request_id: Option<ID>,
}

#[derive(SimpleObject, Default)]
pub struct PrivacyRequestPayload {
    pub privacy_request: Option<PrivacyRequest>,
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}

#[derive(SimpleObject, Default)]
pub struct ErasurePayload {
    pub erasure_request: Option<PrivacyRequest>,
    pub position: Option<String>,
    pub errors: Vec<UserError>,
}

pub type PrivacyRequestConnection = Connection<String, PrivacyRequest, ConnectionFields, EmptyFields>;

/// The list's sort key, for the shared cursor helpers.
const PRIVACY_ORDER: &str = "privacy-received";

fn optional_id(id: &Option<ID>, field: &str) -> Result<Option<Uuid>, UserError> {
    id.as_ref().map(|i| Uuid::parse_str(i.as_str()).map_err(|_| UserError::invalid_id(field))).transpose()
}

/// The data subject named by exactly one of `customer_id` and `staff_id`. Unknown or foreign
/// ids are answered first (`NOT_FOUND`), as everywhere; then the one-of rule.
async fn subject_of(
    ctx: &Context<'_>,
    v: &crate::auth::Viewer,
    customer_id: &Option<ID>,
    staff_id: &Option<ID>,
) -> async_graphql::Result<Result<Subject, Vec<UserError>>> {
    let (customer, staff) = match (optional_id(customer_id, "customerId"), optional_id(staff_id, "staffId")) {
        (Err(e), _) | (_, Err(e)) => return Ok(Err(vec![e])),
        (Ok(c), Ok(s)) => (c, s),
    };
    let cctx = command_context(ctx, v, None);
    let store = &state(ctx).store;
    if let Some(c) = customer {
        let found = commands::references::customer(store, &cctx, CustomerId::from_uuid(c), "customerId").await;
        if let Err(errors) = outcome(found)? {
            return Ok(Err(errors));
        }
    }
    if let Some(s) = staff {
        let found = commands::references::staff_member(store, &cctx, UserId::from_uuid(s), "staffId").await;
        if let Err(errors) = outcome(found)? {
            return Ok(Err(errors));
        }
    }
    Ok(match (customer, staff) {
        (Some(c), None) => Ok(Subject::Customer(CustomerId::from_uuid(c))),
        (None, Some(s)) => Ok(Subject::Staff(UserId::from_uuid(s))),
        _ => Err(vec![UserError {
            field: Some("customerId".into()),
            code: "INVALID".into(),
            message: "customerId: give exactly one of customerId and staffId".into(),
        }]),
    })
}

/// Reads a request after a write (waiting, bounded, for the projection to reach it).
async fn request_after(
    ctx: &Context<'_>,
    store_id: Uuid,
    id: Uuid,
    position: Option<Position>,
) -> async_graphql::Result<Option<PrivacyRequest>> {
    let row = super::read_after(ctx, position, state(ctx).read.privacy_request(store_id, id)).await?;
    Ok(row.map(PrivacyRequest::from_row).transpose()?)
}

#[derive(Default)]
pub struct PrivacyQuery;

#[Object]
impl PrivacyQuery {
    /// Privacy requests, oldest first.
    async fn privacy_requests(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(name = "where")] filter: Option<PrivacyRequestWhere>,
    ) -> async_graphql::Result<PrivacyRequestConnection> {
        let v = viewer(ctx)?;
        let f = filter.unwrap_or_default();
        let subject = match (&f.customer_id, &f.staff_id) {
            (Some(c), _) => Some(parse_id(c, "customerId")?),
            (None, Some(s)) => Some(parse_id(s, "staffId")?),
            (None, None) => None,
        };
        let after = super::decode_cursor(PRIVACY_ORDER, after.as_deref())?
            .map(|c| match c.value {
                CursorValue::Int(seq) => Ok((seq, c.id)),
                CursorValue::Text(_) => Err(ApiError::BadUserInput("after is not a cursor from this list".into())),
            })
            .transpose()?;
        let q = PrivacyPage {
            store_id: v.store_id,
            kind: f.kind.map(Into::into),
            status: f.status.map(Into::into),
            subject_id: subject,
            first: page_size(first)?,
            after,
        };
        let (rows, has_next, total) = state(ctx).read.privacy_requests(&q).await.map_err(ApiError::from)?;
        let mut conn =
            Connection::with_additional_fields(q.after.is_some(), has_next, ConnectionFields { total_count: total });
        for r in rows {
            let cursor = super::encode_cursor(
                PRIVACY_ORDER,
                &Cursor { value: CursorValue::Int(r.created_seq), id: r.request_id },
            );
            conn.edges.push(Edge::new(cursor, PrivacyRequest::from_row(r)?));
        }
        Ok(conn)
    }

    /// The signed deletion certificate of a completed erasure request: `document` is the JSON
    /// text `inventory-connect certificate export` writes, byte for byte (check it with
    /// `inventory-connect certificate verify`).
    async fn deletion_certificate(
        &self,
        ctx: &Context<'_>,
        request_id: ID,
    ) -> async_graphql::Result<Option<DeletionCertificate>> {
        let v = viewer(ctx)?;
        let id = parse_id(&request_id, "requestId")?;
        let s = state(ctx);
        match crate::certificates::deletion_certificate(&s.store, &s.read, &s.ledger, v.store_id, id).await {
            Ok(document) => {
                Ok(Some(DeletionCertificate { id: ID(crate::certificates::certificate_id(id).to_string()), document }))
            }
            Err(CertificateError::NotFound) => Ok(None),
            Err(e @ (CertificateError::NotCompleted | CertificateError::NotSealed)) => {
                Err(ApiError::BadUserInput(e.to_string()).into())
            }
            Err(e) => Err(ApiError::internal("deletion certificate", &e).into()),
        }
    }

    async fn privacy_request(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<PrivacyRequest>> {
        let v = viewer(ctx)?;
        let id = parse_id(&id, "id")?;
        let row = state(ctx).read.privacy_request(v.store_id, id).await.map_err(ApiError::from)?;
        Ok(row.map(PrivacyRequest::from_row).transpose()?)
    }
}

#[derive(Default)]
pub struct PrivacyMutation;

#[Object]
impl PrivacyMutation {
    /// Opens a case for a data subject's request (access, erasure, rectification, restriction,
    /// portability); it is due 30 days after it was received.
    async fn open_privacy_request(
        &self,
        ctx: &Context<'_>,
        input: OpenPrivacyRequestInput,
    ) -> async_graphql::Result<PrivacyRequestPayload> {
        let v = viewer(ctx)?;
        let subject = match subject_of(ctx, v, &input.customer_id, &input.staff_id).await? {
            Ok(subject) => subject,
            Err(errors) => return Ok(PrivacyRequestPayload { errors, ..Default::default() }),
        };
        let request_id = PrivacyRequestId::new_v7();
        let request = OpenPrivacyRequest {
            request_id,
            store_id: StoreId::from_uuid(v.store_id),
            subject,
            kind: input.kind.into(),
            received_via: input.received_via.as_str().into(),
            identity_verified_by: input.identity_verified_by,
            notes: input.notes,
            received_at: input.received_at.unwrap_or_else(Utc::now),
        };
        let cctx = command_context(ctx, v, None);
        match outcome(commands::privacy::open_request(&state(ctx).store, &cctx, request).await)? {
            Err(errors) => Ok(PrivacyRequestPayload { errors, ..Default::default() }),
            Ok(once) => Ok(PrivacyRequestPayload {
                privacy_request: request_after(ctx, v.store_id, request_id.as_uuid(), once.position).await?,
                position: once.position.map(|p| p.to_string()),
                errors: vec![],
            }),
        }
    }

    /// Everything held about a data subject (customer or staff member) as one machine-readable
    /// JSON document (access and portability, policy §6). The export is itself recorded.
    async fn export_subject_data(
        &self,
        ctx: &Context<'_>,
        input: ExportSubjectDataInput,
    ) -> async_graphql::Result<SubjectExportPayload> {
        let v = viewer(ctx)?;
        let fail = |e: UserError| Ok(SubjectExportPayload { errors: vec![e], ..Default::default() });
        let request = match optional_id(&input.privacy_request_id, "privacyRequestId") {
            Ok(r) => r.map(PrivacyRequestId::from_uuid),
            Err(e) => return fail(e),
        };
        let subject = match subject_of(ctx, v, &input.customer_id, &input.staff_id).await? {
            Ok(subject) => subject,
            Err(errors) => return Ok(SubjectExportPayload { errors, ..Default::default() }),
        };
        let s = state(ctx);
        let cctx = command_context(ctx, v, None);
        // The request it answers (or a new one) is known before the document is built.
        let request_id = request.unwrap_or_else(PrivacyRequestId::new_v7);
        let built = match subject {
            Subject::Customer(c) => crate::exports::customer_export(s, v.store_id, c, request_id.as_uuid()).await,
            Subject::Staff(u) => crate::exports::staff_export(s, v.store_id, u, request_id.as_uuid()).await,
        };
        let document = built.map_err(|e| ApiError::internal("subject export", e.as_ref()))?;
        let sections: &[&str] = match subject {
            Subject::Customer(_) => &crate::exports::CUSTOMER_SECTIONS,
            Subject::Staff(_) => &crate::exports::STAFF_SECTIONS,
        };
        let recorded = commands::privacy::record_export(&s.store, &cctx, subject, request, request_id, sections).await;
        match outcome(recorded)? {
            Err(errors) => Ok(SubjectExportPayload { errors, ..Default::default() }),
            Ok(position) => Ok(SubjectExportPayload {
                document: Some(serde_json::to_string_pretty(&document).expect("JSON serialises")),
                privacy_request: request_after(ctx, v.store_id, request_id.as_uuid(), position).await?,
                position: position.map(|p| p.to_string()),
                errors: vec![],
            }),
        }
    }

    /// Erases a customer (right to be forgotten): destroys their profile and consent-evidence
    /// keys and purges every read-model row about them. Sales, invoices and payments stay; the
    /// buyer identity under legal hold stays until its retention ends. Running it again
    /// finishes a half-done erasure; an erased customer is not an error.
    async fn request_erasure(
        &self,
        ctx: &Context<'_>,
        input: RequestErasureInput,
    ) -> async_graphql::Result<ErasurePayload> {
        let Ok(customer) = Uuid::parse_str(input.customer_id.as_str()).map(CustomerId::from_uuid) else {
            return Ok(ErasurePayload { errors: vec![UserError::invalid_id("customerId")], ..Default::default() });
        };
        erase(ctx, Subject::Customer(customer), &input.reason, &input.privacy_request_id).await
    }

    /// Erases a deactivated staff member's personal data (policy §1.1): their name and email
    /// are shredded, their password hash, sessions and tokens deleted; their id stays in the
    /// audit trail as a pseudonym.
    async fn erase_staff_member(
        &self,
        ctx: &Context<'_>,
        input: EraseStaffMemberInput,
    ) -> async_graphql::Result<ErasurePayload> {
        let Ok(user) = Uuid::parse_str(input.staff_id.as_str()).map(UserId::from_uuid) else {
            return Ok(ErasurePayload { errors: vec![UserError::invalid_id("staffId")], ..Default::default() });
        };
        erase(ctx, Subject::Staff(user), &input.reason, &input.privacy_request_id).await
    }
}

async fn erase(
    ctx: &Context<'_>,
    subject: Subject,
    reason: &str,
    privacy_request_id: &Option<ID>,
) -> async_graphql::Result<ErasurePayload> {
    let v = viewer(ctx)?;
    let fail = |e: UserError| Ok(ErasurePayload { errors: vec![e], ..Default::default() });
    let request = match optional_id(privacy_request_id, "privacyRequestId") {
        Ok(r) => r.map(PrivacyRequestId::from_uuid),
        Err(e) => return fail(e),
    };
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return fail(UserError {
            field: Some("reason".into()),
            code: "INVALID".into(),
            message: "reason: must be 1 to 500 characters".into(),
        });
    }
    let s = state(ctx);
    let cctx = command_context(ctx, v, Some(reason.to_owned()));
    let erased = commands::privacy::erase_subject(
        &s.store,
        Some(&s.accounts),
        &cctx,
        subject,
        request,
        s.erasure_ledger.as_ref(),
    )
    .await;
    match outcome(erased)? {
        Err(errors) => Ok(ErasurePayload { errors, ..Default::default() }),
        Ok(erasure) => {
            s.scrub_after_erasure(erasure.position).await;
            Ok(ErasurePayload {
                erasure_request: request_after(ctx, v.store_id, erasure.request_id.as_uuid(), erasure.position).await?,
                position: erasure.position.map(|p| p.to_string()),
                errors: vec![],
            })
        }
    }
}
