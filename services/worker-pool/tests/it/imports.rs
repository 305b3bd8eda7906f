//! Contact imports run by the worker-pool binary: picked up without its wake-up (the poll),
//! and resumed after a SIGKILL mid-import with every row imported exactly once.

use std::time::Duration;

use bytes::Bytes;
use futures::stream;
use kloyst_audit::RequestMeta;
use kloyst_contacts::model::ImportOptions;
use kloyst_contacts::{Contacts, ContactsSettings};
use kloyst_testkit::{eventually, free_port, signal, spawn_binary, wait_until_ready, TestStores};
use uuid::Uuid;

use crate::support::admin_of_new_vendor;

const BIN: &str = env!("CARGO_BIN_EXE_worker-pool");
const ROWS: usize = 30_000;

fn vars(stores: &TestStores, port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", stores.database_url.clone()),
        ("REDIS_URL", stores.redis_url.clone()),
        ("REDIS_KEY_PREFIX", stores.redis_prefix.clone()),
        ("METRICS_PORT", port.to_string()),
        ("IMPORT_LEASE", "1s".into()),
        ("IMPORT_POLL_INTERVAL", "200ms".into()),
    ]
}

async fn job_state(stores: &TestStores, job: Uuid) -> (String, i64, i64) {
    sqlx::query_as(
        "SELECT state, chunks_completed::bigint, rows_created FROM import_jobs WHERE id = $1",
    )
    .bind(job)
    .fetch_one(&stores.pg)
    .await
    .unwrap()
}

#[tokio::test]
async fn sigkill_mid_import_then_restart_imports_every_row_exactly_once() {
    let stores = TestStores::new().await;
    let admin = admin_of_new_vendor(&stores).await;
    let contacts = Contacts::new(
        stores.pg.clone(),
        ContactsSettings {
            import_max_bytes: 64 << 20,
            import_chunk_rows: 500,
        },
    );
    let mut csv = String::from("mobile,name\n");
    for i in 0..ROWS {
        csv.push_str(&format!("+91 9{:09},Person {i}\n", 100_000_000 + i));
    }
    // Uploaded without the outbox relay running: the wake-up never arrives, the poll runs it.
    let job = contacts
        .import_csv(
            &admin,
            ImportOptions {
                default_country: Some("IN".into()),
                ..ImportOptions::default()
            },
            Some("text/csv"),
            stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(csv))]),
            &RequestMeta::default(),
        )
        .await
        .unwrap()
        .id;

    let port = free_port();
    let mut worker = spawn_binary(BIN, &vars(&stores, port));
    assert!(
        wait_until_ready(
            &format!("http://127.0.0.1:{port}/readyz"),
            Duration::from_secs(20)
        )
        .await
    );
    let started = eventually(Duration::from_secs(30), || async {
        let (_, chunks, _) = job_state(&stores, job).await;
        (chunks >= 2).then_some(())
    })
    .await;
    assert!(started.is_some(), "the worker never started the import");
    signal(&worker, "KILL").await;
    worker.wait().await.unwrap();
    let (state, chunks_at_kill, _) = job_state(&stores, job).await;
    assert_eq!(
        state, "PROCESSING",
        "the import finished before the kill; raise ROWS"
    );

    let port = free_port();
    let _restarted = spawn_binary(BIN, &vars(&stores, port));
    let done = eventually(Duration::from_secs(60), || async {
        let (state, _, created) = job_state(&stores, job).await;
        (state == "COMPLETED").then_some(created)
    })
    .await;
    assert_eq!(
        done,
        Some(ROWS as i64),
        "resumed after chunk {chunks_at_kill}"
    );
    let (contacts_count, creates): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM contacts), \
         (SELECT count(*) FROM contact_changes WHERE import_job_id = $1 AND action = 'CREATE')",
    )
    .bind(job)
    .fetch_one(&stores.pg)
    .await
    .unwrap();
    assert_eq!((contacts_count, creates), (ROWS as i64, ROWS as i64));
}
