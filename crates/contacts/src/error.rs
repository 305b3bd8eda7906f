//! The one error type of this crate. Its `Display` is the `detail` a client reads, so it
//! never carries internals; [`ContactsError::Internal`] is logged by the HTTP layer and
//! answered without detail.

use kloyst_core::{DomainError, ErrorClass, FieldError};

#[derive(Debug, thiserror::Error)]
pub enum ContactsError {
    /// One entry per invalid field (422); for a bulk JSON body the field is `[row].field`.
    #[error("{} field(s) are invalid", .0.len())]
    Invalid(Vec<FieldError>),

    /// Missing, or another vendor's: the same answer, so that nothing leaks.
    #[error("{0} not found")]
    NotFound(&'static str),

    /// Conflicts with existing data (e.g. a list name taken, a number another contact has).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },

    /// A body over the configured import limit (413).
    #[error("the upload is larger than the limit of {limit_bytes} bytes")]
    TooLarge { limit_bytes: u64 },

    /// The client stopped sending the body part-way (400); nothing was kept.
    #[error("the upload was interrupted: {0}")]
    UploadInterrupted(String),

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
    #[error("a stored value is malformed: {0}")]
    Corrupt(String),
    #[error("blocking task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("reading the upload: {0}")]
    Io(#[from] std::io::Error),
}

impl ContactsError {
    pub(crate) fn invalid_field(
        field: impl Into<String>,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self::Invalid(vec![FieldError::new(field, code, message)])
    }

    pub(crate) fn corrupt(what: impl Into<String>) -> Self {
        Self::Internal(Internal::Corrupt(what.into()))
    }
}

impl From<sqlx::Error> for ContactsError {
    fn from(error: sqlx::Error) -> Self {
        if kloyst_db::is_session_revoked(&error) {
            return Self::SessionRevoked;
        }
        Self::Internal(Internal::Db(error))
    }
}

impl From<kloyst_outbox::OutboxError> for ContactsError {
    fn from(error: kloyst_outbox::OutboxError) -> Self {
        Self::Internal(Internal::Outbox(error))
    }
}

impl From<tokio::task::JoinError> for ContactsError {
    fn from(error: tokio::task::JoinError) -> Self {
        Self::Internal(Internal::Task(error))
    }
}

impl From<std::io::Error> for ContactsError {
    fn from(error: std::io::Error) -> Self {
        Self::Internal(Internal::Io(error))
    }
}

impl DomainError for ContactsError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Invalid(_) => ErrorClass::Invalid,
            Self::NotFound(_) => ErrorClass::NotFound,
            Self::Conflict { .. } => ErrorClass::Conflict,
            Self::TooLarge { .. } => ErrorClass::PayloadTooLarge,
            Self::UploadInterrupted(_) => ErrorClass::BadRequest,
            Self::SessionRevoked => ErrorClass::Unauthenticated,
            Self::Internal(_) => ErrorClass::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "validation_failed",
            Self::NotFound(_) => "not_found",
            Self::Conflict { code, .. } => code,
            Self::TooLarge { .. } => "payload_too_large",
            Self::UploadInterrupted(_) => "upload_interrupted",
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
