//! The crate's one error type, classified by what a retry could change.

/// Why a mail could not be sent (or the mailer not built).
///
/// Messages never contain the SMTP URL, and a recipient address quoted back by the server is
/// masked, because these strings end up in logs and in the dead-letter stream.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// `SMTP_URL` or `MAIL_FROM` is unusable; the service should not start.
    #[error("mail configuration: {0}")]
    Config(String),
    /// The recipient is not a valid address: it never will be.
    #[error("invalid recipient address: {0}")]
    InvalidAddress(String),
    /// The message could not be assembled (lettre refused a header): it never will be.
    #[error("could not build the message: {0}")]
    Build(String),
    /// The server answered 5xx (unknown mailbox, policy rejection): sending again is useless.
    #[error("SMTP server rejected the mail: {0}")]
    Rejected(String),
    /// The server answered 4xx (greylisting, mailbox busy, rate limit): it may accept later.
    #[error("SMTP server deferred the mail: {0}")]
    Deferred(String),
    /// No usable conversation with the server (refused, reset, TLS, timeout).
    #[error("SMTP connection failed: {0}")]
    Connection(String),
}

impl MailError {
    /// True when sending the same mail later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Deferred(_) | Self::Connection(_) => true,
            Self::Config(_) | Self::InvalidAddress(_) | Self::Build(_) | Self::Rejected(_) => false,
        }
    }

    /// Sorts a lettre SMTP failure. Only a 5xx reply is about this mail; everything else is
    /// about the path to the server (down, TLS, credentials, a garbled reply), which a retry
    /// within the job's attempt budget may outlive.
    pub(crate) fn from_smtp(error: &lettre::transport::smtp::Error, recipient: &str) -> Self {
        let text = crate::mask::redact(&error.to_string(), recipient);
        if error.is_permanent() {
            Self::Rejected(text)
        } else if error.is_transient() {
            Self::Deferred(text)
        } else {
            Self::Connection(text)
        }
    }
}
