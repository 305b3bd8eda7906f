//! The tower layer: one quota, one scope, a key taken from the request.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::Response;
use http::request::Parts;
use tower::{Layer, Service};

use crate::headers::{insert_headers, too_many_requests};
use crate::limiter::RateLimiter;
use crate::quota::Quota;

type KeyFn = dyn Fn(&Parts) -> Option<String> + Send + Sync;

/// Limits the routes it wraps to `quota` per key. Use with `Router::route_layer` (only
/// matched routes count, 404s do not) or `Router::layer`.
///
/// `key_fn` picks the bucket from the request head: a client address for the auth routes
/// (see [`crate::by_client_ip`]), a vendor id for the API. `None` means this layer does not
/// limit the request (e.g. no vendor is known yet). The key only needs to be unique within
/// `scope`. For a per-vendor key, run the layer that authenticates first (add it with a
/// later `.layer` call, so it is the outer one) and read its result from the extensions.
#[derive(Clone)]
pub struct RateLimitLayer {
    policy: Arc<Policy>,
}

struct Policy {
    limiter: RateLimiter,
    scope: &'static str,
    quota: Quota,
    key_fn: Box<KeyFn>,
}

impl RateLimitLayer {
    pub fn new<F>(limiter: RateLimiter, scope: &'static str, quota: Quota, key_fn: F) -> Self
    where
        F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    {
        Self {
            policy: Arc::new(Policy {
                limiter,
                scope,
                quota,
                key_fn: Box::new(key_fn),
            }),
        }
    }
}

impl fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("scope", &self.policy.scope)
            .field("quota", &self.policy.quota)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            policy: self.policy.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    policy: Arc<Policy>,
}

impl<S> Service<Request> for RateLimit<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The clone is fresh and may not be ready; the one polled ready goes with this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let policy = self.policy.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let key = (policy.key_fn)(&parts);
            let request = Request::from_parts(parts, body);
            let Some(key) = key else {
                return inner.call(request).await;
            };
            let Policy {
                limiter,
                scope,
                quota,
                ..
            } = &*policy;
            let decision = match limiter.check(scope, &key, *quota).await {
                Ok(decision) => decision,
                Err(error) => {
                    // Fail open, and without RateLimit-* headers: we know nothing true to say.
                    limiter.record_failure(scope, &error);
                    return inner.call(request).await;
                }
            };
            if !decision.allowed {
                metrics::counter!("rate_limited_total", "scope" => *scope).increment(1);
                tracing::debug!(
                    rate_limit.scope = *scope,
                    "request refused by the rate limit"
                );
                return Ok(too_many_requests(&decision, *quota));
            }
            let mut response = inner.call(request).await?;
            insert_headers(response.headers_mut(), &decision, *quota);
            Ok(response)
        })
    }
}
