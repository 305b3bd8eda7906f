//! One-message tenant reads (`read_as_user`): the session check, RLS and the read in one
//! round trip, with the same walls as a tenant transaction.

use chrono::{DateTime, TimeZone, Utc};
use kloyst_core::UserId;
use kloyst_db::{is_session_revoked, read_as_user, ReadSql};
use kloyst_testkit::TestStores;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

use crate::tenant::{active_user, vendor_with_contacts};

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

/// The second wall: a read that forgot its `vendor_id` filter still sees only its tenant.
#[tokio::test]
async fn an_unfiltered_one_message_read_sees_only_its_tenant() {
    let stores = TestStores::new().await;
    let a = vendor_with_contacts(&stores.pg, "A", &["919876543210", "919876543211"]).await;
    let b = vendor_with_contacts(&stores.pg, "B", &["14155550100"]).await;
    let user = active_user(&stores.pg, a, "ADMIN").await;

    let contacts: Vec<(Uuid,)> = read_as_user(
        &stores.pg,
        a,
        user,
        "ADMIN",
        &ReadSql::new("SELECT vendor_id FROM contacts"),
    )
    .await
    .unwrap();
    assert_eq!(contacts, vec![(a.as_uuid(),), (a.as_uuid(),)]);
    let vendors: Vec<(Uuid,)> = read_as_user(
        &stores.pg,
        a,
        user,
        "ADMIN",
        &ReadSql::new("SELECT id FROM vendors"),
    )
    .await
    .unwrap();
    assert_eq!(vendors, vec![(a.as_uuid(),)]);
    // Even naming the other tenant's row finds nothing.
    let other: Vec<(Uuid,)> = read_as_user(
        &stores.pg,
        a,
        user,
        "ADMIN",
        &ReadSql::new("SELECT id FROM vendors WHERE id = ").push_id(b.as_uuid()),
    )
    .await
    .unwrap();
    assert_eq!(other, vec![]);
}

/// `set_config(…, true)` lasts as long as the message's implicit transaction: the one
/// connection of the pool is back to the application role, no vendor and read-write.
#[tokio::test]
async fn a_one_message_read_leaves_nothing_on_its_pooled_connection() {
    let stores = TestStores::new().await;
    let pool = one_connection(&stores).await;
    let a = vendor_with_contacts(&pool, "A", &["919876543210"]).await;
    vendor_with_contacts(&pool, "B", &["14155550100"]).await;
    let user = active_user(&pool, a, "STAFF").await;

    let seen: Vec<(String, String, String)> = read_as_user(
        &pool,
        a,
        user,
        "STAFF",
        &ReadSql::new(
            "SELECT current_user::text, current_setting('app.vendor_id'), \
             current_setting('transaction_read_only')",
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        seen,
        vec![("kloyst_tenant".into(), a.to_string(), "on".into())],
        "the read runs as the tenant, read-only"
    );
    assert_eq!(
        connection_state(&pool).await,
        ("postgres".into(), None, "off".into(), 2)
    );
}

/// A session that no longer holds is refused before anything else runs, and the (only)
/// pooled connection is idle and clean again, not stuck in an aborted transaction.
#[tokio::test]
async fn a_revoked_session_is_refused_by_the_one_message_read() {
    let stores = TestStores::new().await;
    let pool = one_connection(&stores).await;
    let a = vendor_with_contacts(&pool, "A", &["919876543210"]).await;
    let b = vendor_with_contacts(&pool, "B", &["14155550100"]).await;
    let admin = active_user(&pool, a, "ADMIN").await;
    let read = ReadSql::new("SELECT id FROM vendors");

    let refusals = [
        (a, admin, "STAFF"), // role changed since the token was issued
        (b, admin, "ADMIN"), // not a user of that vendor
        (a, UserId::from_uuid(Uuid::new_v4()), "ADMIN"), // no such user
    ];
    for (vendor, user, role) in refusals {
        let error = read_as_user::<(Uuid,)>(&pool, vendor, user, role, &read)
            .await
            .unwrap_err();
        assert!(is_session_revoked(&error), "{vendor:?} {role}: {error}");
        assert_eq!(
            connection_state(&pool).await,
            ("postgres".into(), None, "off".into(), 2)
        );
    }

    active_user(&pool, a, "ADMIN").await; // a vendor keeps one active ADMIN
    sqlx::query("UPDATE users SET status = 'DISABLED', disabled_at = now() WHERE id = $1")
        .bind(admin.as_uuid())
        .execute(&pool)
        .await
        .unwrap();
    let error = read_as_user::<(Uuid,)>(&pool, a, admin, "ADMIN", &read)
        .await
        .unwrap_err();
    assert!(is_session_revoked(&error), "{error}");
    // A role name that is not ours never reaches the SQL text.
    let error = read_as_user::<(Uuid,)>(&pool, a, admin, "ADMIN'; --", &read)
        .await
        .unwrap_err();
    assert!(!is_session_revoked(&error));
}

/// The implicit transaction commits when the message ends, so a "read" that writes would
/// stick: it is read-only, and a second statement is refused before it is sent.
#[tokio::test]
async fn a_one_message_read_cannot_write() {
    let stores = TestStores::new().await;
    let pool = one_connection(&stores).await;
    let a = vendor_with_contacts(&pool, "A", &["919876543210"]).await;
    let user = active_user(&pool, a, "ADMIN").await;

    let error = read_as_user::<(Uuid,)>(
        &pool,
        a,
        user,
        "ADMIN",
        &ReadSql::new("UPDATE contacts SET opted_out = true RETURNING id"),
    )
    .await
    .unwrap_err();
    let code = error.as_database_error().and_then(|db| db.code());
    assert_eq!(code.as_deref(), Some("25006"), "{error}"); // read_only_sql_transaction

    let error = read_as_user::<(Uuid,)>(
        &pool,
        a,
        user,
        "ADMIN",
        &ReadSql::new("SELECT id FROM contacts; UPDATE contacts SET opted_out = true"),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, sqlx::Error::Protocol(_)), "{error}");

    let opted_out: bool = sqlx::query_scalar("SELECT bool_or(opted_out) FROM contacts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!opted_out);
    assert_eq!(
        connection_state(&pool).await,
        ("postgres".into(), None, "off".into(), 1)
    );
}

/// The row types the reads use, as one row.
#[derive(Debug, PartialEq, sqlx::FromRow)]
struct Sample {
    id: Uuid,
    name: String,
    quoted: String,
    present: Option<String>,
    absent: Option<String>,
    micros: DateTime<Utc>,
    whole_second: DateTime<Utc>,
    half_second: DateTime<Utc>,
    now: DateTime<Utc>,
    document: serde_json::Value,
    no_document: Option<serde_json::Value>,
    count: i64,
    small: i32,
    flag: bool,
}

/// The one-message read gets its rows in the text format, every other query in binary:
/// both must decode to the same values.
#[tokio::test]
async fn text_rows_of_a_one_message_read_decode_as_binary_rows_do() {
    let stores = TestStores::new().await;
    let a = vendor_with_contacts(&stores.pg, "A", &[]).await;
    let user = active_user(&stores.pg, a, "ADMIN").await;
    // One fixed instant, so both protocols read the same `now`.
    sqlx::query("CREATE TABLE samples (at timestamptz NOT NULL)")
        .execute(&stores.pg)
        .await
        .unwrap();
    sqlx::query("INSERT INTO samples VALUES (clock_timestamp())")
        .execute(&stores.pg)
        .await
        .unwrap();
    sqlx::query("GRANT SELECT ON samples TO kloyst_tenant")
        .execute(&stores.pg)
        .await
        .unwrap();
    let select = "SELECT 'b1a2c3d4-0000-4000-8000-00000000abcd'::uuid AS id, \
         'Acme Traders'::text AS name, \
         'O''Brien, — ü ''quoted'' \\ end'::text AS quoted, \
         'x'::text AS present, NULL::text AS absent, \
         '2026-03-01 12:34:56.789012+05:30'::timestamptz AS micros, \
         '1999-12-31 23:59:59+00'::timestamptz AS whole_second, \
         '2026-01-01 00:00:00.5-08:00'::timestamptz AS half_second, \
         (SELECT at FROM samples) AS now, \
         '{\"line1\": \"12 MG Road\", \"pin\": 560001, \"nested\": {\"ok\": true}}'::jsonb AS document, \
         NULL::jsonb AS no_document, \
         9007199254740993::bigint AS count, -7::int AS small, true AS flag";
    let binary: Sample = sqlx::query_as(select).fetch_one(&stores.pg).await.unwrap();
    let text: Vec<Sample> = read_as_user(&stores.pg, a, user, "ADMIN", &ReadSql::new(select))
        .await
        .unwrap();
    assert_eq!(text, vec![binary]);
    let row = &text[0];
    assert_eq!(
        row.micros,
        Utc.with_ymd_and_hms(2026, 3, 1, 7, 4, 56).unwrap()
            + chrono::TimeDelta::microseconds(789_012)
    );
    assert_eq!(
        row.whole_second,
        Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap()
    );
}
