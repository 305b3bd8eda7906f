//! A simulator of Meta's WhatsApp Cloud API, and of Razorpay's Orders API and payment
//! webhooks, for development and tests.
//!
//! It accepts sends and template creations in Meta's request/response shapes, answers
//! Meta's errors (190, 100, 130429, 131056, 132000, 132001, transient 1/2), and posts
//! signed webhooks (statuses, template status updates, inbound messages) that are retried
//! until acknowledged. On the same port it serves Razorpay's `/v1/orders` and posts
//! Razorpay's signed payment webhooks (see `razorpay`). `/_sim/*` lets tests steer and
//! inspect it.

mod control;
mod error;
mod graph_error;
mod ids;
mod lifecycle;
mod limits;
mod messages;
mod razorpay;
mod routes;
mod settings;
mod state;
mod sync;
mod template_flow;
mod templates;
mod webhooks;

use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use error::SimError;
pub use settings::{Behaviour, RazorpaySimSettings, SimSettings};

use settings::SharedBehaviour;
use state::SimState;
use webhooks::batcher::StatusBatcher;
use webhooks::delivery::Deliverer;
use webhooks::payload::Origin;

/// Serves until `shutdown` is cancelled; then stops accepting, and stops webhook retries.
/// The Razorpay sandbox runs with [`RazorpaySimSettings::default`] (the development keys).
pub async fn serve(
    settings: SimSettings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), SimError> {
    serve_with_razorpay(settings, RazorpaySimSettings::default(), listener, shutdown).await
}

/// [`serve`] with the Razorpay sandbox's keys and payment webhook URL given.
pub async fn serve_with_razorpay(
    settings: SimSettings,
    razorpay: RazorpaySimSettings,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), SimError> {
    settings
        .behaviour
        .validate()
        .map_err(SimError::InvalidBehaviour)?;
    let tasks = TaskTracker::new();
    let behaviour = SharedBehaviour::new(settings.behaviour);
    let origin = Origin {
        waba_id: settings.waba_id,
        phone_number_id: settings.phone_number_id,
        display_phone_number: settings.display_phone_number,
    };
    let deliverer = Arc::new(Deliverer::new(
        settings.webhook_url.clone(),
        &settings.app_secret,
        behaviour.clone(),
        tasks.clone(),
        shutdown.clone(),
    )?);
    let (statuses, batcher) =
        StatusBatcher::new(origin.clone(), behaviour.clone(), Arc::clone(&deliverer));
    tasks.spawn(batcher.run(shutdown.clone()));
    let payment_webhook_url = razorpay.webhook_url.clone();
    let razorpay = razorpay::RazorpaySim::new(
        &razorpay,
        behaviour.clone(),
        tasks.clone(),
        shutdown.clone(),
    )?;
    let state = Arc::new(SimState {
        access_token: settings.access_token,
        origin,
        behaviour,
        templates: Mutex::default(),
        sends: Mutex::default(),
        throughput: Mutex::default(),
        pairs: Mutex::default(),
        stats: state::Stats::default(),
        deliverer,
        statuses,
        razorpay,
        tasks: tasks.clone(),
        shutdown: shutdown.clone(),
    });

    tracing::info!(
        addr = %listener.local_addr()?,
        webhook.url = settings.webhook_url.as_deref().unwrap_or("(none)"),
        payment_webhook.url = payment_webhook_url.as_deref().unwrap_or("(none)"),
        "meta-sim listening"
    );
    let served = axum::serve(listener, routes::router(state))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await;
    // Background work stops with the server, whichever way it ended.
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    served?;
    Ok(())
}
