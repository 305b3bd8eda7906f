//! Register → code by mail (through the outbox) → verify → vendor, wallet, ADMIN, tokens.

use kloyst_core::DomainError;
use kloyst_identity::{
    IdentityError, LoginInput, PlanType, RegisterInput, Role, SendOtpInput, UserStatus,
    VerifyOtpInput,
};
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn register_then_verify_creates_the_vendor_its_wallet_and_the_admin() {
    let (stores, identity) = setup().await;
    let email = unique_email();
    let request = meta();
    identity
        .register(
            RegisterInput {
                email: format!("  {}  ", email.to_uppercase()),
                ..register_input(&email)
            },
            &request,
        )
        .await
        .unwrap();

    // The user waits for the code, with the company kept for later.
    let (status, vendor_id, company): (String, Option<Uuid>, Option<String>) =
        sqlx::query_as("SELECT status, vendor_id, signup_company_name FROM users WHERE email = $1")
            .bind(&email)
            .fetch_one(&stores.pg)
            .await
            .unwrap();
    assert_eq!(status, "PENDING_VERIFICATION");
    assert_eq!(vendor_id, None);
    assert_eq!(company.as_deref(), Some("Acme Traders"));

    // The code went out as a mail job in the outbox, with the request id.
    let (kind, stream, correlation): (String, String, Option<String>) = sqlx::query_as(
        "SELECT kind, stream, correlation_id FROM outbox_events WHERE payload->>'to' = $1",
    )
    .bind(&email)
    .fetch_one(&stores.pg)
    .await
    .unwrap();
    assert_eq!((kind.as_str(), stream.as_str()), ("mail.send", "jobs"));
    assert_eq!(correlation, request.request_id);
    let mail = last_mail_to(&stores.pg, &email).await;
    assert_eq!(mail.category, "otp");
    assert_eq!(mail.subject, "Your Kloyst verification code");
    assert!(mail.text.contains("expires in 5 minutes"), "{}", mail.text);
    let code = code_in(&mail);

    let tokens = identity
        .verify_otp(
            VerifyOtpInput {
                email: email.clone(),
                otp: code,
            },
            &meta(),
        )
        .await
        .unwrap();
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.expires_in, 900);
    assert_eq!(tokens.refresh_expires_in, 7 * 24 * 3600);

    let principal = identity.authenticate(&tokens.access_token).await.unwrap();
    assert_eq!(principal.role, Role::Admin);

    let (name, company_name, plan): (String, Option<String>, String) =
        sqlx::query_as("SELECT name, company_name, plan_type FROM vendors WHERE id = $1")
            .bind(principal.vendor_id.as_uuid())
            .fetch_one(&stores.pg)
            .await
            .unwrap();
    assert_eq!(name, "Acme Traders");
    assert_eq!(company_name.as_deref(), Some("Acme Traders"));
    assert_eq!(plan, "SHARED");

    let (balance, currency): (String, String) =
        sqlx::query_as("SELECT balance::text, currency FROM wallets WHERE vendor_id = $1")
            .bind(principal.vendor_id.as_uuid())
            .fetch_one(&stores.pg)
            .await
            .unwrap();
    assert_eq!(balance, "0.0000");
    assert_eq!(currency, "INR");

    let (status, vendor_id, role, verified, company): (
        String,
        Option<Uuid>,
        String,
        bool,
        Option<String>,
    ) = sqlx::query_as(
        "SELECT status, vendor_id, role, email_verified_at IS NOT NULL, signup_company_name
           FROM users WHERE id = $1",
    )
    .bind(principal.user_id.as_uuid())
    .fetch_one(&stores.pg)
    .await
    .unwrap();
    assert_eq!(status, "ACTIVE");
    assert_eq!(vendor_id, Some(principal.vendor_id.as_uuid()));
    assert_eq!(role, "ADMIN");
    assert!(verified);
    assert_eq!(company, None);

    let profile = identity.vendor_profile(&principal).await.unwrap();
    assert_eq!(profile.plan_type, PlanType::Shared);
    assert_eq!(profile.default_country, "IN");

    let me = identity
        .get_user(&principal, principal.user_id)
        .await
        .unwrap();
    assert_eq!(me.status, UserStatus::Active);
    assert_eq!(me.email, email);

    // The code was used up.
    let again = identity
        .verify_otp(
            VerifyOtpInput {
                email: email.clone(),
                otp: latest_code(&stores.pg, &email).await,
            },
            &meta(),
        )
        .await
        .unwrap_err();
    assert!(matches!(again, IdentityError::OtpExpired), "{again:?}");
}

#[tokio::test]
async fn registering_a_known_address_answers_the_same_and_mails_account_exists() {
    // (Without the resend cooldown, which applies to every address alike.)
    let (stores, identity) = setup_with(&[("OTP_RESEND_COOLDOWN", "0s")]).await;
    let (_, _, email) = registered_admin(&identity, &stores).await;
    let mails_before = mails_to(&stores.pg, &email).await.len();

    let answer = identity
        .register(
            RegisterInput {
                password: "another good passphrase".into(),
                company_name: "Hijack Ltd".into(),
                ..register_input(&email.to_uppercase())
            },
            &meta(),
        )
        .await;
    assert!(answer.is_ok(), "{answer:?}");

    let mails = mails_to(&stores.pg, &email).await;
    assert_eq!(mails.len(), mails_before + 1);
    let mail = mails.last().unwrap();
    assert_eq!(mail.category, "account_exists");
    assert_eq!(mail.subject, "You already have a Kloyst account");
    assert!(
        !mail.text.chars().any(|c| c.is_ascii_digit()),
        "no code in it"
    );

    // Nothing changed: the original password still works, the new one does not.
    identity
        .login(
            LoginInput {
                email: email.clone(),
                password: PASSWORD.into(),
            },
            &meta(),
        )
        .await
        .unwrap();
    let err = identity
        .login(
            LoginInput {
                email: email.clone(),
                password: "another good passphrase".into(),
            },
            &meta(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::InvalidCredentials));
    let vendors: i64 = sqlx::query_scalar("SELECT count(*) FROM vendors")
        .fetch_one(&stores.pg)
        .await
        .unwrap();
    assert_eq!(vendors, 1);
    assert_eq!(
        audit_rows(&stores.pg, "auth.register_existing").await.len(),
        1
    );
}

#[tokio::test]
async fn registering_again_while_pending_replaces_the_registration_and_its_code() {
    let (stores, identity) = setup_with(&[("OTP_RESEND_COOLDOWN", "0s")]).await;
    let email = unique_email();
    identity
        .register(register_input(&email), &meta())
        .await
        .unwrap();
    let first = latest_code(&stores.pg, &email).await;
    identity
        .register(
            RegisterInput {
                password: "the second passphrase".into(),
                company_name: "Second Co".into(),
                ..register_input(&email)
            },
            &meta(),
        )
        .await
        .unwrap();
    let second = latest_code(&stores.pg, &email).await;
    assert_eq!(last_mail_to(&stores.pg, &email).await.category, "otp");

    if first != second {
        let err = identity
            .verify_otp(
                VerifyOtpInput {
                    email: email.clone(),
                    otp: first,
                },
                &meta(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, IdentityError::OtpInvalid { .. }), "{err:?}");
    }
    let tokens = identity
        .verify_otp(
            VerifyOtpInput {
                email: email.clone(),
                otp: second,
            },
            &meta(),
        )
        .await
        .unwrap();
    let principal = identity.authenticate(&tokens.access_token).await.unwrap();
    assert_eq!(
        identity
            .vendor_profile(&principal)
            .await
            .unwrap()
            .company_name
            .as_deref(),
        Some("Second Co")
    );
    identity
        .login(
            LoginInput {
                email,
                password: "the second passphrase".into(),
            },
            &meta(),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn weak_passwords_and_bad_fields_are_refused_naming_each_field() {
    let (stores, identity) = setup().await;
    let email = unique_email();
    for (password, code) in [
        ("short1!", "password_too_short"),
        ("Password123", "password_too_common"),
        ("qwertyuiop", "password_too_common"),
        ("aaaaaaaaaaaa", "password_too_common"),
    ] {
        let err = identity
            .register(
                RegisterInput {
                    password: password.into(),
                    ..register_input(&email)
                },
                &meta(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "validation_failed");
        let fields = err.field_errors();
        assert_eq!(fields.len(), 1, "{fields:?}");
        assert_eq!(fields[0].field, "password");
        assert_eq!(fields[0].code, code, "{password}");
    }

    let err = identity
        .register(
            RegisterInput {
                email: "not-an-email".into(),
                password: "short".into(),
                name: " ".into(),
                company_name: "x".repeat(201),
            },
            &meta(),
        )
        .await
        .unwrap_err();
    let mut fields: Vec<String> = err.field_errors().into_iter().map(|f| f.field).collect();
    fields.sort();
    assert_eq!(fields, ["company_name", "email", "name", "password"]);

    // Nothing was created or mailed.
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&stores.pg)
        .await
        .unwrap();
    assert_eq!(users, 0);
    assert!(mails_to(&stores.pg, &email).await.is_empty());
}

#[tokio::test]
async fn send_otp_for_an_unknown_or_verified_address_answers_the_same_without_mail() {
    let (stores, identity) = setup().await;
    let unknown = unique_email();
    identity
        .send_otp(
            SendOtpInput {
                email: unknown.clone(),
            },
            &meta(),
        )
        .await
        .unwrap();
    assert!(mails_to(&stores.pg, &unknown).await.is_empty());

    let (_, _, verified) = registered_admin(&identity, &stores).await;
    let before = mails_to(&stores.pg, &verified).await.len();
    // The cooldown of the registration still runs: a verified address is limited alike.
    let err = identity
        .send_otp(
            SendOtpInput {
                email: verified.clone(),
            },
            &meta(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "otp_resend_cooldown");
    assert_eq!(mails_to(&stores.pg, &verified).await.len(), before);

    let err = identity
        .send_otp(
            SendOtpInput {
                email: "nope".into(),
            },
            &meta(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.field_errors()[0].field, "email");
}
