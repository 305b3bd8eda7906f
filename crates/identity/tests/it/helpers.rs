//! Helpers for tests that need users, vendors and tokens; also meant for the api-gateway's
//! tests (copy or path-include this module): everything goes through the real service,
//! the real Postgres and Redis, and reads the OTP from the mail queued in the outbox.

use std::net::{IpAddr, Ipv4Addr};

use kloyst_identity::{
    AcceptInviteInput, Identity, IdentitySettings, InviteInput, Principal, RegisterInput,
    RequestMeta, Role, TokenPair, VerifyOtpInput,
};
use kloyst_mail::SendMail;
use kloyst_testkit::TestStores;
use sqlx::PgPool;

/// Good enough for the policy (long, not common, not the address).
pub const PASSWORD: &str = "correct horse battery staple";

/// Fresh stores and an identity service on them, with the default settings.
pub async fn setup() -> (TestStores, Identity) {
    setup_with(&[]).await
}

/// Fresh stores and an identity service whose settings are the test configuration plus
/// `overrides` (e.g. `("OTP_TTL", "500ms")`).
pub async fn setup_with(overrides: &[(&str, &str)]) -> (TestStores, Identity) {
    let stores = TestStores::new().await;
    let identity = identity_for(&stores, overrides);
    (stores, identity)
}

pub fn identity_for(stores: &TestStores, overrides: &[(&str, &str)]) -> Identity {
    let mut env = stores.env();
    for (var, value) in overrides {
        env = env.with(var, *value);
    }
    let settings = IdentitySettings::from_env(&env).expect("identity settings");
    Identity::new(stores.pg.clone(), stores.redis.clone(), settings)
}

/// The JWT secret of the test configuration (to forge tokens with).
pub fn jwt_secret(stores: &TestStores) -> String {
    stores
        .env()
        .optional("JWT_SECRET")
        .expect("JWT_SECRET in the test env")
        .to_owned()
}

/// A request from its own random client address, with a request id.
pub fn meta() -> RequestMeta {
    let ip = IpAddr::V4(Ipv4Addr::new(
        10,
        rand::random(),
        rand::random(),
        rand::random(),
    ));
    meta_from(ip)
}

pub fn meta_from(ip: IpAddr) -> RequestMeta {
    RequestMeta {
        request_id: Some(format!("req-{}", uuid::Uuid::new_v4().simple())),
        ip: Some(ip),
        user_agent: Some("kloyst-identity-tests".to_owned()),
    }
}

pub fn unique_email() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}

pub fn register_input(email: &str) -> RegisterInput {
    RegisterInput {
        email: email.to_owned(),
        password: PASSWORD.to_owned(),
        name: "Asha Rao".to_owned(),
        company_name: "Acme Traders".to_owned(),
    }
}

/// Every mail queued (through the outbox) to `to`, oldest first.
pub async fn mails_to(pg: &PgPool, to: &str) -> Vec<SendMail> {
    let payloads: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT payload FROM outbox_events
          WHERE kind = 'mail.send' AND payload->>'to' = $1 ORDER BY id",
    )
    .bind(to)
    .fetch_all(pg)
    .await
    .expect("read the outbox");
    payloads
        .into_iter()
        .map(|p| serde_json::from_value(p).expect("a SendMail payload"))
        .collect()
}

pub async fn last_mail_to(pg: &PgPool, to: &str) -> SendMail {
    mails_to(pg, to)
        .await
        .pop()
        .unwrap_or_else(|| panic!("no mail queued to {to}"))
}

/// The 6-digit code in a verification or invitation mail.
pub fn code_in(mail: &SendMail) -> String {
    let (_, rest) = mail
        .text
        .split_once("code is: ")
        .unwrap_or_else(|| panic!("no code in {:?}", mail.text));
    let code: String = rest.chars().take(6).collect();
    assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");
    code
}

/// The newest code mailed to `email`.
pub async fn latest_code(pg: &PgPool, email: &str) -> String {
    code_in(&last_mail_to(pg, email).await)
}

/// A code that is certainly not `code`.
pub fn wrong_code(code: &str) -> String {
    let n: u32 = code.parse().expect("a numeric code");
    format!("{:06}", (n + 1) % 1_000_000)
}

/// Registers a new address, reads the code from the queued mail and verifies it: a new
/// vendor with this user as its ADMIN. Returns the principal, the tokens and the address.
pub async fn registered_admin(
    identity: &Identity,
    stores: &TestStores,
) -> (Principal, TokenPair, String) {
    let email = unique_email();
    identity
        .register(register_input(&email), &meta())
        .await
        .expect("register");
    let otp = latest_code(&stores.pg, &email).await;
    let tokens = identity
        .verify_otp(
            VerifyOtpInput {
                email: email.clone(),
                otp,
            },
            &meta(),
        )
        .await
        .expect("verify");
    let principal = identity
        .authenticate(&tokens.access_token)
        .await
        .expect("the new token authenticates");
    (principal, tokens, email)
}

/// `admin` invites a new address with `role`; the invitee accepts with [`PASSWORD`].
pub async fn invited_member(
    identity: &Identity,
    stores: &TestStores,
    admin: &Principal,
    role: Role,
) -> (Principal, TokenPair, String) {
    let email = unique_email();
    identity
        .invite(
            admin,
            InviteInput {
                email: email.clone(),
                role,
                name: Some("Ravi Kumar".to_owned()),
            },
            &meta(),
        )
        .await
        .expect("invite");
    let otp = latest_code(&stores.pg, &email).await;
    let tokens = identity
        .accept_invite(
            AcceptInviteInput {
                email: email.clone(),
                otp,
                password: PASSWORD.to_owned(),
                name: None,
            },
            &meta(),
        )
        .await
        .expect("accept the invitation");
    let principal = identity
        .authenticate(&tokens.access_token)
        .await
        .expect("the invitee's token authenticates");
    (principal, tokens, email)
}

/// base64url without padding (JWT segments), for hand-built tokens.
pub fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

/// Audit rows of an action, as JSON text of the whole row (to search for secrets too).
pub async fn audit_rows(pg: &PgPool, action: &str) -> Vec<serde_json::Value> {
    sqlx::query_scalar("SELECT to_jsonb(a) FROM audit_log a WHERE action = $1 ORDER BY id")
        .bind(action)
        .fetch_all(pg)
        .await
        .expect("read the audit log")
}

#[test]
fn b64url_matches_known_vectors() {
    assert_eq!(b64url(b""), "");
    assert_eq!(b64url(b"f"), "Zg");
    assert_eq!(b64url(b"fo"), "Zm8");
    assert_eq!(b64url(b"foo"), "Zm9v");
    assert_eq!(b64url(b"foob"), "Zm9vYg");
    assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
}
