//! Invitations: an ADMIN invites by email (the invitee gets a code), the invitee accepts
//! with the code and a password. Inviting runs in `begin_for(principal)` (RLS on its vendor, session checked);
//! accepting is system work (the invitee has no principal yet; their row names the vendor).

use kloyst_audit::{Actor, RequestMeta};
use serde_json::json;
use uuid::Uuid;

use super::{audit, begin_for, require_admin, user_target, Identity};
use crate::error::{IdentityError, Internal};
use crate::input::{AcceptInviteInput, InviteInput};
use crate::keys::Purpose;
use crate::model::{Principal, TokenPair, UserStatus, UserView};
use crate::repo::{members, users, vendors};
use crate::validate::{self, Fields};
use crate::{mail, otp, password};

impl Identity {
    /// ADMIN only. Creates an INVITED user (no password yet) in the caller's vendor and
    /// mails an invitation code. Inviting again someone of this vendor who has not accepted
    /// yet mails a new code (and updates the role and name); any other existing address is
    /// `email_taken`.
    pub async fn invite(
        &self,
        who: &Principal,
        input: InviteInput,
        meta: &RequestMeta,
    ) -> Result<UserView, IdentityError> {
        require_admin(who)?;
        let mut fields = Fields::default();
        let email = fields.take("email", validate::email(&input.email));
        let name = match input.name.as_deref() {
            Some(name) => fields
                .take("name", validate::display_name(name, 200))
                .map(Some),
            None => Some(None),
        };
        let (email, name) = fields.finish_with(email.zip(name))?;
        // The address's local part stands in until the invitee gives their name.
        let name = name.unwrap_or_else(|| email.split('@').next().unwrap_or("member").to_owned());

        let vendor = who.vendor_id;
        let mut tx = begin_for(self.pg(), who).await?;
        // Row-level security: only this vendor's users are visible here.
        let existing = users::find_by_email(&mut *tx, &email, true).await?;
        let (row, action) = match existing {
            Some(user) if user.status == UserStatus::Invited => (
                members::reinvite(&mut tx, vendor, user.id, &name, input.role, who.user_id).await?,
                "user.reinvited",
            ),
            Some(_) => return Err(IdentityError::EmailTaken),
            None => {
                match members::insert_invited(
                    &mut tx,
                    vendor,
                    &email,
                    &name,
                    input.role,
                    who.user_id,
                )
                .await
                {
                    Ok(row) => (row, "user.invited"),
                    // Taken by another vendor's user, or by a registration awaiting its code.
                    Err(e) if is_unique_violation(&e, "users_email_key") => {
                        return Err(IdentityError::EmailTaken)
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let company = vendors::get(&mut tx, vendor)
            .await?
            .map(|v| v.company_name.unwrap_or(v.name))
            .ok_or(IdentityError::NotFound("vendor"))?;
        let inviter = members::get(&mut tx, vendor, who.user_id, false)
            .await?
            .map(|u| u.name)
            .ok_or(IdentityError::TokenInvalid)?;

        let code = otp::generate();
        let ttl = self.settings().invite_ttl;
        otp::store(
            self.redis(),
            self.keys(),
            Purpose::Invite,
            &email,
            &code,
            ttl,
        )
        .await?;
        kloyst_mail::enqueue_mail(
            &mut tx,
            &mail::invitation(&email, &company, &inviter, &code, ttl),
            Some(vendor),
            meta.request_id.clone(),
        )
        .await?;
        audit(
            &mut tx,
            meta,
            Some(vendor),
            Actor::User(who.user_id),
            action,
            user_target(row.user_id()),
            json!({ "role": input.role.as_str() }),
        )
        .await?;
        tx.commit().await?;
        Ok(row.view())
    }

    /// The invitee sets their password (the policy applies) with the mailed code and is
    /// logged in.
    pub async fn accept_invite(
        &self,
        input: AcceptInviteInput,
        meta: &RequestMeta,
    ) -> Result<TokenPair, IdentityError> {
        let email = validate::normalize_email(&input.email);
        let mut fields = Fields::default();
        let code = fields.take("otp", validate::otp_code(&input.otp));
        fields.take("password", password::check_policy(&input.password, &email));
        let name = match input.name.as_deref() {
            Some(name) => fields
                .take("name", validate::display_name(name, 200))
                .map(Some),
            None => Some(None),
        };
        let (code, name) = fields.finish_with(code.zip(name))?;
        // Checked before hashing, so wrong codes cost us no argon2 work.
        otp::verify(
            self.redis(),
            self.keys(),
            Purpose::Invite,
            &email,
            &code,
            self.settings().otp_max_attempts,
        )
        .await?;
        let password_hash = password::hash(input.password).await?;

        let mut tx = self.pg().begin().await?;
        let user = users::find_by_email(&mut *tx, &email, true)
            .await?
            .filter(|u| u.status == UserStatus::Invited)
            // Disabled or removed since the invitation was sent.
            .ok_or(IdentityError::OtpExpired)?;
        let vendor = user
            .vendor()
            .ok_or_else(|| Internal::Corrupt(format!("invited user {} has no vendor", user.id)))?;
        let user =
            members::accept_invite(&mut tx, user.id, &password_hash, name.as_deref()).await?;
        audit(
            &mut tx,
            meta,
            Some(vendor),
            Actor::User(user.user_id()),
            "user.invite_accepted",
            user_target(user.user_id()),
            json!({ "role": user.role.as_str() }),
        )
        .await?;
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
        tx.commit().await?;
        Ok(tokens)
    }
}

fn is_unique_violation(error: &sqlx::Error, constraint: &str) -> bool {
    error
        .as_database_error()
        .is_some_and(|db| db.is_unique_violation() && db.constraint() == Some(constraint))
}
