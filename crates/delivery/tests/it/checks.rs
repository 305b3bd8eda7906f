//! Migration 22 replaced the regular-expression CHECKs of `message_logs` (re-evaluated on
//! every status update) and of `message_status_events.status` by cheaper ones: they must
//! accept and refuse the same values.

use crate::*;

fn refused_by_a_check(result: Result<sqlx::postgres::PgQueryResult, sqlx::Error>) -> bool {
    match result {
        Ok(_) => false,
        Err(error) => {
            let code = error.as_database_error().and_then(|e| e.code());
            assert_eq!(
                code.as_deref(),
                Some("23514"),
                "not a check violation: {error}"
            );
            true
        }
    }
}

#[tokio::test]
async fn the_cheaper_checks_accept_and_refuse_what_the_regular_expressions_did() {
    let world = World::new().await;
    let vendor = world.vendor("0").await;
    let cases: [(&str, &str, bool); 24] = [
        ("country", "IN", true),
        ("country", "in", false),
        ("country", "IND", false),
        ("country", "I1", false),
        ("country", "ÉA", false),
        ("recipient", "919800000001", true),
        ("recipient", "1234567", true),
        ("recipient", "123456789012345", true),
        ("recipient", "0123456789", false),
        ("recipient", "123456", false),
        ("recipient", "1234567890123456", false),
        ("recipient", "12345a7", false),
        ("recipient", "+919800000001", false),
        ("message_type", "template", true),
        ("message_type", "Template", false),
        ("message_type", "", false),
        ("pricing_category", "AUTHENTICATION_INTERNATIONAL", true),
        ("pricing_category", "marketing", false),
        ("pricing_type", "free_customer_service", true),
        ("pricing_type", "Regular", false),
        ("pricing_type", "free-entry", false),
        ("rate_currency", "USD", true),
        ("rate_currency", "usd", false),
        ("rate_currency", "US", false),
    ];
    for (i, (column, value, accepted)) in cases.into_iter().enumerate() {
        let mut row = [
            ("recipient", "919800000001"),
            ("country", "IN"),
            ("message_type", "template"),
            ("pricing_category", "MARKETING"),
            ("pricing_type", "regular"),
            ("rate_currency", "USD"),
        ];
        for field in &mut row {
            if field.0 == column {
                field.1 = value;
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO message_logs (vendor_id, direction, status, wa_message_id, recipient, \
                 country, message_type, pricing_category, pricing_type, rate_currency) \
             VALUES ($1, 'OUTBOUND', 'PENDING', $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(vendor.id)
        .bind(format!("wamid.check{i}"))
        .bind(row[0].1)
        .bind(row[1].1)
        .bind(row[2].1)
        .bind(row[3].1)
        .bind(row[4].1)
        .bind(row[5].1)
        .execute(world.pg())
        .await;
        assert_eq!(
            !refused_by_a_check(inserted),
            accepted,
            "{column} = {value:?}"
        );
    }

    let long = "S".repeat(33);
    for (status, accepted) in [
        ("SENT", true),
        ("PLAYED_2", true),
        ("sent", false),
        ("", false),
        (long.as_str(), false),
    ] {
        let inserted = sqlx::query(
            "INSERT INTO message_status_events (inbox_id, waba_id, wa_message_id, status, \
                 status_at, payload) \
             VALUES (1, 'waba', 'wamid.status-check', $1, now(), '{}')",
        )
        .bind(status)
        .execute(world.pg())
        .await;
        assert_eq!(
            !refused_by_a_check(inserted),
            accepted,
            "status = {status:?}"
        );
    }
}

#[tokio::test]
async fn updated_at_still_moves_on_an_update_that_does_not_set_it() {
    let world = World::new().await;
    let vendor = world.vendor("0").await;
    world
        .message(&vendor, None, "wamid.touched", "MARKETING", Some("IN"))
        .await;
    let before: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "SELECT updated_at FROM message_logs WHERE wa_message_id = 'wamid.touched'",
    )
    .fetch_one(world.pg())
    .await
    .unwrap();
    let after: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "UPDATE message_logs SET flags = '{CATEGORY_DIFFERS}' \
          WHERE wa_message_id = 'wamid.touched' RETURNING updated_at",
    )
    .fetch_one(world.pg())
    .await
    .unwrap();
    assert!(after > before, "the trigger set it: {before} → {after}");
}
