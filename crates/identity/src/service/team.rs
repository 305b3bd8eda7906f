//! Team members: the list, one member, and an ADMIN's changes (role, status, name). Runs
//! in `begin_for(principal)` (RLS on its vendor, session checked) and filters by that vendor id too: another
//! vendor's user is simply not there. Invitations are in `invitations`.

use kloyst_audit::{Actor, RequestMeta};
use kloyst_core::UserId;
use serde_json::json;

use super::{audit, begin_for, require_admin, user_target, Identity};
use crate::cursor;
use crate::error::IdentityError;
use crate::input::UserPatch;
use crate::model::{Page, PageRequest, Principal, Role, UserStatus, UserStatusChange, UserView};
use crate::repo::members;
use crate::repo::refresh_tokens::{self, RevokeReason};
use crate::repo::users::UserRow;
use crate::validate;

impl Identity {
    /// The caller's vendor's users, newest first, cursor-paginated. Any role.
    pub async fn list_users(
        &self,
        who: &Principal,
        page: PageRequest,
    ) -> Result<Page<UserView>, IdentityError> {
        let (limit, after) = cursor::parse(&page)?;
        let mut tx = begin_for(self.pg(), who).await?;
        // One extra row tells whether there is a next page.
        let mut rows = members::list(&mut tx, who.vendor_id, limit + 1, after).await?;
        tx.commit().await?;
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|r| cursor::encode(r.created_at, r.id))
        } else {
            None
        };
        Ok(Page {
            data: rows.iter().map(UserRow::view).collect(),
            next_cursor,
        })
    }

    /// One user of the caller's vendor; another vendor's user is `NotFound`, like a
    /// missing one.
    pub async fn get_user(&self, who: &Principal, id: UserId) -> Result<UserView, IdentityError> {
        let mut tx = begin_for(self.pg(), who).await?;
        let row = members::get(&mut tx, who.vendor_id, id, false).await?;
        tx.commit().await?;
        row.map(|r| r.view()).ok_or(IdentityError::NotFound("user"))
    }

    /// ADMIN only: role, status (ACTIVE / DISABLED) and name. The last active ADMIN can be
    /// neither demoted nor disabled (checked here for a clear answer; the database trigger
    /// `users_last_active_admin` holds it under concurrency). Disabling revokes every
    /// refresh token of the user; their access tokens stop at the next request, because
    /// `authenticate` checks the status.
    pub async fn update_user(
        &self,
        who: &Principal,
        id: UserId,
        patch: UserPatch,
        meta: &RequestMeta,
    ) -> Result<UserView, IdentityError> {
        require_admin(who)?;
        let new_name =
            match patch.name.as_deref() {
                Some(name) => Some(validate::display_name(name, 200).map_err(|rule| {
                    IdentityError::invalid_field("name", rule.code, rule.message)
                })?),
                None => None,
            };
        let vendor = who.vendor_id;
        let mut tx = begin_for(self.pg(), who).await?;
        let current = members::get(&mut tx, vendor, id, true)
            .await?
            .ok_or(IdentityError::NotFound("user"))?;

        let role = patch.role.unwrap_or(current.role);
        let status = match (patch.status, current.status) {
            (None, status) => status,
            (Some(UserStatusChange::Disabled), _) => UserStatus::Disabled,
            // An invitee disabled before accepting has no password: back to INVITED.
            (Some(UserStatusChange::Active), UserStatus::Disabled)
                if current.password_hash.is_none() =>
            {
                UserStatus::Invited
            }
            (Some(UserStatusChange::Active), UserStatus::Disabled) => UserStatus::Active,
            (Some(UserStatusChange::Active), status) => status,
        };
        let name = new_name.unwrap_or_else(|| current.name.clone());
        if role == current.role && status == current.status && name == current.name {
            tx.commit().await?;
            return Ok(current.view());
        }
        let was_active_admin = current.role == Role::Admin && current.status == UserStatus::Active;
        let stays_active_admin = role == Role::Admin && status == UserStatus::Active;
        if was_active_admin
            && !stays_active_admin
            && members::other_active_admins(&mut tx, vendor, id).await? == 0
        {
            return Err(IdentityError::LastAdmin);
        }

        let updated = members::update(&mut tx, vendor, id, role, status, &name).await?;
        let actor = Actor::User(who.user_id);
        let target = || user_target(id);
        if role != current.role {
            audit(
                &mut tx,
                meta,
                Some(vendor),
                actor,
                "user.role_changed",
                target(),
                json!({ "from": current.role.as_str(), "to": role.as_str() }),
            )
            .await?;
        }
        if status != current.status {
            let action = if status == UserStatus::Disabled {
                let revoked =
                    refresh_tokens::revoke_user(&mut tx, vendor, id, RevokeReason::UserDisabled)
                        .await?;
                tracing::info!(user.id = %id, vendor.id = %vendor, revoked, "user disabled");
                "user.disabled"
            } else {
                "user.enabled"
            };
            audit(
                &mut tx,
                meta,
                Some(vendor),
                actor,
                action,
                target(),
                json!({ "from": current.status.as_str(), "to": status.as_str() }),
            )
            .await?;
        }
        if name != current.name {
            audit(
                &mut tx,
                meta,
                Some(vendor),
                actor,
                "user.updated",
                target(),
                json!({ "fields": ["name"] }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(updated.view())
    }
}
