//! Sign-up: register → code by mail → verify (which creates the vendor, its wallet and
//! makes the user its ADMIN). System work on the plain pool: there is no tenant yet.

use kloyst_audit::{Actor, RequestMeta};
use kloyst_core::UserId;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{audit, user_target, Identity};
use crate::error::{IdentityError, Internal};
use crate::input::{RegisterInput, SendOtpInput, VerifyOtpInput};
use crate::keys::Purpose;
use crate::model::{Role, TokenPair, UserStatus};
use crate::repo::{users, vendors};
use crate::validate::{self, Fields};
use crate::{limits, mail, otp, password};

impl Identity {
    /// Creates a PENDING_VERIFICATION user and mails the first code. An address that
    /// already has an account gets the same answer and an "you already have an account"
    /// mail instead, so the answer never tells whether an address is registered. A second
    /// registration of an address still awaiting its code replaces the first one (the
    /// mailbox owner decides which one they verify) and mails a new code.
    pub async fn register(
        &self,
        input: RegisterInput,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        let mut fields = Fields::default();
        let email = fields.take("email", validate::email(&input.email));
        let name = fields.take("name", validate::display_name(&input.name, 200));
        let company = fields.take(
            "company_name",
            validate::display_name(&input.company_name, 200),
        );
        let policy_email = email.clone().unwrap_or_default();
        fields.take(
            "password",
            password::check_policy(&input.password, &policy_email),
        );
        let ((email, name), company) = fields.finish_with(email.zip(name).zip(company))?;

        // Same limits as send-otp, keyed on the address whether it exists or not.
        limits::take_send_slot(
            self.redis(),
            self.keys(),
            Purpose::Verification,
            &email,
            meta.ip,
            &self.send_limits(),
        )
        .await?;
        // Hashed on every path, so a known address answers no faster than a new one.
        let password_hash = password::hash(input.password).await?;

        let mut tx = self.pg().begin().await?;
        if let Some(id) =
            users::insert_pending(&mut tx, &email, &password_hash, &name, &company).await?
        {
            let user = UserId::from_uuid(id);
            self.mail_verification_code(&mut tx, &email, &name, meta)
                .await?;
            audit(
                &mut tx,
                meta,
                None,
                Actor::Anonymous,
                "auth.registered",
                user_target(user),
                json!({ "otp_sent": true }),
            )
            .await?;
        } else if let Some(existing) = users::find_by_email(&mut *tx, &email, true).await? {
            if existing.status == UserStatus::PendingVerification {
                users::renew_pending(&mut tx, existing.id, &password_hash, &name, &company).await?;
                self.mail_verification_code(&mut tx, &email, &name, meta)
                    .await?;
                audit(
                    &mut tx,
                    meta,
                    None,
                    Actor::Anonymous,
                    "auth.registration_renewed",
                    user_target(existing.user_id()),
                    json!({ "otp_sent": true }),
                )
                .await?;
            } else {
                kloyst_mail::enqueue_mail(
                    &mut tx,
                    &mail::account_exists(&email),
                    existing.vendor(),
                    meta.request_id.clone(),
                )
                .await?;
                audit(
                    &mut tx,
                    meta,
                    existing.vendor(),
                    Actor::Anonymous,
                    "auth.register_existing",
                    user_target(existing.user_id()),
                    json!({ "mail": "account_exists" }),
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Mails a new verification code to an address awaiting verification. Any other
    /// address gets the same answer and no mail; the limits apply to every address alike.
    pub async fn send_otp(
        &self,
        input: SendOtpInput,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        let email = validate::email(&input.email)
            .map_err(|rule| IdentityError::invalid_field("email", rule.code, rule.message))?;
        limits::take_send_slot(
            self.redis(),
            self.keys(),
            Purpose::Verification,
            &email,
            meta.ip,
            &self.send_limits(),
        )
        .await?;
        let user = users::find_by_email(self.pg(), &email, false).await?;
        let Some(user) = user.filter(|u| u.status == UserStatus::PendingVerification) else {
            return Ok(());
        };
        let mut tx = self.pg().begin().await?;
        self.mail_verification_code(&mut tx, &email, &user.name, meta)
            .await?;
        audit(
            &mut tx,
            meta,
            None,
            Actor::Anonymous,
            "auth.otp_sent",
            user_target(user.user_id()),
            json!({ "purpose": "verification" }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Checks the code and, in one transaction, activates the user, creates their vendor
    /// (plan SHARED, named after the registration's company) and its empty INR wallet,
    /// makes the user its ADMIN and returns tokens.
    pub async fn verify_otp(
        &self,
        input: VerifyOtpInput,
        meta: &RequestMeta,
    ) -> Result<TokenPair, IdentityError> {
        let email = validate::normalize_email(&input.email);
        let code = validate::otp_code(&input.otp)
            .map_err(|rule| IdentityError::invalid_field("otp", rule.code, rule.message))?;
        otp::verify(
            self.redis(),
            self.keys(),
            Purpose::Verification,
            &email,
            &code,
            self.settings().otp_max_attempts,
        )
        .await?;

        let mut tx = self.pg().begin().await?;
        let user = users::find_by_email(&mut *tx, &email, true)
            .await?
            .filter(|u| u.status == UserStatus::PendingVerification)
            // The code was good but the registration is gone or already verified.
            .ok_or(IdentityError::OtpExpired)?;
        let company = user
            .signup_company_name
            .clone()
            .unwrap_or_else(|| user.name.clone());
        let vendor = vendors::create(&mut tx, &company).await?;
        let wallet = vendors::create_wallet(&mut tx, vendor).await?;
        users::activate_as_admin(&mut tx, user.id, vendor).await?;
        let actor = Actor::User(user.user_id());
        audit(
            &mut tx,
            meta,
            Some(vendor),
            actor,
            "auth.email_verified",
            user_target(user.user_id()),
            json!({}),
        )
        .await?;
        audit(
            &mut tx,
            meta,
            Some(vendor),
            actor,
            "vendor.created",
            Some(("vendor", vendor.to_string())),
            json!({ "plan_type": "SHARED", "wallet_id": wallet, "admin_user_id": user.id }),
        )
        .await?;
        let (tokens, _) = self
            .issue_tokens(
                &mut tx,
                user.user_id(),
                vendor,
                Role::Admin,
                Uuid::new_v4(),
                meta,
            )
            .await?;
        tx.commit().await?;
        tracing::info!(vendor.id = %vendor, user.id = %user.id, "vendor created by email verification");
        Ok(tokens)
    }

    /// Generates and stores a code, then queues its mail in `conn`'s transaction. The code
    /// is stored first: if the commit then fails, an unused code expires harmlessly,
    /// whereas a mail whose code was never stored would be worse.
    async fn mail_verification_code(
        &self,
        conn: &mut PgConnection,
        email: &str,
        name: &str,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        let code = otp::generate();
        let ttl = self.settings().otp_ttl;
        otp::store(
            self.redis(),
            self.keys(),
            Purpose::Verification,
            email,
            &code,
            ttl,
        )
        .await?;
        kloyst_mail::enqueue_mail(
            conn,
            &mail::verification_code(email, name, &code, ttl),
            None,
            meta.request_id.clone(),
        )
        .await
        .map_err(|e| IdentityError::Internal(Internal::Outbox(e)))?;
        Ok(())
    }
}
