//! What the mailer writes to the log: the whole mail in development (so the OTP can be
//! found with grep), and only a masked recipient over SMTP.

use std::io::Write;
use std::sync::{Arc, Mutex};

use kloyst_mail::smtp_sink::SmtpSink;
use kloyst_mail::{Mailer, DEV_LOG_TARGET};
use serde_json::Value;
use tracing_subscriber::fmt::MakeWriter;

use crate::{otp_mail, settings};

/// Log lines written while the guard is held, as the JSON the services emit.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(self.clone())
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    fn lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn without_smtp_url_the_mail_is_written_to_the_log() {
    let captured = Captured::default();
    let _guard = captured.install();
    let mailer = Mailer::from_settings(&settings(None)).unwrap();
    assert!(!mailer.is_smtp());

    mailer.send(&otp_mail("asha@example.com")).await.unwrap();

    // What a developer does: grep the log for the code.
    assert!(captured.text().contains("481516"), "{}", captured.text());
    let lines = captured.lines();
    let mail = lines
        .iter()
        .find(|l| l["target"] == DEV_LOG_TARGET)
        .expect("a development mail line");
    assert_eq!(mail["level"], "INFO");
    let fields = &mail["fields"];
    assert_eq!(fields["message"], "development mail (SMTP_URL unset)");
    assert_eq!(fields["to"], "asha@example.com");
    assert_eq!(fields["subject"], "Your Kloyst verification code");
    assert_eq!(fields["mail.category"], "otp");
    assert!(
        fields["text"]
            .as_str()
            .unwrap()
            .contains("Your Kloyst code is 481516."),
        "{fields}"
    );
}

#[tokio::test]
async fn the_log_mailer_refuses_an_invalid_recipient_like_smtp_does() {
    let mailer = Mailer::from_settings(&settings(None)).unwrap();
    let error = mailer.send(&otp_mail("asha")).await.unwrap_err();
    assert!(!error.is_transient(), "{error}");
}

#[tokio::test]
async fn over_smtp_the_log_has_a_masked_recipient_and_never_the_mail() {
    let sink = SmtpSink::start().await.unwrap();
    let captured = Captured::default();
    let _guard = captured.install();
    let mailer = Mailer::from_settings(&settings(Some(&sink.url()))).unwrap();
    mailer.send(&otp_mail("asha@example.com")).await.unwrap();

    let text = captured.text();
    assert!(!text.contains("481516"), "{text}");
    assert!(!text.contains("asha@example.com"), "{text}");
    let lines = captured.lines();
    let sent = lines
        .iter()
        .find(|l| l["fields"]["message"] == "mail sent")
        .unwrap_or_else(|| panic!("a `mail sent` line in {text}"));
    assert_eq!(sent["level"], "INFO");
    assert_eq!(sent["fields"]["mail.to"], "a***@example.com");
    assert_eq!(sent["fields"]["mail.category"], "otp");
    assert!(lines.iter().all(|l| l["target"] != DEV_LOG_TARGET));
}
