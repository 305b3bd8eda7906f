//! What happens to an accepted message: the statuses Meta would report, with small delays.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use crate::settings::Behaviour;
use crate::state::SimState;
use crate::webhooks::payload::{self, MessageFacts, StatusError};

/// One status to report, in order.
#[derive(Clone, Debug)]
struct Step {
    status: &'static str,
    with_pricing: bool,
    error: Option<&'static StatusError>,
}

/// Decides, at accept time, the statuses a message will go through.
fn plan(behaviour: &Behaviour, wa_id: &str) -> Vec<Step> {
    let step = |status, with_pricing, error| Step {
        status,
        with_pricing,
        error,
    };
    if behaviour.is_undeliverable(wa_id) {
        return vec![step("failed", false, Some(&payload::UNDELIVERABLE))];
    }
    let mut rng = rand::thread_rng();
    let sent = step("sent", behaviour.pricing_on_sent(), None);
    if rng.gen::<f64>() < behaviour.failed_rate {
        return vec![
            sent,
            step("failed", false, Some(&payload::ECOSYSTEM_ENGAGEMENT)),
        ];
    }
    let read = rng.gen::<f64>() < behaviour.read_rate;
    let skip_delivered = read && rng.gen::<f64>() < behaviour.read_without_delivered_rate;
    let mut steps = vec![sent];
    if skip_delivered {
        // `read` stands in for the `delivered` Meta never sent, pricing included.
        steps.push(step("read", behaviour.pricing_on_delivered(), None));
    } else {
        steps.push(step("delivered", behaviour.pricing_on_delivered(), None));
        if read {
            steps.push(step("read", false, None));
        }
    }
    steps
}

/// Reports the message's statuses in the background, each `status_delay_ms` after the last.
pub fn schedule(state: &Arc<SimState>, facts: MessageFacts) {
    let behaviour = state.behaviour.get();
    let steps = plan(&behaviour, &facts.recipient_id);
    let has = |status: &str| steps.iter().any(|step| step.status == status);
    state.stats.planned(
        has("delivered") || has("read"),
        has("read"),
        has("failed"),
        facts.pricing.billable,
    );
    let delay = Duration::from_millis(behaviour.status_delay_ms);
    let statuses = state.statuses.clone();
    let shutdown = state.shutdown.clone();
    state.tasks.spawn(async move {
        for step in steps {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
            let now = chrono::Utc::now().timestamp();
            statuses.send(payload::status(
                &facts,
                step.status,
                now,
                step.with_pricing,
                step.error,
            ));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(steps: &[Step]) -> Vec<&'static str> {
        steps.iter().map(|s| s.status).collect()
    }

    #[test]
    fn plans_follow_the_behaviour() {
        let always_read = Behaviour {
            read_rate: 1.0,
            read_without_delivered_rate: 0.0,
            ..Behaviour::default()
        };
        let steps = plan(&always_read, "919800000001");
        assert_eq!(names(&steps), ["sent", "delivered", "read"]);
        assert!(steps[0].with_pricing && steps[1].with_pricing && !steps[2].with_pricing);

        let read_only = Behaviour {
            read_without_delivered_rate: 1.0,
            pricing_on: "delivered".into(),
            ..always_read.clone()
        };
        let steps = plan(&read_only, "919800000001");
        assert_eq!(names(&steps), ["sent", "read"]);
        assert!(!steps[0].with_pricing && steps[1].with_pricing);

        let failing = Behaviour {
            failed_rate: 1.0,
            ..Behaviour::default()
        };
        let steps = plan(&failing, "1");
        assert_eq!(names(&steps), ["sent", "failed"]);
        assert_eq!(steps[1].error.map(|e| e.code), Some(131049));

        let undeliverable = Behaviour {
            undeliverable_prefixes: vec!["4477".into()],
            ..Behaviour::default()
        };
        let steps = plan(&undeliverable, "447700900000");
        assert_eq!(names(&steps), ["failed"]);
        assert_eq!(steps[0].error.map(|e| e.code), Some(131026));
    }
}
