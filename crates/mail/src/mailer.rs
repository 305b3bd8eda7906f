//! Sends a [`SendMail`]: over SMTP when `SMTP_URL` is set, else into the log.

use std::fmt;
use std::time::Duration;

use kloyst_config::sections::MailSettings;
use lettre::message::Mailbox;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::mask::mask_address;
use crate::{dev_log, message, MailError, SendMail};

/// How long opening a connection (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one whole send may take. lettre bounds only the connect, and a server that
/// stalls mid-conversation must not hold the job past the queue's visibility timeout (30 s
/// by default), or another worker takes it over and the mail goes out twice.
const SEND_DEADLINE: Duration = Duration::from_secs(20);
/// Connections kept open to the server: a burst of OTPs should not pay a TLS handshake each.
const POOL_MAX: u32 = 8;

/// Sends mail. Cheap to clone (the SMTP connection pool is shared).
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Log,
}

impl Mailer {
    /// SMTP to `SMTP_URL` (`smtp://host:1025` plain for a local sink, `smtps://…` or
    /// `smtp://…?tls=required` for a provider; credentials in the userinfo), or the log
    /// mailer when it is unset. Fails on an unusable URL or `MAIL_FROM`.
    pub fn from_settings(settings: &MailSettings) -> Result<Self, MailError> {
        let from = message::parse_from(&settings.from)?;
        let transport = match &settings.smtp_url {
            None => {
                tracing::info!("SMTP_URL unset: mails are written to the log");
                Transport::Log
            }
            Some(url) => {
                let url = url.expose();
                // lettre's errors name the scheme or the parse failure, never the URL itself,
                // so they are safe to show; the URL carries the credentials.
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.as_str())
                    .map_err(|e| MailError::Config(format!("SMTP_URL: {e}")))?
                    .timeout(Some(CONNECT_TIMEOUT))
                    .pool_config(PoolConfig::new().max_size(POOL_MAX))
                    .build();
                tracing::info!(
                    smtp.host = url.host_str().unwrap_or_default(),
                    smtp.port = url.port_or_known_default(),
                    smtp.scheme = url.scheme(),
                    "mails go out over SMTP"
                );
                Transport::Smtp(transport)
            }
        };
        Ok(Self { from, transport })
    }

    /// True when mail goes to a server, false when it is only logged.
    pub fn is_smtp(&self) -> bool {
        matches!(self.transport, Transport::Smtp(_))
    }

    /// Sends one mail. An invalid recipient fails here the same way in both modes.
    pub async fn send(&self, mail: &SendMail) -> Result<(), MailError> {
        let to = message::parse_recipient(&mail.to)?;
        let address = to.email.to_string();
        let masked = mask_address(&address);
        let built = message::build(&self.from, to, mail)?;
        match &self.transport {
            Transport::Log => {
                dev_log::write(mail, &mail.to, &built.message_id);
                Ok(())
            }
            Transport::Smtp(smtp) => {
                match tokio::time::timeout(SEND_DEADLINE, smtp.send(built.message)).await {
                    Err(_) => Err(MailError::Connection(format!(
                        "no answer within {}s",
                        SEND_DEADLINE.as_secs()
                    ))),
                    Ok(Err(e)) => Err(MailError::from_smtp(&e, &address)),
                    Ok(Ok(_)) => {
                        tracing::info!(
                            mail.category = %mail.category,
                            mail.to = %masked,
                            mail.message_id = %built.message_id,
                            "mail sent"
                        );
                        Ok(())
                    }
                }
            }
        }
    }
}

/// Never shows the transport's settings: they hold the SMTP credentials.
impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match self.transport {
            Transport::Smtp(_) => "smtp",
            Transport::Log => "log",
        };
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("transport", &transport)
            .finish()
    }
}
