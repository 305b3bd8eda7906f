//! What a send leaves in the logs: a `meta.send` span with the status and the wamid, and never
//! the token.

use std::{
    io,
    sync::{Arc, Mutex, OnceLock},
};

use meta_sim::Behaviour;
use tracing_subscriber::fmt::{format::FmtSpan, MakeWriter};

use crate::helpers::{template_to, Sim, PHONE_NUMBER_ID, TEMPLATE, TOKEN};

/// Collects everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The process-wide subscriber, installed once. A global one rather than a per-test
/// `set_default`: callsites first hit by another test's thread would otherwise cache "no
/// interest" and the span would be missed now and then.
fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(FmtSpan::CLOSE)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        captured
    })
}

#[tokio::test]
async fn a_send_span_records_status_and_wamid_but_not_the_token() {
    let captured = captured();
    let sim = Sim::with_template(Behaviour::default()).await;
    let accepted = sim
        .client()
        .send(PHONE_NUMBER_ID, &template_to("919812345678", TEMPLATE, &[]))
        .await
        .unwrap();

    let logs = captured.text();
    let close = logs
        .lines()
        .find(|line| {
            line.contains("meta.send{")
                && line.contains(" close ")
                && line.contains(&accepted.wamid)
        })
        .unwrap_or_else(|| panic!("no closed meta.send span in:\n{logs}"));
    assert!(
        close.contains(&format!("phone_number_id={PHONE_NUMBER_ID}")),
        "{close}"
    );
    assert!(close.contains("http.status=200"), "{close}");
    assert!(
        close.contains(&format!("wamid=\"{}\"", accepted.wamid)),
        "{close}"
    );
    assert!(!logs.contains(TOKEN), "the token reached the logs:\n{logs}");
}
