//! Who makes a request: a signed-in user (access JWT) or an integration's vendor API key.
//!
//! Users reach every route their role allows; an API key reaches only the routes that take a
//! [`Caller`] and only with the [`ApiScope`] the route names.

use kloyst_core::{UserId, VendorId};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::model::Principal;

/// What an API key may do. Stored as text in `api_keys.scopes` (`messages:send`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ApiScope {
    /// `POST /v1/messages`.
    #[serde(rename = "messages:send")]
    MessagesSend,
    /// `GET /v1/messages`, `GET /v1/messages/:id`.
    #[serde(rename = "messages:read")]
    MessagesRead,
}

impl ApiScope {
    pub const ALL: [ApiScope; 2] = [ApiScope::MessagesSend, ApiScope::MessagesRead];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MessagesSend => "messages:send",
            Self::MessagesRead => "messages:read",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == text)
    }
}

/// A request authenticated by a vendor API key that is active (not revoked, not expired).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyPrincipal {
    pub key_id: Uuid,
    pub vendor_id: VendorId,
    pub scopes: Vec<ApiScope>,
}

/// The authenticated caller of a route open to both users and API keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    User(Principal),
    ApiKey(ApiKeyPrincipal),
}

impl Caller {
    pub fn vendor_id(&self) -> VendorId {
        match self {
            Self::User(user) => user.vendor_id,
            Self::ApiKey(key) => key.vendor_id,
        }
    }

    /// The user, for `created_by` columns; `None` for an API key.
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Self::User(user) => Some(user.user_id),
            Self::ApiKey(_) => None,
        }
    }

    /// Whether the caller may do what `scope` names. A user may do anything a route allows
    /// their role; a key only what it was created with.
    pub fn allows(&self, scope: ApiScope) -> bool {
        match self {
            Self::User(_) => true,
            Self::ApiKey(key) => key.scopes.contains(&scope),
        }
    }

    pub fn audit_actor(&self) -> kloyst_audit::Actor {
        match self {
            Self::User(user) => kloyst_audit::Actor::User(user.user_id),
            Self::ApiKey(key) => kloyst_audit::Actor::ApiKey(key.key_id),
        }
    }

    /// The caller's tenant transaction. A user's session is re-checked in the same round trip
    /// ([`kloyst_db::begin_as_user`]); a key was looked up (active, not revoked) by the
    /// authentication middleware of this same request.
    pub async fn begin(&self, pg: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        match self {
            Self::User(user) => {
                kloyst_db::begin_as_user(pg, user.vendor_id, user.user_id, user.role.as_str()).await
            }
            Self::ApiKey(key) => kloyst_db::begin_tenant(pg, key.vendor_id).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_as_text() {
        for scope in ApiScope::ALL {
            assert_eq!(ApiScope::parse(scope.as_str()), Some(scope));
            let json = serde_json::to_value(scope).unwrap_or_default();
            assert_eq!(json, serde_json::Value::from(scope.as_str()));
        }
        assert_eq!(ApiScope::parse("messages:*"), None);
    }
}
