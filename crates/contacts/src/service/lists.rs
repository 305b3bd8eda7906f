//! Contact lists and their members. Any role of the vendor may read and change them (it is
//! day-to-day work, like the contacts themselves).
//!
//! Adding members is all or nothing: an id that is not a contact of the caller's vendor
//! (missing, or another vendor's: the same answer) makes the request a 422 that lists each
//! such id, and nothing is added. Removing ids that are not members is not an error; the
//! answer counts what was removed.

use std::collections::BTreeSet;

use kloyst_audit::RequestMeta;
use kloyst_core::FieldError;
use kloyst_identity::Principal;
use serde_json::json;
use uuid::Uuid;

use super::directory::{audit, violates};
use super::{begin_for, Contacts};
use crate::cursor;
use crate::error::ContactsError;
use crate::model::{
    ContactListView, ListMembersInput, MembersAdded, MembersRemoved, NewContactList, Page,
    PageRequest,
};
use crate::repo::lists as repo;

const MAX_NAME_CHARS: usize = 200;
const MAX_DESCRIPTION_CHARS: usize = 2_000;
/// Contact ids per add or remove request.
pub(crate) const MAX_MEMBER_IDS: usize = 1_000;

impl Contacts {
    /// A new, empty list. 409 `list_name_taken` if the vendor has a list of that name.
    pub async fn create_list(
        &self,
        who: &Principal,
        input: NewContactList,
        meta: &RequestMeta,
    ) -> Result<ContactListView, ContactsError> {
        let mut errors = Vec::new();
        let name = input.name.trim();
        let name_chars = name.chars().count();
        if name_chars == 0 {
            errors.push(FieldError::new("name", "required", "a list needs a name"));
        } else if name_chars > MAX_NAME_CHARS {
            errors.push(FieldError::new(
                "name",
                "too_long",
                format!("at most {MAX_NAME_CHARS} characters"),
            ));
        }
        let description = input
            .description
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty());
        if description.is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS) {
            errors.push(FieldError::new(
                "description",
                "too_long",
                format!("at most {MAX_DESCRIPTION_CHARS} characters"),
            ));
        }
        if !errors.is_empty() {
            return Err(ContactsError::Invalid(errors));
        }

        let mut tx = begin_for(self.pg(), who).await?;
        let list = match repo::insert(&mut tx, who.vendor_id, name, description, who.user_id).await
        {
            Ok(list) => list,
            Err(error) if violates(&error, repo::LIST_NAME_KEY) => {
                return Err(ContactsError::Conflict {
                    code: "list_name_taken",
                    message: "a list with this name already exists".to_owned(),
                })
            }
            Err(error) => return Err(error.into()),
        };
        audit(
            &mut tx,
            who,
            meta,
            "contact_list.created",
            ("contact_list", list.id),
            json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(list)
    }

    /// The vendor's lists, newest first, cursor-paginated. Any role.
    pub async fn list_lists(
        &self,
        who: &Principal,
        page: PageRequest,
    ) -> Result<Page<ContactListView>, ContactsError> {
        let (limit, raw_cursor) = cursor::page(&page)?;
        let after = raw_cursor
            .as_deref()
            .map(cursor::decode_time_id)
            .transpose()?;
        let mut tx = begin_for(self.pg(), who).await?;
        let mut rows = repo::list(&mut tx, who.vendor_id, limit + 1, after).await?;
        tx.commit().await?;
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last()
                .map(|list| cursor::encode_time_id(list.created_at, list.id))
        } else {
            None
        };
        Ok(Page {
            data: rows,
            next_cursor,
        })
    }

    pub async fn get_list(
        &self,
        who: &Principal,
        id: Uuid,
    ) -> Result<ContactListView, ContactsError> {
        let mut tx = begin_for(self.pg(), who).await?;
        let list = repo::get(&mut tx, who.vendor_id, id).await?;
        tx.commit().await?;
        list.ok_or(ContactsError::NotFound("contact list"))
    }

    /// Deletes a list and its memberships (the contacts stay).
    pub async fn delete_list(
        &self,
        who: &Principal,
        id: Uuid,
        meta: &RequestMeta,
    ) -> Result<(), ContactsError> {
        let mut tx = begin_for(self.pg(), who).await?;
        if !repo::delete(&mut tx, who.vendor_id, id).await? {
            return Err(ContactsError::NotFound("contact list"));
        }
        audit(
            &mut tx,
            who,
            meta,
            "contact_list.deleted",
            ("contact_list", id),
            json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds contacts to a list: `added` counts those that were not members yet. Every id
    /// must be a contact of the caller's vendor, or nothing is added (422 naming them as
    /// `contact_ids[i]`, code `unknown_contact`).
    pub async fn add_list_members(
        &self,
        who: &Principal,
        list_id: Uuid,
        input: ListMembersInput,
        meta: &RequestMeta,
    ) -> Result<MembersAdded, ContactsError> {
        let ids = distinct_ids(&input.contact_ids)?;
        let vendor = who.vendor_id;
        let mut tx = begin_for(self.pg(), who).await?;
        if !repo::list_exists(&mut tx, vendor, list_id).await? {
            return Err(ContactsError::NotFound("contact list"));
        }
        let found: BTreeSet<Uuid> = repo::existing_contacts(&mut tx, vendor, &ids)
            .await?
            .into_iter()
            .collect();
        let unknown: Vec<FieldError> = input
            .contact_ids
            .iter()
            .enumerate()
            .filter(|(_, id)| !found.contains(id))
            .map(|(i, _)| {
                FieldError::new(
                    format!("contact_ids[{i}]"),
                    "unknown_contact",
                    "no contact of this vendor has this id",
                )
            })
            .collect();
        if !unknown.is_empty() {
            return Err(ContactsError::Invalid(unknown));
        }
        let added = match repo::add_members(&mut tx, vendor, list_id, &ids).await {
            Ok(added) => added,
            // Deleted by another request since the checks above.
            Err(error) if violates(&error, repo::MEMBER_LIST_FKEY) => {
                return Err(ContactsError::NotFound("contact list"))
            }
            Err(error) if violates(&error, repo::MEMBER_CONTACT_FKEY) => {
                return Err(ContactsError::invalid_field(
                    "contact_ids",
                    "unknown_contact",
                    "a contact was deleted meanwhile; try again",
                ))
            }
            Err(error) => return Err(error.into()),
        };
        if added > 0 {
            audit(
                &mut tx,
                who,
                meta,
                "contact_list.members_added",
                ("contact_list", list_id),
                json!({ "added": added }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(MembersAdded { added })
    }

    /// Removes contacts from a list: `removed` counts those that were members; other ids
    /// are ignored.
    pub async fn remove_list_members(
        &self,
        who: &Principal,
        list_id: Uuid,
        input: ListMembersInput,
        meta: &RequestMeta,
    ) -> Result<MembersRemoved, ContactsError> {
        let ids = distinct_ids(&input.contact_ids)?;
        let vendor = who.vendor_id;
        let mut tx = begin_for(self.pg(), who).await?;
        if !repo::list_exists(&mut tx, vendor, list_id).await? {
            return Err(ContactsError::NotFound("contact list"));
        }
        let removed = repo::remove_members(&mut tx, vendor, list_id, &ids).await?;
        if removed > 0 {
            audit(
                &mut tx,
                who,
                meta,
                "contact_list.members_removed",
                ("contact_list", list_id),
                json!({ "removed": removed }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(MembersRemoved { removed })
    }
}

/// 1–1,000 ids, each once, sorted.
fn distinct_ids(ids: &[Uuid]) -> Result<Vec<Uuid>, ContactsError> {
    if ids.is_empty() || ids.len() > MAX_MEMBER_IDS {
        return Err(ContactsError::invalid_field(
            "contact_ids",
            "out_of_range",
            format!("between 1 and {MAX_MEMBER_IDS} contact ids"),
        ));
    }
    Ok(ids
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect())
}
