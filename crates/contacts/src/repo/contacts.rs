//! Contacts rows: search (keyset pages), get, update, delete, and the vendor's default
//! country. Every function filters by `vendor` (RLS is the second wall).
//!
//! A page is always an index range read with `LIMIT`, never a sort of the tenant's rows:
//! the filters choose the key the rows are walked in (see [`Search::order`]), and the cursor
//! is a position in that key, which is unique, so a walk returns every row that existed
//! before it exactly once however many rows are inserted meanwhile.
//!
//! Prefix filters are written as explicit ranges (`col >= p AND col < p || U+10FFFF`) next
//! to `starts_with(col, p)`: `starts_with` only becomes an index range when the planner sees
//! the prefix as a constant, which a cached generic plan of a prepared statement does not;
//! the range is an index condition in every plan. Both operators are leakproof, so they stay
//! index conditions under row-level security.

use kloyst_core::VendorId;
use serde_json::{Map, Value};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::model::ContactView;

/// The columns of [`ContactView`], from `contacts c`.
macro_rules! contact_columns {
    () => {
        "c.id, c.mobile, c.country, c.name, c.attributes, c.opted_out, c.opted_out_at, \
         c.opt_out_reason, c.opt_out_source, c.created_at, c.updated_at"
    };
}

/// A contact and its name search key (the position of a name-ordered page).
#[derive(sqlx::FromRow)]
pub(crate) struct ContactRow {
    #[sqlx(flatten)]
    pub view: ContactView,
    pub name_search: Option<String>,
}

/// The filters of a directory search, validated and normalised.
#[derive(Clone, Debug, Default)]
pub(crate) struct Search {
    pub list_id: Option<Uuid>,
    /// Not lower-cased: the database lower-cases it as it did the names.
    pub name_prefix: Option<String>,
    /// Digits only.
    pub mobile_prefix: Option<String>,
    pub opted_out: Option<bool>,
}

/// The key a search walks the rows in, and the index that serves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    /// `contacts_vendor_id_id_key (vendor_id, id)`.
    Id,
    /// The list's members: `contact_list_members_pkey (list_id, contact_id)`, then each
    /// contact by `(vendor_id, id)`. Same position type as [`Order::Id`].
    Member,
    /// `contacts_vendor_name_search_idx (vendor_id, name_search, id)`.
    Name,
    /// `contacts_vendor_id_mobile_key (vendor_id, mobile)` (collation C).
    Mobile,
}

/// Where a page starts: after the row at this position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Position {
    /// After this contact id ([`Order::Id`] and [`Order::Member`]).
    Id(Uuid),
    /// After this `(name_search, id)`.
    Name(String, Uuid),
    /// After this number.
    Mobile(String),
}

impl Search {
    /// Whether this search must be planned for its values (an unnamed statement) rather
    /// than run from the connection's prepared statement, whose generic plan is only good
    /// for the single-range searches (no filter, or just one of name, number, opt-out):
    /// a list filter, or two filters or more.
    pub(crate) fn custom_plan(&self) -> bool {
        let filters = usize::from(self.list_id.is_some())
            + usize::from(self.name_prefix.is_some())
            + usize::from(self.mobile_prefix.is_some())
            + usize::from(self.opted_out.is_some());
        self.list_id.is_some() || filters >= 2
    }

    /// The name range drives when given (a typed prefix narrows most), then the number
    /// range, then the list; the other filters are checked on the rows walked.
    pub(crate) fn order(&self) -> Order {
        if self.name_prefix.is_some() {
            Order::Name
        } else if self.mobile_prefix.is_some() {
            Order::Mobile
        } else if self.list_id.is_some() {
            Order::Member
        } else {
            Order::Id
        }
    }
}

impl ContactRow {
    /// This row's position in `order`.
    pub(crate) fn position(&self, order: Order) -> Position {
        match order {
            Order::Id | Order::Member => Position::Id(self.view.id),
            Order::Name => {
                Position::Name(self.name_search.clone().unwrap_or_default(), self.view.id)
            }
            Order::Mobile => Position::Mobile(self.view.mobile.clone()),
        }
    }
}

/// Whether `position` is a position in `order` (a cursor of another filter set is not).
pub(crate) fn position_fits(position: &Position, order: Order) -> bool {
    matches!(
        (position, order),
        (Position::Id(_), Order::Id | Order::Member)
            | (Position::Name(..), Order::Name)
            | (Position::Mobile(_), Order::Mobile)
    )
}

/// One page of the vendor's contacts matching `search`, in `search.order()`, after
/// `after`; `limit` rows at most. `after` must fit the order ([`position_fits`]).
pub(crate) async fn search(
    conn: &mut PgConnection,
    vendor: VendorId,
    search: &Search,
    after: Option<&Position>,
    limit: u32,
) -> Result<Vec<ContactRow>, sqlx::Error> {
    let order = search.order();
    let mut q =
        QueryBuilder::<Postgres>::new(concat!("SELECT ", contact_columns!(), ", c.name_search"));
    match (order, search.list_id) {
        (Order::Member, Some(list)) => {
            q.push(
                " FROM contact_list_members m \
                 JOIN contacts c ON c.vendor_id = m.vendor_id AND c.id = m.contact_id \
                 WHERE m.vendor_id = ",
            )
            .push_bind(vendor.as_uuid())
            .push(" AND m.list_id = ")
            .push_bind(list);
        }
        (_, list) => {
            q.push(" FROM contacts c WHERE c.vendor_id = ")
                .push_bind(vendor.as_uuid());
            if let Some(list) = list {
                q.push(
                    " AND EXISTS (SELECT 1 FROM contact_list_members m \
                     WHERE m.list_id = ",
                )
                .push_bind(list)
                .push(" AND m.contact_id = c.id AND m.vendor_id = c.vendor_id)");
            }
        }
    }
    if let Some(prefix) = &search.name_prefix {
        q.push(" AND c.name_search >= lower(")
            .push_bind(prefix.clone())
            .push(") AND c.name_search < (lower(")
            .push_bind(prefix.clone())
            .push(") || chr(1114111)) AND starts_with(c.name_search, lower(")
            .push_bind(prefix.clone())
            .push("))");
    }
    if let Some(prefix) = &search.mobile_prefix {
        // Numbers are digits only, and ':' sorts right after '9': [p, p || ':') is exactly
        // the numbers starting with p.
        q.push(" AND c.mobile >= ")
            .push_bind(prefix.clone())
            .push(" AND c.mobile < ")
            .push_bind(format!("{prefix}:"))
            .push(" AND starts_with(c.mobile, ")
            .push_bind(prefix.clone())
            .push(")");
    }
    // Literals rather than a parameter, so that a partial index on opted-out contacts
    // would be used if one is added.
    match search.opted_out {
        Some(true) => {
            q.push(" AND c.opted_out");
        }
        Some(false) => {
            q.push(" AND NOT c.opted_out");
        }
        None => {}
    }
    match (order, after) {
        (_, None) => {}
        (Order::Member, Some(Position::Id(id))) => {
            q.push(" AND m.contact_id > ").push_bind(*id);
        }
        (Order::Id, Some(Position::Id(id))) => {
            q.push(" AND c.id > ").push_bind(*id);
        }
        (Order::Name, Some(Position::Name(name, id))) => {
            q.push(" AND (c.name_search, c.id) > (")
                .push_bind(name.clone())
                .push(", ")
                .push_bind(*id)
                .push(")");
        }
        (Order::Mobile, Some(Position::Mobile(mobile))) => {
            q.push(" AND c.mobile > ").push_bind(mobile.clone());
        }
        (_, Some(_)) => {
            return Err(sqlx::Error::Protocol(
                "a page position of another order".to_owned(),
            ))
        }
    }
    q.push(match order {
        Order::Id => " ORDER BY c.id",
        Order::Member => " ORDER BY m.contact_id",
        Order::Name => " ORDER BY c.name_search, c.id",
        Order::Mobile => " ORDER BY c.mobile",
    });
    q.push(" LIMIT ").push_bind(i64::from(limit));
    // A cached generic plan cannot tell a 100-member list from a 200,000-member one, nor how
    // selective two filters are together, and picked plans 100× slower than the custom plan
    // for those searches (see `Search::custom_plan`); they are planned for their values.
    q.build_query_as()
        .persistent(!search.custom_plan())
        .fetch_all(conn)
        .await
}

/// One contact of the vendor; `for_update` locks it for the rest of the transaction.
pub(crate) async fn get(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
    for_update: bool,
) -> Result<Option<ContactView>, sqlx::Error> {
    let sql = if for_update {
        concat!(
            "SELECT ",
            contact_columns!(),
            " FROM contacts c WHERE c.vendor_id = $1 AND c.id = $2 FOR UPDATE"
        )
    } else {
        concat!(
            "SELECT ",
            contact_columns!(),
            " FROM contacts c WHERE c.vendor_id = $1 AND c.id = $2"
        )
    };
    sqlx::query_as(sql)
        .bind(vendor.as_uuid())
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The new state of a contact's own data.
pub(crate) struct ContactUpdate<'a> {
    pub mobile: &'a str,
    pub country: Option<&'a str>,
    pub attributes: &'a Map<String, Value>,
    pub opted_out: bool,
    pub opt_out_reason: Option<&'a str>,
}

/// Writes `change`. Opting out stamps `opted_out_at = now()` and source `API`; staying
/// opted out keeps the original time and source; opting in clears them.
pub(crate) async fn update(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
    change: &ContactUpdate<'_>,
) -> Result<Option<ContactView>, sqlx::Error> {
    sqlx::query_as(concat!(
        "UPDATE contacts c
            SET mobile = $3, country = $4, attributes = $5, opted_out = $6, opt_out_reason = $7,
                opted_out_at = CASE WHEN NOT $6 THEN NULL WHEN c.opted_out THEN c.opted_out_at
                                    ELSE now() END,
                opt_out_source = CASE WHEN NOT $6 THEN NULL WHEN c.opted_out THEN c.opt_out_source
                                      ELSE 'API' END,
                opt_out_wa_message_id = CASE WHEN $6 AND c.opted_out THEN c.opt_out_wa_message_id END
          WHERE c.vendor_id = $1 AND c.id = $2
         RETURNING ",
        contact_columns!()
    ))
    .bind(vendor.as_uuid())
    .bind(id)
    .bind(change.mobile)
    .bind(change.country)
    .bind(sqlx::types::Json(change.attributes))
    .bind(change.opted_out)
    .bind(change.opt_out_reason)
    .fetch_optional(conn)
    .await
}

/// Deletes one contact (its memberships go with it); whether it was there.
pub(crate) async fn delete(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM contacts WHERE vendor_id = $1 AND id = $2")
        .bind(vendor.as_uuid())
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The vendor's `default_country` (ISO alpha-2), used to read national numbers; `None` if
/// the vendor is not visible (another tenant's transaction).
pub(crate) async fn vendor_default_country(
    conn: &mut PgConnection,
    vendor: VendorId,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT default_country FROM vendors WHERE id = $1")
        .bind(vendor.as_uuid())
        .fetch_optional(conn)
        .await
}

/// The unique constraint a number taken by another contact violates.
pub(crate) const MOBILE_KEY: &str = "contacts_vendor_id_mobile_key";
