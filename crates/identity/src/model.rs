//! What the service returns, and the enumerations it shares with the database.

use std::fmt;

use chrono::{DateTime, Utc};
use kloyst_core::{UserId, VendorId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::caller::ApiScope;

/// A user's role in their vendor. Stored as text (`ADMIN` / `STAFF`), like in the JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Admin,
    Staff,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "ADMIN",
            Self::Staff => "STAFF",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserStatus {
    /// Registered, waiting for the email code; no vendor yet.
    PendingVerification,
    Active,
    Disabled,
    /// Invited by an ADMIN; becomes ACTIVE when the invitee sets a password.
    Invited,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingVerification => "PENDING_VERIFICATION",
            Self::Active => "ACTIVE",
            Self::Disabled => "DISABLED",
            Self::Invited => "INVITED",
        }
    }
}

/// The status changes an ADMIN may make through `update_user`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserStatusChange {
    Active,
    Disabled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PlanType {
    Shared,
    Dedicated,
}

/// The authenticated caller. The only source of a vendor id for tenant work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub user_id: UserId,
    pub vendor_id: VendorId,
    pub role: Role,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// What login, verification, invitation acceptance and refresh return.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPair {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_token: String,
    /// Seconds until the refresh token expires (it is rotated on every use).
    pub refresh_expires_in: u64,
}

/// Tokens are credentials: never in a log line.
impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &"[redacted]")
            .field("refresh_expires_in", &self.refresh_expires_in)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub status: UserStatus,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingAddress {
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorProfile {
    pub id: VendorId,
    pub name: String,
    pub company_name: Option<String>,
    pub plan_type: PlanType,
    pub billing_email: Option<String>,
    pub billing_address: Option<BillingAddress>,
    pub gstin: Option<String>,
    pub default_country: String,
    pub time_zone: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where an API key stands, as its list shows it (computed, not stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApiKeyStatus {
    Active,
    Revoked,
    /// Past its `expires_at` (and not revoked).
    Expired,
}

/// A vendor API key as lists show it: never its secret, never its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    /// `kly_` + 12 characters: the start of the key, enough to recognise it.
    pub prefix: String,
    pub scopes: Vec<ApiScope>,
    pub status: ApiKeyStatus,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key just created: the only answer that carries the whole `key`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedApiKey {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    /// The whole key. Shown this once; only its SHA-256 is stored.
    pub key: String,
    pub scopes: Vec<ApiScope>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The key is a credential: never in a log line.
impl fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedApiKey")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("key", &"[redacted]")
            .field("scopes", &self.scopes)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

pub use kloyst_core::page::{Page, PageRequest};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_serialise_upper_case() {
        assert_eq!(serde_json::to_value(Role::Admin).unwrap(), "ADMIN");
        assert_eq!(
            serde_json::from_value::<Role>(serde_json::json!("STAFF")).unwrap(),
            Role::Staff
        );
        assert_eq!(
            serde_json::to_value(UserStatus::PendingVerification).unwrap(),
            "PENDING_VERIFICATION"
        );
        assert_eq!(UserStatus::Invited.as_str(), "INVITED");
        assert!(serde_json::from_value::<Role>(serde_json::json!("admin")).is_err());
    }

    #[test]
    fn token_pair_debug_hides_tokens() {
        let pair = TokenPair {
            access_token: "secret-access".into(),
            token_type: "Bearer".into(),
            expires_in: 900,
            refresh_token: "secret-refresh".into(),
            refresh_expires_in: 1,
        };
        let debug = format!("{pair:?}");
        assert!(!debug.contains("secret-access") && !debug.contains("secret-refresh"));
    }

    #[test]
    fn created_api_key_debug_hides_the_key() {
        let created = CreatedApiKey {
            id: Uuid::nil(),
            name: "n8n".into(),
            prefix: "kly_abcdefghijkl".into(),
            key: "kly_abcdefghijkl_secretsecretsecret".into(),
            scopes: vec![ApiScope::MessagesRead],
            created_at: Utc::now(),
            expires_at: None,
        };
        let debug = format!("{created:?}");
        assert!(!debug.contains("secretsecret"), "{debug}");
        assert!(debug.contains("kly_abcdefghijkl"), "{debug}");
        assert_eq!(
            serde_json::to_value(ApiKeyStatus::Expired).unwrap(),
            "EXPIRED"
        );
    }
}
