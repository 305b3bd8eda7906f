//! Transactional mail. A domain change that must send mail (an OTP, an invitation, a
//! receipt) calls [`enqueue_mail`] inside its own transaction: the mail is sent if and only
//! if the change commits. The worker-pool runs the [`SendMail`] job with a [`Mailer`]: over
//! SMTP to `SMTP_URL`, or, when that is unset (development), into the log under
//! [`DEV_LOG_TARGET`].

mod dev_log;
mod error;
mod mailer;
mod mask;
mod message;
#[cfg(feature = "test-support")]
pub mod smtp_sink;

use kloyst_core::VendorId;
use kloyst_queue::{streams, Job};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

pub use dev_log::DEV_LOG_TARGET;
pub use error::MailError;
pub use mailer::Mailer;
pub use mask::mask_address;

/// One plain-text mail to one recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendMail {
    pub to: String,
    pub subject: String,
    pub text: String,
    /// What kind of mail, for logs and metrics (`otp`, `invite`, `account_exists`, `receipt`).
    pub category: String,
}

impl Job for SendMail {
    const KIND: &'static str = "mail.send";
}

/// Queues `mail` in the caller's transaction.
pub async fn enqueue_mail(
    conn: &mut PgConnection,
    mail: &SendMail,
    vendor_id: Option<VendorId>,
    correlation_id: Option<String>,
) -> Result<uuid::Uuid, kloyst_outbox::OutboxError> {
    kloyst_outbox::enqueue_job(conn, streams::JOBS, mail, vendor_id, correlation_id).await
}
