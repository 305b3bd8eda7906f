//! The one error type of this crate. Its `Display` is the `detail` a client reads, so it
//! never carries internals; [`TemplatesError::Internal`] is logged by the HTTP layer and
//! answered without detail.

use kloyst_core::{DomainError, ErrorClass, FieldError};

#[derive(Debug, thiserror::Error)]
pub enum TemplatesError {
    /// One entry per invalid field (422), e.g. `components[0].text`.
    #[error("{} field(s) are invalid", .0.len())]
    Invalid(Vec<FieldError>),

    /// Missing, or another vendor's: the same answer, so that nothing leaks.
    #[error("template not found")]
    NotFound,

    /// The vendor already has a template of this name and language (409).
    #[error("a template with this name and language already exists")]
    NameTaken,

    /// The user's token no longer holds (disabled, or role changed): 401.
    #[error("the token is not valid; log in again")]
    SessionRevoked,

    #[error("internal error: {0}")]
    Internal(#[from] Internal),
}

/// What went wrong on our side. Never shown to the client.
#[derive(Debug, thiserror::Error)]
pub enum Internal {
    #[error("postgres: {0}")]
    Db(sqlx::Error),
    #[error("outbox: {0}")]
    Outbox(#[from] kloyst_outbox::OutboxError),
}

impl From<sqlx::Error> for TemplatesError {
    fn from(error: sqlx::Error) -> Self {
        if kloyst_db::is_session_revoked(&error) {
            return Self::SessionRevoked;
        }
        Self::Internal(Internal::Db(error))
    }
}

impl From<kloyst_outbox::OutboxError> for TemplatesError {
    fn from(error: kloyst_outbox::OutboxError) -> Self {
        Self::Internal(Internal::Outbox(error))
    }
}

impl DomainError for TemplatesError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Invalid(_) => ErrorClass::Invalid,
            Self::NotFound => ErrorClass::NotFound,
            Self::NameTaken => ErrorClass::Conflict,
            Self::SessionRevoked => ErrorClass::Unauthenticated,
            Self::Internal(_) => ErrorClass::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "validation_failed",
            Self::NotFound => "not_found",
            Self::NameTaken => "template_exists",
            Self::SessionRevoked => "token_invalid",
            Self::Internal(_) => "internal_error",
        }
    }

    fn field_errors(&self) -> Vec<FieldError> {
        match self {
            Self::Invalid(fields) => fields.clone(),
            _ => Vec::new(),
        }
    }
}

/// Whether `error` is a violation of the constraint `name`.
pub(crate) fn violates(error: &sqlx::Error, name: &str) -> bool {
    error
        .as_database_error()
        .and_then(|db| db.constraint())
        .is_some_and(|constraint| constraint == name)
}
