//! `kloyst-admin rate-cards load|list` with the shipped sample card.

use kloyst_testkit::TestStores;

const BIN: &str = env!("CARGO_BIN_EXE_kloyst-admin");
const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/rate-cards/meta-sample-2026-04-01.csv"
);

async fn admin(stores: &TestStores, args: &[&str]) -> (Option<i32>, String, String) {
    let output = tokio::process::Command::new(BIN)
        .args(args)
        .current_dir(std::env::temp_dir())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &stores.database_url)
        .output()
        .await
        .expect("run kloyst-admin");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn load_args<'a>(file: &'a str, name: &'a str) -> Vec<&'a str> {
    vec![
        "rate-cards",
        "load",
        file,
        "--name",
        name,
        "--currency",
        "USD",
        "--effective-from",
        "2026-04-01T00:00:00Z",
        "--sample",
    ]
}

#[tokio::test]
async fn loads_the_sample_card_once_and_lists_it() {
    let stores = TestStores::new().await;
    let (code, stdout, stderr) = admin(&stores, &load_args(SAMPLE, "meta-sample-2026-04-01")).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(
            "meta-sample-2026-04-01\tUSD\t2026-04-01T00:00:00+00:00 → open\t98 entries SAMPLE"
        ),
        "{stdout}"
    );
    let (entries, is_sample, source): (i64, bool, Option<String>) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM rate_card_entries), is_sample, source FROM rate_cards",
    )
    .fetch_one(&stores.pg)
    .await
    .unwrap();
    assert_eq!((entries, is_sample), (98, true));
    assert_eq!(source.as_deref(), Some("meta-sample-2026-04-01.csv"));

    let (code, _, stderr) = admin(&stores, &load_args(SAMPLE, "meta-sample-2026-04-01")).await;
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("already loaded; loading it again is refused"),
        "{stderr}"
    );

    let (code, stdout, _) = admin(&stores, &["rate-cards", "list"]).await;
    assert_eq!(code, Some(0));
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("meta-sample-2026-04-01"), "{stdout}");
}

#[tokio::test]
async fn a_bad_file_loads_nothing_and_bad_usage_exits_2() {
    let stores = TestStores::new().await;
    let bad = std::env::temp_dir().join(format!("bad-card-{}.csv", uuid_like()));
    std::fs::write(
        &bad,
        "market,category,rate\nIndia,MARKETING,0.01\nIndia,MARKETING,x\n",
    )
    .unwrap();
    let bad_path = bad.to_string_lossy().into_owned();
    let (code, _, stderr) = admin(&stores, &load_args(&bad_path, "bad")).await;
    let _ = std::fs::remove_file(&bad);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("line 3: rate \"x\" is not a number"),
        "{stderr}"
    );
    let cards: i64 = sqlx::query_scalar("SELECT count(*) FROM rate_cards")
        .fetch_one(&stores.pg)
        .await
        .unwrap();
    assert_eq!(cards, 0);

    for args in [
        vec!["rate-cards"],
        vec![
            "rate-cards",
            "load",
            SAMPLE,
            "--name",
            "x",
            "--currency",
            "USD",
        ],
        vec![
            "rate-cards",
            "load",
            SAMPLE,
            "--name",
            "x",
            "--currency",
            "USD",
            "--effective-from",
            "April",
        ],
        vec!["rate-cards", "list", "extra"],
    ] {
        let (code, _, stderr) = admin(&stores, &args).await;
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
    }
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}
