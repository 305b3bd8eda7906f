//! Every job the worker-pool runs, registered in one place: a later feature adds its module
//! here and one line to [`default_router`].

pub(crate) mod campaigns;
pub(crate) mod imports;
mod mail;
mod templates;

use kloyst_http::service::BoxError;

use crate::{JobRouter, WorkerPool};

/// The router `WorkerPool::run` uses: one handler per job kind, built from the config.
/// Fails when a handler's configuration is unusable (a bad `SMTP_URL`), so the process
/// stops at startup instead of dead-lettering every job of that kind.
pub fn default_router(config: &WorkerPool) -> Result<JobRouter, BoxError> {
    let dispatcher = campaigns::dispatcher(config)?;
    router_with(config, dispatcher.as_ref())
}

/// [`default_router`] with the campaign dispatcher built by the caller (who also runs its
/// reconciler).
pub(crate) fn router_with(
    config: &WorkerPool,
    dispatcher: Option<&kloyst_dispatch::Dispatcher>,
) -> Result<JobRouter, BoxError> {
    let router = JobRouter::new();
    let router = mail::register(router, config)?;
    let router = templates::register(router, config)?;
    let router = campaigns::register(router, dispatcher);
    Ok(router)
}
