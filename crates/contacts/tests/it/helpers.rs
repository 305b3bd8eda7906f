//! Vendors, users and contacts for the tests. Vendors and users are inserted directly (the
//! identity flows are tested in kloyst-identity); everything under test goes through the
//! `Contacts` service, in its tenant transactions, with row-level security on.

use kloyst_contacts::model::{ContactFilter, ContactView};
use kloyst_contacts::{Contacts, ContactsSettings};
use kloyst_core::{UserId, VendorId};
use kloyst_identity::{Principal, RequestMeta, Role};
use kloyst_testkit::TestStores;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

/// Fresh stores and a contacts service on them.
pub async fn setup() -> (TestStores, Contacts) {
    let stores = TestStores::new().await;
    let settings = ContactsSettings::from_env(&stores.env()).expect("contacts settings");
    let contacts = Contacts::new(stores.pg.clone(), settings);
    (stores, contacts)
}

/// A new vendor with an active ADMIN; the ADMIN's principal.
pub async fn new_vendor(pg: &PgPool) -> Principal {
    let vendor: Uuid =
        sqlx::query_scalar("INSERT INTO vendors (name) VALUES ('Acme') RETURNING id")
            .fetch_one(pg)
            .await
            .expect("insert a vendor");
    new_user(pg, VendorId::from_uuid(vendor), Role::Admin).await
}

/// Another active user of `vendor` with `role`.
pub async fn new_user(pg: &PgPool, vendor: VendorId, role: Role) -> Principal {
    let user: Uuid = sqlx::query_scalar(
        "INSERT INTO users (vendor_id, email, password_hash, name, role, status, email_verified_at)
         VALUES ($1, $2, 'not-a-real-hash', 'Asha Rao', $3, 'ACTIVE', now()) RETURNING id",
    )
    .bind(vendor.as_uuid())
    .bind(format!("user-{}@example.com", Uuid::new_v4().simple()))
    .bind(role.as_str())
    .fetch_one(pg)
    .await
    .expect("insert a user");
    Principal {
        user_id: UserId::from_uuid(user),
        vendor_id: vendor,
        role,
    }
}

/// A request with its own request id.
pub fn meta() -> RequestMeta {
    RequestMeta {
        request_id: Some(format!("req-{}", Uuid::new_v4().simple())),
        ip: None,
        user_agent: Some("kloyst-contacts-tests".to_owned()),
    }
}

/// Inserts a contact directly (as imports will), with a name if given.
pub async fn insert_contact(
    pg: &PgPool,
    vendor: VendorId,
    mobile: &str,
    name: Option<&str>,
) -> Uuid {
    let attributes = match name {
        Some(name) => json!({ "name": name }),
        None => json!({}),
    };
    sqlx::query_scalar(
        "INSERT INTO contacts (vendor_id, mobile, country, attributes) VALUES ($1, $2, 'IN', $3)
         RETURNING id",
    )
    .bind(vendor.as_uuid())
    .bind(mobile)
    .bind(attributes)
    .fetch_one(pg)
    .await
    .expect("insert a contact")
}

/// `n` contacts with numbers `91900000{offset + i:04}` and names `Contact {offset + i:04}`.
pub async fn insert_contacts(pg: &PgPool, vendor: VendorId, offset: u32, n: u32) -> Vec<Uuid> {
    sqlx::query_scalar(
        "INSERT INTO contacts (vendor_id, mobile, country, attributes)
         SELECT $1, '91900000' || lpad(i::text, 4, '0'), 'IN',
                jsonb_build_object('name', 'Contact ' || lpad(i::text, 4, '0'))
           FROM generate_series($2::int, $2::int + $3::int - 1) i
         RETURNING id",
    )
    .bind(vendor.as_uuid())
    .bind(i32::try_from(offset).unwrap())
    .bind(i32::try_from(n).unwrap())
    .fetch_all(pg)
    .await
    .expect("insert contacts")
}

/// Every contact of a search, walking its pages of `limit`.
pub async fn walk(
    contacts: &Contacts,
    who: &Principal,
    filter: ContactFilter,
    limit: u32,
) -> Vec<ContactView> {
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = contacts
            .list_contacts(
                who,
                ContactFilter {
                    limit: Some(limit),
                    cursor: cursor.take(),
                    ..filter.clone()
                },
            )
            .await
            .expect("a page");
        assert!(page.data.len() <= limit as usize);
        seen.extend(page.data);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return seen,
        }
    }
}

/// The `contact_changes` rows of a contact, oldest first, as JSON.
pub async fn changes_of(pg: &PgPool, contact: Uuid) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT to_jsonb(c) FROM contact_changes c WHERE contact_id = $1 ORDER BY id",
    )
    .bind(contact)
    .fetch_all(pg)
    .await
    .expect("read contact_changes")
}

/// The audit-log rows of an action, oldest first, as JSON.
pub async fn audit_rows(pg: &PgPool, action: &str) -> Vec<Value> {
    sqlx::query_scalar("SELECT to_jsonb(a) FROM audit_log a WHERE action = $1 ORDER BY id")
        .bind(action)
        .fetch_all(pg)
        .await
        .expect("read the audit log")
}
