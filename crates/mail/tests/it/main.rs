//! kloyst-mail against a real SMTP server (the test-support sink on loopback) and the log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

mod log_mailer;
mod smtp;

use kloyst_config::sections::MailSettings;
use kloyst_config::Env;
use kloyst_mail::SendMail;

pub const FROM: &str = "Kloyst <no-reply@kloyst.test>";

/// Settings as the worker-pool reads them from its environment.
pub fn settings(smtp_url: Option<&str>) -> MailSettings {
    let mut env = Env::from_pairs([("MAIL_FROM", FROM)]);
    if let Some(url) = smtp_url {
        env = env.with("SMTP_URL", url);
    }
    MailSettings::from_env(&env).unwrap()
}

pub fn otp_mail(to: &str) -> SendMail {
    SendMail {
        to: to.into(),
        subject: "Your Kloyst verification code".into(),
        text: "Your Kloyst code is 481516.\r\nIt expires in 5 minutes.\r\n.\r\nIf you did not ask for it, ignore this mail.\r\n".into(),
        category: "otp".into(),
    }
}
