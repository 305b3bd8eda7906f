//! `campaign.dispatch` and `campaign.send_range`: the campaign engine's sending half, run by
//! [`kloyst_dispatch::Dispatcher`]; its reconciler runs beside the consumer (see `run`).

use kloyst_campaigns::jobs::{DispatchCampaign, SendRange};
use kloyst_dispatch::{Dispatcher, SendRateLimiter};
use kloyst_http::service::BoxError;
use kloyst_meta::MetaClient;
use kloyst_queue::{Delivery, HandlerError, Queue};

use crate::{JobRouter, WorkerPool, JOBS_STREAM};

/// The dispatcher, or `None` without Meta (development only: elsewhere the process refuses
/// to start). Its pools connect lazily, on the first job.
pub(crate) fn dispatcher(config: &WorkerPool) -> Result<Option<Dispatcher>, BoxError> {
    let Some(campaigns) = &config.campaigns else {
        if config.common.telemetry.environment != "development" {
            return Err("META_ACCESS_TOKEN and META_WABA_ID are required to send campaigns".into());
        }
        tracing::warn!("META_* unset: campaigns are not sent");
        return Ok(None);
    };
    let pg = kloyst_db::connect(&config.common.database, "worker-pool-dispatch")?;
    let redis = kloyst_db::redis::connect(&config.common.redis)?;
    let jobs = Queue::new(redis.clone(), config.queue.clone(), JOBS_STREAM);
    let meta = MetaClient::new(campaigns.meta.clone())?;
    let limiter = SendRateLimiter::new(
        redis,
        config.common.redis.key_prefix.clone(),
        campaigns.dispatch.send_rate,
    );
    Ok(Some(Dispatcher::new(
        pg,
        jobs,
        meta,
        limiter,
        campaigns.dispatch.clone(),
    )))
}

pub(super) fn register(router: JobRouter, dispatcher: Option<&Dispatcher>) -> JobRouter {
    let Some(dispatcher) = dispatcher else {
        // A laptop without Meta: the jobs wait (and are dead-lettered after their attempts)
        // instead of stopping every other job kind.
        let not_configured = || {
            HandlerError::Retry(
                "campaign dispatch is not configured (META_ACCESS_TOKEN, META_WABA_ID)".to_owned(),
            )
        };
        return router
            .register::<DispatchCampaign, _, _>(
                move |_: DispatchCampaign, _: Delivery| async move { Err(not_configured()) },
            )
            .register::<SendRange, _, _>(move |_: SendRange, _: Delivery| async move {
                Err(not_configured())
            });
    };
    let planner = dispatcher.clone();
    let sender = dispatcher.clone();
    router
        .register::<DispatchCampaign, _, _>(move |job: DispatchCampaign, _: Delivery| {
            let dispatcher = planner.clone();
            async move {
                let outcome = dispatcher
                    .dispatch(&job)
                    .await
                    .map_err(HandlerError::retry)?;
                tracing::debug!(campaign.id = %job.campaign_id, ?outcome, "campaign.dispatch");
                Ok(())
            }
        })
        .register::<SendRange, _, _>(move |job: SendRange, _: Delivery| {
            let dispatcher = sender.clone();
            async move {
                let outcome = dispatcher
                    .send_range(&job)
                    .await
                    .map_err(HandlerError::retry)?;
                tracing::debug!(campaign.id = %job.campaign_id, ?outcome, "campaign.send_range");
                Ok(())
            }
        })
}
