//! Vendor API keys at the service: authentication, the active-key limit under concurrency,
//! and what a key's tenant transaction sees.

use chrono::{Duration, Utc};
use kloyst_core::{DomainError, ErrorClass};
use kloyst_identity::{
    ApiKeyStatus, ApiScope, Caller, Identity, IdentityError, IdentitySettings, NewApiKey,
    PageRequest, Role, MAX_ACTIVE_API_KEYS,
};
use sqlx::postgres::PgPoolOptions;

use crate::helpers::*;

fn new_key(name: &str, scopes: &[ApiScope]) -> NewApiKey {
    NewApiKey {
        name: name.to_owned(),
        scopes: scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        expires_at: None,
    }
}

#[tokio::test]
async fn a_key_authenticates_as_its_vendor_with_its_known_scopes() {
    let (stores, identity) = setup().await;
    let (admin, _, _) = registered_admin(&identity, &stores).await;
    let mut input = new_key("n8n", &[ApiScope::MessagesRead, ApiScope::MessagesSend]);
    input.expires_at = Some(Utc::now() + Duration::days(1));
    let created = identity
        .create_api_key(&admin, input, &meta())
        .await
        .unwrap();

    let key = identity.authenticate_api_key(&created.key).await.unwrap();
    assert_eq!(key.key_id, created.id);
    assert_eq!(key.vendor_id, admin.vendor_id);
    assert_eq!(
        key.scopes,
        vec![ApiScope::MessagesRead, ApiScope::MessagesSend]
    );

    // A scope this build does not know (a newer release's, or written by hand) grants nothing.
    sqlx::query(
        "UPDATE api_keys SET scopes = ARRAY['messages:read', 'contacts:write'] WHERE id = $1",
    )
    .bind(created.id)
    .execute(&stores.pg)
    .await
    .unwrap();
    let key = identity.authenticate_api_key(&created.key).await.unwrap();
    assert_eq!(key.scopes, vec![ApiScope::MessagesRead]);
    let listed = identity
        .list_api_keys(&admin, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.data[0].scopes, vec![ApiScope::MessagesRead]);
    assert_eq!(listed.data[0].status, ApiKeyStatus::Active);

    // The key's tenant transaction sees its own vendor only.
    let (other, _, _) = registered_admin(&identity, &stores).await;
    let caller = Caller::ApiKey(key);
    let mut tx = caller.begin(&stores.pg).await.unwrap();
    let vendors: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT DISTINCT vendor_id FROM users")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(vendors, vec![admin.vendor_id.as_uuid()]);
    assert_ne!(other.vendor_id, admin.vendor_id);

    // A vendor that is no longer active: its keys stop working.
    sqlx::query("UPDATE vendors SET status = 'SUSPENDED' WHERE id = $1")
        .bind(admin.vendor_id.as_uuid())
        .execute(&stores.pg)
        .await
        .unwrap();
    let err = identity
        .authenticate_api_key(&created.key)
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::ApiKeyInvalid), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Unauthenticated);
}

#[tokio::test]
async fn a_malformed_key_is_refused_without_the_database() {
    let stores = kloyst_testkit::TestStores::new().await;
    let settings = IdentitySettings::from_env(&stores.env()).unwrap();
    // Nothing listens on port 1: any query fails.
    let unreachable = PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(500))
        .connect_lazy("postgres://kloyst@127.0.0.1:1/nothing")
        .unwrap();
    let identity = Identity::new(unreachable, stores.redis.clone(), settings);
    for garbage in ["", "Bearer x", "kly_", "kly_abc_def", "eyJhbGciOi.x.y"] {
        let err = identity.authenticate_api_key(garbage).await.unwrap_err();
        assert!(matches!(err, IdentityError::ApiKeyInvalid), "{err:?}");
    }
    // A well-formed key is looked up, and here the lookup fails: proof that the ones above
    // were not.
    let well_formed = format!("kly_{}_{}", "a".repeat(12), "B".repeat(40));
    let err = identity
        .authenticate_api_key(&well_formed)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Internal, "{err:?}");
}

#[tokio::test]
async fn concurrent_creations_never_pass_the_active_key_limit() {
    let (stores, identity) = setup().await;
    let (admin, _, _) = registered_admin(&identity, &stores).await;
    let attempts = MAX_ACTIVE_API_KEYS as usize + 5;
    let tasks: Vec<_> = (0..attempts)
        .map(|n| {
            let identity = identity.clone();
            let admin = admin.clone();
            tokio::spawn(async move {
                identity
                    .create_api_key(
                        &admin,
                        new_key(&format!("key {n}"), &[ApiScope::MessagesSend]),
                        &meta(),
                    )
                    .await
            })
        })
        .collect();
    let mut created = 0;
    let mut limited = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(IdentityError::ApiKeyLimit { max }) => {
                assert_eq!(max, MAX_ACTIVE_API_KEYS);
                limited += 1;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((created, limited), (MAX_ACTIVE_API_KEYS as usize, 5));
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE vendor_id = $1")
        .bind(admin.vendor_id.as_uuid())
        .fetch_one(&stores.pg)
        .await
        .unwrap();
    assert_eq!(stored, i64::from(MAX_ACTIVE_API_KEYS));
    let audited = audit_rows(&stores.pg, "api_key.created").await;
    assert_eq!(audited.len(), MAX_ACTIVE_API_KEYS as usize);
}

#[tokio::test]
async fn only_an_admin_manages_keys() {
    let (stores, identity) = setup().await;
    let (admin, _, _) = registered_admin(&identity, &stores).await;
    let (staff, _, _) = invited_member(&identity, &stores, &admin, Role::Staff).await;
    let created = identity
        .create_api_key(&admin, new_key("n8n", &[ApiScope::MessagesRead]), &meta())
        .await
        .unwrap();
    let err = identity
        .create_api_key(&staff, new_key("mine", &[ApiScope::MessagesRead]), &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::AdminOnly), "{err:?}");
    let err = identity
        .list_api_keys(&staff, PageRequest::default())
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::AdminOnly), "{err:?}");
    let err = identity
        .revoke_api_key(&staff, created.id, &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::AdminOnly), "{err:?}");
    assert!(identity.authenticate_api_key(&created.key).await.is_ok());

    identity
        .revoke_api_key(&admin, created.id, &meta())
        .await
        .unwrap();
    let err = identity
        .authenticate_api_key(&created.key)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "api_key_invalid");
    let revoked = audit_rows(&stores.pg, "api_key.revoked").await;
    assert_eq!(revoked.len(), 1);
    assert!(!revoked[0].to_string().contains(&created.key[17..]));
}
