//! Request bodies, deserialised straight from JSON. `deny_unknown_fields` everywhere: a
//! field the route does not know (a `vendor_id`, a typo) is refused with a 422 naming it,
//! never silently ignored. Passwords, codes and tokens are redacted from `Debug`.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{BillingAddress, Role, UserStatusChange};

const REDACTED: &str = "[redacted]";

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterInput {
    pub email: String,
    pub password: String,
    pub name: String,
    pub company_name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendOtpInput {
    pub email: String,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyOtpInput {
    pub email: String,
    pub otp: String,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    pub email: String,
    pub password: String,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshInput {
    pub refresh_token: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteInput {
    pub email: String,
    pub role: Role,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptInviteInput {
    pub email: String,
    pub otp: String,
    pub password: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// `PATCH /v1/users/:id`. Absent fields are left as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub status: Option<UserStatusChange>,
    #[serde(default)]
    pub name: Option<String>,
}

/// `PATCH /v1/vendor/me`. Absent fields are left as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorPatch {
    #[serde(default)]
    pub company_name: Option<String>,
    #[serde(default)]
    pub billing_email: Option<String>,
    #[serde(default)]
    pub billing_address: Option<BillingAddress>,
    #[serde(default)]
    pub gstin: Option<String>,
    #[serde(default)]
    pub default_country: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// `POST /v1/api-keys`. Scopes are text here so that an unknown one is answered as a field
/// error naming its index (`scopes[1]`), not as a body that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    pub name: String,
    pub scopes: Vec<String>,
    /// Absent: the key does not expire (it can still be revoked).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for RegisterInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterInput")
            .field("email", &self.email)
            .field("password", &REDACTED)
            .field("name", &self.name)
            .field("company_name", &self.company_name)
            .finish()
    }
}

impl fmt::Debug for VerifyOtpInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyOtpInput")
            .field("email", &self.email)
            .field("otp", &REDACTED)
            .finish()
    }
}

impl fmt::Debug for LoginInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginInput")
            .field("email", &self.email)
            .field("password", &REDACTED)
            .finish()
    }
}

impl fmt::Debug for RefreshInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshInput")
            .field("refresh_token", &REDACTED)
            .finish()
    }
}

impl fmt::Debug for AcceptInviteInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcceptInviteInput")
            .field("email", &self.email)
            .field("otp", &REDACTED)
            .field("password", &REDACTED)
            .field("name", &self.name)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<RegisterInput>(
            r#"{"email":"a@b.co","password":"x","name":"n","company_name":"c","vendor_id":"v"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("vendor_id"), "{err}");
        let err = serde_json::from_str::<UserPatch>(r#"{"vendor_id":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("vendor_id"), "{err}");
    }

    #[test]
    fn optional_fields_may_be_absent() {
        let patch: VendorPatch = serde_json::from_str(r#"{"gstin":"x"}"#).unwrap();
        assert_eq!(patch.gstin.as_deref(), Some("x"));
        assert!(patch.time_zone.is_none());
        let invite: InviteInput =
            serde_json::from_str(r#"{"email":"a@b.co","role":"STAFF"}"#).unwrap();
        assert_eq!(invite.role, Role::Staff);
    }

    #[test]
    fn debug_never_shows_secrets() {
        let input = AcceptInviteInput {
            email: "a@b.co".into(),
            otp: "123456".into(),
            password: "hunter2hunter2".into(),
            name: None,
        };
        let debug = format!("{input:?}");
        assert!(!debug.contains("123456") && !debug.contains("hunter2"));
        let login = LoginInput {
            email: "a@b.co".into(),
            password: "hunter2hunter2".into(),
        };
        assert!(!format!("{login:?}").contains("hunter2"));
    }
}
