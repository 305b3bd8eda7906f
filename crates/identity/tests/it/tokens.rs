//! Access tokens (claims, forgeries refused) and refresh tokens (rotation, reuse, logout).

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use kloyst_core::{DomainError, ErrorClass};
use kloyst_identity::{IdentityError, LoginInput, RefreshInput, TokenPair};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::helpers::*;

fn refresh(pair: &TokenPair) -> RefreshInput {
    RefreshInput {
        refresh_token: pair.refresh_token.clone(),
    }
}

#[tokio::test]
async fn the_access_token_carries_the_documented_claims() {
    let (stores, identity) = setup().await;
    let (admin, tokens, _) = registered_admin(&identity, &stores).await;
    let header = jsonwebtoken::decode_header(&tokens.access_token).unwrap();
    assert_eq!(header.alg, Algorithm::HS256);
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&["kloyst"]);
    let claims = jsonwebtoken::decode::<Value>(
        &tokens.access_token,
        &DecodingKey::from_secret(jwt_secret(&stores).as_bytes()),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["sub"], admin.user_id.to_string());
    assert_eq!(claims["vendor_id"], admin.vendor_id.to_string());
    assert_eq!(claims["role"], "ADMIN");
    assert_eq!(claims["iss"], "kloyst");
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 900);
    assert!((iat - Utc::now().timestamp()).abs() < 60);
    assert!(Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());
    // The refresh token is opaque and only its SHA-256 is stored.
    let hash = Sha256::digest(tokens.refresh_token.as_bytes()).to_vec();
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM refresh_tokens WHERE token_hash = $1")
            .bind(&hash)
            .fetch_one(&stores.pg)
            .await
            .unwrap();
    assert_eq!(stored, 1);
    // "Bearer <token>" is accepted too.
    identity
        .authenticate(&format!("Bearer {}", tokens.access_token))
        .await
        .unwrap();
}

/// Claims as the service writes them, for forging.
fn claims_of(stores_secret: &str, token: &str) -> Value {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&["kloyst"]);
    jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_secret(stores_secret.as_bytes()),
        &validation,
    )
    .unwrap()
    .claims
}

fn hand_built(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes()),
        signature
    )
}

fn hmac_sha256(secret: &str, data: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    b64url(&mac.finalize().into_bytes())
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let (stores, identity) = setup().await;
    let (_, tokens, _) = registered_admin(&identity, &stores).await;
    let secret = jwt_secret(&stores);
    let claims = claims_of(&secret, &tokens.access_token);
    let now = Utc::now().timestamp();

    let sign = |header: Header, claims: &Value, key: &str| {
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(key.as_bytes())).unwrap()
    };
    let mut expired = claims.clone();
    expired["iat"] = json!(now - 7200);
    expired["exp"] = json!(now - 3600);
    let mut foreign_issuer = claims.clone();
    foreign_issuer["iss"] = json!("someone-else");
    let mut no_vendor = claims.clone();
    no_vendor.as_object_mut().unwrap().remove("vendor_id");
    let mut no_exp = claims.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    let mut from_the_future = claims.clone();
    from_the_future["iat"] = json!(now + 3600);
    from_the_future["exp"] = json!(now + 7200);
    let mut demoted = claims.clone();
    demoted["role"] = json!("STAFF");

    // A genuine token with a changed payload and the original signature.
    let genuine_parts: Vec<&str> = tokens.access_token.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        genuine_parts[0],
        b64url(demoted.to_string().as_bytes()),
        genuine_parts[2]
    );
    // `alg: none`, with and without a signature.
    let none = hand_built(&json!({"alg": "none", "typ": "JWT"}), &claims, "");
    let none_signed = hand_built(
        &json!({"alg": "none", "typ": "JWT"}),
        &claims,
        genuine_parts[2],
    );
    // RS256 header "signed" with the HMAC secret (the key-confusion attack).
    let rs256_input = format!(
        "{}.{}",
        b64url(json!({"alg": "RS256", "typ": "JWT"}).to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let rs256 = format!("{rs256_input}.{}", hmac_sha256(&secret, &rs256_input));

    let forgeries = [
        (
            "wrong signature",
            sign(
                Header::new(Algorithm::HS256),
                &claims,
                "another-secret-that-is-long-enough-000",
            ),
        ),
        (
            "HS512 with the real secret",
            sign(Header::new(Algorithm::HS512), &claims, &secret),
        ),
        (
            "HS384 with the real secret",
            sign(Header::new(Algorithm::HS384), &claims, &secret),
        ),
        ("RS256 header", rs256),
        ("alg none", none),
        ("alg none with a signature", none_signed),
        (
            "expired",
            sign(Header::new(Algorithm::HS256), &expired, &secret),
        ),
        (
            "foreign issuer",
            sign(Header::new(Algorithm::HS256), &foreign_issuer, &secret),
        ),
        (
            "missing vendor_id",
            sign(Header::new(Algorithm::HS256), &no_vendor, &secret),
        ),
        (
            "missing exp",
            sign(Header::new(Algorithm::HS256), &no_exp, &secret),
        ),
        (
            "issued in the future",
            sign(Header::new(Algorithm::HS256), &from_the_future, &secret),
        ),
        ("tampered payload", tampered),
        ("garbage", "not-a-token".to_owned()),
        ("empty", String::new()),
    ];
    for (what, token) in forgeries {
        let err = identity.authenticate(&token).await.unwrap_err();
        assert!(
            matches!(err, IdentityError::TokenInvalid),
            "{what}: {err:?}"
        );
        assert_eq!(err.class(), ErrorClass::Unauthenticated, "{what}");
        assert_eq!(err.code(), "token_invalid", "{what}");
    }
    // A token properly signed by us with the role the user really has still works.
    let resigned = sign(Header::new(Algorithm::HS256), &claims, &secret);
    identity.authenticate(&resigned).await.unwrap();
    // … but with a role the user does not have, it does not.
    let mut wrong_role = claims.clone();
    wrong_role["role"] = json!("STAFF");
    let err = identity
        .authenticate(&sign(Header::new(Algorithm::HS256), &wrong_role, &secret))
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::TokenInvalid));
}

#[tokio::test]
async fn refresh_rotates_the_token_within_its_family() {
    let (stores, identity) = setup().await;
    let (admin, first, _) = registered_admin(&identity, &stores).await;
    let second = identity.refresh(refresh(&first), &meta()).await.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(
        identity.authenticate(&second.access_token).await.unwrap(),
        admin
    );
    let third = identity.refresh(refresh(&second), &meta()).await.unwrap();
    identity.authenticate(&third.access_token).await.unwrap();

    let rows: Vec<(Uuid, bool, bool, bool)> = sqlx::query_as(
        "SELECT family_id, used_at IS NOT NULL, replaced_by IS NOT NULL, revoked_at IS NOT NULL
           FROM refresh_tokens ORDER BY issued_at, id",
    )
    .fetch_all(&stores.pg)
    .await
    .unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.0 == rows[0].0), "one family");
    let used = rows.iter().filter(|r| r.1 && r.2).count();
    let live = rows.iter().filter(|r| !r.1 && !r.2 && !r.3).count();
    assert_eq!((used, live), (2, 1));
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_family() {
    let (stores, identity) = setup().await;
    let (_, first, email) = registered_admin(&identity, &stores).await;
    // Another session of the same user (its own family) must survive.
    let other_session = identity
        .login(
            LoginInput {
                email,
                password: PASSWORD.into(),
            },
            &meta(),
        )
        .await
        .unwrap();
    let second = identity.refresh(refresh(&first), &meta()).await.unwrap();

    let err = identity
        .refresh(refresh(&first), &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::RefreshTokenReused), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Unauthenticated);
    assert_eq!(err.code(), "refresh_token_reused");
    // The newest token of the family (maybe the thief's, maybe the victim's) is dead too.
    let err = identity
        .refresh(refresh(&second), &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::TokenInvalid), "{err:?}");
    identity
        .refresh(refresh(&other_session), &meta())
        .await
        .unwrap();

    let reasons: Vec<Option<String>> =
        sqlx::query_scalar("SELECT revoke_reason FROM refresh_tokens WHERE revoked_at IS NOT NULL")
            .fetch_all(&stores.pg)
            .await
            .unwrap();
    assert_eq!(reasons.len(), 2);
    assert!(reasons
        .iter()
        .all(|r| r.as_deref() == Some("REUSE_DETECTED")));
    let rows = audit_rows(&stores.pg, "auth.token_family_revoked").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["details"]["reason"], "refresh_token_reused");
    assert_eq!(rows[0]["details"]["tokens_revoked"], 2);
}

#[tokio::test]
async fn logout_revokes_the_family_and_is_idempotent() {
    let (stores, identity) = setup().await;
    let (_, first, _) = registered_admin(&identity, &stores).await;
    let second = identity.refresh(refresh(&first), &meta()).await.unwrap();
    identity.logout(refresh(&second), &meta()).await.unwrap();
    let err = identity
        .refresh(refresh(&second), &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::TokenInvalid), "{err:?}");
    // Again, and with a token that never existed: the same success.
    identity.logout(refresh(&second), &meta()).await.unwrap();
    identity
        .logout(
            RefreshInput {
                refresh_token: "0".repeat(64),
            },
            &meta(),
        )
        .await
        .unwrap();
    let reasons: Vec<String> =
        sqlx::query_scalar("SELECT revoke_reason FROM refresh_tokens WHERE revoked_at IS NOT NULL")
            .fetch_all(&stores.pg)
            .await
            .unwrap();
    // The rotated token and the live one: the whole family.
    assert_eq!(reasons, ["LOGOUT", "LOGOUT"]);
    assert_eq!(audit_rows(&stores.pg, "auth.logout").await.len(), 1);
}

#[tokio::test]
async fn an_unknown_or_expired_refresh_token_is_invalid() {
    let (stores, identity) = setup_with(&[("JWT_REFRESH_TTL", "1s")]).await;
    let (_, tokens, _) = registered_admin(&identity, &stores).await;
    let err = identity
        .refresh(
            RefreshInput {
                refresh_token: "f".repeat(64),
            },
            &meta(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::TokenInvalid));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let err = identity
        .refresh(refresh(&tokens), &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::TokenInvalid), "{err:?}");
}
