//! `contacts.import`: wakes the [`ImportRunner`] for a stored CSV upload. The run itself is
//! leased in the database, not held by this delivery, so the delivery is acknowledged at
//! once (a million-row import outlives any job visibility timeout).

use kloyst_contacts::{ImportRunner, RunImport};
use kloyst_queue::Delivery;

use crate::JobRouter;

pub(crate) fn register(router: JobRouter, runner: &ImportRunner) -> JobRouter {
    let runner = runner.clone();
    router.register::<RunImport, _, _>(move |job: RunImport, _: Delivery| {
        let runner = runner.clone();
        async move {
            runner.wake(job.job_id);
            Ok(())
        }
    })
}
