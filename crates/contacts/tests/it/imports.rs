//! Imports against the real Postgres: JSON inline, CSV uploads run by the ImportRunner,
//! resumption after an interrupted run, malformed files, limits, and tenant isolation.

use std::time::Duration;

use bytes::Bytes;
use futures::stream;
use kloyst_contacts::model::{BulkRow, ImportOptions};
use kloyst_contacts::{
    Contacts, ContactsError, ContactsSettings, ImportRunner, ImportRunnerSettings, RunOutcome,
};
use kloyst_core::VendorId;
use kloyst_testkit::TestStores;
use serde_json::{json, Map, Value};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::{meta, new_vendor};

fn contacts(stores: &TestStores, chunk_rows: u32, max_bytes: u64) -> Contacts {
    Contacts::new(
        stores.pg.clone(),
        ContactsSettings {
            import_max_bytes: max_bytes,
            import_chunk_rows: chunk_rows,
        },
    )
}

fn runner(stores: &TestStores, owner: &str, lease: Duration) -> ImportRunner {
    ImportRunner::new(
        stores.pg.clone(),
        owner,
        ImportRunnerSettings {
            concurrency: 1,
            lease,
            poll_interval: Duration::from_millis(100),
        },
    )
}

/// The body as a stream of small pieces, as a network read would deliver it.
fn body(csv: &str) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Unpin + Send {
    // Tiny pieces for small bodies (every split point), network-sized ones for big bodies.
    let piece = if csv.len() < 64 * 1024 {
        7
    } else {
        16 * 1024 + 3
    };
    let pieces: Vec<Result<Bytes, std::io::Error>> = csv
        .as_bytes()
        .chunks(piece)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(pieces)
}

fn row(mobile: &str, attributes: Value) -> BulkRow {
    BulkRow {
        mobile: mobile.to_owned(),
        attributes: match attributes {
            Value::Object(map) => map,
            _ => Map::new(),
        },
    }
}

fn india() -> ImportOptions {
    ImportOptions {
        default_country: Some("IN".to_owned()),
        ..ImportOptions::default()
    }
}

async fn contact_attributes(pg: &PgPool, vendor: VendorId, mobile: &str) -> Option<Value> {
    sqlx::query_scalar("SELECT attributes FROM contacts WHERE vendor_id = $1 AND mobile = $2")
        .bind(vendor.as_uuid())
        .bind(mobile)
        .fetch_optional(pg)
        .await
        .unwrap()
}

async fn contact_count(pg: &PgPool, vendor: VendorId) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM contacts WHERE vendor_id = $1")
        .bind(vendor.as_uuid())
        .fetch_one(pg)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_json_import_sorts_every_row_and_merges_attributes() {
    let stores = TestStores::new().await;
    let admin = new_vendor(&stores.pg).await;
    let contacts = contacts(&stores, 5_000, 1 << 20);
    let first = contacts
        .import_json(
            &admin,
            india(),
            vec![
                row("+91 98765 43210", json!({"name": "Asha", "city": "Pune"})),
                row("not a number", json!({})),
                row("09876543210", json!({"city": "Mumbai", "age": 31})),
                row("+1 415 555 2671", json!({"name": "Sam"})),
                row("", json!({})),
                row("+44 7911 123456", json!({"nested": {"no": 1}})),
            ],
            &meta(),
        )
        .await
        .unwrap();
    assert_eq!(first.created.len(), 2, "{first:?}");
    assert_eq!(first.duplicates.len(), 1);
    assert_eq!(first.duplicates[0].row, 2);
    let reasons: Vec<(u64, &str)> = first
        .rejected
        .iter()
        .map(|r| (r.row, r.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        vec![(1, "NOT_A_NUMBER"), (4, "EMPTY"), (5, "ATTRIBUTE_TYPE")]
    );
    // Later rows win per key; keys they do not give are kept.
    assert_eq!(
        contact_attributes(&stores.pg, admin.vendor_id, "919876543210").await,
        Some(json!({"name": "Asha", "city": "Mumbai", "age": 31}))
    );

    // A re-import updates, never duplicates; an identical row is unchanged.
    let second = contacts
        .import_json(
            &admin,
            india(),
            vec![
                row("9876543210", json!({"city": "Delhi"})),
                row("+14155552671", json!({"name": "Sam"})),
                row("+91 91234 56789", json!({})),
            ],
            &meta(),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            second.created.len(),
            second.updated.len(),
            second.unchanged.len()
        ),
        (1, 1, 1)
    );
    assert_eq!(contact_count(&stores.pg, admin.vendor_id).await, 3);
    assert_eq!(
        contact_attributes(&stores.pg, admin.vendor_id, "919876543210").await,
        Some(json!({"name": "Asha", "city": "Delhi", "age": 31}))
    );

    // Every change is audited with its job, actor and request; the job is recorded, final.
    let changes: Vec<(String, Option<Uuid>, Option<String>)> = sqlx::query_as(
        "SELECT action, import_job_id, actor FROM contact_changes WHERE vendor_id = $1 ORDER BY id",
    )
    .bind(admin.vendor_id.as_uuid())
    .fetch_all(&stores.pg)
    .await
    .unwrap();
    let of_job = |job: Uuid| {
        let mut actions: Vec<&str> = changes
            .iter()
            .filter(|c| c.1 == Some(job))
            .map(|c| c.0.as_str())
            .collect();
        actions.sort_unstable();
        actions
    };
    assert_eq!(of_job(first.job_id), vec!["CREATE", "CREATE"]);
    assert_eq!(of_job(second.job_id), vec!["CREATE", "UPDATE"]);
    assert_eq!(changes.len(), 4, "the unchanged row leaves no audit row");
    assert!(changes
        .iter()
        .all(|c| c.2.as_deref() == Some(&format!("user:{}", admin.user_id)[..])));
    let job = contacts.import_job(&admin, first.job_id).await.unwrap();
    assert_eq!(
        (
            job.state.as_str(),
            job.source.as_str(),
            job.rows_seen,
            job.rows_created,
            job.rows_duplicate,
            job.rows_rejected
        ),
        ("COMPLETED", "JSON", 6, 2, 1, 3)
    );
    let rejections = contacts
        .import_rejections(&admin, first.job_id, None, None)
        .await
        .unwrap();
    assert_eq!(rejections.data.len(), 3);
    let immutable = sqlx::query("UPDATE import_jobs SET rows_seen = 0 WHERE id = $1")
        .bind(first.job_id)
        .execute(&stores.pg)
        .await;
    assert!(immutable.is_err(), "a final job must not change");
}

#[tokio::test]
async fn a_json_import_refuses_too_many_rows_and_an_unknown_country_or_list() {
    let stores = TestStores::new().await;
    let admin = new_vendor(&stores.pg).await;
    let contacts = contacts(&stores, 5_000, 1 << 20);
    let rows = (0..5_001)
        .map(|i| row(&format!("98765{i:05}"), json!({})))
        .collect();
    let too_many = contacts.import_json(&admin, india(), rows, &meta()).await;
    assert!(
        matches!(too_many, Err(ContactsError::Invalid(_))),
        "{too_many:?}"
    );
    let bad_country = ImportOptions {
        default_country: Some("XX".to_owned()),
        ..ImportOptions::default()
    };
    let refused = contacts
        .import_json(
            &admin,
            bad_country,
            vec![row("9876543210", json!({}))],
            &meta(),
        )
        .await;
    let Err(ContactsError::Invalid(fields)) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(fields[0].field, "default_country");
    let unknown_list = ImportOptions {
        list_id: Some(Uuid::new_v4()),
        ..india()
    };
    let refused = contacts
        .import_json(
            &admin,
            unknown_list,
            vec![row("9876543210", json!({}))],
            &meta(),
        )
        .await;
    assert!(
        matches!(refused, Err(ContactsError::Invalid(_))),
        "{refused:?}"
    );
}

const MIXED_CSV: &str = "name,mobile,city\n\
Asha,+91 98765 43210,Pune\n\
Ravi,09123456789,\"Delhi, NCR\"\n\
Bad,12,Nowhere\n\
Asha again,9876543210,Mumbai\n\
Sam,+1 (415) 555-2671,\"San\nFrancisco\"\n\
Empty,,\n\
Priya,+91-99887-66554,Chennai\n";

#[tokio::test]
async fn a_csv_upload_is_stored_then_imported_in_chunks() {
    let stores = TestStores::new().await;
    let admin = new_vendor(&stores.pg).await;
    let contacts = contacts(&stores, 2, 1 << 20);
    let list: Uuid = sqlx::query_scalar(
        "INSERT INTO contact_lists (vendor_id, name) VALUES ($1, 'Leads') RETURNING id",
    )
    .bind(admin.vendor_id.as_uuid())
    .fetch_one(&stores.pg)
    .await
    .unwrap();
    let options = ImportOptions {
        list_id: Some(list),
        file_name: Some("leads.csv".to_owned()),
        ..india()
    };
    let job = contacts
        .import_csv(&admin, options, Some("text/csv"), body(MIXED_CSV), &meta())
        .await
        .unwrap();
    assert_eq!(job.state, "QUEUED");
    assert_eq!(job.total_bytes, Some(MIXED_CSV.len() as i64));
    // Nothing is imported by the request itself.
    assert_eq!(contact_count(&stores.pg, admin.vendor_id).await, 0);

    let outcome = runner(&stores, "w1", Duration::from_secs(30))
        .run(job.id, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(outcome, RunOutcome::Completed);
    let done = contacts.import_job(&admin, job.id).await.unwrap();
    assert_eq!(done.state, "COMPLETED");
    assert_eq!(done.progress_percent, 100.0);
    assert_eq!(
        (
            done.rows_seen,
            done.rows_created,
            done.rows_duplicate,
            done.rows_rejected
        ),
        (7, 4, 1, 2),
        "{done:?}"
    );
    assert_eq!(done.chunks_completed, 4);
    assert_eq!(
        contact_attributes(&stores.pg, admin.vendor_id, "919876543210").await,
        Some(json!({"name": "Asha again", "city": "Mumbai"}))
    );
    assert_eq!(
        contact_attributes(&stores.pg, admin.vendor_id, "14155552671").await,
        Some(json!({"name": "Sam", "city": "San\nFrancisco"}))
    );
    let members: i32 = sqlx::query_scalar("SELECT member_count FROM contact_lists WHERE id = $1")
        .bind(list)
        .fetch_one(&stores.pg)
        .await
        .unwrap();
    assert_eq!(members, 4);
    let rejections = contacts
        .import_rejections(&admin, job.id, Some(1), None)
        .await
        .unwrap();
    assert_eq!(rejections.data[0].row, 3);
    assert_eq!(rejections.data[0].raw, "12");
    let rest = contacts
        .import_rejections(&admin, job.id, Some(10), rejections.next_cursor.as_deref())
        .await
        .unwrap();
    assert_eq!(rest.data.len(), 1);
    assert_eq!(rest.data[0].row, 6);
    assert_eq!(rest.data[0].reason, "EMPTY");
    assert!(rest.next_cursor.is_none());
    // The stored file is gone once imported.
    let parts: i64 = sqlx::query_scalar("SELECT count(*) FROM import_uploads WHERE job_id = $1")
        .bind(job.id)
        .fetch_one(&stores.pg)
        .await
        .unwrap();
    assert_eq!(parts, 0);
    // A second run does nothing.
    let again = runner(&stores, "w2", Duration::from_secs(30))
        .run(job.id, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(again, RunOutcome::NotRunnable);
}

/// A CSV of `rows` distinct Indian mobiles, larger than one stored part.
fn big_csv(rows: usize) -> String {
    let mut csv = String::from("mobile,name,note\r\n");
    for i in 0..rows {
        csv.push_str(&format!(
            "+91 9{:09},Person {i},\"{i}: a note long enough, with a comma, to spread 20,000 rows over several stored parts\"\r\n",
            100_000_000 + i
        ));
    }
    csv
}

#[tokio::test]
async fn an_interrupted_import_resumes_after_its_last_chunk_and_imports_each_row_once() {
    let stores = TestStores::new().await;
    let admin = new_vendor(&stores.pg).await;
    let contacts = contacts(&stores, 1_000, 64 << 20);
    // ~18 MB: several stored parts, so the resume seeks into the middle of one.
    let csv = big_csv(20_000);
    assert!(csv.len() > 2 * 1024 * 1024);
    let job = contacts
        .import_csv(&admin, india(), Some("text/csv"), body(&csv), &meta())
        .await
        .unwrap();

    // The first worker stops after a few chunks (as at a shutdown between chunks).
    let stop = CancellationToken::new();
    let first = runner(&stores, "w1", Duration::from_secs(30));
    let watcher = {
        let pg = stores.pg.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            loop {
                let chunks: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM import_chunks WHERE job_id = $1")
                        .bind(job.id)
                        .fetch_one(&pg)
                        .await
                        .unwrap();
                if chunks >= 3 {
                    stop.cancel();
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    assert_eq!(
        first.run(job.id, &stop).await.unwrap(),
        RunOutcome::Interrupted
    );
    watcher.await.unwrap();
    let partial = contacts.import_job(&admin, job.id).await.unwrap();
    assert_eq!(partial.state, "PROCESSING");
    assert!(
        partial.rows_created > 0 && partial.rows_created < 20_000,
        "{partial:?}"
    );
    assert!(partial.progress_percent > 0.0 && partial.progress_percent < 100.0);

    // Another worker resumes at once (the lease was released) and finishes.
    let second = runner(&stores, "w2", Duration::from_secs(30));
    assert_eq!(
        second.run(job.id, &CancellationToken::new()).await.unwrap(),
        RunOutcome::Completed
    );
    let done = contacts.import_job(&admin, job.id).await.unwrap();
    assert_eq!(
        (done.rows_seen, done.rows_created, done.rows_rejected),
        (20_000, 20_000, 0)
    );
    assert_eq!(contact_count(&stores.pg, admin.vendor_id).await, 20_000);
    let creates: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM contact_changes WHERE import_job_id = $1 AND action = 'CREATE'",
    )
    .bind(job.id)
    .fetch_one(&stores.pg)
    .await
    .unwrap();
    assert_eq!(creates, 20_000, "each row imported exactly once");
    // Chunks tile the file: consecutive rows and bytes, no gap, no overlap.
    let chunks: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT row_start, row_end, byte_start, byte_end FROM import_chunks WHERE job_id = $1 ORDER BY seq",
    )
    .bind(job.id)
    .fetch_all(&stores.pg)
    .await
    .unwrap();
    for pair in chunks.windows(2) {
        assert_eq!(pair[1].0, pair[0].1 + 1);
        assert_eq!(pair[1].2, pair[0].3);
    }
    assert_eq!(chunks.last().unwrap().1, 20_000);
}

#[tokio::test]
async fn a_dead_workers_job_is_resumed_once_its_lease_expires() {
    let stores = TestStores::new().await;
    let admin = new_vendor(&stores.pg).await;
    let contacts = contacts(&stores, 500, 64 << 20);
    let job = contacts
        .import_csv(
            &admin,
            india(),
            Some("text/csv"),
            body(&big_csv(5_000)),
            &meta(),
        )
        .await
        .unwrap();
    // The first worker dies mid-run: its future is dropped after some chunks, its lease stays.
    let dying = runner(&stores, "w1", Duration::from_secs(1));
    let never = CancellationToken::new();
    let run = dying.run(job.id, &never);
    let _ = tokio::time::timeout(Duration::from_millis(150), run).await;
    let survivor = runner(&stores, "w2", Duration::from_secs(1));
    // While the lease holds, nobody else takes the job.
    let early = survivor
        .run(job.id, &CancellationToken::new())
        .await
        .unwrap();
    if early == RunOutcome::NotRunnable {
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let runnable: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM import_jobs WHERE state = 'PROCESSING' AND lease_expires_at < now()",
        )
        .fetch_all(&stores.pg)
        .await
        .unwrap();
        assert_eq!(runnable, vec![job.id]);
        assert_eq!(
            survivor
                .run(job.id, &CancellationToken::new())
                .await
                .unwrap(),
            RunOutcome::Completed
        );
    } else {
        // The dying run had not taken the lease yet (a slow machine): it ran to the end.
        assert_eq!(early, RunOutcome::Completed);
    }
    assert_eq!(contact_count(&stores.pg, admin.vendor_id).await, 5_000);
    let done = contacts.import_job(&admin, job.id).await.unwrap();
    assert_eq!(
        (
            done.rows_seen,
            done.rows_created + done.rows_updated + done.rows_unchanged + done.rows_duplicate
        ),
        (5_000, 5_000)
    );
}

#[tokio::test]
async fn a_malformed_upload_is_refused_before_anything_is_kept() {
    let stores = TestStores::new().await;
    let admin = new_vendor(&stores.pg).await;
    let contacts = contacts(&stores, 100, 1_000);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("no number column", b"name,city\nAsha,Pune\n".to_vec()),
        (
            "binary",
            vec![0x89, b'P', b'N', b'G', 0, 0, 0, 13, 0, 1, 2, 3],
        ),
    ];
    for (what, bytes) in cases {
        let pieces = stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(bytes))]);
        let refused = contacts
            .import_csv(&admin, india(), Some("text/csv"), pieces, &meta())
            .await;
        assert!(
            matches!(refused, Err(ContactsError::Invalid(_))),
            "{what}: {refused:?}"
        );
    }
    let too_big = "mobile\n".to_owned() + &"9876543210\n".repeat(200);
    let refused = contacts
        .import_csv(&admin, india(), Some("text/csv"), body(&too_big), &meta())
        .await;
    assert!(
        matches!(refused, Err(ContactsError::TooLarge { .. })),
        "{refused:?}"
    );
    let interrupted = stream::iter(vec![
        Ok(Bytes::from_static(b"mobile\n98765")),
        Err(std::io::Error::other("connection reset")),
    ]);
    let refused = contacts
        .import_csv(&admin, india(), Some("text/csv"), interrupted, &meta())
        .await;
    assert!(
        matches!(refused, Err(ContactsError::UploadInterrupted(_))),
        "{refused:?}"
    );
    // No job, no stored bytes.
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM import_jobs")
        .fetch_one(&stores.pg)
        .await
        .unwrap();
    let parts: i64 = sqlx::query_scalar("SELECT count(*) FROM import_uploads")
        .fetch_one(&stores.pg)
        .await
        .unwrap();
    assert_eq!((jobs, parts), (0, 0));
}

#[tokio::test]
async fn broken_rows_are_rejected_and_the_rest_imported() {
    let stores = TestStores::new().await;
    let admin = new_vendor(&stores.pg).await;
    let contacts = contacts(&stores, 100, 1 << 20);
    let csv = "mobile,name\n9876543210,Asha\n9123456789,Ravi,extra\n9988776655,\"Priya\n";
    let job = contacts
        .import_csv(&admin, india(), Some("text/csv"), body(csv), &meta())
        .await
        .unwrap();
    let outcome = runner(&stores, "w1", Duration::from_secs(30))
        .run(job.id, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(outcome, RunOutcome::Completed);
    let done = contacts.import_job(&admin, job.id).await.unwrap();
    assert_eq!((done.rows_created, done.rows_rejected), (1, 2), "{done:?}");
    let reasons: Vec<String> = contacts
        .import_rejections(&admin, job.id, None, None)
        .await
        .unwrap()
        .data
        .into_iter()
        .map(|r| r.reason)
        .collect();
    assert_eq!(reasons, vec!["WRONG_FIELD_COUNT", "UNTERMINATED_QUOTE"]);
}

#[tokio::test]
async fn one_vendors_import_never_touches_another_vendor() {
    let stores = TestStores::new().await;
    let a = new_vendor(&stores.pg).await;
    let b = new_vendor(&stores.pg).await;
    let contacts = contacts(&stores, 100, 1 << 20);
    contacts
        .import_json(
            &b,
            india(),
            vec![row("9876543210", json!({"name": "B's"}))],
            &meta(),
        )
        .await
        .unwrap();
    let job = contacts
        .import_csv(
            &a,
            india(),
            Some("text/csv"),
            body("mobile,name\n9876543210,A's\n"),
            &meta(),
        )
        .await
        .unwrap();
    runner(&stores, "w1", Duration::from_secs(30))
        .run(job.id, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        contact_attributes(&stores.pg, b.vendor_id, "919876543210").await,
        Some(json!({"name": "B's"}))
    );
    assert_eq!(
        contact_attributes(&stores.pg, a.vendor_id, "919876543210").await,
        Some(json!({"name": "A's"}))
    );
    // B cannot see A's job, its rejections, nor list it.
    assert!(matches!(
        contacts.import_job(&b, job.id).await,
        Err(ContactsError::NotFound(_))
    ));
    assert!(matches!(
        contacts.import_rejections(&b, job.id, None, None).await,
        Err(ContactsError::NotFound(_))
    ));
    let listed = contacts.import_jobs(&b, Default::default()).await.unwrap();
    assert!(listed.data.iter().all(|j| j.id != job.id));
    assert_eq!(listed.data.len(), 1);
    // A's list id in B's import is unknown to B.
    let a_list: Uuid = sqlx::query_scalar(
        "INSERT INTO contact_lists (vendor_id, name) VALUES ($1, 'A') RETURNING id",
    )
    .bind(a.vendor_id.as_uuid())
    .fetch_one(&stores.pg)
    .await
    .unwrap();
    let refused = contacts
        .import_json(
            &b,
            ImportOptions {
                list_id: Some(a_list),
                ..india()
            },
            vec![row("9876543211", json!({}))],
            &meta(),
        )
        .await;
    assert!(
        matches!(refused, Err(ContactsError::Invalid(_))),
        "{refused:?}"
    );
}

/// The fixture of messy real-world numbers (India, US, UK, Brazil with and without the 9th
/// digit, Germany, Indonesia, UAE, in every format) through a CSV import: each row ends as
/// the expected contact or rejection reason.
#[tokio::test]
async fn the_messy_numbers_fixture_imports_as_expected() {
    let stores = TestStores::new().await;
    let admin = new_vendor(&stores.pg).await;
    let contacts = contacts(&stores, 7, 1 << 20);
    let csv = include_str!("../fixtures/messy_numbers.csv");
    let expected = include_str!("../fixtures/messy_numbers.expected.csv");
    let job = contacts
        .import_csv(&admin, india(), Some("text/csv"), body(csv), &meta())
        .await
        .unwrap();
    runner(&stores, "w1", Duration::from_secs(30))
        .run(job.id, &CancellationToken::new())
        .await
        .unwrap();
    let rejections = contacts
        .import_rejections(&admin, job.id, None, None)
        .await
        .unwrap()
        .data;
    let mut expected_numbers = std::collections::BTreeSet::new();
    for line in expected.lines().skip(1) {
        let (row, outcome) = line.split_once(',').unwrap();
        let row: u64 = row.parse().unwrap();
        if outcome.chars().all(|c| c.is_ascii_digit()) {
            expected_numbers.insert(outcome.to_owned());
            assert!(
                rejections.iter().all(|r| r.row != row),
                "row {row} was rejected"
            );
        } else {
            let rejection = rejections.iter().find(|r| r.row == row);
            assert_eq!(
                rejection.map(|r| r.reason.as_str()),
                Some(outcome),
                "row {row}"
            );
        }
    }
    let stored: std::collections::BTreeSet<String> =
        sqlx::query_scalar("SELECT mobile FROM contacts WHERE vendor_id = $1")
            .bind(admin.vendor_id.as_uuid())
            .fetch_all(&stores.pg)
            .await
            .unwrap()
            .into_iter()
            .collect();
    // Brazil with and without the 9th digit (and other repeats) are one contact each.
    assert_eq!(stored, expected_numbers);
    let done = contacts.import_job(&admin, job.id).await.unwrap();
    assert_eq!(done.rows_created, expected_numbers.len() as i64);
    assert_eq!(done.rows_rejected, rejections.len() as i64);
}

/// A spreadsheet's export (BOM, CRLF, `;`, a quoted cell with `;` and a line break).
#[tokio::test]
async fn a_spreadsheet_export_imports_with_its_header_names_as_attributes() {
    let stores = TestStores::new().await;
    let admin = new_vendor(&stores.pg).await;
    let contacts = contacts(&stores, 100, 1 << 20);
    let csv = include_str!("../fixtures/spreadsheet_export.csv");
    let job = contacts
        .import_csv(&admin, india(), Some("text/csv"), body(csv), &meta())
        .await
        .unwrap();
    runner(&stores, "w1", Duration::from_secs(30))
        .run(job.id, &CancellationToken::new())
        .await
        .unwrap();
    let done = contacts.import_job(&admin, job.id).await.unwrap();
    assert_eq!(done.state, "COMPLETED");
    // The German number is national format: not an Indian number, so rejected with IN.
    assert_eq!((done.rows_created, done.rows_rejected), (4, 1), "{done:?}");
    let rejected = contacts
        .import_rejections(&admin, job.id, None, None)
        .await
        .unwrap()
        .data;
    assert_eq!(
        (rejected[0].row, rejected[0].raw.as_str()),
        (2, "0151 23456789")
    );
    let names: Vec<Value> =
        sqlx::query_scalar("SELECT attributes FROM contacts WHERE vendor_id = $1 ORDER BY mobile")
            .bind(admin.vendor_id.as_uuid())
            .fetch_all(&stores.pg)
            .await
            .unwrap();
    assert!(
        names
            .iter()
            .all(|a| a.get("Name").is_some() && a.get("Phone").is_none()),
        "{names:?}"
    );
    assert!(
        names.iter().any(|a| a["Name"] == "Smith, \"JJ\""),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|a| a["Name"] == "João Silva" && a["City"] == "São Paulo"),
        "{names:?}"
    );
}
