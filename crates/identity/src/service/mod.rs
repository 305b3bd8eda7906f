//! The identity service: the rules, in one place the HTTP handlers, workers and tests all
//! call. Split by flow: registration, sessions (login and tokens), team, vendor profile,
//! API keys.

mod api_keys;
mod invitations;
mod registration;
mod session;
mod team;
mod vendor;

pub use api_keys::MAX_ACTIVE_API_KEYS;

use std::sync::Arc;

use kloyst_audit::{Actor, AuditEntry, RequestMeta};
use kloyst_core::{UserId, VendorId};
use kloyst_db::redis::RedisPool;
use kloyst_db::PgPool;
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use crate::error::IdentityError;
use crate::keys::Keys;
use crate::limits::{LoginLimits, SendLimits};
use crate::model::{Principal, Role, TokenPair};
use crate::repo::refresh_tokens::{self, NewToken};
use crate::settings::IdentitySettings;
use crate::tokens::{self, Jwt};

/// Registration, login, tokens, team and vendor profile. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

struct Inner {
    pg: PgPool,
    redis: RedisPool,
    settings: IdentitySettings,
    keys: Keys,
    jwt: Jwt,
}

impl Identity {
    pub fn new(pg: PgPool, redis: RedisPool, settings: IdentitySettings) -> Self {
        let secret = settings.auth.jwt_secret.expose().as_bytes();
        let keys = Keys::new(&settings.redis_prefix, secret);
        let jwt = Jwt::new(secret, settings.auth.access_ttl);
        Self {
            inner: Arc::new(Inner {
                pg,
                redis,
                settings,
                keys,
                jwt,
            }),
        }
    }

    pub fn settings(&self) -> &IdentitySettings {
        &self.inner.settings
    }

    fn pg(&self) -> &PgPool {
        &self.inner.pg
    }

    fn redis(&self) -> &RedisPool {
        &self.inner.redis
    }

    fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    fn send_limits(&self) -> SendLimits {
        let s = &self.inner.settings;
        SendLimits {
            cooldown: s.otp_resend_cooldown,
            per_email: s.otp_hourly_cap_per_email,
            per_ip: s.otp_hourly_cap_per_ip,
        }
    }

    fn login_limits(&self) -> LoginLimits {
        let s = &self.inner.settings;
        LoginLimits {
            per_email: s.login_max_failures_per_email,
            per_ip: s.login_max_failures_per_ip,
            window: s.login_failure_window,
        }
    }

    /// A new access token and a new refresh token of `family` (stored hashed, in the
    /// caller's transaction). Returns the refresh token's row id too, for rotation.
    async fn issue_tokens(
        &self,
        conn: &mut PgConnection,
        user: UserId,
        vendor: VendorId,
        role: Role,
        family: Uuid,
        meta: &RequestMeta,
    ) -> Result<(TokenPair, Uuid), IdentityError> {
        let access_token = self.inner.jwt.issue(user, vendor, role)?;
        let (refresh_token, hash) = tokens::new_refresh_token();
        let ttl = self.inner.settings.auth.refresh_ttl;
        let new = NewToken {
            user,
            vendor,
            family,
            hash: &hash,
            ttl,
        };
        let id = refresh_tokens::insert(conn, &new, meta).await?;
        let pair = TokenPair {
            access_token,
            token_type: "Bearer".to_owned(),
            expires_in: self.inner.jwt.access_ttl_secs(),
            refresh_token,
            refresh_expires_in: ttl.as_secs(),
        };
        Ok((pair, id))
    }
}

/// The tenant transaction of a request made by `who`: RLS for their vendor, and (same round
/// trip) the check that their token still holds, so a user disabled or re-roled since the
/// token was issued gets 401 ([`IdentityError::TokenInvalid`]) on their next request.
async fn begin_for(
    pg: &PgPool,
    who: &Principal,
) -> Result<Transaction<'static, Postgres>, IdentityError> {
    Ok(kloyst_db::begin_as_user(pg, who.vendor_id, who.user_id, who.role.as_str()).await?)
}

fn require_admin(who: &Principal) -> Result<(), IdentityError> {
    if who.is_admin() {
        Ok(())
    } else {
        Err(IdentityError::AdminOnly)
    }
}

/// One audit row in the caller's transaction. `details` never holds a password, a code or
/// a token: callers pass field names, roles, reasons and ids only.
async fn audit(
    conn: &mut PgConnection,
    meta: &RequestMeta,
    vendor: Option<VendorId>,
    actor: Actor,
    action: &str,
    target: Option<(&str, String)>,
    details: serde_json::Value,
) -> Result<(), IdentityError> {
    let (target_type, target_id) = target.unzip();
    let entry = AuditEntry {
        vendor_id: vendor,
        actor,
        action,
        target_type,
        target_id,
        details,
    };
    kloyst_audit::record(conn, &entry, meta).await?;
    Ok(())
}

fn user_target(id: UserId) -> Option<(&'static str, String)> {
    Some(("user", id.to_string()))
}
