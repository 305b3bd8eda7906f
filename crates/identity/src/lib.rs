//! Identity and tenancy: registration with an emailed one-time code, login, access and
//! refresh tokens, roles, team members and the vendor profile.
//!
//! [`Identity`] is the service; the HTTP layer calls one method per route and maps
//! [`IdentityError`] (a [`kloyst_core::DomainError`]) to problem+json. Sign-up, login and
//! token work is system work on the plain pool; everything done on behalf of a
//! [`Principal`] runs inside `kloyst_db::begin_as_user` with the principal's vendor id,
//! which is never taken from input; that same round trip checks the principal's user is
//! still active with its role.
//!
//! Vendor API keys (`kly_…`, for integrations) are created, listed and revoked by an ADMIN
//! and stored as SHA-256 only; [`Identity::authenticate_api_key`] turns a presented key into
//! an [`ApiKeyPrincipal`], the [`Caller`] of the routes an integration may use.
//!
//! Redis holds the short-lived state under `{REDIS_KEY_PREFIX}:identity:*`: code hashes
//! and their attempt counters, resend cooldowns, hourly caps and login-failure counters.

mod api_key;
mod caller;
mod common_passwords;
mod countries;
mod cursor;
mod error;
mod input;
mod keys;
mod limits;
mod mail;
mod model;
mod otp;
mod password;
mod repo;
mod service;
mod settings;
mod tokens;
mod validate;

pub use caller::{ApiKeyPrincipal, ApiScope, Caller};
pub use error::{IdentityError, Internal};
pub use input::{
    AcceptInviteInput, InviteInput, LoginInput, NewApiKey, RefreshInput, RegisterInput,
    SendOtpInput, UserPatch, VendorPatch, VerifyOtpInput,
};
pub use kloyst_audit::RequestMeta;
pub use model::{
    ApiKeyStatus, ApiKeyView, BillingAddress, CreatedApiKey, Page, PageRequest, PlanType,
    Principal, Role, TokenPair, UserStatus, UserStatusChange, UserView, VendorProfile,
};
pub use service::{Identity, MAX_ACTIVE_API_KEYS};
pub use settings::IdentitySettings;
