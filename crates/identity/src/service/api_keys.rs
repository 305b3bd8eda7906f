//! Vendor API keys for integrations (n8n and the like): an ADMIN creates, lists and revokes
//! them in their tenant transaction; [`Identity::authenticate_api_key`] turns a presented key
//! into an [`ApiKeyPrincipal`] with one statement on the pool.

use chrono::{DateTime, Duration, Utc};
use kloyst_audit::{Actor, RequestMeta};
use kloyst_core::{FieldError, VendorId};
use serde_json::json;
use uuid::Uuid;

use super::{audit, begin_for, require_admin, Identity};
use crate::api_key;
use crate::caller::{ApiKeyPrincipal, ApiScope};
use crate::cursor;
use crate::error::IdentityError;
use crate::input::NewApiKey;
use crate::model::{ApiKeyView, CreatedApiKey, Page, PageRequest, Principal};
use crate::repo::api_keys::{self, known_scopes, NewKeyRow, Revocation};
use crate::validate::{self, Fields, Rule};

/// Active (neither revoked nor expired) keys a vendor may hold at once.
pub const MAX_ACTIVE_API_KEYS: u32 = 25;
/// The longest a key may be created for; a key without `expires_at` never expires.
const MAX_LIFETIME_DAYS: i64 = 2 * 365;
const NAME_MAX: usize = 100;

/// A creation request with every rule checked.
#[derive(Debug)]
struct Checked {
    name: String,
    scopes: Vec<ApiScope>,
    expires_at: Option<DateTime<Utc>>,
}

impl Identity {
    /// ADMIN only. Returns the whole key, this once; the database keeps its SHA-256.
    pub async fn create_api_key(
        &self,
        who: &Principal,
        input: NewApiKey,
        meta: &RequestMeta,
    ) -> Result<CreatedApiKey, IdentityError> {
        require_admin(who)?;
        let checked = check(&input, Utc::now())?;
        let vendor = who.vendor_id;
        let mut tx = begin_for(self.pg(), who).await?;
        api_keys::lock_vendor(&mut tx, vendor).await?;
        if api_keys::count_active(&mut tx, vendor).await? >= i64::from(MAX_ACTIVE_API_KEYS) {
            return Err(IdentityError::ApiKeyLimit {
                max: MAX_ACTIVE_API_KEYS,
            });
        }
        // A clash of the 12-character random prefix (62^12 values) is not worth a retry
        // loop: the unique constraint turns it into a 500 the client can simply retry.
        let new = api_key::generate();
        let row = api_keys::insert(
            &mut tx,
            &NewKeyRow {
                vendor,
                name: &checked.name,
                prefix: &new.prefix,
                hash: &new.hash,
                scopes: &checked.scopes,
                created_by: who.user_id,
                expires_at: checked.expires_at,
            },
        )
        .await?;
        let scopes = known_scopes(&row.scopes);
        audit(
            &mut tx,
            meta,
            Some(vendor),
            Actor::User(who.user_id),
            "api_key.created",
            key_target(row.id),
            json!({
                "name": row.name,
                "prefix": row.prefix,
                "scopes": scopes,
                "expires_at": row.expires_at,
            }),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(vendor.id = %vendor, api_key.id = %row.id, api_key.prefix = %row.prefix, "API key created");
        Ok(CreatedApiKey {
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            key: new.key,
            scopes,
            created_at: row.created_at,
            expires_at: row.expires_at,
        })
    }

    /// The vendor's keys, newest first, cursor-paginated, whatever their status. ADMIN only.
    pub async fn list_api_keys(
        &self,
        who: &Principal,
        page: PageRequest,
    ) -> Result<Page<ApiKeyView>, IdentityError> {
        require_admin(who)?;
        let (limit, after) = cursor::parse(&page)?;
        let mut tx = begin_for(self.pg(), who).await?;
        // One extra row tells whether there is a next page.
        let mut rows = api_keys::list(&mut tx, who.vendor_id, limit + 1, after).await?;
        tx.commit().await?;
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|r| cursor::encode(r.created_at, r.id))
        } else {
            None
        };
        Ok(Page {
            data: rows.iter().map(api_keys::KeyRow::view).collect(),
            next_cursor,
        })
    }

    /// ADMIN only. The key stops working at its next request. Revoking a revoked key is
    /// fine (a retried DELETE); another vendor's key is `ApiKeyNotFound`, like a missing one.
    pub async fn revoke_api_key(
        &self,
        who: &Principal,
        id: Uuid,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        require_admin(who)?;
        let vendor = who.vendor_id;
        let mut tx = begin_for(self.pg(), who).await?;
        match api_keys::revoke(&mut tx, vendor, id).await? {
            Revocation::Missing => return Err(IdentityError::ApiKeyNotFound),
            Revocation::Already => {}
            Revocation::Now { name, prefix } => {
                audit(
                    &mut tx,
                    meta,
                    Some(vendor),
                    Actor::User(who.user_id),
                    "api_key.revoked",
                    key_target(id),
                    json!({ "name": name, "prefix": prefix }),
                )
                .await?;
                tracing::info!(vendor.id = %vendor, api_key.id = %id, "API key revoked");
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The caller behind a presented key (`kly_…`, without any `Bearer ` scheme). A malformed
    /// key is refused without a database round trip; an unknown, revoked or expired one gets
    /// the same [`IdentityError::ApiKeyInvalid`]. System work on the pool: the key itself is
    /// what names the vendor.
    pub async fn authenticate_api_key(&self, raw: &str) -> Result<ApiKeyPrincipal, IdentityError> {
        if !api_key::is_well_formed(raw) {
            return Err(IdentityError::ApiKeyInvalid);
        }
        let hash = api_key::hash(raw);
        let (key_id, vendor_id, scopes) = api_keys::authenticate(self.pg(), &hash)
            .await?
            .ok_or(IdentityError::ApiKeyInvalid)?;
        Ok(ApiKeyPrincipal {
            key_id,
            vendor_id: VendorId::from_uuid(vendor_id),
            scopes: known_scopes(&scopes),
        })
    }
}

fn key_target(id: Uuid) -> Option<(&'static str, String)> {
    Some(("api_key", id.to_string()))
}

/// Every rule of a creation request, all errors at once.
fn check(input: &NewApiKey, now: DateTime<Utc>) -> Result<Checked, IdentityError> {
    let mut fields = Fields::default();
    let name = fields.take("name", validate::display_name(&input.name, NAME_MAX));
    let scopes = check_scopes(&input.scopes, &mut fields);
    let expires_at = fields.take("expires_at", check_expiry(input.expires_at, now));
    fields.finish_with(name.zip(expires_at).map(|(name, expires_at)| Checked {
        name,
        scopes,
        expires_at,
    }))
}

/// Known scopes, each once, in the order given. An unknown one is reported at its index.
fn check_scopes(raw: &[String], fields: &mut Fields) -> Vec<ApiScope> {
    if raw.is_empty() {
        let known: Vec<&str> = ApiScope::ALL.iter().map(|s| s.as_str()).collect();
        fields.push(FieldError::new(
            "scopes",
            "required",
            format!("name at least one scope: {}", known.join(", ")),
        ));
    }
    let mut scopes = Vec::new();
    for (i, text) in raw.iter().enumerate() {
        match ApiScope::parse(text) {
            Some(scope) if !scopes.contains(&scope) => scopes.push(scope),
            Some(_) => {}
            None => {
                let known: Vec<&str> = ApiScope::ALL.iter().map(|s| s.as_str()).collect();
                fields.push(FieldError::new(
                    format!("scopes[{i}]"),
                    "unknown_scope",
                    format!("must be one of {}", known.join(", ")),
                ));
            }
        }
    }
    scopes
}

fn check_expiry(
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, Rule> {
    match expires_at {
        Some(at) if at <= now => Err(Rule::new("not_in_future", "must be in the future")),
        Some(at) if at > now + Duration::days(MAX_LIFETIME_DAYS) => Err(Rule::new(
            "out_of_range",
            "must be at most 2 years from now",
        )),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, scopes: &[&str], expires_at: Option<DateTime<Utc>>) -> NewApiKey {
        NewApiKey {
            name: name.to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            expires_at,
        }
    }

    /// `field=code` of each field error.
    fn fields_of(error: IdentityError) -> Vec<String> {
        match error {
            IdentityError::Invalid(errors) => errors
                .into_iter()
                .map(|e| format!("{}={}", e.field, e.code))
                .collect(),
            other => panic!("not a field error: {other:?}"),
        }
    }

    #[test]
    fn a_good_request_is_trimmed_and_deduplicated() {
        let now = Utc::now();
        let checked = check(
            &input(
                "  n8n  ",
                &["messages:read", "messages:send", "messages:read"],
                Some(now + Duration::days(30)),
            ),
            now,
        )
        .unwrap();
        assert_eq!(checked.name, "n8n");
        assert_eq!(
            checked.scopes,
            vec![ApiScope::MessagesRead, ApiScope::MessagesSend]
        );
        assert_eq!(checked.expires_at, Some(now + Duration::days(30)));
        assert!(check(&input("x", &["messages:send"], None), now).is_ok());
    }

    #[test]
    fn every_broken_rule_is_reported_with_its_field() {
        let now = Utc::now();
        let error = check(
            &input(
                " ",
                &["messages:read", "messages:*", "MESSAGES:SEND"],
                Some(now),
            ),
            now,
        )
        .unwrap_err();
        assert_eq!(
            fields_of(error),
            [
                "name=required",
                "scopes[1]=unknown_scope",
                "scopes[2]=unknown_scope",
                "expires_at=not_in_future",
            ]
        );
        let error = check(
            &input(
                &"n".repeat(101),
                &[],
                Some(now + Duration::days(MAX_LIFETIME_DAYS + 1)),
            ),
            now,
        )
        .unwrap_err();
        assert_eq!(
            fields_of(error),
            [
                "name=too_long",
                "scopes=required",
                "expires_at=out_of_range"
            ]
        );
        assert!(check(
            &input(
                &"n".repeat(100),
                &["messages:send"],
                Some(now + Duration::days(MAX_LIFETIME_DAYS))
            ),
            now
        )
        .is_ok());
    }
}
