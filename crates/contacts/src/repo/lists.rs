//! Contact lists and their members. Every function filters by `vendor` (RLS is the second
//! wall); the composite foreign keys of `contact_list_members` make a membership between
//! one vendor's list and another vendor's contact impossible anyway. `member_count` is kept
//! by statement triggers on `contact_list_members`.
//!
//! Members are inserted in contact-id order, so that two requests adding overlapping sets
//! to one list wait for each other instead of deadlocking.

use chrono::{DateTime, Utc};
use kloyst_core::{UserId, VendorId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::model::ContactListView;

/// The columns of [`ContactListView`].
macro_rules! list_columns {
    () => {
        "id, name, description, member_count, created_by, created_at, updated_at"
    };
}

/// The unique constraint a second list with the same name violates.
pub(crate) const LIST_NAME_KEY: &str = "contact_lists_vendor_id_name_key";
/// The foreign keys of a membership (its list, its contact).
pub(crate) const MEMBER_LIST_FKEY: &str = "contact_list_members_list_fkey";
pub(crate) const MEMBER_CONTACT_FKEY: &str = "contact_list_members_contact_fkey";

pub(crate) async fn insert(
    conn: &mut PgConnection,
    vendor: VendorId,
    name: &str,
    description: Option<&str>,
    created_by: UserId,
) -> Result<ContactListView, sqlx::Error> {
    sqlx::query_as(concat!(
        "INSERT INTO contact_lists (vendor_id, name, description, created_by)
         VALUES ($1, $2, $3, $4) RETURNING ",
        list_columns!()
    ))
    .bind(vendor.as_uuid())
    .bind(name)
    .bind(description)
    .bind(created_by.as_uuid())
    .fetch_one(conn)
    .await
}

/// A page of the vendor's lists, newest first, after the list at `after`
/// (`contact_lists_vendor_created_idx (vendor_id, created_at DESC, id DESC)`).
pub(crate) async fn list(
    conn: &mut PgConnection,
    vendor: VendorId,
    limit: u32,
    after: Option<(DateTime<Utc>, Uuid)>,
) -> Result<Vec<ContactListView>, sqlx::Error> {
    // Two statements rather than `$3 IS NULL OR …`, so that the cursor is an index
    // condition and not a filter.
    match after {
        None => {
            sqlx::query_as(concat!(
                "SELECT ",
                list_columns!(),
                " FROM contact_lists WHERE vendor_id = $1
                  ORDER BY created_at DESC, id DESC LIMIT $2"
            ))
            .bind(vendor.as_uuid())
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await
        }
        Some((at, id)) => {
            sqlx::query_as(concat!(
                "SELECT ",
                list_columns!(),
                " FROM contact_lists
                  WHERE vendor_id = $1 AND (created_at, id) < ($3, $4)
                  ORDER BY created_at DESC, id DESC LIMIT $2"
            ))
            .bind(vendor.as_uuid())
            .bind(i64::from(limit))
            .bind(at)
            .bind(id)
            .fetch_all(conn)
            .await
        }
    }
}

pub(crate) async fn get(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
) -> Result<Option<ContactListView>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        list_columns!(),
        " FROM contact_lists WHERE vendor_id = $1 AND id = $2"
    ))
    .bind(vendor.as_uuid())
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Whether the vendor has this list.
pub(crate) async fn list_exists(
    conn: &mut PgConnection,
    vendor: VendorId,
    list_id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM contact_lists WHERE vendor_id = $1 AND id = $2)",
    )
    .bind(vendor.as_uuid())
    .bind(list_id)
    .fetch_one(conn)
    .await
}

/// Deletes a list (its memberships cascade); whether it was there.
pub(crate) async fn delete(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM contact_lists WHERE vendor_id = $1 AND id = $2")
        .bind(vendor.as_uuid())
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Which of `ids` are contacts of the vendor.
pub(crate) async fn existing_contacts(
    conn: &mut PgConnection,
    vendor: VendorId,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM contacts WHERE vendor_id = $1 AND id = ANY($2)")
        .bind(vendor.as_uuid())
        .bind(ids)
        .fetch_all(conn)
        .await
}

/// Adds the vendor's contacts among `ids` to the list; ids that are not its contacts are
/// skipped. Returns how many were not members yet.
pub(crate) async fn add_members(
    conn: &mut PgConnection,
    vendor: VendorId,
    list_id: Uuid,
    ids: &[Uuid],
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO contact_list_members (list_id, contact_id, vendor_id)
         SELECT $2, c.id, c.vendor_id FROM contacts c
          WHERE c.vendor_id = $1 AND c.id = ANY($3)
          ORDER BY c.id
         ON CONFLICT DO NOTHING",
    )
    .bind(vendor.as_uuid())
    .bind(list_id)
    .bind(ids)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Adds the vendor's contacts with these numbers (E.164 digits) to the list; numbers no
/// contact has are skipped. Returns how many were not members yet. For imports.
pub(crate) async fn add_members_by_mobile(
    conn: &mut PgConnection,
    vendor: VendorId,
    list_id: Uuid,
    mobiles: &[&str],
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO contact_list_members (list_id, contact_id, vendor_id)
         SELECT $2, c.id, c.vendor_id FROM contacts c
          WHERE c.vendor_id = $1 AND c.mobile = ANY($3)
          ORDER BY c.id
         ON CONFLICT DO NOTHING",
    )
    .bind(vendor.as_uuid())
    .bind(list_id)
    .bind(mobiles)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Removes these contacts from the list; returns how many were members.
pub(crate) async fn remove_members(
    conn: &mut PgConnection,
    vendor: VendorId,
    list_id: Uuid,
    ids: &[Uuid],
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM contact_list_members
          WHERE vendor_id = $1 AND list_id = $2 AND contact_id = ANY($3)",
    )
    .bind(vendor.as_uuid())
    .bind(list_id)
    .bind(ids)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use kloyst_testkit::TestStores;

    use super::*;

    /// The helpers imports use, in a tenant transaction as they run.
    #[tokio::test]
    async fn members_by_number_and_the_vendor_country() {
        let stores = TestStores::new().await;
        let pg = &stores.pg;
        let mut vendors = Vec::new();
        for country in ["IN", "US"] {
            let id: Uuid = sqlx::query_scalar(
                "INSERT INTO vendors (name, default_country) VALUES ('V', $1) RETURNING id",
            )
            .bind(country)
            .fetch_one(pg)
            .await
            .unwrap();
            vendors.push(VendorId::from_uuid(id));
        }
        let (a, b) = (vendors[0], vendors[1]);
        for (vendor, mobile) in [
            (a, "919800000001"),
            (a, "919800000002"),
            (b, "919800000003"),
        ] {
            sqlx::query("INSERT INTO contacts (vendor_id, mobile) VALUES ($1, $2)")
                .bind(vendor.as_uuid())
                .bind(mobile)
                .execute(pg)
                .await
                .unwrap();
        }
        let list: Uuid = sqlx::query_scalar(
            "INSERT INTO contact_lists (vendor_id, name) VALUES ($1, 'L') RETURNING id",
        )
        .bind(a.as_uuid())
        .fetch_one(pg)
        .await
        .unwrap();

        let mut tx = kloyst_db::begin_tenant(pg, a).await.unwrap();
        assert_eq!(
            crate::repo::contacts::vendor_default_country(&mut tx, a)
                .await
                .unwrap()
                .as_deref(),
            Some("IN")
        );
        // Another vendor's row is invisible under RLS.
        assert_eq!(
            crate::repo::contacts::vendor_default_country(&mut tx, b)
                .await
                .unwrap(),
            None
        );
        assert!(list_exists(&mut tx, a, list).await.unwrap());
        assert!(!list_exists(&mut tx, a, Uuid::new_v4()).await.unwrap());
        let mobiles = ["919800000001", "919800000003", "919800000009"];
        // Only A's own contact with a listed number joins; B's and unknown numbers do not.
        assert_eq!(
            add_members_by_mobile(&mut tx, a, list, &mobiles)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            add_members_by_mobile(&mut tx, a, list, &mobiles)
                .await
                .unwrap(),
            0
        );
        tx.commit().await.unwrap();
        let count: i32 = sqlx::query_scalar("SELECT member_count FROM contact_lists WHERE id = $1")
            .bind(list)
            .fetch_one(pg)
            .await
            .unwrap();
        assert_eq!(count, 1);
    }
}
