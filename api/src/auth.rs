//! Authentication (signed session tokens) and authorisation (what each role may do — decided
//! here and nowhere else).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::Utc;
use domain::staff::Role;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

/// How long a session token is valid.
pub const TOKEN_TTL_SECS: i64 = 8 * 3600;

/// Who is calling: fixed by the token, never by the request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub user_id: Uuid,
    pub store_id: Uuid,
    pub role: Role,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
}

/// Signs and checks `v1.<claims>.<hmac>` tokens with a key derived from the master key.
#[derive(Clone)]
pub struct TokenKeys {
    key: [u8; 32],
}

impl TokenKeys {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, msg: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(msg.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    pub fn issue(&self, user_id: Uuid, store_id: Uuid, role: Role) -> String {
        let claims = Viewer { user_id, store_id, role, exp: Utc::now().timestamp() + TOKEN_TTL_SECS };
        let body = format!("v1.{}", B64.encode(serde_json::to_vec(&claims).expect("claims serialise")));
        let sig = B64.encode(self.mac(&body));
        format!("{body}.{sig}")
    }

    /// The viewer a token names, if it is authentic and unexpired.
    pub fn verify(&self, token: &str) -> Option<Viewer> {
        let (body, sig) = token.rsplit_once('.')?;
        let sig = B64.decode(sig).ok()?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(body.as_bytes());
        mac.verify_slice(&sig).ok()?; // constant-time comparison
        let claims = body.strip_prefix("v1.")?;
        let viewer: Viewer = serde_json::from_slice(&B64.decode(claims).ok()?).ok()?;
        (viewer.exp > Utc::now().timestamp()).then_some(viewer)
    }
}

/// Everything a caller may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// Refund money and take sales back.
    Refund,
    ReadConsent,
    ManageConsent,
    /// See consent evidence (IP address, user agent).
    ReadConsentEvidence,
}

/// Least privilege, in one table.
pub fn allows(role: Role, permission: Permission) -> bool {
    use Permission::*;
    use Role::*;
    match role {
        Owner => true,
        Manager => true,
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
        ),
        Technician => matches!(permission, ReadInventory | ServiceItems),
        // Auditors read everything, change nothing.
        Auditor => matches!(
            permission,
            ReadInventory | ViewCosts | ReadCustomers | ReadSales | ReadConsent | ReadConsentEvidence
        ),
        // Compliance works with data subjects and their consent, not stock or prices.
        Compliance => matches!(permission, ReadCustomers | ReadConsent | ManageConsent | ReadConsentEvidence),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_unaltered_and_with_the_right_key() {
        let keys = TokenKeys::new([7; 32]);
        let t = keys.issue(Uuid::from_u128(1), Uuid::from_u128(2), Role::Sales);
        let v = keys.verify(&t).unwrap();
        assert_eq!((v.user_id, v.store_id, v.role), (Uuid::from_u128(1), Uuid::from_u128(2), Role::Sales));
        assert!(TokenKeys::new([8; 32]).verify(&t).is_none());
        // Swap the claims for an owner's: the signature no longer matches.
        let forged_claims = B64.encode(serde_json::to_vec(&Viewer { role: Role::Owner, ..v.clone() }).unwrap());
        let sig = t.rsplit_once('.').unwrap().1;
        assert!(keys.verify(&format!("v1.{forged_claims}.{sig}")).is_none());
        assert!(keys.verify("garbage").is_none());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let keys = TokenKeys::new([7; 32]);
        let claims =
            Viewer { user_id: Uuid::nil(), store_id: Uuid::nil(), role: Role::Owner, exp: Utc::now().timestamp() - 1 };
        let body = format!("v1.{}", B64.encode(serde_json::to_vec(&claims).unwrap()));
        let token = format!("{body}.{}", B64.encode(keys.mac(&body)));
        assert!(keys.verify(&token).is_none());
    }

    #[test]
    fn least_privilege_table() {
        assert!(allows(Role::Owner, Permission::ViewCosts));
        assert!(!allows(Role::Sales, Permission::ViewCosts));
        assert!(!allows(Role::Sales, Permission::ChangePrices));
        assert!(!allows(Role::Technician, Permission::ReadCustomers));
        assert!(!allows(Role::Auditor, Permission::ManageInventory));
        assert!(allows(Role::Auditor, Permission::ViewCosts));
        assert!(!allows(Role::Compliance, Permission::ReadInventory));
        assert!(allows(Role::Sales, Permission::ManageSales));
        assert!(!allows(Role::Sales, Permission::Refund));
        assert!(!allows(Role::Sales, Permission::ReadConsentEvidence));
        assert!(allows(Role::Technician, Permission::ServiceItems));
        assert!(!allows(Role::Technician, Permission::HoldItems));
    }
}
