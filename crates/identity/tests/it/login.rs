//! Login: one answer for every wrong credential, the unverified case, failure limits.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use kloyst_core::{DomainError, ErrorClass};
use kloyst_identity::{IdentityError, LoginInput, Role};

use crate::helpers::*;

fn login(email: &str, password: &str) -> LoginInput {
    LoginInput {
        email: email.to_owned(),
        password: password.to_owned(),
    }
}

#[tokio::test]
async fn the_right_password_logs_in_whatever_the_case_of_the_address() {
    let (stores, identity) = setup().await;
    let (admin, _, email) = registered_admin(&identity, &stores).await;
    let tokens = identity
        .login(
            login(&format!(" {} ", email.to_uppercase()), PASSWORD),
            &meta(),
        )
        .await
        .unwrap();
    let principal = identity.authenticate(&tokens.access_token).await.unwrap();
    assert_eq!(principal, admin);
    assert_eq!(principal.role, Role::Admin);
    let last_login: bool =
        sqlx::query_scalar("SELECT last_login_at IS NOT NULL FROM users WHERE email = $1")
            .bind(&email)
            .fetch_one(&stores.pg)
            .await
            .unwrap();
    assert!(last_login);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_address_answer_the_same_in_the_same_time() {
    let (stores, identity) = setup().await;
    let (_, _, email) = registered_admin(&identity, &stores).await;

    let started = Instant::now();
    let wrong_password = identity
        .login(login(&email, "not the password at all"), &meta())
        .await
        .unwrap_err();
    let known_time = started.elapsed();
    let started = Instant::now();
    let unknown_email = identity
        .login(login(&unique_email(), "not the password at all"), &meta())
        .await
        .unwrap_err();
    let unknown_time = started.elapsed();

    for err in [&wrong_password, &unknown_email] {
        assert!(matches!(err, IdentityError::InvalidCredentials), "{err:?}");
        assert_eq!(err.class(), ErrorClass::Unauthenticated);
        assert_eq!(err.code(), "invalid_credentials");
    }
    assert_eq!(wrong_password.to_string(), unknown_email.to_string());
    // Both paths run argon2 with the same parameters; a missing dummy verification would
    // make the unknown address answer in a tiny fraction of the time.
    assert!(
        unknown_time * 3 > known_time,
        "unknown {unknown_time:?} vs known {known_time:?}"
    );

    let failures = audit_rows(&stores.pg, "auth.login_failed").await;
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0]["details"]["reason"], "wrong_password");
    assert!(
        failures[0]["vendor_id"].is_string(),
        "a known user's vendor"
    );
    assert_eq!(failures[1]["details"]["reason"], "unknown_email");
    assert!(failures[1]["vendor_id"].is_null());
}

#[tokio::test]
async fn an_unverified_account_is_told_so_only_with_the_right_password() {
    let (_stores, identity) = setup().await;
    let email = unique_email();
    identity
        .register(register_input(&email), &meta())
        .await
        .unwrap();
    let err = identity
        .login(login(&email, "a wrong password here"), &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::InvalidCredentials), "{err:?}");
    let err = identity
        .login(login(&email, PASSWORD), &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::EmailNotVerified), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Forbidden);
    assert_eq!(err.code(), "email_not_verified");
}

#[tokio::test]
async fn too_many_failures_for_an_address_are_rate_limited() {
    let (stores, identity) = setup_with(&[("LOGIN_MAX_FAILURES_EMAIL", "3")]).await;
    let (_, _, email) = registered_admin(&identity, &stores).await;
    for _ in 0..3 {
        let err = identity
            .login(login(&email, "wrong password 123"), &meta())
            .await
            .unwrap_err();
        assert!(matches!(err, IdentityError::InvalidCredentials));
    }
    // Now even the right password is refused until the window ends.
    let err = identity
        .login(login(&email, PASSWORD), &meta())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "login_rate_limited");
    match err.class() {
        ErrorClass::RateLimited { retry_after_secs } => {
            assert!(
                (800..=900).contains(&retry_after_secs),
                "{retry_after_secs}"
            )
        }
        other => panic!("expected 429, got {other:?}"),
    }
    // An unknown address is limited the same way (nothing to learn from the 429).
    let unknown = unique_email();
    for _ in 0..3 {
        let _ = identity
            .login(login(&unknown, "whatever it is"), &meta())
            .await;
    }
    let err = identity
        .login(login(&unknown, "whatever it is"), &meta())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "login_rate_limited");
}

#[tokio::test]
async fn too_many_failures_from_a_client_are_rate_limited() {
    let (stores, identity) = setup_with(&[("LOGIN_MAX_FAILURES_IP", "2")]).await;
    let (_, _, email) = registered_admin(&identity, &stores).await;
    let client = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9));
    for _ in 0..2 {
        let _ = identity
            .login(
                login(&unique_email(), "guess guess guess"),
                &meta_from(client),
            )
            .await;
    }
    let err = identity
        .login(login(&email, PASSWORD), &meta_from(client))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "login_rate_limited");
    // The account itself is fine from elsewhere.
    identity
        .login(login(&email, PASSWORD), &meta())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_successful_login_clears_the_address_failures() {
    let (stores, identity) = setup_with(&[("LOGIN_MAX_FAILURES_EMAIL", "3")]).await;
    let (_, _, email) = registered_admin(&identity, &stores).await;
    for _ in 0..2 {
        let _ = identity
            .login(login(&email, "wrong password 123"), &meta())
            .await;
    }
    identity
        .login(login(&email, PASSWORD), &meta())
        .await
        .unwrap();
    for _ in 0..2 {
        let _ = identity
            .login(login(&email, "wrong password 123"), &meta())
            .await;
    }
    identity
        .login(login(&email, PASSWORD), &meta())
        .await
        .unwrap();
}
