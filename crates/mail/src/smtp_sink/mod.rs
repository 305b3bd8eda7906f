//! A small real SMTP server for tests (feature `test-support`): it speaks enough of RFC 5321
//! for lettre over plain TCP (no STARTTLS, no AUTH), records every accepted message, and can
//! be told to answer `RCPT TO` with a 550 or a 451 for chosen recipients.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod session;

/// One message the sink accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`).
    pub mail_from: String,
    /// The accepted envelope recipients (`RCPT TO`).
    pub rcpt_to: Vec<String>,
    /// The message as sent after `DATA`, dot-unstuffed, lines ending in CRLF.
    pub data: String,
}

impl ReceivedMail {
    /// The value of header `name` (case-insensitive), folded lines joined.
    pub fn header(&self, name: &str) -> Option<String> {
        let (head, _) = self.split();
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(value) = value.as_mut() {
                    value.push_str(line);
                }
                continue;
            }
            if value.is_some() {
                break;
            }
            if let Some((key, rest)) = line.split_once(':') {
                if key.eq_ignore_ascii_case(name) {
                    value = Some(rest.trim_start().to_owned());
                }
            }
        }
        value
    }

    /// Everything after the blank line that ends the headers.
    pub fn body(&self) -> &str {
        self.split().1
    }

    fn split(&self) -> (&str, &str) {
        self.data
            .split_once("\r\n\r\n")
            .unwrap_or((self.data.as_str(), ""))
    }
}

#[derive(Clone, Copy, Debug)]
enum Rule {
    Reject,
    Defer { remaining: u32 },
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) mails: Vec<ReceivedMail>,
    rules: HashMap<String, Rule>,
    rcpt_attempts: HashMap<String, u32>,
}

/// What the sink answers to one `RCPT TO`.
pub(crate) enum RcptReply {
    Accept,
    Reject,
    Defer,
}

impl State {
    pub(crate) fn rcpt(&mut self, address: &str) -> RcptReply {
        *self.rcpt_attempts.entry(address.to_owned()).or_default() += 1;
        match self.rules.get_mut(address) {
            Some(Rule::Reject) => RcptReply::Reject,
            Some(Rule::Defer { remaining }) if *remaining > 0 => {
                *remaining -= 1;
                RcptReply::Defer
            }
            _ => RcptReply::Accept,
        }
    }
}

/// A running sink on `127.0.0.1:<free port>`; stops (with its connections) when dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    received: watch::Receiver<usize>,
    accept: JoinHandle<()>,
}

impl SmtpSink {
    pub async fn start() -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let (count_tx, received) = watch::channel(0);
        let accept = tokio::spawn(session::accept_loop(
            listener,
            state.clone(),
            Arc::new(count_tx),
        ));
        Ok(Self {
            addr,
            state,
            received,
            accept,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `SMTP_URL` for this sink (plain SMTP).
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Every `RCPT TO:<address>` is answered `550` from now on.
    pub fn reject(&self, address: &str) {
        self.lock().rules.insert(address.to_owned(), Rule::Reject);
    }

    /// The next `times` `RCPT TO:<address>` are answered `451`, later ones accepted.
    pub fn defer(&self, address: &str, times: u32) {
        self.lock()
            .rules
            .insert(address.to_owned(), Rule::Defer { remaining: times });
    }

    /// The messages accepted so far.
    pub fn mails(&self) -> Vec<ReceivedMail> {
        self.lock().mails.clone()
    }

    /// How many `RCPT TO` named `address`, whatever the answer.
    pub fn rcpt_attempts(&self, address: &str) -> u32 {
        self.lock().rcpt_attempts.get(address).copied().unwrap_or(0)
    }

    /// Waits until at least `count` messages were accepted (or `timeout` passes) and
    /// returns them all.
    pub async fn wait_for_mails(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let mut received = self.received.clone();
        let _ = tokio::time::timeout(timeout, received.wait_for(|n| *n >= count)).await;
        self.mails()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every open connection.
        self.accept.abort();
    }
}

// A panic while holding the lock cannot leave the state half-written in a way tests care about.
pub(crate) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}
