//! The server side of one SMTP session, and the loop that accepts them.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{lock, RcptReply, ReceivedMail, State};

pub(super) async fn accept_loop(
    listener: TcpListener,
    state: Arc<Mutex<State>>,
    count: Arc<watch::Sender<usize>>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(converse(stream, state.clone(), count.clone()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            // Reap finished conversations so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One SMTP session. I/O errors end it, as a client hanging up would.
async fn converse(
    stream: TcpStream,
    state: Arc<Mutex<State>>,
    count: Arc<watch::Sender<usize>>,
) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    reply(&mut write, "220 kloyst-sink ESMTP ready").await?;
    let mut mail_from: Option<String> = None;
    let mut rcpt_to: Vec<String> = Vec::new();
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end_matches(['\r', '\n']);
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => {
                reply(
                    &mut write,
                    "250-kloyst-sink\r\n250-8BITMIME\r\n250 SMTPUTF8",
                )
                .await?
            }
            "HELO" => reply(&mut write, "250 kloyst-sink").await?,
            "MAIL" => {
                mail_from = Some(angle_address(command));
                rcpt_to.clear();
                reply(&mut write, "250 2.1.0 OK").await?;
            }
            "RCPT" => {
                let address = angle_address(command);
                let answer = lock(&state).rcpt(&address);
                match answer {
                    RcptReply::Accept => {
                        rcpt_to.push(address);
                        reply(&mut write, "250 2.1.5 OK").await?;
                    }
                    RcptReply::Reject => {
                        let text = format!("550 5.1.1 <{address}>: mailbox unavailable");
                        reply(&mut write, &text).await?;
                    }
                    RcptReply::Defer => {
                        let text = format!("451 4.7.1 <{address}>: try again later");
                        reply(&mut write, &text).await?;
                    }
                }
            }
            "DATA" => match mail_from.take() {
                Some(from) if !rcpt_to.is_empty() => {
                    reply(&mut write, "354 end data with <CR><LF>.<CR><LF>").await?;
                    let data = read_data(&mut read).await?;
                    let mail = ReceivedMail {
                        mail_from: from,
                        rcpt_to: std::mem::take(&mut rcpt_to),
                        data,
                    };
                    let total = {
                        let mut state = lock(&state);
                        state.mails.push(mail);
                        state.mails.len()
                    };
                    count.send_replace(total);
                    reply(&mut write, "250 2.0.0 queued").await?;
                }
                _ => reply(&mut write, "503 5.5.1 need MAIL and RCPT first").await?,
            },
            "RSET" => {
                mail_from = None;
                rcpt_to.clear();
                reply(&mut write, "250 2.0.0 OK").await?;
            }
            "NOOP" => reply(&mut write, "250 2.0.0 OK").await?,
            "QUIT" => {
                reply(&mut write, "221 2.0.0 bye").await?;
                return Ok(());
            }
            _ => reply(&mut write, "502 5.5.2 command not implemented").await?,
        }
    }
}

/// The message after `DATA`, up to the lone `.` line, with dot-stuffing undone.
async fn read_data<R: AsyncBufReadExt + Unpin>(read: &mut R) -> io::Result<String> {
    let mut data = String::new();
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if line == ".\r\n" || line == ".\n" {
            return Ok(data);
        }
        data.push_str(line.strip_prefix('.').unwrap_or(&line));
    }
}

/// `MAIL FROM:<a@b> BODY=8BITMIME` → `a@b`.
fn angle_address(command: &str) -> String {
    let argument = command
        .split_once(':')
        .map_or("", |(_, rest)| rest)
        .trim_start();
    match (argument.find('<'), argument.find('>')) {
        (Some(open), Some(close)) if open < close => argument[open + 1..close].to_owned(),
        _ => argument
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

async fn reply(write: &mut OwnedWriteHalf, text: &str) -> io::Result<()> {
    write.write_all(text.as_bytes()).await?;
    write.write_all(b"\r\n").await?;
    write.flush().await
}
