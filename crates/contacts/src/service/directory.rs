//! The contact directory: list and search (cursor pages), get, patch (number, attributes,
//! opt-out), delete. Any role of the vendor may do all of it: it is day-to-day work.
//!
//! Each call is one tenant transaction (`begin_for`: RLS on the caller's vendor, session
//! checked) and filters by that vendor too: another vendor's contact is not found, exactly
//! like a missing one. Changes are tagged with `set_change_context` (actor, request id), so
//! the `contact_changes` rows the triggers write say who and which request; the audit log
//! gets one row per change, naming the fields changed but never their values.

use kloyst_audit::{Actor, AuditEntry, RequestMeta};
use kloyst_core::FieldError;
use kloyst_identity::Principal;
use serde_json::{json, Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{begin_for, set_change_context, Contacts};
use crate::cursor;
use crate::error::ContactsError;
use crate::model::{ContactFilter, ContactPatch, ContactView, Page, PageRequest};
use crate::phone::{self, Region};
use crate::repo::contacts::{self as repo, ContactUpdate, Search};
use crate::repo::lists;

const MAX_OPT_OUT_REASON_CHARS: usize = 1_000;
const MAX_NAME_PREFIX_CHARS: usize = 200;
/// E.164 numbers have at most 15 digits.
const MAX_MOBILE_DIGITS: usize = 15;

impl Contacts {
    /// A page of the caller's vendor's contacts matching `filter`. Any role.
    ///
    /// The order depends on the filters (see `repo::contacts::Search::order`): by name with
    /// `name_prefix`, else by number with `mobile_prefix`, else by id. A cursor belongs to
    /// the filters it was issued for; another order's cursor is refused (422).
    pub async fn list_contacts(
        &self,
        who: &Principal,
        filter: ContactFilter,
    ) -> Result<Page<ContactView>, ContactsError> {
        let (limit, raw_cursor) = cursor::page(&PageRequest {
            limit: filter.limit,
            cursor: filter.cursor.clone(),
        })?;
        let search = search_of(&filter)?;
        let order = search.order();
        let after = match raw_cursor.as_deref() {
            None => None,
            Some(raw) => {
                let position = contact_cursor::decode(raw)?;
                if !repo::position_fits(&position, order) {
                    return Err(contact_cursor::invalid());
                }
                Some(position)
            }
        };
        let mut tx = begin_for(self.pg(), who).await?;
        // One extra row tells whether there is a next page.
        let mut rows =
            repo::search(&mut tx, who.vendor_id, &search, after.as_ref(), limit + 1).await?;
        // A list filter on a list that is not there (or another vendor's) is a 404; checked
        // only when nothing came back, as a row proves the list exists.
        if rows.is_empty() {
            if let Some(list) = search.list_id {
                if !lists::list_exists(&mut tx, who.vendor_id, list).await? {
                    return Err(ContactsError::NotFound("contact list"));
                }
            }
        }
        tx.commit().await?;
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last()
                .map(|row| contact_cursor::encode(&row.position(order)))
        } else {
            None
        };
        Ok(Page {
            data: rows.into_iter().map(|row| row.view).collect(),
            next_cursor,
        })
    }

    /// One contact of the caller's vendor. Any role.
    pub async fn get_contact(
        &self,
        who: &Principal,
        id: Uuid,
    ) -> Result<ContactView, ContactsError> {
        let mut tx = begin_for(self.pg(), who).await?;
        let contact = repo::get(&mut tx, who.vendor_id, id, false).await?;
        tx.commit().await?;
        contact.ok_or(ContactsError::NotFound("contact"))
    }

    /// Changes a contact's number, attributes (merged) or opt-out. Any role.
    ///
    /// - `mobile` is parsed again with the vendor's default country; a number another
    ///   contact of the vendor has is a 409 `mobile_taken`.
    /// - `attributes` is merged: given keys overwritten, keys given as `null` removed.
    /// - `opted_out: true` on an opted-in contact stamps `opted_out_at = now()`, source
    ///   `API` and the reason; on an opted-out one it keeps the original time and source
    ///   (only the reason may change). `opted_out: false` clears all of it.
    ///
    /// Every invalid field is reported at once. A patch that changes nothing writes nothing.
    pub async fn update_contact(
        &self,
        who: &Principal,
        id: Uuid,
        patch: ContactPatch,
        meta: &RequestMeta,
    ) -> Result<ContactView, ContactsError> {
        let mut errors = Vec::new();
        if let Some(attributes) = &patch.attributes {
            check_attributes(attributes, &mut errors);
        }
        // Some(None): the reason is cleared.
        let reason: Option<Option<String>> = match patch.opt_out_reason.as_deref().map(str::trim) {
            None => None,
            Some("") => Some(None),
            Some(reason) if reason.chars().count() > MAX_OPT_OUT_REASON_CHARS => {
                errors.push(FieldError::new(
                    "opt_out_reason",
                    "too_long",
                    format!("at most {MAX_OPT_OUT_REASON_CHARS} characters"),
                ));
                None
            }
            Some(reason) => Some(Some(reason.to_owned())),
        };

        let vendor = who.vendor_id;
        let mut tx = begin_for(self.pg(), who).await?;
        let current = repo::get(&mut tx, vendor, id, true)
            .await?
            .ok_or(ContactsError::NotFound("contact"))?;

        let (mobile, country) = match patch.mobile.as_deref() {
            Some(raw) => {
                let region = default_region(&mut tx, vendor).await?;
                match phone::normalize(raw, region) {
                    Ok(number) if number.mobile == current.mobile => {
                        (current.mobile.clone(), current.country.clone())
                    }
                    Ok(number) => (number.mobile, number.country),
                    Err(reason) => {
                        errors.push(FieldError::new("mobile", reason.code(), reason.message()));
                        (current.mobile.clone(), current.country.clone())
                    }
                }
            }
            None => (current.mobile.clone(), current.country.clone()),
        };

        let mut attributes = current.attributes.0.clone();
        if let Some(patch) = &patch.attributes {
            for (key, value) in patch {
                if value.is_null() {
                    attributes.remove(key);
                } else {
                    attributes.insert(key.clone(), value.clone());
                }
            }
            if attributes.len() > crate::attributes::MAX_KEYS {
                errors.push(FieldError::new(
                    "attributes",
                    "TOO_MANY_ATTRIBUTES",
                    format!(
                        "at most {} attributes per contact; this would make {}",
                        crate::attributes::MAX_KEYS,
                        attributes.len()
                    ),
                ));
            }
        }

        let opted_out = patch.opted_out.unwrap_or(current.opted_out);
        let opt_out_reason = match (opted_out, reason) {
            (false, Some(Some(_))) => {
                errors.push(FieldError::new(
                    "opt_out_reason",
                    "not_opted_out",
                    "a reason is only kept for an opted-out contact",
                ));
                None
            }
            (false, _) => None,
            (true, Some(reason)) => reason,
            // Opting out without a reason: none; staying opted out: the one it had.
            (true, None) if current.opted_out => current.opt_out_reason.clone(),
            (true, None) => None,
        };
        if !errors.is_empty() {
            return Err(ContactsError::Invalid(errors));
        }

        let mut changed = Vec::new();
        if mobile != current.mobile {
            changed.push("mobile");
        }
        if attributes != current.attributes.0 {
            changed.push("attributes");
        }
        if opted_out != current.opted_out {
            changed.push("opted_out");
        }
        if opt_out_reason != current.opt_out_reason {
            changed.push("opt_out_reason");
        }
        if changed.is_empty() {
            tx.commit().await?;
            return Ok(current);
        }

        set_change_context(&mut tx, Some(who.user_id), meta.request_id.as_deref(), None).await?;
        let change = ContactUpdate {
            mobile: &mobile,
            country: country.as_deref(),
            attributes: &attributes,
            opted_out,
            opt_out_reason: opt_out_reason.as_deref(),
        };
        let updated = match repo::update(&mut tx, vendor, id, &change).await {
            Ok(row) => row.ok_or(ContactsError::NotFound("contact"))?,
            Err(error) if violates(&error, repo::MOBILE_KEY) => {
                return Err(ContactsError::Conflict {
                    code: "mobile_taken",
                    message: "another contact already has this number".to_owned(),
                })
            }
            Err(error) => return Err(error.into()),
        };
        audit(
            &mut tx,
            who,
            meta,
            "contact.updated",
            ("contact", id),
            json!({ "fields": changed }),
        )
        .await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Deletes a contact; its list memberships go with it and the lists' counts follow.
    /// Any role.
    pub async fn delete_contact(
        &self,
        who: &Principal,
        id: Uuid,
        meta: &RequestMeta,
    ) -> Result<(), ContactsError> {
        let mut tx = begin_for(self.pg(), who).await?;
        set_change_context(&mut tx, Some(who.user_id), meta.request_id.as_deref(), None).await?;
        if !repo::delete(&mut tx, who.vendor_id, id).await? {
            return Err(ContactsError::NotFound("contact"));
        }
        audit(
            &mut tx,
            who,
            meta,
            "contact.deleted",
            ("contact", id),
            json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The region national numbers of this vendor are read in: its `default_country`, or
/// India when it has none (or an unknown code).
async fn default_region(
    conn: &mut PgConnection,
    vendor: kloyst_core::VendorId,
) -> Result<Region, ContactsError> {
    let code = repo::vendor_default_country(conn, vendor).await?;
    Ok(code
        .as_deref()
        .and_then(phone::parse_region)
        .unwrap_or(Region::IN))
}

/// The search of a filter: blank prefixes dropped, the number prefix reduced to digits.
fn search_of(filter: &ContactFilter) -> Result<Search, ContactsError> {
    let mut errors = Vec::new();
    let name_prefix = filter
        .name_prefix
        .as_deref()
        .map(str::trim_start)
        .filter(|p| !p.is_empty());
    if name_prefix.is_some_and(|p| p.chars().count() > MAX_NAME_PREFIX_CHARS) {
        errors.push(FieldError::new(
            "name_prefix",
            "too_long",
            format!("at most {MAX_NAME_PREFIX_CHARS} characters"),
        ));
    }
    let mobile_prefix = match filter.mobile_prefix.as_deref() {
        None => None,
        Some(raw) => {
            let digits: String = raw
                .chars()
                .filter(|c| !(c.is_whitespace() || matches!(c, '+' | '-' | '(' | ')' | '.')))
                .collect();
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                errors.push(FieldError::new(
                    "mobile_prefix",
                    "not_digits",
                    "the leading digits of a number, e.g. +91 98",
                ));
            } else if digits.len() > MAX_MOBILE_DIGITS {
                errors.push(FieldError::new(
                    "mobile_prefix",
                    "too_long",
                    format!("a number has at most {MAX_MOBILE_DIGITS} digits"),
                ));
            }
            Some(digits).filter(|d| !d.is_empty())
        }
    };
    if !errors.is_empty() {
        return Err(ContactsError::Invalid(errors));
    }
    Ok(Search {
        list_id: filter.list_id,
        name_prefix: name_prefix.map(str::to_owned),
        mobile_prefix,
        opted_out: filter.opted_out,
    })
}

/// The rules for the attributes of a patch, key by key (`crate::attributes`, as imports
/// apply them), so that every bad key is reported; the count is checked after the merge.
fn check_attributes(attributes: &Map<String, Value>, errors: &mut Vec<FieldError>) {
    for (key, value) in attributes {
        let one: Map<String, Value> = [(key.clone(), value.clone())].into_iter().collect();
        if let Err(problem) = crate::attributes::check(&one, true) {
            // A name that is itself invalid (blank, too long) is not repeated in the path.
            let field = match problem.key {
                Some(key) if problem.code != "ATTRIBUTE_NAME_INVALID" => {
                    format!("attributes.{key}")
                }
                _ => "attributes".to_owned(),
            };
            errors.push(FieldError::new(field, problem.code, problem.message));
        }
    }
}

/// Whether `error` is a violation of the constraint `name`.
pub(super) fn violates(error: &sqlx::Error, name: &str) -> bool {
    error
        .as_database_error()
        .and_then(|db| db.constraint())
        .is_some_and(|constraint| constraint == name)
}

/// One audit-log row, in the transaction of the change.
pub(super) async fn audit(
    conn: &mut PgConnection,
    who: &Principal,
    meta: &RequestMeta,
    action: &str,
    (target_type, target_id): (&str, Uuid),
    details: Value,
) -> Result<(), ContactsError> {
    let entry = AuditEntry {
        vendor_id: Some(who.vendor_id),
        actor: Actor::User(who.user_id),
        action,
        target_type: Some(target_type),
        target_id: Some(target_id.to_string()),
        details,
    };
    kloyst_audit::record(conn, &entry, meta).await?;
    Ok(())
}

/// Opaque cursors of contact pages: base64url (no padding) of a tag byte and the position
/// of the last row of the page (a name position is as long as the name, so these are not
/// the fixed-size hex cursors of `crate::cursor`). They carry no vendor: a cursor only
/// positions a query that is filtered by the caller's vendor anyway.
///
/// | tag | position | order |
/// |---|---|---|
/// | `i` | contact id (16 bytes) | by id, and a list's members |
/// | `n` | contact id (16 bytes), then `name_search` (UTF-8) | by name |
/// | `m` | the number (ASCII digits) | by number |
mod contact_cursor {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use uuid::Uuid;

    use crate::error::ContactsError;
    use crate::repo::contacts::Position;

    /// Longer than any cursor we issue (a name is at most 1,000 characters).
    const MAX_CURSOR_CHARS: usize = 8_192;

    pub(super) fn invalid() -> ContactsError {
        ContactsError::invalid_field("cursor", "invalid_cursor", "not a cursor of this list")
    }

    pub(super) fn encode(position: &Position) -> String {
        let mut bytes = Vec::with_capacity(40);
        match position {
            Position::Id(id) => {
                bytes.push(b'i');
                bytes.extend_from_slice(id.as_bytes());
            }
            Position::Name(name, id) => {
                bytes.push(b'n');
                bytes.extend_from_slice(id.as_bytes());
                bytes.extend_from_slice(name.as_bytes());
            }
            Position::Mobile(mobile) => {
                bytes.push(b'm');
                bytes.extend_from_slice(mobile.as_bytes());
            }
        }
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub(super) fn decode(cursor: &str) -> Result<Position, ContactsError> {
        let cursor = cursor.trim();
        if cursor.is_empty() || cursor.len() > MAX_CURSOR_CHARS {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        match bytes.split_first() {
            Some((b'i', id)) => Ok(Position::Id(Uuid::from_slice(id).map_err(|_| invalid())?)),
            Some((b'n', rest)) if rest.len() >= 16 => {
                let (id, name) = rest.split_at(16);
                let id = Uuid::from_slice(id).map_err(|_| invalid())?;
                let name = String::from_utf8(name.to_vec()).map_err(|_| invalid())?;
                Ok(Position::Name(name, id))
            }
            Some((b'm', digits))
                if !digits.is_empty()
                    && digits.len() <= 15
                    && digits.iter().all(u8::is_ascii_digit) =>
            {
                Ok(Position::Mobile(
                    String::from_utf8_lossy(digits).into_owned(),
                ))
            }
            _ => Err(invalid()),
        }
    }

    #[cfg(test)]
    mod tests {
        use kloyst_core::DomainError;

        use super::*;

        #[test]
        fn positions_round_trip() {
            let id = Uuid::new_v4();
            for position in [
                Position::Id(id),
                Position::Name("ásha rao".to_owned(), id),
                Position::Name(String::new(), id),
                Position::Mobile("919876543210".to_owned()),
            ] {
                let cursor = encode(&position);
                assert!(cursor
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
                assert_eq!(decode(&cursor).unwrap(), position);
            }
        }

        #[test]
        fn garbage_is_refused() {
            let id = encode(&Position::Id(Uuid::new_v4()));
            let bad_mobile = URL_SAFE_NO_PAD.encode(b"m91x");
            let short_name = URL_SAFE_NO_PAD.encode(b"nabc");
            let long = "A".repeat(10_000);
            for bad in [
                "",
                "   ",
                "!!",
                "aQ",
                &id[..10],
                &bad_mobile,
                &short_name,
                "bQ",
                &long,
            ] {
                let err = decode(bad).unwrap_err();
                let codes: Vec<String> = err.field_errors().into_iter().map(|e| e.code).collect();
                assert_eq!(codes, ["invalid_cursor"], "{bad}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> ContactFilter {
        ContactFilter::default()
    }

    #[test]
    fn the_number_prefix_is_reduced_to_digits() {
        let search = search_of(&ContactFilter {
            mobile_prefix: Some(" +91 (98) 76-5.".to_owned()),
            ..filter()
        })
        .unwrap();
        assert_eq!(search.mobile_prefix.as_deref(), Some("9198765"));
        let blank = search_of(&ContactFilter {
            mobile_prefix: Some(" + ".to_owned()),
            name_prefix: Some("   ".to_owned()),
            ..filter()
        })
        .unwrap();
        assert_eq!(blank.mobile_prefix, None);
        assert_eq!(blank.name_prefix, None);
        for bad in ["91abc", "٩١", "1234567890123456"] {
            let err = search_of(&ContactFilter {
                mobile_prefix: Some(bad.to_owned()),
                ..filter()
            })
            .unwrap_err();
            assert!(matches!(err, ContactsError::Invalid(ref e) if e[0].field == "mobile_prefix"));
        }
    }

    #[test]
    fn attribute_rules() {
        let check = |value: Value| {
            let mut errors = Vec::new();
            check_attributes(value.as_object().unwrap(), &mut errors);
            let mut found: Vec<_> = errors.into_iter().map(|e| (e.field, e.code)).collect();
            found.sort();
            found
        };
        assert!(check(json!({ "city": "Pune", "age": 31, "vip": true, "old": null })).is_empty());
        let one = |field: &str, code: &str| vec![(field.to_owned(), code.to_owned())];
        assert_eq!(
            check(json!({ "tags": ["a"], "meta": {} })),
            [
                ("attributes.meta".to_owned(), "ATTRIBUTE_TYPE".to_owned()),
                ("attributes.tags".to_owned(), "ATTRIBUTE_TYPE".to_owned())
            ]
        );
        assert_eq!(
            check(json!({ "note": "x".repeat(1_001) })),
            one("attributes.note", "ATTRIBUTE_TOO_LONG")
        );
        assert!(check(json!({ "note": "é".repeat(1_000) })).is_empty());
        assert_eq!(
            check(json!({ "k".repeat(65): 1 })),
            one("attributes", "ATTRIBUTE_NAME_INVALID")
        );
        assert!(check(json!({ "k".repeat(64): 1 })).is_empty());
        assert_eq!(
            check(json!({ " ": 1 })),
            one("attributes", "ATTRIBUTE_NAME_INVALID")
        );
    }
}
