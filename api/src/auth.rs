//! Who may do what — decided here and nowhere else.
//!
//! Two tables: [`allows`] says which permissions each role has; [`root_field_access`] says what
//! each Query and Mutation field requires. The [`Guarded`] roots apply the second to every root
//! field before its resolver runs, so a resolver never checks a role by hand, and a
//! field missing from the table is refused (fail closed) — and fails the permission-matrix test,
//! which walks the schema. Object fields that expose sensitive values (costs, floor prices,
//! consent evidence) ask [`allows`] for their permission.

use async_graphql::parser::types::{ExecutableDocument, Field, OperationType, Selection};
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::{resolve_container, ContainerType};
use async_graphql::{
    Context, ContextSelectionSet, IntrospectionMode, ObjectType, OutputType, Positioned, Request, ServerError,
    ServerResult, Value,
};
use domain::staff::Role;
use std::borrow::Cow;
use uuid::Uuid;

/// Who is calling: fixed by the session, never by the request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub user_id: Uuid,
    pub store_id: Uuid,
    pub role: Role,
    pub session_id: Uuid,
}

/// Everything a caller may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    ReadInventory,
    /// Acquire, archive, restock, return to consignor, edit details.
    ManageInventory,
    ChangePrices,
    /// Reserve and send on memo for a customer.
    HoldItems,
    /// Send to and take back from a service centre.
    ServiceItems,
    /// See acquisition costs, floor prices, consignor terms and internal notes.
    ViewCosts,
    ReadCustomers,
    ManageCustomers,
    ReadSales,
    /// Draft, confirm, take payments, fulfil, cancel unpaid sales.
    ManageSales,
    /// Sell below an item's floor price.
    ApproveDiscounts,
    /// Refund money and take sales back.
    Refund,
    ReadConsent,
    ManageConsent,
    /// See consent evidence (IP address, user agent).
    ReadConsentEvidence,
    /// See the store's staff directory.
    ViewStaff,
    /// Invite staff, change roles, deactivate, issue password resets.
    ManageStaff,
    /// Read the audit trail and raw event history.
    ViewAudit,
    /// Privacy requests: erasure, subject access, restriction.
    ManagePrivacy,
    /// Read the buyer identity printed on invoices (kept under legal hold after an erasure).
    ReadBuyerIdentity,
    /// Seal a signed tree head on demand.
    SealLedger,
    /// Close and reopen the store's account; set its retention periods.
    ManageAccount,
}

impl Permission {
    pub const ALL: [Permission; 22] = [
        Self::ReadInventory,
        Self::ManageInventory,
        Self::ChangePrices,
        Self::HoldItems,
        Self::ServiceItems,
        Self::ViewCosts,
        Self::ReadCustomers,
        Self::ManageCustomers,
        Self::ReadSales,
        Self::ManageSales,
        Self::ApproveDiscounts,
        Self::Refund,
        Self::ReadConsent,
        Self::ManageConsent,
        Self::ReadConsentEvidence,
        Self::ViewStaff,
        Self::ManageStaff,
        Self::ViewAudit,
        Self::ManagePrivacy,
        Self::ReadBuyerIdentity,
        Self::SealLedger,
        Self::ManageAccount,
    ];

    /// The name clients see in `me { permissions }`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ReadInventory => "READ_INVENTORY",
            Self::ManageInventory => "MANAGE_INVENTORY",
            Self::ChangePrices => "CHANGE_PRICES",
            Self::HoldItems => "HOLD_ITEMS",
            Self::ServiceItems => "SERVICE_ITEMS",
            Self::ViewCosts => "VIEW_COSTS",
            Self::ReadCustomers => "READ_CUSTOMERS",
            Self::ManageCustomers => "MANAGE_CUSTOMERS",
            Self::ReadSales => "READ_SALES",
            Self::ManageSales => "MANAGE_SALES",
            Self::ApproveDiscounts => "APPROVE_DISCOUNTS",
            Self::Refund => "REFUND",
            Self::ReadConsent => "READ_CONSENT",
            Self::ManageConsent => "MANAGE_CONSENT",
            Self::ReadConsentEvidence => "READ_CONSENT_EVIDENCE",
            Self::ViewStaff => "VIEW_STAFF",
            Self::ManageStaff => "MANAGE_STAFF",
            Self::ViewAudit => "VIEW_AUDIT",
            Self::ManagePrivacy => "MANAGE_PRIVACY",
            Self::ReadBuyerIdentity => "READ_BUYER_IDENTITY",
            Self::SealLedger => "SEAL_LEDGER",
            Self::ManageAccount => "MANAGE_ACCOUNT",
        }
    }
}

/// Least privilege, in one table.
pub fn allows(role: Role, permission: Permission) -> bool {
    use Permission::*;
    use Role::*;
    match role {
        Owner => true,
        // Runs the shop; the audit trail and privacy cases belong to owners, auditors and
        // compliance staff.
        Manager => !matches!(permission, ViewAudit | ManagePrivacy | ReadBuyerIdentity | SealLedger | ManageAccount),
        Sales => matches!(
            permission,
            ReadInventory
                | HoldItems
                | ReadCustomers
                | ManageCustomers
                | ReadSales
                | ManageSales
                | ReadConsent
                | ManageConsent
                | ViewStaff
        ),
        // Works on pieces in service: no costs, no customers.
        Technician => matches!(permission, ReadInventory | ServiceItems),
        // Auditors read everything, change nothing.
        Auditor => matches!(
            permission,
            ReadInventory
                | ViewCosts
                | ReadCustomers
                | ReadSales
                | ReadConsent
                | ReadConsentEvidence
                | ViewStaff
                | ViewAudit
                | SealLedger
        ),
        // Compliance works with data subjects, their consent and privacy requests; not stock,
        // prices or costs.
        Compliance => matches!(
            permission,
            ReadCustomers
                | ReadSales
                | ReadConsent
                | ManageConsent
                | ReadConsentEvidence
                | ViewStaff
                | ViewAudit
                | ManagePrivacy
                | ReadBuyerIdentity
        ),
    }
}

/// What a root field requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No session needed (logging in, accepting an invitation, resetting a password).
    Public,
    /// Any signed-in staff member (their own account and sessions).
    SignedIn,
    Requires(Permission),
}

/// The access table for every Query and Mutation field. `None`: not in the table, refused.
pub fn root_field_access(parent: &str, field: &str) -> Option<Access> {
    use Access::*;
    use Permission::*;
    Some(match (parent, field) {
        ("Mutation", "login" | "acceptInvitation" | "resetPassword") => Public,
        ("Query", "me" | "mySessions") => SignedIn,
        ("Mutation", "logout" | "logoutEverywhere" | "revokeSession" | "changePassword") => SignedIn,
        ("Query", "staffMembers" | "staffMember") => Requires(ViewStaff),
        (
            "Mutation",
            "inviteStaff" | "changeStaffRole" | "deactivateStaff" | "reactivateStaff" | "issuePasswordReset",
        ) => Requires(ManageStaff),
        ("Query", "inventoryItems" | "inventoryItem") => Requires(ReadInventory),
        ("Query", "customers" | "customer") => Requires(ReadCustomers),
        ("Query", "sales" | "sale") => Requires(ReadSales),
        ("Query", "consentLedger") => Requires(ReadConsent),
        ("Query", "ledgerHead" | "ledgerHeads" | "inclusionProof" | "consistencyProof") => Requires(ViewAudit),
        ("Query", "auditTrail" | "streamEvents") => Requires(ViewAudit),
        ("Query", "ledgerPublicKey") => SignedIn,
        ("Mutation", "sealLedgerHead") => Requires(SealLedger),
        ("Mutation", "acquireItem" | "returnItemToConsignor" | "archiveItem" | "restockItem" | "updateItemDetails") => {
            Requires(ManageInventory)
        }
        ("Mutation", "changeItemPrice") => Requires(ChangePrices),
        ("Mutation", "reserveItem" | "releaseItemReservation" | "sendItemOnMemo" | "returnItemFromMemo") => {
            Requires(HoldItems)
        }
        ("Mutation", "sendItemToService" | "returnItemFromService") => Requires(ServiceItems),
        ("Mutation", "createCustomer" | "updateCustomer" | "mergeCustomers") => Requires(ManageCustomers),
        ("Mutation", "createSale" | "confirmSale" | "recordPayment" | "fulfilSale" | "cancelSale") => {
            Requires(ManageSales)
        }
        ("Mutation", "refundPayment" | "returnSale") => Requires(Refund),
        ("Mutation", "grantConsent" | "withdrawConsent") => Requires(ManageConsent),
        ("Query", "privacyRequests" | "privacyRequest" | "deletionCertificate") => Requires(ManagePrivacy),
        (
            "Mutation",
            "openPrivacyRequest" | "requestErasure" | "eraseStaffMember" | "restrictProcessing" | "liftRestriction"
            | "exportSubjectData",
        ) => Requires(ManagePrivacy),
        ("Query", "marketingAudience") => Requires(ReadConsent),
        ("Query", "retentionSchedule") => Requires(ManagePrivacy),
        ("Mutation", "closeStore" | "reopenStore" | "setRetentionPolicy") => Requires(ManageAccount),
        // Each event of the feed is checked against `stream_permission` as it passes.
        ("Subscription", "events") => SignedIn,
        ("Subscription", "inventoryItemChanged") => Requires(ReadInventory),
        ("Subscription", "saleChanged") => Requires(ReadSales),
        _ => return None,
    })
}

/// What reading an event of this stream requires (the live feed shows a role only the events
/// of what it may read).
pub fn stream_permission(stream_id: &str) -> Permission {
    use Permission::*;
    match stream_id.split_once('-').map_or(stream_id, |(prefix, _)| prefix) {
        "item" => ReadInventory,
        "customer" => ReadCustomers,
        "sale" | "invoices" => ReadSales,
        "consent" => ReadConsent,
        // Staff accounts and the store's membership list.
        "staff" | "store" => ViewStaff,
        "privacy_request" => ManagePrivacy,
        _ => ViewAudit,
    }
}

/// What a role may do with a field, per the tables: `Ok` or the error code it gets.
pub fn check(viewer: Option<&Viewer>, parent: &str, field: &str) -> Result<(), &'static str> {
    match (root_field_access(parent, field), viewer) {
        (None, _) => Err("FORBIDDEN"),
        (Some(Access::Public), _) => Ok(()),
        (Some(_), None) => Err("UNAUTHENTICATED"),
        (Some(Access::SignedIn), Some(_)) => Ok(()),
        (Some(Access::Requires(p)), Some(v)) if allows(v.role, p) => Ok(()),
        (Some(Access::Requires(_)), Some(_)) => Err("FORBIDDEN"),
    }
}

/// The schema's Query and Mutation roots, each behind [`root_field_access`]: every root field
/// is checked before its resolver runs. A wrapper of the roots, not a schema extension: any
/// extension at all sends every field of every result, down to each node's `brand`, through
/// async-graphql's extension path (a `ResolveInfo` built, the registry looked up, a boxed
/// future), where the wrapper costs one check per root field.
#[derive(Default)]
pub struct Guarded<T>(pub T);

impl<T: ObjectType> OutputType for Guarded<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn introspection_type_name(&self) -> Cow<'static, str> {
        self.0.introspection_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, _field: &Positioned<Field>) -> ServerResult<Value> {
        resolve_container(ctx, self).await
    }
}

impl<T: ObjectType> ContainerType for Guarded<T> {
    async fn resolve_field(&self, ctx: &Context<'_>) -> ServerResult<Option<Value>> {
        let name = ctx.item.node.name.node.as_str();
        let refusal = if name.starts_with("__") {
            // async-graphql answers `__schema` and `__type` before the root when the request
            // may introspect ([`admit`]); they reach the root only when it may not.
            Some(("UNAUTHENTICATED", "introspection is available to signed-in staff"))
        } else {
            let viewer = ctx.data_opt::<crate::graphql::RequestContext>().and_then(|r| r.viewer.as_ref());
            check(viewer, &T::type_name(), name).err().map(|code| match code {
                "UNAUTHENTICATED" => (code, "authentication required"),
                _ => (code, "not allowed for your role"),
            })
        };
        match refusal {
            None => self.0.resolve_field(ctx).await,
            Some((code, message)) => Err(ctx.set_error_path(error(code, message))),
        }
    }

    async fn find_entity(&self, ctx: &Context<'_>, params: &Value) -> ServerResult<Option<Value>> {
        self.0.find_entity(ctx, params).await
    }
}

impl<T: ObjectType> ObjectType for Guarded<T> {}

/// What is decided about a request before it runs: more mutations than `max_mutations` refuse
/// it whole (none of them runs), and a caller who is not signed in gets no introspection unless
/// `public_introspection`. Its document is parsed here once and kept for execution; one that
/// does not parse is left for execution to report.
pub fn admit(
    req: &mut Request,
    signed_in: bool,
    max_mutations: usize,
    public_introspection: bool,
) -> Result<(), ServerError> {
    if !signed_in && !public_introspection {
        req.introspection_mode = IntrospectionMode::Disabled;
    }
    let Ok(doc) = req.parsed_query() else { return Ok(()) };
    let n = mutation_fields(doc);
    if n > max_mutations {
        return Err(error("BAD_REQUEST", &format!("at most {max_mutations} mutations per request; this one has {n}")));
    }
    Ok(())
}

fn error(code: &'static str, message: &str) -> ServerError {
    let mut e = ServerError::new(message, None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", code);
    e.extensions = Some(ext);
    e
}

/// Root fields of the operations in a document that are mutations (fragments included).
fn mutation_fields(doc: &ExecutableDocument) -> usize {
    fn count(doc: &ExecutableDocument, set: &async_graphql::parser::types::SelectionSet, depth: usize) -> usize {
        if depth > 8 {
            return 0;
        }
        set.items
            .iter()
            .map(|s| match &s.node {
                Selection::Field(_) => 1,
                Selection::InlineFragment(f) => count(doc, &f.node.selection_set.node, depth + 1),
                Selection::FragmentSpread(s) => doc
                    .fragments
                    .get(&s.node.fragment_name.node)
                    .map_or(0, |f| count(doc, &f.node.selection_set.node, depth + 1)),
            })
            .sum()
    }
    doc.operations
        .iter()
        .filter(|(_, op)| op.node.ty == OperationType::Mutation)
        .map(|(_, op)| count(doc, &op.node.selection_set.node, 0))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_privilege_table() {
        assert!(allows(Role::Owner, Permission::ViewCosts));
        assert!(!allows(Role::Sales, Permission::ViewCosts));
        assert!(!allows(Role::Sales, Permission::ChangePrices));
        assert!(!allows(Role::Sales, Permission::ApproveDiscounts));
        assert!(!allows(Role::Technician, Permission::ReadCustomers));
        assert!(!allows(Role::Auditor, Permission::ManageInventory));
        assert!(allows(Role::Auditor, Permission::ViewCosts));
        assert!(allows(Role::Auditor, Permission::ViewAudit));
        assert!(!allows(Role::Compliance, Permission::ReadInventory));
        assert!(!allows(Role::Compliance, Permission::ViewCosts));
        assert!(allows(Role::Compliance, Permission::ManagePrivacy));
        assert!(!allows(Role::Manager, Permission::ManagePrivacy));
        assert!(allows(Role::Manager, Permission::ManageStaff));
        assert!(allows(Role::Sales, Permission::ManageSales));
        assert!(!allows(Role::Sales, Permission::Refund));
        assert!(!allows(Role::Sales, Permission::ReadConsentEvidence));
        assert!(allows(Role::Technician, Permission::ServiceItems));
        assert!(!allows(Role::Technician, Permission::HoldItems));
        // Nobody but owners and managers manages staff.
        for role in Role::ALL {
            assert_eq!(allows(role, Permission::ManageStaff), matches!(role, Role::Owner | Role::Manager), "{role:?}");
        }
    }

    #[test]
    fn the_live_feed_shows_a_role_only_what_it_may_read() {
        assert_eq!(stream_permission("item-0190"), Permission::ReadInventory);
        assert_eq!(stream_permission("customer-0190"), Permission::ReadCustomers);
        assert_eq!(stream_permission("privacy_request-0190"), Permission::ManagePrivacy);
        assert_eq!(stream_permission("something-new"), Permission::ViewAudit, "unknown streams need the audit right");
        assert!(!allows(Role::Technician, stream_permission("customer-0190")));
        assert!(!allows(Role::Compliance, stream_permission("item-0190")));
    }

    #[test]
    fn auditors_change_nothing() {
        let v = Viewer { user_id: Uuid::nil(), store_id: Uuid::nil(), role: Role::Auditor, session_id: Uuid::nil() };
        for field in ["acquireItem", "changeItemPrice", "createSale", "refundPayment", "grantConsent", "inviteStaff"] {
            assert_eq!(check(Some(&v), "Mutation", field), Err("FORBIDDEN"), "{field}");
        }
        assert_eq!(check(Some(&v), "Mutation", "logout"), Ok(()), "but may end their own session");
    }

    #[test]
    fn unknown_fields_are_refused_and_anonymous_callers_reach_only_public_fields() {
        let v = Viewer { user_id: Uuid::nil(), store_id: Uuid::nil(), role: Role::Owner, session_id: Uuid::nil() };
        assert_eq!(check(Some(&v), "Query", "somethingNew"), Err("FORBIDDEN"));
        assert_eq!(check(None, "Query", "inventoryItems"), Err("UNAUTHENTICATED"));
        assert_eq!(check(None, "Mutation", "login"), Ok(()));
        assert_eq!(check(None, "Query", "me"), Err("UNAUTHENTICATED"));
    }
}
