//! Every mutation leaves an audit row with the request id and client address, and no row
//! ever holds a password, a code or a token.

use std::collections::BTreeSet;

use kloyst_identity::{
    AcceptInviteInput, InviteInput, LoginInput, RefreshInput, Role, SendOtpInput, UserPatch,
    UserStatusChange, VendorPatch, VerifyOtpInput,
};

use crate::helpers::*;

#[tokio::test]
async fn every_mutation_is_audited_without_secrets() {
    let (stores, identity) = setup_with(&[("OTP_RESEND_COOLDOWN", "0s")]).await;
    let mut secrets: Vec<String> = vec![PASSWORD.to_owned()];
    let request = meta();

    // register, resend, verify
    let email = unique_email();
    identity
        .register(register_input(&email), &request)
        .await
        .unwrap();
    identity
        .send_otp(
            SendOtpInput {
                email: email.clone(),
            },
            &request,
        )
        .await
        .unwrap();
    let code = latest_code(&stores.pg, &email).await;
    secrets.push(code.clone());
    let tokens = identity
        .verify_otp(
            VerifyOtpInput {
                email: email.clone(),
                otp: code,
            },
            &request,
        )
        .await
        .unwrap();
    let admin = identity.authenticate(&tokens.access_token).await.unwrap();
    secrets.extend([tokens.access_token.clone(), tokens.refresh_token.clone()]);

    // login failure and success, refresh, reuse, logout
    let wrong = "a wrong password, typed by mistake";
    secrets.push(wrong.to_owned());
    let _ = identity
        .login(
            LoginInput {
                email: email.clone(),
                password: wrong.into(),
            },
            &request,
        )
        .await;
    let session = identity
        .login(
            LoginInput {
                email: email.clone(),
                password: PASSWORD.into(),
            },
            &request,
        )
        .await
        .unwrap();
    let rotated = identity
        .refresh(
            RefreshInput {
                refresh_token: session.refresh_token.clone(),
            },
            &request,
        )
        .await
        .unwrap();
    secrets.extend([
        session.refresh_token.clone(),
        rotated.refresh_token.clone(),
        rotated.access_token.clone(),
    ]);
    let _ = identity
        .refresh(
            RefreshInput {
                refresh_token: session.refresh_token.clone(),
            },
            &request,
        )
        .await;
    identity
        .logout(
            RefreshInput {
                refresh_token: tokens.refresh_token.clone(),
            },
            &request,
        )
        .await
        .unwrap();

    // team: invite, accept, role change, disable; vendor profile
    let member_email = unique_email();
    let member = identity
        .invite(
            &admin,
            InviteInput {
                email: member_email.clone(),
                role: Role::Staff,
                name: None,
            },
            &request,
        )
        .await
        .unwrap();
    let invite_code = latest_code(&stores.pg, &member_email).await;
    secrets.push(invite_code.clone());
    let member_password = "the member's own passphrase";
    secrets.push(member_password.to_owned());
    let member_tokens = identity
        .accept_invite(
            AcceptInviteInput {
                email: member_email,
                otp: invite_code,
                password: member_password.into(),
                name: None,
            },
            &request,
        )
        .await
        .unwrap();
    secrets.extend([
        member_tokens.access_token.clone(),
        member_tokens.refresh_token.clone(),
    ]);
    identity
        .update_user(
            &admin,
            member.id,
            UserPatch {
                role: Some(Role::Admin),
                ..UserPatch::default()
            },
            &request,
        )
        .await
        .unwrap();
    identity
        .update_user(
            &admin,
            member.id,
            UserPatch {
                status: Some(UserStatusChange::Disabled),
                ..UserPatch::default()
            },
            &request,
        )
        .await
        .unwrap();
    identity
        .update_vendor_profile(
            &admin,
            VendorPatch {
                gstin: Some("27AAPFU0939F1ZV".into()),
                ..VendorPatch::default()
            },
            &request,
        )
        .await
        .unwrap();

    let rows: Vec<serde_json::Value> =
        sqlx::query_scalar("SELECT to_jsonb(a) FROM audit_log a ORDER BY id")
            .fetch_all(&stores.pg)
            .await
            .unwrap();
    let actions: BTreeSet<&str> = rows.iter().filter_map(|r| r["action"].as_str()).collect();
    for expected in [
        "auth.registered",
        "auth.otp_sent",
        "auth.email_verified",
        "vendor.created",
        "auth.login_failed",
        "auth.login",
        "auth.token_family_revoked",
        "auth.logout",
        "user.invited",
        "user.invite_accepted",
        "user.role_changed",
        "user.disabled",
        "vendor.profile_updated",
    ] {
        assert!(actions.contains(expected), "no {expected} in {actions:?}");
    }
    let ip = request.ip.unwrap().to_string();
    for row in &rows {
        assert_eq!(
            row["request_id"],
            request.request_id.clone().unwrap(),
            "{row}"
        );
        assert_eq!(row["ip"], ip, "{row}");
        assert_eq!(row["user_agent"], "kloyst-identity-tests", "{row}");
        let text = row.to_string();
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{row} holds a secret");
        }
    }
    // Tenant rows carry their vendor; the registration before the vendor existed does not.
    for row in &rows {
        match row["action"].as_str() {
            Some("auth.registered" | "auth.otp_sent") => assert!(row["vendor_id"].is_null()),
            _ => assert_eq!(row["vendor_id"], admin.vendor_id.to_string(), "{row}"),
        }
    }
}
