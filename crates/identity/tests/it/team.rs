//! Team: invitations, roles, the last ADMIN, disabling.

use kloyst_core::{DomainError, ErrorClass};
use kloyst_identity::{
    AcceptInviteInput, IdentityError, InviteInput, LoginInput, PageRequest, RefreshInput, Role,
    UserPatch, UserStatus, UserStatusChange, VendorPatch, VerifyOtpInput,
};

use crate::helpers::*;

fn invite(email: &str, role: Role) -> InviteInput {
    InviteInput {
        email: email.to_owned(),
        role,
        name: None,
    }
}

fn accept(email: &str, otp: &str, password: &str) -> AcceptInviteInput {
    AcceptInviteInput {
        email: email.to_owned(),
        otp: otp.to_owned(),
        password: password.to_owned(),
        name: Some("Meera Iyer".to_owned()),
    }
}

#[tokio::test]
async fn an_invitee_accepts_with_the_mailed_code_and_gets_tokens() {
    let (stores, identity) = setup().await;
    let (admin, _, _) = registered_admin(&identity, &stores).await;
    let email = unique_email();
    let invited = identity
        .invite(&admin, invite(&email.to_uppercase(), Role::Staff), &meta())
        .await
        .unwrap();
    assert_eq!(invited.status, UserStatus::Invited);
    assert_eq!(invited.role, Role::Staff);
    assert_eq!(invited.email, email);
    assert_eq!(invited.name, email.split('@').next().unwrap());

    let mail = last_mail_to(&stores.pg, &email).await;
    assert_eq!(mail.category, "invite");
    assert_eq!(
        mail.subject,
        "You are invited to join Acme Traders on Kloyst"
    );
    assert!(mail.text.contains("Asha Rao invited you"), "{}", mail.text);
    assert!(mail.text.contains("expires in 72 hours"), "{}", mail.text);
    let code = code_in(&mail);

    // An invitee cannot log in before accepting (no password yet).
    let err = identity
        .login(
            LoginInput {
                email: email.clone(),
                password: PASSWORD.into(),
            },
            &meta(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::InvalidCredentials));

    // The password policy applies, and a refused password does not burn the code.
    let err = identity
        .accept_invite(accept(&email, &code, "password123"), &meta())
        .await
        .unwrap_err();
    assert_eq!(err.field_errors()[0].field, "password");

    let tokens = identity
        .accept_invite(accept(&email, &code, PASSWORD), &meta())
        .await
        .unwrap();
    let member = identity.authenticate(&tokens.access_token).await.unwrap();
    assert_eq!(member.vendor_id, admin.vendor_id);
    assert_eq!(member.role, Role::Staff);
    assert_eq!(member.user_id, invited.id);

    let view = identity.get_user(&admin, member.user_id).await.unwrap();
    assert_eq!(view.status, UserStatus::Active);
    assert_eq!(view.name, "Meera Iyer");
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
    // The code is used up.
    let err = identity
        .accept_invite(accept(&email, &code, PASSWORD), &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::OtpExpired), "{err:?}");
    assert_eq!(audit_rows(&stores.pg, "user.invited").await.len(), 1);
    assert_eq!(
        audit_rows(&stores.pg, "user.invite_accepted").await.len(),
        1
    );
}

#[tokio::test]
async fn invitation_and_verification_codes_are_not_interchangeable() {
    let (stores, identity) = setup().await;
    let (admin, _, _) = registered_admin(&identity, &stores).await;
    let email = unique_email();
    identity
        .invite(&admin, invite(&email, Role::Staff), &meta())
        .await
        .unwrap();
    let code = latest_code(&stores.pg, &email).await;
    let err = identity
        .verify_otp(
            VerifyOtpInput {
                email: email.clone(),
                otp: code.clone(),
            },
            &meta(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::OtpExpired), "{err:?}");

    let pending = unique_email();
    identity
        .register(register_input(&pending), &meta())
        .await
        .unwrap();
    let verification = latest_code(&stores.pg, &pending).await;
    let err = identity
        .accept_invite(accept(&pending, &verification, PASSWORD), &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::OtpExpired), "{err:?}");
    // Both codes still work for their own purpose.
    identity
        .accept_invite(accept(&email, &code, PASSWORD), &meta())
        .await
        .unwrap();
    identity
        .verify_otp(
            VerifyOtpInput {
                email: pending,
                otp: verification,
            },
            &meta(),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn staff_may_read_but_not_manage() {
    let (stores, identity) = setup().await;
    let (admin, _, _) = registered_admin(&identity, &stores).await;
    let (staff, _, _) = invited_member(&identity, &stores, &admin, Role::Staff).await;

    let refusals = [
        identity
            .invite(&staff, invite(&unique_email(), Role::Staff), &meta())
            .await
            .map(|_| ()),
        identity
            .update_user(
                &staff,
                admin.user_id,
                UserPatch {
                    role: Some(Role::Staff),
                    ..UserPatch::default()
                },
                &meta(),
            )
            .await
            .map(|_| ()),
        identity
            .update_user(
                &staff,
                staff.user_id,
                UserPatch {
                    role: Some(Role::Admin),
                    ..UserPatch::default()
                },
                &meta(),
            )
            .await
            .map(|_| ()),
        identity
            .update_vendor_profile(
                &staff,
                VendorPatch {
                    company_name: Some("Taken Over".into()),
                    ..VendorPatch::default()
                },
                &meta(),
            )
            .await
            .map(|_| ()),
    ];
    for refusal in refusals {
        let err = refusal.unwrap_err();
        assert!(matches!(err, IdentityError::AdminOnly), "{err:?}");
        assert_eq!(err.class(), ErrorClass::Forbidden);
        assert_eq!(err.code(), "admin_only");
    }
    // Reading is for every role.
    assert_eq!(
        identity
            .list_users(&staff, PageRequest::default())
            .await
            .unwrap()
            .data
            .len(),
        2
    );
    identity.get_user(&staff, admin.user_id).await.unwrap();
    assert_eq!(
        identity
            .vendor_profile(&staff)
            .await
            .unwrap()
            .company_name
            .as_deref(),
        Some("Acme Traders")
    );
}

#[tokio::test]
async fn an_existing_address_is_email_taken_and_a_pending_invitee_is_invited_again() {
    let (stores, identity) = setup().await;
    let (admin, _, admin_email) = registered_admin(&identity, &stores).await;
    let (_, _, other_vendors_admin) = registered_admin(&identity, &stores).await;
    let (_, _, member) = invited_member(&identity, &stores, &admin, Role::Staff).await;
    for taken in [admin_email, other_vendors_admin, member] {
        let err = identity
            .invite(&admin, invite(&taken, Role::Staff), &meta())
            .await
            .unwrap_err();
        assert!(matches!(err, IdentityError::EmailTaken), "{err:?}");
        assert_eq!(err.class(), ErrorClass::Conflict);
        assert_eq!(err.code(), "email_taken");
    }

    let email = unique_email();
    identity
        .invite(&admin, invite(&email, Role::Staff), &meta())
        .await
        .unwrap();
    let first = latest_code(&stores.pg, &email).await;
    let again = identity
        .invite(&admin, invite(&email, Role::Admin), &meta())
        .await
        .unwrap();
    assert_eq!(again.role, Role::Admin);
    assert_eq!(again.status, UserStatus::Invited);
    let second = latest_code(&stores.pg, &email).await;
    assert_eq!(mails_to(&stores.pg, &email).await.len(), 2);
    if first != second {
        assert!(identity
            .accept_invite(accept(&email, &first, PASSWORD), &meta())
            .await
            .is_err());
    }
    let tokens = identity
        .accept_invite(accept(&email, &second, PASSWORD), &meta())
        .await
        .unwrap();
    assert_eq!(
        identity
            .authenticate(&tokens.access_token)
            .await
            .unwrap()
            .role,
        Role::Admin
    );
}

#[tokio::test]
async fn the_last_active_admin_can_be_neither_demoted_nor_disabled() {
    let (stores, identity) = setup().await;
    let (admin, _, _) = registered_admin(&identity, &stores).await;
    for patch in [
        UserPatch {
            role: Some(Role::Staff),
            ..UserPatch::default()
        },
        UserPatch {
            status: Some(UserStatusChange::Disabled),
            ..UserPatch::default()
        },
    ] {
        let err = identity
            .update_user(&admin, admin.user_id, patch, &meta())
            .await
            .unwrap_err();
        assert!(matches!(err, IdentityError::LastAdmin), "{err:?}");
        assert_eq!(err.class(), ErrorClass::Conflict);
        assert_eq!(err.code(), "last_admin");
    }

    // The database trigger holds the rule too, and maps to the same error.
    let db_error = sqlx::query("UPDATE users SET role = 'STAFF' WHERE id = $1")
        .bind(admin.user_id.as_uuid())
        .execute(&stores.pg)
        .await
        .unwrap_err();
    assert!(matches!(
        IdentityError::from(db_error),
        IdentityError::LastAdmin
    ));

    // With a second ADMIN, the first may step down.
    let (second, _, _) = invited_member(&identity, &stores, &admin, Role::Admin).await;
    let demoted = identity
        .update_user(
            &second,
            admin.user_id,
            UserPatch {
                role: Some(Role::Staff),
                ..UserPatch::default()
            },
            &meta(),
        )
        .await
        .unwrap();
    assert_eq!(demoted.role, Role::Staff);
    let err = identity
        .update_user(
            &second,
            second.user_id,
            UserPatch {
                status: Some(UserStatusChange::Disabled),
                ..UserPatch::default()
            },
            &meta(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::LastAdmin), "{err:?}");
    let rows = audit_rows(&stores.pg, "user.role_changed").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["details"]["from"], "ADMIN");
    assert_eq!(rows[0]["details"]["to"], "STAFF");
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions_and_logins() {
    let (stores, identity) = setup().await;
    let (admin, _, _) = registered_admin(&identity, &stores).await;
    let (staff, staff_tokens, staff_email) =
        invited_member(&identity, &stores, &admin, Role::Staff).await;

    let view = identity
        .update_user(
            &admin,
            staff.user_id,
            UserPatch {
                status: Some(UserStatusChange::Disabled),
                ..UserPatch::default()
            },
            &meta(),
        )
        .await
        .unwrap();
    assert_eq!(view.status, UserStatus::Disabled);

    let err = identity
        .authenticate(&staff_tokens.access_token)
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::TokenInvalid), "{err:?}");
    // The one-call read of the profile checks the session too.
    let err = identity.vendor_profile(&staff).await.unwrap_err();
    assert!(matches!(err, IdentityError::TokenInvalid), "{err:?}");
    let err = identity
        .refresh(
            RefreshInput {
                refresh_token: staff_tokens.refresh_token.clone(),
            },
            &meta(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::TokenInvalid), "{err:?}");
    let login = LoginInput {
        email: staff_email,
        password: PASSWORD.into(),
    };
    let err = identity.login(login.clone(), &meta()).await.unwrap_err();
    assert!(matches!(err, IdentityError::InvalidCredentials), "{err:?}");
    let reasons: Vec<String> =
        sqlx::query_scalar("SELECT revoke_reason FROM refresh_tokens WHERE user_id = $1")
            .bind(staff.user_id.as_uuid())
            .fetch_all(&stores.pg)
            .await
            .unwrap();
    assert_eq!(reasons, ["USER_DISABLED"]);
    assert_eq!(audit_rows(&stores.pg, "user.disabled").await.len(), 1);

    // Enabled again: they log in anew (old sessions stay revoked).
    identity
        .update_user(
            &admin,
            staff.user_id,
            UserPatch {
                status: Some(UserStatusChange::Active),
                ..UserPatch::default()
            },
            &meta(),
        )
        .await
        .unwrap();
    identity.login(login, &meta()).await.unwrap();
    assert_eq!(audit_rows(&stores.pg, "user.enabled").await.len(), 1);
}

#[tokio::test]
async fn a_role_change_refuses_older_access_tokens_until_refresh() {
    let (stores, identity) = setup().await;
    let (admin, _, _) = registered_admin(&identity, &stores).await;
    let (staff, tokens, _) = invited_member(&identity, &stores, &admin, Role::Staff).await;
    identity
        .update_user(
            &admin,
            staff.user_id,
            UserPatch {
                role: Some(Role::Admin),
                name: Some("  Ravi K  ".into()),
                ..UserPatch::default()
            },
            &meta(),
        )
        .await
        .unwrap();
    let err = identity
        .authenticate(&tokens.access_token)
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::TokenInvalid), "{err:?}");
    let err = identity.vendor_profile(&staff).await.unwrap_err();
    assert!(matches!(err, IdentityError::TokenInvalid), "{err:?}");
    let fresh = identity
        .refresh(
            RefreshInput {
                refresh_token: tokens.refresh_token,
            },
            &meta(),
        )
        .await
        .unwrap();
    let promoted = identity.authenticate(&fresh.access_token).await.unwrap();
    assert_eq!(promoted.role, Role::Admin);
    assert_eq!(
        identity.get_user(&admin, staff.user_id).await.unwrap().name,
        "Ravi K"
    );
    assert_eq!(audit_rows(&stores.pg, "user.updated").await.len(), 1);
}

#[tokio::test]
async fn users_are_listed_newest_first_page_by_page() {
    let (stores, identity) = setup().await;
    let (admin, _, _) = registered_admin(&identity, &stores).await;
    for _ in 0..4 {
        identity
            .invite(&admin, invite(&unique_email(), Role::Staff), &meta())
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = identity
            .list_users(
                &admin,
                PageRequest {
                    limit: Some(2),
                    cursor: cursor.clone(),
                },
            )
            .await
            .unwrap();
        pages += 1;
        assert!(page.data.len() <= 2);
        seen.extend(page.data);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 5);
    let mut ids: Vec<_> = seen.iter().map(|u| u.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "no user twice");
    assert!(seen
        .windows(2)
        .all(|w| (w[0].created_at, w[0].id) > (w[1].created_at, w[1].id)));
    assert_eq!(
        seen.last().unwrap().id,
        admin.user_id,
        "the first user is the oldest"
    );

    let err = identity
        .list_users(
            &admin,
            PageRequest {
                limit: None,
                cursor: Some("garbage".into()),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.field_errors()[0].field, "cursor");
    let err = identity
        .list_users(
            &admin,
            PageRequest {
                limit: Some(0),
                cursor: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.field_errors()[0].field, "limit");
}

#[tokio::test]
async fn a_disabled_invitee_cannot_accept_and_is_invited_again_when_enabled() {
    let (stores, identity) = setup().await;
    let (admin, _, _) = registered_admin(&identity, &stores).await;
    let email = unique_email();
    let invited = identity
        .invite(&admin, invite(&email, Role::Staff), &meta())
        .await
        .unwrap();
    let code = latest_code(&stores.pg, &email).await;
    let disable = UserPatch {
        status: Some(UserStatusChange::Disabled),
        ..UserPatch::default()
    };
    let view = identity
        .update_user(&admin, invited.id, disable, &meta())
        .await
        .unwrap();
    assert_eq!(view.status, UserStatus::Disabled);
    let err = identity
        .accept_invite(accept(&email, &code, PASSWORD), &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::OtpExpired), "{err:?}");

    // Without a password it cannot be ACTIVE: enabling puts the invitation back.
    let enable = UserPatch {
        status: Some(UserStatusChange::Active),
        ..UserPatch::default()
    };
    let view = identity
        .update_user(&admin, invited.id, enable, &meta())
        .await
        .unwrap();
    assert_eq!(view.status, UserStatus::Invited);
    identity
        .invite(&admin, invite(&email, Role::Staff), &meta())
        .await
        .unwrap();
    let code = latest_code(&stores.pg, &email).await;
    identity
        .accept_invite(accept(&email, &code, PASSWORD), &meta())
        .await
        .unwrap();
}
