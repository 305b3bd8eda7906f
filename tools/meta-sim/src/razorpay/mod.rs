//! A Razorpay sandbox: the Orders API (`/v1/orders`, Basic auth) and signed payment webhooks,
//! in Razorpay's real shapes, steered by `/_sim/razorpay/*`.

pub mod control;
pub mod error;
pub mod orders;
pub mod payments;
pub mod webhooks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{header, HeaderMap};
use base64::Engine;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::settings::{RazorpaySimSettings, SharedBehaviour};
use crate::sync::lock;
use error::RazorpayError;
use orders::Order;
use payments::Payment;
use webhooks::PaymentWebhooks;

/// Orders and payments the sandbox has issued.
#[derive(Debug, Default)]
pub struct Ledger {
    pub orders: HashMap<String, Order>,
    pub payments: HashMap<String, Payment>,
    pub refunds: u64,
}

pub struct RazorpaySim {
    key_id: String,
    key_secret: String,
    pub ledger: Mutex<Ledger>,
    pub webhooks: Arc<PaymentWebhooks>,
}

impl RazorpaySim {
    pub fn new(
        settings: &RazorpaySimSettings,
        behaviour: SharedBehaviour,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            key_id: settings.key_id.clone(),
            key_secret: settings.key_secret.clone(),
            ledger: Mutex::default(),
            webhooks: Arc::new(PaymentWebhooks::new(settings, behaviour, tasks, shutdown)?),
        })
    }

    /// HTTP Basic `key_id:key_secret`, as every `/v1` call needs.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<(), RazorpayError> {
        let credentials = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b64| {
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .ok()
            })
            .and_then(|raw| String::from_utf8(raw).ok());
        let expected = format!("{}:{}", self.key_id, self.key_secret);
        match credentials {
            Some(given) if given == expected => Ok(()),
            _ => Err(RazorpayError::authentication_failed()),
        }
    }

    pub fn create_order(&self, body: &[u8]) -> Result<Order, RazorpayError> {
        let request = orders::parse_new_order(body)?;
        let order = Order::new(request, chrono::Utc::now().timestamp());
        lock(&self.ledger)
            .orders
            .insert(order.id.clone(), order.clone());
        tracing::info!(order.id = %order.id, amount = order.amount, "razorpay order created");
        Ok(order)
    }

    pub fn order(&self, id: &str) -> Result<Order, RazorpayError> {
        lock(&self.ledger)
            .orders
            .get(id)
            .cloned()
            .ok_or_else(RazorpayError::unknown_id)
    }

    /// `GET /v1/orders/{id}/payments`: a collection of the order's payments, newest first.
    pub fn order_payments(&self, id: &str) -> Result<Value, RazorpayError> {
        let ledger = lock(&self.ledger);
        if !ledger.orders.contains_key(id) {
            return Err(RazorpayError::unknown_id());
        }
        let mut items: Vec<&Payment> = ledger
            .payments
            .values()
            .filter(|p| p.order_id == id)
            .collect();
        items.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        let items: Vec<Value> = items.iter().map(|p| p.entity()).collect();
        Ok(json!({"entity": "collection", "count": items.len(), "items": items}))
    }

    pub fn payment(&self, id: &str) -> Result<Value, RazorpayError> {
        lock(&self.ledger)
            .payments
            .get(id)
            .map(Payment::entity)
            .ok_or_else(RazorpayError::unknown_id)
    }

    /// What Checkout hands the browser: hex HMAC-SHA256 of `order_id|payment_id`, key secret.
    pub fn checkout_signature(&self, order_id: &str, payment_id: &str) -> String {
        webhooks::hmac_hex(
            self.key_secret.as_bytes(),
            format!("{order_id}|{payment_id}").as_bytes(),
        )
    }

    /// The `razorpay` section of `GET /_sim/stats`.
    pub fn stats(&self) -> Value {
        let (orders, paid, payments, refunds) = {
            let ledger = lock(&self.ledger);
            let paid = ledger
                .orders
                .values()
                .filter(|o| o.status == orders::OrderStatus::Paid)
                .count();
            (
                ledger.orders.len(),
                paid,
                ledger.payments.len(),
                ledger.refunds,
            )
        };
        let (posts, acked) = self.webhooks.counts();
        json!({
            "orders": orders,
            "orders_paid": paid,
            "payments": payments,
            "refunds": refunds,
            "webhook_posts": posts,
            "webhook_posts_acked": acked,
        })
    }
}
