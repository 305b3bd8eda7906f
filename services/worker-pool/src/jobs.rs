//! Routes each delivery to the handler registered for its kind.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use kloyst_queue::{Delivery, Handler, HandlerError, Job};

type BoxedHandler =
    Arc<dyn Fn(Delivery) -> BoxFuture<'static, Result<(), HandlerError>> + Send + Sync>;

/// Job kinds this worker knows. A kind nobody registered is dead-lettered with that reason
/// (a deploy that forgot a handler is visible at once, not retried forever).
#[derive(Clone, Default)]
pub struct JobRouter {
    handlers: HashMap<&'static str, BoxedHandler>,
}

impl JobRouter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the handler of job `J`; its payload is decoded before the call, and one
    /// that does not decode is dead-lettered (it never will).
    pub fn register<J, F, Fut>(mut self, handler: F) -> Self
    where
        J: Job + Send + 'static,
        F: Fn(J, Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.handlers.insert(
            J::KIND,
            Arc::new(move |delivery: Delivery| {
                let handler = handler.clone();
                Box::pin(async move {
                    let job = delivery.decode::<J>()?;
                    handler(job, delivery).await
                })
            }),
        );
        self
    }

    pub fn kinds(&self) -> impl Iterator<Item = &&'static str> {
        self.handlers.keys()
    }
}

impl Handler for JobRouter {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        match self.handlers.get(delivery.message.kind.as_str()) {
            Some(handler) => handler(delivery).await,
            None => Err(HandlerError::Permanent(format!(
                "no handler registered for job kind {:?}",
                delivery.message.kind
            ))),
        }
    }
}
