//! `kloyst-admin dead-letters …` against real inbox rows.

use kloyst_testkit::TestStores;
use sqlx::PgPool;

const BIN: &str = env!("CARGO_BIN_EXE_kloyst-admin");

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the binary with only `DATABASE_URL` as configuration, outside the checkout so a
/// developer's `.env` is not read.
async fn admin(stores: &TestStores, args: &[&str]) -> Run {
    let output = tokio::process::Command::new(BIN)
        .args(args)
        .current_dir(std::env::temp_dir())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &stores.database_url)
        .output()
        .await
        .expect("run kloyst-admin");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A webhook that failed for good, `minutes_ago` minutes ago.
async fn insert_dead(
    pg: &PgPool,
    source: &str,
    event_type: &str,
    last_error: &str,
    minutes_ago: i32,
) -> i64 {
    let body = format!(r#"{{"object":"test","n":{minutes_ago},"source":"{source}"}}"#);
    sqlx::query_scalar(
        "INSERT INTO webhook_inbox \
            (source, raw_body, body_sha256, event_type, state, attempts, last_error, dead_at) \
         VALUES ($1, $2, sha256($2), $3, 'DEAD', 8, $4, now() - make_interval(mins => $5)) \
         RETURNING id",
    )
    .bind(source)
    .bind(body.into_bytes())
    .bind(event_type)
    .bind(last_error)
    .bind(minutes_ago)
    .fetch_one(pg)
    .await
    .expect("insert a dead letter")
}

async fn inbox_state(pg: &PgPool, id: i64) -> (String, i32, i32, bool) {
    sqlx::query_as(
        "SELECT state, replay_count, attempts, dead_at IS NULL FROM webhook_inbox WHERE id = $1",
    )
    .bind(id)
    .fetch_one(pg)
    .await
    .expect("inbox row")
}

fn line_of(stdout: &str, id: i64) -> Option<&str> {
    stdout
        .lines()
        .find(|line| line.split_whitespace().next() == Some(&id.to_string()))
}

#[tokio::test]
async fn list_shows_dead_letters_and_replay_requeues_them() {
    let stores = TestStores::new().await;
    let long_error = format!("change \"messages\" does not parse: {}", "x".repeat(200));
    let dead = insert_dead(&stores.pg, "META", "messages", &long_error, 1).await;
    sqlx::query(
        "INSERT INTO webhook_inbox (source, raw_body, body_sha256, state, processed_at) \
         VALUES ('META', '\\x7b7d', sha256('\\x7b7d'), 'PROCESSED', now())",
    )
    .execute(&stores.pg)
    .await
    .expect("a processed row");

    let listed = admin(&stores, &["dead-letters", "list"]).await;
    assert_eq!(listed.code, Some(0), "stderr: {}", listed.stderr);
    let line = line_of(&listed.stdout, dead).expect("the dead letter is listed");
    assert!(line.contains("META") && line.contains("messages"), "{line}");
    assert!(
        line.contains("change \"messages\" does not parse"),
        "{line}"
    );
    assert!(line.ends_with('…'), "the long error is truncated: {line}");
    assert_eq!(
        listed.stdout.lines().count(),
        2,
        "a header and only the dead row: {}",
        listed.stdout
    );

    let replayed = admin(&stores, &["dead-letters", "replay", &dead.to_string()]).await;
    assert_eq!(replayed.code, Some(0), "stderr: {}", replayed.stderr);
    assert!(replayed
        .stdout
        .contains(&format!("replayed 1 dead letter(s): {dead}")));
    assert!(replayed.stdout.contains("WEBHOOK_POLL_INTERVAL"));
    assert_eq!(
        inbox_state(&stores.pg, dead).await,
        ("RECEIVED".to_owned(), 1, 0, true)
    );

    let empty = admin(&stores, &["dead-letters", "list"]).await;
    assert_eq!(empty.stdout.trim(), "no dead letters");

    // Replaying it again: it is no longer dead, which the operator is told (exit 1).
    let again = admin(&stores, &["dead-letters", "replay", &dead.to_string()]).await;
    assert_eq!(again.code, Some(1));
    assert!(
        again.stderr.contains("not dead letters"),
        "{}",
        again.stderr
    );
    assert_eq!(
        inbox_state(&stores.pg, dead).await.1,
        1,
        "not replayed twice"
    );
}

#[tokio::test]
async fn listing_pages_and_filters_and_replay_all_keeps_to_its_source() {
    let stores = TestStores::new().await;
    let older = insert_dead(&stores.pg, "META", "statuses", "boom", 10).await;
    let newer = insert_dead(&stores.pg, "META", "statuses", "boom", 5).await;
    let payment = insert_dead(
        &stores.pg,
        "RAZORPAY",
        "payment.captured",
        "no processor",
        1,
    )
    .await;

    let first = admin(
        &stores,
        &["dead-letters", "list", "--source", "META", "--limit", "1"],
    )
    .await;
    assert_eq!(first.code, Some(0), "stderr: {}", first.stderr);
    assert!(
        line_of(&first.stdout, newer).is_some(),
        "newest first: {}",
        first.stdout
    );
    assert!(line_of(&first.stdout, older).is_none());
    assert!(
        line_of(&first.stdout, payment).is_none(),
        "filtered by source"
    );
    let hint = first
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("more: "))
        .expect("a next-page hint");
    let hint_args: Vec<&str> = hint.split_whitespace().skip(1).collect();
    let second = admin(&stores, &hint_args).await;
    assert_eq!(second.code, Some(0), "stderr: {}", second.stderr);
    assert!(
        line_of(&second.stdout, older).is_some(),
        "{}",
        second.stdout
    );
    assert!(!second.stdout.contains("more: "), "the last page");

    let all_meta = admin(
        &stores,
        &["dead-letters", "replay", "--all", "--source", "META"],
    )
    .await;
    assert_eq!(all_meta.code, Some(0), "stderr: {}", all_meta.stderr);
    assert!(
        all_meta.stdout.contains("replayed 2 META dead letter(s)"),
        "{}",
        all_meta.stdout
    );
    assert_eq!(inbox_state(&stores.pg, older).await.0, "RECEIVED");
    assert_eq!(inbox_state(&stores.pg, newer).await.0, "RECEIVED");
    assert_eq!(inbox_state(&stores.pg, payment).await.0, "DEAD");
}

#[tokio::test]
async fn bad_usage_exits_2_with_the_usage_text() {
    let stores = TestStores::new().await;
    let dead = insert_dead(&stores.pg, "META", "messages", "boom", 1).await;
    for args in [
        &[][..],
        &["dead-letters"][..],
        &["dead-letters", "list", "--limit", "0"][..],
        &["dead-letters", "list", "--source", "SMS"][..],
        &["dead-letters", "replay"][..],
        &["dead-letters", "replay", "abc"][..],
        &["dead-letters", "replay", "--all", "7"][..],
        &["no-such-command"][..],
    ] {
        let run = admin(&stores, args).await;
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("usage:"), "{args:?}: {}", run.stderr);
    }
    let cursor = admin(
        &stores,
        &["dead-letters", "list", "--cursor", "not-a-cursor"],
    )
    .await;
    assert_eq!(cursor.code, Some(2), "{}", cursor.stderr);
    assert_eq!(
        inbox_state(&stores.pg, dead).await.0,
        "DEAD",
        "nothing was replayed"
    );

    let help = admin(&stores, &["help"]).await;
    assert_eq!(help.code, Some(0));
    assert!(help.stdout.contains("dead-letters replay --all"));
}
