//! The SMTP mailer against a real SMTP server on loopback.

use std::time::Duration;

use kloyst_mail::smtp_sink::SmtpSink;
use kloyst_mail::{MailError, Mailer};

use crate::{otp_mail, settings};

const WAIT: Duration = Duration::from_secs(5);

async fn sink_and_mailer() -> (SmtpSink, Mailer) {
    let sink = SmtpSink::start().await.unwrap();
    let mailer = Mailer::from_settings(&settings(Some(&sink.url()))).unwrap();
    assert!(mailer.is_smtp());
    (sink, mailer)
}

#[tokio::test]
async fn delivers_subject_body_from_and_to() {
    let (sink, mailer) = sink_and_mailer().await;
    mailer.send(&otp_mail("asha@example.com")).await.unwrap();

    let mails = sink.wait_for_mails(1, WAIT).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.mail_from, "no-reply@kloyst.test");
    assert_eq!(mail.rcpt_to, ["asha@example.com"]);
    assert_eq!(
        mail.header("From").as_deref(),
        Some("Kloyst <no-reply@kloyst.test>")
    );
    assert_eq!(mail.header("To").as_deref(), Some("asha@example.com"));
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Your Kloyst verification code")
    );
    assert_eq!(
        mail.header("Content-Type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    let message_id = mail.header("Message-ID").unwrap();
    assert!(
        message_id.starts_with('<') && message_id.ends_with("@kloyst.test>"),
        "{message_id}"
    );
    assert!(mail.header("Date").is_some());
    // lettre ends DATA with CRLF.CRLF after the body's own CRLF: one blank line more.
    assert_eq!(
        mail.body().trim_end(),
        "Your Kloyst code is 481516.\r\nIt expires in 5 minutes.\r\n.\r\nIf you did not ask for it, ignore this mail.",
        "the lone dot survives dot-stuffing"
    );
}

#[tokio::test]
async fn the_pooled_connection_carries_several_mails() {
    let (sink, mailer) = sink_and_mailer().await;
    for n in 0..3 {
        mailer
            .send(&otp_mail(&format!("user{n}@example.com")))
            .await
            .unwrap();
    }
    let mails = sink.wait_for_mails(3, WAIT).await;
    let recipients: Vec<_> = mails.iter().map(|m| m.rcpt_to[0].as_str()).collect();
    assert_eq!(
        recipients,
        [
            "user0@example.com",
            "user1@example.com",
            "user2@example.com"
        ]
    );
}

#[tokio::test]
async fn a_550_is_permanent_and_keeps_the_reply_without_the_address() {
    let (sink, mailer) = sink_and_mailer().await;
    sink.reject("gone@example.com");
    let error = mailer
        .send(&otp_mail("gone@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(error, MailError::Rejected(_)), "{error:?}");
    assert!(!error.is_transient());
    let text = error.to_string();
    assert!(text.contains("550"), "{text}");
    assert!(text.contains("mailbox unavailable"), "{text}");
    assert!(text.contains("g***@example.com"), "{text}");
    assert!(!text.contains("gone@example.com"), "{text}");
    assert!(sink.mails().is_empty());

    // The connection is still good for the next mail.
    mailer.send(&otp_mail("asha@example.com")).await.unwrap();
    assert_eq!(sink.wait_for_mails(1, WAIT).await.len(), 1);
}

#[tokio::test]
async fn a_451_is_transient_and_a_later_try_goes_through() {
    let (sink, mailer) = sink_and_mailer().await;
    sink.defer("busy@example.com", 1);
    let error = mailer
        .send(&otp_mail("busy@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(error, MailError::Deferred(_)), "{error:?}");
    assert!(error.is_transient());
    assert!(error.to_string().contains("451"), "{error}");

    mailer.send(&otp_mail("busy@example.com")).await.unwrap();
    assert_eq!(sink.wait_for_mails(1, WAIT).await.len(), 1);
    assert_eq!(sink.rcpt_attempts("busy@example.com"), 2);
}

#[tokio::test]
async fn connection_refused_is_transient() {
    // A port that was free a moment ago and has no listener now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mailer =
        Mailer::from_settings(&settings(Some(&format!("smtp://127.0.0.1:{port}")))).unwrap();
    let error = mailer
        .send(&otp_mail("asha@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(error, MailError::Connection(_)), "{error:?}");
    assert!(error.is_transient());
}

#[tokio::test]
async fn an_invalid_recipient_is_permanent_and_never_reaches_the_server() {
    let (sink, mailer) = sink_and_mailer().await;
    for bad in ["not-an-address", "a b@example.com", ""] {
        let error = mailer.send(&otp_mail(bad)).await.unwrap_err();
        assert!(matches!(error, MailError::InvalidAddress(_)), "{error:?}");
        assert!(!error.is_transient());
    }
    assert_eq!(sink.rcpt_attempts("not-an-address"), 0);
    assert!(sink.mails().is_empty());
}

#[tokio::test]
async fn unusable_settings_fail_at_startup_without_echoing_credentials() {
    let error = Mailer::from_settings(&settings(Some("http://mailer:hunter2@smtp.example.com")))
        .unwrap_err();
    assert!(matches!(error, MailError::Config(_)), "{error:?}");
    assert!(!error.to_string().contains("hunter2"), "{error}");
    assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");

    let mut bad_from = settings(None);
    bad_from.from = "nobody".into();
    assert!(matches!(
        Mailer::from_settings(&bad_from),
        Err(MailError::Config(_))
    ));

    let mailer =
        Mailer::from_settings(&settings(Some("smtps://mailer:hunter2@smtp.example.com"))).unwrap();
    assert!(!format!("{mailer:?}").contains("hunter2"));
}
