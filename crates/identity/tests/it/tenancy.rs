//! Vendor A's principal can neither read, change nor learn of vendor B's users.

use kloyst_core::{DomainError, ErrorClass, UserId};
use kloyst_db::begin_tenant;
use kloyst_identity::{IdentityError, PageRequest, Role, UserPatch, UserStatusChange};
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn another_vendors_user_is_not_found_exactly_like_a_missing_one() {
    let (stores, identity) = setup().await;
    let (a, _, _) = registered_admin(&identity, &stores).await;
    let (b, _, _) = registered_admin(&identity, &stores).await;
    let (b_staff, _, _) = invited_member(&identity, &stores, &b, Role::Staff).await;
    let missing = UserId::from_uuid(Uuid::new_v4());

    for target in [b.user_id, b_staff.user_id, missing] {
        let err = identity.get_user(&a, target).await.unwrap_err();
        assert!(matches!(err, IdentityError::NotFound("user")), "{err:?}");
        assert_eq!(err.class(), ErrorClass::NotFound);
        let err = identity
            .update_user(
                &a,
                target,
                UserPatch {
                    status: Some(UserStatusChange::Disabled),
                    role: Some(Role::Staff),
                    name: Some("Pwned".into()),
                },
                &meta(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, IdentityError::NotFound("user")), "{err:?}");
        assert_eq!(err.to_string(), "user not found");
    }

    // B's users are untouched.
    let b_view = identity.get_user(&b, b_staff.user_id).await.unwrap();
    assert_eq!(b_view.role, Role::Staff);
    assert_eq!(b_view.name, "Ravi Kumar");
    let (status, name): (String, String) =
        sqlx::query_as("SELECT status, name FROM users WHERE id = $1")
            .bind(b.user_id.as_uuid())
            .fetch_one(&stores.pg)
            .await
            .unwrap();
    assert_eq!((status.as_str(), name.as_str()), ("ACTIVE", "Asha Rao"));

    // Lists never show the other vendor's users.
    let a_list = identity
        .list_users(&a, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        a_list.data.iter().map(|u| u.id).collect::<Vec<_>>(),
        vec![a.user_id]
    );
    let b_list = identity
        .list_users(&b, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(b_list.data.len(), 2);
    assert!(b_list.data.iter().all(|u| u.id != a.user_id));

    // A cursor taken from B's list positions A's list, but never shows B's rows.
    let b_page = identity
        .list_users(
            &b,
            PageRequest {
                limit: Some(1),
                cursor: None,
            },
        )
        .await
        .unwrap();
    let from_b = identity
        .list_users(
            &a,
            PageRequest {
                limit: None,
                cursor: b_page.next_cursor,
            },
        )
        .await
        .unwrap();
    assert!(from_b.data.iter().all(|u| u.id == a.user_id));

    // Profiles are each vendor's own.
    assert_eq!(identity.vendor_profile(&a).await.unwrap().id, a.vendor_id);
    assert_eq!(identity.vendor_profile(&b).await.unwrap().id, b.vendor_id);
}

/// The second wall: an unfiltered query in A's tenant transaction sees only A's rows.
#[tokio::test]
async fn row_level_security_hides_other_tenants_from_an_unfiltered_query() {
    let (stores, identity) = setup().await;
    let (a, _, _) = registered_admin(&identity, &stores).await;
    let (b, _, _) = registered_admin(&identity, &stores).await;
    invited_member(&identity, &stores, &b, Role::Staff).await;

    let mut tx = begin_tenant(&stores.pg, a.vendor_id).await.unwrap();
    let users: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM users")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(users, vec![a.user_id.as_uuid()]);
    let vendors: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM vendors")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(vendors, vec![a.vendor_id.as_uuid()]);
    let tokens: Vec<Uuid> = sqlx::query_scalar("SELECT DISTINCT vendor_id FROM refresh_tokens")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(tokens, vec![a.vendor_id.as_uuid()]);
    let changed = sqlx::query("UPDATE users SET name = 'Pwned' WHERE vendor_id = $1")
        .bind(b.vendor_id.as_uuid())
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 0);
    tx.rollback().await.unwrap();
    // All three vendors' users exist (seen by system work).
    let all: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&stores.pg)
        .await
        .unwrap();
    assert_eq!(all, 3);
}

#[tokio::test]
async fn a_token_names_its_vendor_and_a_user_moved_elsewhere_is_refused() {
    let (stores, identity) = setup().await;
    let (a, tokens, _) = registered_admin(&identity, &stores).await;
    let (b, _, _) = registered_admin(&identity, &stores).await;
    // A second admin in A, so the move does not trip the last-admin rule.
    let (a2, a2_tokens, _) = invited_member(&identity, &stores, &a, Role::Admin).await;
    // (Its refresh tokens point at (vendor, user): an operator would remove them first.)
    sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1")
        .bind(a2.user_id.as_uuid())
        .execute(&stores.pg)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET vendor_id = $2 WHERE id = $1")
        .bind(a2.user_id.as_uuid())
        .bind(b.vendor_id.as_uuid())
        .execute(&stores.pg)
        .await
        .unwrap();
    let err = identity
        .authenticate(&a2_tokens.access_token)
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::TokenInvalid), "{err:?}");
    assert_eq!(err.code(), "token_invalid");
    // The others are unaffected.
    assert_eq!(
        identity.authenticate(&tokens.access_token).await.unwrap(),
        a
    );
}
