//! The inbox against the real Postgres: group-committed intake and batched processing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kloyst_inbox::{
    ClaimedRow, HandlerFailure, InboxHandler, InboxProcessor, InboxWriter, IntakeOutcome,
    IntakeSettings, NewWebhook, Processed, ProcessorSettings, Source,
};
use kloyst_testkit::TestStores;
use serde_json::json;
use sqlx::PgConnection;

fn webhook(body: &str) -> NewWebhook {
    NewWebhook::deduplicated_by_body(
        Source::Meta,
        json!({"content-type": "application/json"}),
        Bytes::from(body.to_owned()),
        None,
    )
}

#[tokio::test]
async fn concurrent_webhooks_are_stored_once_each_and_duplicates_recognised() {
    let stores = TestStores::new().await;
    let (writer, task) = InboxWriter::start(stores.pg.clone(), IntakeSettings::default(), None);
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..400 {
        let writer = writer.clone();
        // Every body twice: the second of each pair is a duplicate, in the same batch or not.
        calls.spawn(async move { writer.store(webhook(&format!("{{\"n\":{}}}", i / 2))).await });
    }
    let mut stored = 0;
    let mut duplicates = 0;
    while let Some(outcome) = calls.join_next().await {
        match outcome.unwrap().unwrap() {
            IntakeOutcome::Stored => stored += 1,
            IntakeOutcome::Duplicate => duplicates += 1,
        }
    }
    assert_eq!((stored, duplicates), (200, 200));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_inbox")
        .fetch_one(&stores.pg)
        .await
        .unwrap();
    assert_eq!(rows, 200);
    drop(writer);
    task.await.unwrap();
}

/// Writes a row per webhook, then fails those whose body asks for it (after writing, so a
/// failure must roll its write back).
struct Recorder;

impl InboxHandler for Recorder {
    type Deferred = ();

    async fn handle(
        &self,
        conn: &mut PgConnection,
        row: &ClaimedRow,
    ) -> Result<Processed, HandlerFailure> {
        let body = String::from_utf8_lossy(&row.raw_body).into_owned();
        sqlx::query("INSERT INTO handled (inbox_id, body) VALUES ($1, $2)")
            .bind(row.id)
            .bind(&body)
            .execute(&mut *conn)
            .await?;
        if body.contains("permanent") {
            return Err(HandlerFailure::permanent("cannot ever work"));
        }
        if body.contains("retry") {
            return Err(HandlerFailure::retry("not yet"));
        }
        Ok(Processed::done(Some("test".into())))
    }

    async fn finish(&self, _: &mut PgConnection, _: Vec<()>) -> Result<(), HandlerFailure> {
        Ok(())
    }
}

#[tokio::test]
async fn a_failing_row_is_rolled_back_alone_and_the_rest_of_its_batch_commits() {
    let stores = TestStores::new().await;
    sqlx::raw_sql("CREATE TABLE handled (inbox_id bigint PRIMARY KEY, body text NOT NULL)")
        .execute(&stores.pg)
        .await
        .unwrap();
    let (writer, task) = InboxWriter::start(stores.pg.clone(), IntakeSettings::default(), None);
    for body in ["ok 1", "retry 2", "ok 3", "permanent 4", "ok 5"] {
        writer.store(webhook(body)).await.unwrap();
    }
    drop(writer);
    task.await.unwrap();

    let settings = ProcessorSettings {
        concurrency: 1,
        batch: 32,
        max_attempts: 3,
        retry_base: Duration::from_secs(60),
        retry_max: Duration::from_secs(60),
        ..ProcessorSettings::default()
    };
    let processor = InboxProcessor::new(stores.pg.clone(), Recorder, None, settings);
    assert_eq!(processor.run_once().await.unwrap(), 5, "one batch");

    let states: Vec<(String, String, i32, Option<String>)> = sqlx::query_as(
        "SELECT convert_from(raw_body, 'UTF8'), state, attempts, last_error \
           FROM webhook_inbox ORDER BY id",
    )
    .fetch_all(&stores.pg)
    .await
    .unwrap();
    let summary: Vec<(&str, &str, i32)> = states
        .iter()
        .map(|(b, s, a, _)| (b.as_str(), s.as_str(), *a))
        .collect();
    assert_eq!(
        summary,
        [
            ("ok 1", "PROCESSED", 1),
            ("retry 2", "FAILED", 1),
            ("ok 3", "PROCESSED", 1),
            ("permanent 4", "DEAD", 1),
            ("ok 5", "PROCESSED", 1),
        ]
    );
    assert_eq!(states[1].3.as_deref(), Some("not yet"));
    let handled: Vec<String> = sqlx::query_scalar("SELECT body FROM handled ORDER BY inbox_id")
        .fetch_all(&stores.pg)
        .await
        .unwrap();
    assert_eq!(
        handled,
        ["ok 1", "ok 3", "ok 5"],
        "failed rows' writes rolled back"
    );
    // The failed row is not due before its backoff: nothing more to claim now.
    assert_eq!(processor.run_once().await.unwrap(), 0);
}

/// Leaves each row's body for the end of its batch, and writes the batch's bodies there in one
/// statement, failing the whole statement when one of them is poisoned.
struct Deferring {
    finishes: Arc<AtomicUsize>,
}

impl InboxHandler for Deferring {
    type Deferred = String;

    async fn handle(
        &self,
        _: &mut PgConnection,
        row: &ClaimedRow,
    ) -> Result<Processed<String>, HandlerFailure> {
        Ok(Processed {
            event_type: None,
            deferred: Some(String::from_utf8_lossy(&row.raw_body).into_owned()),
        })
    }

    async fn finish(
        &self,
        conn: &mut PgConnection,
        bodies: Vec<String>,
    ) -> Result<(), HandlerFailure> {
        self.finishes.fetch_add(1, Ordering::SeqCst);
        sqlx::query("INSERT INTO handled (body) SELECT unnest($1::text[])")
            .bind(&bodies)
            .execute(&mut *conn)
            .await?;
        if bodies.iter().any(|b| b.contains("poison")) {
            return Err(HandlerFailure::retry("poisoned"));
        }
        Ok(())
    }
}

async fn states_and_handled(pg: &sqlx::PgPool) -> (Vec<(String, String)>, Vec<String>) {
    let states = sqlx::query_as(
        "SELECT convert_from(raw_body, 'UTF8'), state FROM webhook_inbox ORDER BY id",
    )
    .fetch_all(pg)
    .await
    .unwrap();
    let handled = sqlx::query_scalar("SELECT body FROM handled ORDER BY body")
        .fetch_all(pg)
        .await
        .unwrap();
    (states, handled)
}

#[tokio::test]
async fn deferred_work_runs_once_per_batch_and_a_failing_batch_is_retried_row_by_row() {
    let stores = TestStores::new().await;
    sqlx::raw_sql("CREATE TABLE handled (body text NOT NULL)")
        .execute(&stores.pg)
        .await
        .unwrap();
    let (writer, task) = InboxWriter::start(stores.pg.clone(), IntakeSettings::default(), None);
    let finishes = Arc::new(AtomicUsize::new(0));
    let settings = ProcessorSettings {
        concurrency: 1,
        batch: 32,
        retry_base: Duration::from_secs(60),
        retry_max: Duration::from_secs(60),
        ..ProcessorSettings::default()
    };
    let processor = InboxProcessor::new(
        stores.pg.clone(),
        Deferring {
            finishes: finishes.clone(),
        },
        None,
        settings,
    );

    for body in ["a 1", "a 2", "a 3"] {
        writer.store(webhook(body)).await.unwrap();
    }
    assert_eq!(processor.run_once().await.unwrap(), 3);
    assert_eq!(
        finishes.load(Ordering::SeqCst),
        1,
        "one finish for the batch"
    );
    let (states, handled) = states_and_handled(&stores.pg).await;
    assert!(
        states.iter().all(|(_, state)| state == "PROCESSED"),
        "{states:?}"
    );
    assert_eq!(handled, ["a 1", "a 2", "a 3"]);

    // A batch whose deferred work fails is rolled back whole, then applied row by row: only
    // the poisoned row fails, and nothing of the failed attempt is left behind.
    for body in ["b 1", "b poison 2", "b 3"] {
        writer.store(webhook(body)).await.unwrap();
    }
    assert_eq!(processor.run_once().await.unwrap(), 3);
    assert_eq!(
        finishes.load(Ordering::SeqCst),
        1 + 1 + 3,
        "the batch, then each row"
    );
    let (states, handled) = states_and_handled(&stores.pg).await;
    assert_eq!(
        states[3..],
        [
            ("b 1".to_owned(), "PROCESSED".to_owned()),
            ("b poison 2".to_owned(), "FAILED".to_owned()),
            ("b 3".to_owned(), "PROCESSED".to_owned()),
        ]
    );
    assert_eq!(handled, ["a 1", "a 2", "a 3", "b 1", "b 3"]);
    drop(writer);
    task.await.unwrap();
}
