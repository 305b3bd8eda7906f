//! `app_vendor_profile` (migration 23), the one-round-trip read behind `GET /v1/vendor/me`:
//! the session check, the tenant settings and the read in one call, with the same walls as a
//! tenant transaction and nothing left on the pooled connection.

use kloyst_core::{UserId, VendorId};
use kloyst_db::is_session_revoked;
use kloyst_testkit::TestStores;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

use crate::tenant::{active_user, disable, vendor_with_contacts};

async fn one_connection(stores: &TestStores) -> PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .connect(&stores.database_url)
        .await
        .unwrap()
}

/// What a pooled connection carries once a read is done: it must be the application role,
/// no vendor, read-write, and every tenant visible again.
async fn connection_state(pool: &PgPool) -> (String, Option<String>, String, i64) {
    sqlx::query_as(
        "SELECT current_user::text, NULLIF(current_setting('app.vendor_id', true), ''),
                current_setting('transaction_read_only'), (SELECT count(*) FROM contacts)",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn profile(
    pool: &PgPool,
    vendor: VendorId,
    user: UserId,
    role: &str,
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, name FROM app_vendor_profile($1, $2, $3)")
        .bind(vendor.as_uuid())
        .bind(user.as_uuid())
        .bind(role)
        .fetch_all(pool)
        .await
}

/// The call's settings last as long as its implicit transaction: the one connection of the
/// pool is back to the application role, no vendor and read-write.
#[tokio::test]
async fn the_profile_read_returns_its_vendor_and_leaves_nothing_on_its_connection() {
    let stores = TestStores::new().await;
    let pool = one_connection(&stores).await;
    let a = vendor_with_contacts(&pool, "A", &["919876543210"]).await;
    vendor_with_contacts(&pool, "B", &["14155550100"]).await;
    let user = active_user(&pool, a, "STAFF").await;

    let rows = profile(&pool, a, user, "STAFF").await.unwrap();
    assert_eq!(rows, vec![(a.as_uuid(), "A".to_owned())]);
    assert_eq!(
        connection_state(&pool).await,
        ("postgres".into(), None, "off".into(), 2)
    );
}

/// A session that no longer holds is refused before the read, and the (only) pooled
/// connection is idle and clean again, not stuck in an aborted transaction.
#[tokio::test]
async fn a_revoked_session_is_refused_by_the_profile_read() {
    let stores = TestStores::new().await;
    let pool = one_connection(&stores).await;
    let a = vendor_with_contacts(&pool, "A", &["919876543210"]).await;
    let b = vendor_with_contacts(&pool, "B", &["14155550100"]).await;
    let admin = active_user(&pool, a, "ADMIN").await;

    let refusals = [
        (a, admin, "STAFF"), // role changed since the token was issued
        (b, admin, "ADMIN"), // not a user of that vendor: B's profile stays unread
        (a, UserId::from_uuid(Uuid::new_v4()), "ADMIN"), // no such user
    ];
    for (vendor, user, role) in refusals {
        let error = profile(&pool, vendor, user, role).await.unwrap_err();
        assert!(is_session_revoked(&error), "{vendor:?} {role}: {error}");
        assert_eq!(
            connection_state(&pool).await,
            ("postgres".into(), None, "off".into(), 2)
        );
    }

    disable(&pool, a, admin).await;
    let error = profile(&pool, a, admin, "ADMIN").await.unwrap_err();
    assert!(is_session_revoked(&error), "{error}");
}
