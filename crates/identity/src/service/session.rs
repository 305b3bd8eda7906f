//! Login, token rotation, logout and the per-request authentication. System work on the
//! plain pool: the vendor is what these find out.

use chrono::Utc;
use kloyst_audit::{Actor, RequestMeta};
use kloyst_core::{UserId, VendorId};
use serde_json::json;
use uuid::Uuid;

use super::{audit, user_target, Identity};
use crate::error::{IdentityError, Internal};
use crate::input::{LoginInput, RefreshInput};
use crate::model::{Principal, TokenPair, UserStatus};
use crate::repo::refresh_tokens::{self, RevokeReason};
use crate::repo::users::{self, UserRow};
use crate::tokens::refresh_token_hash;
use crate::{limits, password, validate};

impl Identity {
    /// One answer (`invalid_credentials`) for an unknown address, a wrong password, a
    /// disabled account and an invitee who has not accepted yet, with the same cost
    /// (argon2 runs on every path). `email_not_verified` only once the password is right.
    pub async fn login(
        &self,
        input: LoginInput,
        meta: &RequestMeta,
    ) -> Result<TokenPair, IdentityError> {
        let email = validate::normalize_email(&input.email);
        limits::check_login(
            self.redis(),
            self.keys(),
            &email,
            meta.ip,
            &self.login_limits(),
        )
        .await?;
        let user = users::find_by_email(self.pg(), &email, false).await?;
        let stored = user.as_ref().and_then(|u| u.password_hash.clone());
        let password_ok = password::verify(input.password, stored).await?;

        let user = match user {
            Some(user) if password_ok => user,
            other => {
                let reason = if other.is_some() {
                    "wrong_password"
                } else {
                    "unknown_email"
                };
                self.login_failed(&email, other.as_ref(), reason, meta)
                    .await?;
                return Err(IdentityError::InvalidCredentials);
            }
        };
        match user.status {
            UserStatus::Active => {}
            UserStatus::PendingVerification => {
                // Not a guess (the password was right): not counted as a failure.
                self.audit_login_failed(Some(&user), "email_not_verified", meta)
                    .await?;
                return Err(IdentityError::EmailNotVerified);
            }
            UserStatus::Disabled | UserStatus::Invited => {
                self.login_failed(&email, Some(&user), "disabled", meta)
                    .await?;
                return Err(IdentityError::InvalidCredentials);
            }
        }
        let vendor = user
            .vendor()
            .ok_or_else(|| Internal::Corrupt(format!("active user {} has no vendor", user.id)))?;
        limits::clear_login_failures(self.redis(), self.keys(), &email).await?;

        let mut tx = self.pg().begin().await?;
        users::record_login(&mut tx, user.id).await?;
        let (tokens, _) = self
            .issue_tokens(
                &mut tx,
                user.user_id(),
                vendor,
                user.role,
                Uuid::new_v4(),
                meta,
            )
            .await?;
        audit(
            &mut tx,
            meta,
            Some(vendor),
            Actor::User(user.user_id()),
            "auth.login",
            user_target(user.user_id()),
            json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(tokens)
    }

    async fn login_failed(
        &self,
        email: &str,
        user: Option<&UserRow>,
        reason: &'static str,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        limits::count_login_failure(
            self.redis(),
            self.keys(),
            email,
            meta.ip,
            self.settings().login_failure_window,
        )
        .await?;
        self.audit_login_failed(user, reason, meta).await
    }

    /// The attempted address is not recorded for unknown accounts: people type their
    /// password into the email field often enough, and it must never reach the audit log.
    async fn audit_login_failed(
        &self,
        user: Option<&UserRow>,
        reason: &'static str,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        let mut conn = self.pg().acquire().await?;
        audit(
            &mut conn,
            meta,
            user.and_then(UserRow::vendor),
            Actor::Anonymous,
            "auth.login_failed",
            user.map(UserRow::user_id).and_then(user_target),
            json!({ "reason": reason }),
        )
        .await
    }

    /// Rotates a refresh token: the presented one is marked used and replaced by a new one
    /// of the same family. Presenting a token that was already used means two parties hold
    /// it (one of them a thief): the whole family is revoked and `refresh_token_reused`
    /// returned, so the thief's copy dies with the victim's.
    pub async fn refresh(
        &self,
        input: RefreshInput,
        meta: &RequestMeta,
    ) -> Result<TokenPair, IdentityError> {
        let hash = refresh_token_hash(&input.refresh_token);
        let mut tx = self.pg().begin().await?;
        let row = refresh_tokens::find_for_update(&mut tx, &hash)
            .await?
            .ok_or(IdentityError::TokenInvalid)?;
        if row.revoked_at.is_some() {
            return Err(IdentityError::TokenInvalid);
        }
        let user = UserId::from_uuid(row.user_id);
        let vendor = VendorId::from_uuid(row.vendor_id);
        if row.used_at.is_some() {
            let revoked =
                refresh_tokens::revoke_family(&mut tx, row.family_id, RevokeReason::ReuseDetected)
                    .await?;
            audit(
                &mut tx,
                meta,
                Some(vendor),
                Actor::System,
                "auth.token_family_revoked",
                user_target(user),
                json!({
                    "reason": "refresh_token_reused",
                    "family_id": row.family_id,
                    "tokens_revoked": revoked,
                }),
            )
            .await?;
            tx.commit().await?;
            tracing::warn!(user.id = %user, vendor.id = %vendor, "refresh token reused: family revoked");
            return Err(IdentityError::RefreshTokenReused);
        }
        if row.expires_at <= Utc::now() {
            return Err(IdentityError::TokenInvalid);
        }
        // Disabled, removed or moved since: no new tokens. The role is read fresh, so a
        // role change takes effect at the next refresh.
        let role = users::active_role(&mut *tx, user, vendor)
            .await?
            .ok_or(IdentityError::TokenInvalid)?;
        let (tokens, new_id) = self
            .issue_tokens(&mut tx, user, vendor, role, row.family_id, meta)
            .await?;
        refresh_tokens::mark_used(&mut tx, row.id, new_id).await?;
        tx.commit().await?;
        Ok(tokens)
    }

    /// Revokes the presented token's family (this session, on every device that shares
    /// it). An unknown or already revoked token answers the same success: there is nothing
    /// left to revoke, and the answer tells nothing about the token.
    pub async fn logout(
        &self,
        input: RefreshInput,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        let hash = refresh_token_hash(&input.refresh_token);
        let mut tx = self.pg().begin().await?;
        let Some(row) = refresh_tokens::find_for_update(&mut tx, &hash).await? else {
            return Ok(());
        };
        if row.revoked_at.is_some() {
            return Ok(());
        }
        let user = UserId::from_uuid(row.user_id);
        let revoked =
            refresh_tokens::revoke_family(&mut tx, row.family_id, RevokeReason::Logout).await?;
        audit(
            &mut tx,
            meta,
            Some(VendorId::from_uuid(row.vendor_id)),
            Actor::User(user),
            "auth.logout",
            user_target(user),
            json!({ "family_id": row.family_id, "tokens_revoked": revoked }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Runs on every authenticated request, before the handler: the JWT only (HS256 only,
    /// signature, issuer, expiry), no I/O. That the user is still ACTIVE in that vendor with
    /// the token's role is checked when the request opens its tenant transaction
    /// (`begin_for`, same round trip as BEGIN), so the check costs nothing extra and is
    /// atomic with the work. A route that would not open one must call [`Self::authenticate`].
    pub fn verify_access_token(&self, bearer_token: &str) -> Result<Principal, IdentityError> {
        let token = bearer_token.trim();
        let token = match token.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => {
                token.get(7..).unwrap_or_default().trim_start()
            }
            _ => token,
        };
        self.inner.jwt.decode(token)
    }

    /// [`Self::verify_access_token`] and then one primary-key query that the user is still
    /// ACTIVE in that vendor with the role in the token. A role changed since the token was
    /// issued refuses the token (the client refreshes and gets one with the new role), so a
    /// principal's role is always both signed and current.
    pub async fn authenticate(&self, bearer_token: &str) -> Result<Principal, IdentityError> {
        let principal = self.verify_access_token(bearer_token)?;
        let role = users::active_role(self.pg(), principal.user_id, principal.vendor_id).await?;
        match role {
            Some(role) if role == principal.role => Ok(principal),
            _ => Err(IdentityError::TokenInvalid),
        }
    }
}
