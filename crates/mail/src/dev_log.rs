//! The development mailer: with no `SMTP_URL`, a mail is a log line, so a developer finds an
//! OTP with `grep` instead of running a mail server. Never used when `SMTP_URL` is set.

use crate::SendMail;

/// The log target of development mails (`RUST_LOG=kloyst_mail::dev=info` shows only them).
pub const DEV_LOG_TARGET: &str = "kloyst_mail::dev";

pub(crate) fn write(mail: &SendMail, to: &str, message_id: &str) {
    tracing::info!(
        target: DEV_LOG_TARGET,
        to = %to,
        subject = %mail.subject,
        text = %mail.text,
        mail.category = %mail.category,
        mail.message_id = %message_id,
        "development mail (SMTP_URL unset)"
    );
}
