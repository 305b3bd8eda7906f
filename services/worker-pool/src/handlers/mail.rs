//! `mail.send`: one mail through the [`Mailer`].

use kloyst_mail::{MailError, Mailer, SendMail};
use kloyst_queue::{Delivery, HandlerError};

use crate::{JobRouter, WorkerPool};

pub(super) fn register(router: JobRouter, config: &WorkerPool) -> Result<JobRouter, MailError> {
    let mailer = Mailer::from_settings(&config.mail)?;
    if !mailer.is_smtp() && config.common.telemetry.environment != "development" {
        // The log mailer writes OTPs into logs that may be shipped to Loki: fine on a
        // laptop, a leak anywhere else.
        tracing::warn!(
            environment = %config.common.telemetry.environment,
            "SMTP_URL unset outside development: mails, codes included, go to the log"
        );
    }
    Ok(
        router.register::<SendMail, _, _>(move |mail: SendMail, _: Delivery| {
            let mailer = mailer.clone();
            async move { mailer.send(&mail).await.map_err(handler_error) }
        }),
    )
}

/// A 4xx or a broken connection may pass later: retried with backoff, dead-lettered after
/// `JOB_MAX_ATTEMPTS`. A 5xx or a bad address never will: dead-lettered at once, with the
/// server's reply as the reason.
fn handler_error(error: MailError) -> HandlerError {
    if error.is_transient() {
        HandlerError::retry(error)
    } else {
        HandlerError::permanent(error)
    }
}
