//! Turns a [`SendMail`] into an RFC 5322 message: the same checks in SMTP and log mode, so
//! a mail that development accepts is one production can send.

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::Message;

use crate::{MailError, SendMail};

/// `MAIL_FROM` (`Kloyst <no-reply@kloyst.com>` or a bare address), parsed once at startup.
pub(crate) fn parse_from(raw: &str) -> Result<Mailbox, MailError> {
    raw.trim()
        .parse()
        .map_err(|e| MailError::Config(format!("MAIL_FROM is not a mail address: {e}")))
}

/// The recipient, as a bare address or `Name <address>`.
pub(crate) fn parse_recipient(raw: &str) -> Result<Mailbox, MailError> {
    raw.trim()
        .parse()
        .map_err(|e| MailError::InvalidAddress(format!("{e}")))
}

/// A built message and its `Message-ID`, which the log line carries so a mail can be
/// followed into the provider's logs.
pub(crate) struct Built {
    pub message: Message,
    pub message_id: String,
}

pub(crate) fn build(from: &Mailbox, to: Mailbox, mail: &SendMail) -> Result<Built, MailError> {
    // Our own domain rather than lettre's default (the host name): a container's name
    // means nothing to a receiving server, and some score it as spam.
    let message_id = format!(
        "<{}@{}>",
        uuid::Uuid::new_v4().simple(),
        from.email.domain()
    );
    let message = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .message_id(Some(message_id.clone()))
        .header(ContentType::TEXT_PLAIN)
        .body(mail.text.clone())
        .map_err(|e| MailError::Build(e.to_string()))?;
    Ok(Built {
        message,
        message_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(subject: &str) -> SendMail {
        SendMail {
            to: "asha@example.com".into(),
            subject: subject.into(),
            text: "Your code is 123456.\nIt expires in 5 minutes.\n".into(),
            category: "otp".into(),
        }
    }

    fn formatted(mail: &SendMail) -> String {
        let from = parse_from("Kloyst <no-reply@kloyst.com>").unwrap();
        let to = parse_recipient(&mail.to).unwrap();
        let built = build(&from, to, mail).unwrap();
        String::from_utf8(built.message.formatted()).unwrap()
    }

    #[test]
    fn has_the_headers_a_receiving_server_expects() {
        let text = formatted(&mail("Your Kloyst code"));
        assert!(
            text.contains("From: Kloyst <no-reply@kloyst.com>\r\n"),
            "{text}"
        );
        assert!(text.contains("To: asha@example.com\r\n"), "{text}");
        assert!(text.contains("Subject: Your Kloyst code\r\n"), "{text}");
        assert!(text.contains("Message-ID: <"), "{text}");
        assert!(text.contains("@kloyst.com>\r\n"), "{text}");
        assert!(text.contains("Date: "), "{text}");
        assert!(
            text.contains("Content-Type: text/plain; charset=utf-8\r\n"),
            "{text}"
        );
        assert!(text.contains("Your code is 123456."), "{text}");
    }

    #[test]
    fn a_line_break_in_the_subject_cannot_add_a_header() {
        let text = formatted(&mail("Hello\r\nBcc: thief@example.com"));
        assert!(!text.contains("\r\nBcc: thief@example.com"), "{text}");
    }

    #[test]
    fn bad_addresses_are_refused() {
        for bad in [
            "",
            "asha",
            "asha@",
            "a sha@example.com",
            "asha@example.com\r\nBcc: x@y.z",
        ] {
            assert!(
                matches!(parse_recipient(bad), Err(MailError::InvalidAddress(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(parse_from("nobody"), Err(MailError::Config(_))));
    }
}
