//! Quotas as configuration spells them.

use std::time::Duration;

use kloyst_config::Env;
use kloyst_ratelimit::{Quota, QuotaError};

#[test]
fn good_strings() {
    for (raw, limit, secs) in [
        ("20/min", 20, 60),
        ("600/min", 600, 60),
        ("6000/minute", 6000, 60),
        ("5/s", 5, 1),
        ("100/h", 100, 3600),
        ("1000/d", 1000, 86_400),
        ("50/10s", 50, 10),
        ("  7 / 15min ", 7, 900),
    ] {
        let quota = Quota::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
        assert_eq!(quota.limit(), limit, "{raw}");
        assert_eq!(quota.period(), Duration::from_secs(secs), "{raw}");
        assert_eq!(raw.parse::<Quota>(), Ok(quota));
    }
}

#[test]
fn bad_strings() {
    for raw in [
        "",
        "20",
        "/min",
        "20/",
        "0/min",
        "-5/s",
        "5.5/s",
        "20/week",
        "20/0s",
        "20/60d",
        "twenty/min",
        "20/min/s",
    ] {
        assert!(Quota::parse(raw).is_err(), "{raw:?} should be refused");
    }
    assert_eq!(
        Quota::parse("20/week"),
        Err(QuotaError::Unit("week".into()))
    );
}

#[test]
fn from_env_reports_the_variable_and_the_value() {
    let default = Quota::parse("20/min").unwrap();
    let env = Env::from_pairs([("RATE_LIMIT_AUTH_PER_IP", "lots")]);
    let message = Quota::from_env(&env, "RATE_LIMIT_AUTH_PER_IP", default)
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("configuration error: RATE_LIMIT_AUTH_PER_IP is invalid"),
        "{message}"
    );
    assert!(message.contains("\"lots\""), "{message}");
}
