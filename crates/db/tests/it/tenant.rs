use kloyst_core::{UserId, VendorId};
use kloyst_db::{begin_as_user, begin_tenant, is_session_revoked};
use kloyst_testkit::TestStores;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

pub(crate) async fn vendor_with_contacts(pg: &PgPool, name: &str, mobiles: &[&str]) -> VendorId {
    let id: Uuid = sqlx::query_scalar("INSERT INTO vendors (name) VALUES ($1) RETURNING id")
        .bind(name)
        .fetch_one(pg)
        .await
        .unwrap();
    for mobile in mobiles {
        sqlx::query("INSERT INTO contacts (vendor_id, mobile) VALUES ($1, $2)")
            .bind(id)
            .bind(mobile)
            .execute(pg)
            .await
            .unwrap();
    }
    VendorId::from_uuid(id)
}

/// The second wall: a query that forgot its `vendor_id` filter, run in a tenant
/// transaction, still sees only that tenant's rows.
#[tokio::test]
async fn an_unfiltered_query_in_a_tenant_transaction_sees_only_that_tenant() {
    let stores = TestStores::new().await;
    let a = vendor_with_contacts(&stores.pg, "A", &["919876543210", "919876543211"]).await;
    let b = vendor_with_contacts(&stores.pg, "B", &["14155550100"]).await;

    let mut tx = begin_tenant(&stores.pg, a).await.unwrap();
    let vendors: Vec<Uuid> = sqlx::query_scalar("SELECT vendor_id FROM contacts")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(vendors, vec![a.as_uuid(), a.as_uuid()]);
    let visible_vendors: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM vendors")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(visible_vendors, vec![a.as_uuid()]);
    // Changing another tenant's rows touches nothing.
    let updated = sqlx::query("UPDATE contacts SET opted_out = true WHERE vendor_id = $1")
        .bind(b.as_uuid())
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(updated, 0);
    tx.commit().await.unwrap();

    let b_opted_out: bool =
        sqlx::query_scalar("SELECT opted_out FROM contacts WHERE vendor_id = $1")
            .bind(b.as_uuid())
            .fetch_one(&stores.pg)
            .await
            .unwrap();
    assert!(!b_opted_out);
}

#[tokio::test]
async fn a_tenant_transaction_cannot_write_rows_for_another_tenant() {
    let stores = TestStores::new().await;
    let a = vendor_with_contacts(&stores.pg, "A", &[]).await;
    let b = vendor_with_contacts(&stores.pg, "B", &[]).await;
    let mut tx = begin_tenant(&stores.pg, a).await.unwrap();
    let refused =
        sqlx::query("INSERT INTO contacts (vendor_id, mobile) VALUES ($1, '447700900123')")
            .bind(b.as_uuid())
            .execute(&mut *tx)
            .await;
    let error = refused.unwrap_err();
    assert!(error.to_string().contains("row-level security"), "{error}");
}

/// `SET LOCAL` ends with the transaction: the pooled connection goes back clean.
#[tokio::test]
async fn the_tenant_setting_does_not_outlive_its_transaction() {
    let stores = TestStores::new().await;
    let a = vendor_with_contacts(&stores.pg, "A", &["919876543210"]).await;
    vendor_with_contacts(&stores.pg, "B", &["14155550100"]).await;
    let one_connection = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&stores.database_url)
        .await
        .unwrap();
    let tx = begin_tenant(&one_connection, a).await.unwrap();
    tx.commit().await.unwrap();
    let (role, setting, contacts): (String, Option<String>, i64) = sqlx::query_as(
        "SELECT current_user::text, NULLIF(current_setting('app.vendor_id', true), ''),
                (SELECT count(*) FROM contacts)",
    )
    .fetch_one(&one_connection)
    .await
    .unwrap();
    assert_eq!(role, "postgres");
    assert_eq!(setting, None);
    assert_eq!(contacts, 2, "system work sees every tenant");
}

/// With no vendor set, the tenant role sees nothing at all (fails closed).
#[tokio::test]
async fn the_tenant_role_without_a_vendor_sees_nothing() {
    let stores = TestStores::new().await;
    vendor_with_contacts(&stores.pg, "A", &["919876543210"]).await;
    let mut tx = stores.pg.begin().await.unwrap();
    sqlx::raw_sql("SET LOCAL ROLE kloyst_tenant")
        .execute(&mut *tx)
        .await
        .unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let stores = TestStores::new().await;
    kloyst_db::migrate(&stores.pg).await.unwrap();
}

/// Disables `user` (another ADMIN first: a vendor keeps one active ADMIN).
pub(crate) async fn disable(pg: &PgPool, vendor: VendorId, user: UserId) {
    active_user(pg, vendor, "ADMIN").await;
    sqlx::query("UPDATE users SET status = 'DISABLED', disabled_at = now() WHERE id = $1")
        .bind(user.as_uuid())
        .execute(pg)
        .await
        .unwrap();
}

pub(crate) async fn active_user(pg: &PgPool, vendor: VendorId, role: &str) -> UserId {
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO users (vendor_id, email, password_hash, name, role, status) \
         VALUES ($1, $2, 'x', 'Someone', $3, 'ACTIVE') RETURNING id",
    )
    .bind(vendor.as_uuid())
    .bind(format!("{}@example.test", Uuid::new_v4()))
    .bind(role)
    .fetch_one(pg)
    .await
    .unwrap();
    UserId::from_uuid(id)
}

/// A user's request opens its tenant transaction and checks, in the same message, that the
/// token's claims still hold; a refusal leaves the (only) pooled connection usable.
#[tokio::test]
async fn a_session_is_checked_as_its_transaction_begins() {
    let stores = TestStores::new().await;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&stores.database_url)
        .await
        .unwrap();
    let a = vendor_with_contacts(&pool, "A", &["919876543210"]).await;
    let b = vendor_with_contacts(&pool, "B", &["14155550100"]).await;
    let admin = active_user(&pool, a, "ADMIN").await;

    let mut tx = begin_as_user(&pool, a, admin, "ADMIN").await.unwrap();
    let visible: Vec<Uuid> = sqlx::query_scalar("SELECT vendor_id FROM contacts")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(visible, vec![a.as_uuid()]);
    tx.commit().await.unwrap();

    let refusals = [
        (a, "STAFF"), // role changed since the token was issued
        (b, "ADMIN"), // not a user of that vendor
    ];
    for (vendor, role) in refusals {
        let error = begin_as_user(&pool, vendor, admin, role).await.unwrap_err();
        assert!(is_session_revoked(&error), "{vendor:?} {role}: {error}");
        // The one connection is idle again, not stuck in an aborted transaction.
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(one, 1);
    }

    disable(&pool, a, admin).await;
    let error = begin_as_user(&pool, a, admin, "ADMIN").await.unwrap_err();
    assert!(is_session_revoked(&error), "{error}");
    // A role name that is not ours never reaches the SQL text.
    let error = begin_as_user(&pool, a, admin, "ADMIN'; --")
        .await
        .unwrap_err();
    assert!(!is_session_revoked(&error));
}
