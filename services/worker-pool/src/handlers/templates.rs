//! `templates.submit`: sends a saved template to Meta through the [`TemplateSubmitter`].
//! A full hourly window or Meta's throttling re-queues the job for when a slot frees; a
//! template Meta refuses is recorded as SUBMIT_FAILED and the job is done.

use kloyst_http::service::BoxError;
use kloyst_queue::{Delivery, HandlerError};
use kloyst_templates::{SubmitError, SubmitOutcome, SubmitTemplate, TemplateSubmitter};

use crate::{JobRouter, WorkerPool};

/// Submissions are serialised per WABA (≤ 100 an hour): a small pool of its own is plenty.
const SUBMITTER_MAX_CONNECTIONS: u32 = 2;

pub(super) fn register(router: JobRouter, config: &WorkerPool) -> Result<JobRouter, BoxError> {
    let Some(settings) = &config.template_submitter else {
        if config.common.telemetry.environment != "development" {
            return Err(
                "META_ACCESS_TOKEN and META_WABA_ID are required to submit templates".into(),
            );
        }
        // A laptop without Meta: jobs wait (and are dead-lettered after their attempts)
        // instead of stopping every other job kind from running.
        tracing::warn!("META_* unset: templates are not submitted to Meta");
        return Ok(router.register::<SubmitTemplate, _, _>(
            |_: SubmitTemplate, _: Delivery| async {
                Err(HandlerError::Retry(
                    "template submission is not configured (META_ACCESS_TOKEN, META_WABA_ID)"
                        .to_owned(),
                ))
            },
        ));
    };
    let mut database = config.common.database.clone();
    database.max_connections = database.max_connections.min(SUBMITTER_MAX_CONNECTIONS);
    // Lazy: connects on the first job, so start-up does not wait for Postgres.
    let pg = kloyst_db::connect(&database, "worker-pool-templates")?;
    let submitter = TemplateSubmitter::new(pg, settings)?;
    Ok(
        router.register::<SubmitTemplate, _, _>(move |job: SubmitTemplate, _: Delivery| {
            let submitter = submitter.clone();
            async move { submit(&submitter, &job).await }
        }),
    )
}

async fn submit(submitter: &TemplateSubmitter, job: &SubmitTemplate) -> Result<(), HandlerError> {
    match submitter.submit(job).await {
        Ok(SubmitOutcome::Missing) => {
            tracing::warn!(template.id = %job.template_id, vendor.id = %job.vendor_id, "template to submit not found; dropped");
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(SubmitError::RetryAfter { delay, reason }) => {
            tracing::info!(template.id = %job.template_id, ?delay, reason, "template submission deferred");
            Err(HandlerError::RetryAfter { delay, reason })
        }
        Err(error) => Err(HandlerError::retry(error)),
    }
}
