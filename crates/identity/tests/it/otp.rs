//! One-time codes: expiry, brute force, resend cooldown, hourly caps, storage.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use deadpool_redis::redis;
use kloyst_core::{DomainError, ErrorClass};
use kloyst_identity::{IdentityError, SendOtpInput, VerifyOtpInput};

use crate::helpers::*;

fn verify(email: &str, otp: &str) -> VerifyOtpInput {
    VerifyOtpInput {
        email: email.to_owned(),
        otp: otp.to_owned(),
    }
}

#[tokio::test]
async fn a_code_expires_after_its_ttl() {
    let (stores, identity) = setup_with(&[("OTP_TTL", "400ms")]).await;
    let email = unique_email();
    identity
        .register(register_input(&email), &meta())
        .await
        .unwrap();
    let code = latest_code(&stores.pg, &email).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let err = identity
        .verify_otp(verify(&email, &code), &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::OtpExpired), "{err:?}");
    assert_eq!(err.code(), "otp_expired");
    assert_eq!(err.class(), ErrorClass::BadRequest);
}

#[tokio::test]
async fn five_wrong_codes_burn_it_and_then_the_right_one_fails_too() {
    let (stores, identity) = setup().await;
    let email = unique_email();
    identity
        .register(register_input(&email), &meta())
        .await
        .unwrap();
    let code = latest_code(&stores.pg, &email).await;
    let wrong = wrong_code(&code);
    for expected_left in [4, 3, 2, 1, 0] {
        let err = identity
            .verify_otp(verify(&email, &wrong), &meta())
            .await
            .unwrap_err();
        match err {
            IdentityError::OtpInvalid { attempts_left } => {
                assert_eq!(attempts_left, expected_left)
            }
            other => panic!("expected otp_invalid, got {other:?}"),
        }
        assert_eq!(
            IdentityError::OtpInvalid {
                attempts_left: expected_left
            }
            .code(),
            "otp_invalid"
        );
    }
    let err = identity
        .verify_otp(verify(&email, &code), &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::OtpExpired), "{err:?}");
    // Still pending: a new code is needed.
    let status: String = sqlx::query_scalar("SELECT status FROM users WHERE email = $1")
        .bind(&email)
        .fetch_one(&stores.pg)
        .await
        .unwrap();
    assert_eq!(status, "PENDING_VERIFICATION");
}

#[tokio::test]
async fn parallel_guesses_cannot_exceed_the_attempt_limit() {
    let (stores, identity) = setup().await;
    let email = unique_email();
    identity
        .register(register_input(&email), &meta())
        .await
        .unwrap();
    let code = latest_code(&stores.pg, &email).await;
    let wrong = wrong_code(&code);
    let mut guesses = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let identity = identity.clone();
        let input = verify(&email, &wrong);
        guesses.spawn(async move { identity.verify_otp(input, &meta()).await });
    }
    while let Some(answer) = guesses.join_next().await {
        assert!(answer.unwrap().is_err());
    }
    let err = identity
        .verify_otp(verify(&email, &code), &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::OtpExpired), "{err:?}");
}

#[tokio::test]
async fn a_malformed_code_is_refused_without_using_an_attempt() {
    let (stores, identity) = setup_with(&[("OTP_MAX_ATTEMPTS", "1")]).await;
    let email = unique_email();
    identity
        .register(register_input(&email), &meta())
        .await
        .unwrap();
    let err = identity
        .verify_otp(verify(&email, "12ab"), &meta())
        .await
        .unwrap_err();
    assert_eq!(err.field_errors()[0].field, "otp");
    let code = latest_code(&stores.pg, &email).await;
    identity
        .verify_otp(verify(&email, &format!(" {code} ")), &meta())
        .await
        .unwrap();
}

#[tokio::test]
async fn resending_within_the_cooldown_is_rate_limited_with_retry_after() {
    let (stores, identity) = setup().await;
    let email = unique_email();
    identity
        .register(register_input(&email), &meta())
        .await
        .unwrap();
    let err = identity
        .send_otp(
            SendOtpInput {
                email: email.clone(),
            },
            &meta(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "otp_resend_cooldown");
    match err.class() {
        ErrorClass::RateLimited { retry_after_secs } => {
            assert!((1..=60).contains(&retry_after_secs), "{retry_after_secs}")
        }
        other => panic!("expected 429, got {other:?}"),
    }
    assert_eq!(mails_to(&stores.pg, &email).await.len(), 1);
}

#[tokio::test]
async fn a_resent_code_replaces_the_old_one() {
    let (stores, identity) = setup_with(&[("OTP_RESEND_COOLDOWN", "0s")]).await;
    let email = unique_email();
    identity
        .register(register_input(&email), &meta())
        .await
        .unwrap();
    let first = latest_code(&stores.pg, &email).await;
    identity
        .send_otp(
            SendOtpInput {
                email: email.clone(),
            },
            &meta(),
        )
        .await
        .unwrap();
    let second = latest_code(&stores.pg, &email).await;
    assert_eq!(mails_to(&stores.pg, &email).await.len(), 2);
    if first != second {
        assert!(identity
            .verify_otp(verify(&email, &first), &meta())
            .await
            .is_err());
    }
    identity
        .verify_otp(verify(&email, &second), &meta())
        .await
        .unwrap();
    assert_eq!(audit_rows(&stores.pg, "auth.otp_sent").await.len(), 1);
}

#[tokio::test]
async fn an_address_gets_at_most_the_hourly_cap_of_codes() {
    let (stores, identity) =
        setup_with(&[("OTP_RESEND_COOLDOWN", "0s"), ("OTP_HOURLY_CAP_EMAIL", "3")]).await;
    let email = unique_email();
    identity
        .register(register_input(&email), &meta())
        .await
        .unwrap();
    for _ in 0..2 {
        identity
            .send_otp(
                SendOtpInput {
                    email: email.clone(),
                },
                &meta(),
            )
            .await
            .unwrap();
    }
    let err = identity
        .send_otp(
            SendOtpInput {
                email: email.clone(),
            },
            &meta(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "otp_rate_limited");
    match err.class() {
        ErrorClass::RateLimited { retry_after_secs } => {
            assert!(
                (3500..=3600).contains(&retry_after_secs),
                "{retry_after_secs}"
            )
        }
        other => panic!("expected 429, got {other:?}"),
    }
    assert_eq!(mails_to(&stores.pg, &email).await.len(), 3);
}

#[tokio::test]
async fn a_client_gets_at_most_the_hourly_cap_of_codes() {
    let (_stores, identity) = setup_with(&[("OTP_HOURLY_CAP_IP", "2")]).await;
    let client = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
    for _ in 0..2 {
        identity
            .send_otp(
                SendOtpInput {
                    email: unique_email(),
                },
                &meta_from(client),
            )
            .await
            .unwrap();
    }
    let err = identity
        .send_otp(
            SendOtpInput {
                email: unique_email(),
            },
            &meta_from(client),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "otp_rate_limited");
    // Another client is not affected.
    identity
        .send_otp(
            SendOtpInput {
                email: unique_email(),
            },
            &meta(),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn redis_holds_only_a_hash_of_the_code_and_no_address() {
    let (stores, identity) = setup().await;
    let email = unique_email();
    identity
        .register(register_input(&email), &meta())
        .await
        .unwrap();
    let code = latest_code(&stores.pg, &email).await;
    let mut conn = stores.redis.get().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:identity:*", stores.redis_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    for key in &keys {
        assert!(!key.contains("example.com"), "{key}");
        let kind: String = redis::cmd("TYPE")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let dump: Vec<String> = if kind == "hash" {
            redis::cmd("HVALS")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap()
        } else {
            vec![redis::cmd("GET")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap()]
        };
        for value in dump {
            assert!(!value.contains(&code), "{key} holds the code");
        }
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl > 0, "{key} has no expiry");
    }
    stores.cleanup_redis().await;
}
