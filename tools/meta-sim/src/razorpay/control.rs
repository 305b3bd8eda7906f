//! `/_sim/razorpay/*` actions: a customer paying an order, a refund, a hand-made event.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::RazorpayError;
use super::orders::{self, OrderStatus};
use super::payments::{event_body, Payment, PaymentStatus, Refund};
use super::webhooks::SignedEvent;
use super::RazorpaySim;
use crate::ids;
use crate::sync::lock;

/// Most copies of one event a call may ask for, so a typo cannot flood the receiver.
const MAX_DELIVERIES: u32 = 100;

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    #[default]
    Captured,
    Failed,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayRequest {
    pub order_id: String,
    #[serde(default)]
    pub outcome: Outcome,
    /// Overrides the order's amount (paise), to simulate a mismatch.
    pub amount: Option<u64>,
    pub currency: Option<String>,
    /// How many times each event is posted (same bytes, same event id); default 1.
    pub deliveries: Option<u32>,
    /// Post `payment.failed` for the same payment before `payment.captured`.
    #[serde(default)]
    pub failed_first: bool,
    /// Overrides the payment's notes (default: the order's).
    pub notes: Option<Value>,
    /// Also post `order.paid` (payload: order and payment) after `payment.captured`.
    #[serde(default)]
    pub order_paid: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    pub payment_id: String,
    /// Paise; default what is left to refund.
    pub amount: Option<u64>,
    pub deliveries: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRequest {
    pub body: Value,
    pub signature: Option<String>,
    pub event_id: Option<String>,
}

fn deliveries(requested: Option<u32>) -> Result<u32, RazorpayError> {
    match requested.unwrap_or(1) {
        n @ 1..=MAX_DELIVERIES => Ok(n),
        _ => Err(RazorpayError::invalid(
            "deliveries",
            format!("deliveries must be 1..={MAX_DELIVERIES}"),
        )),
    }
}

fn sign_all(sim: &RazorpaySim, bodies: &[Value]) -> Result<Vec<SignedEvent>, RazorpayError> {
    bodies
        .iter()
        .map(|body| {
            sim.webhooks
                .sign(body)
                .map_err(|e| RazorpayError::bad_body(format!("could not serialise an event: {e}")))
        })
        .collect()
}

/// A customer pays `order_id`: records the payment, posts its events in order, and answers
/// what Checkout would hand the browser.
pub fn pay(sim: &RazorpaySim, request: PayRequest) -> Result<Value, RazorpayError> {
    let copies = deliveries(request.deliveries)?;
    let override_notes = request
        .notes
        .as_ref()
        .map(|notes| orders::parse_notes(Some(notes)))
        .transpose()?;
    let now = chrono::Utc::now().timestamp();
    let (payment, bodies) = {
        let mut ledger = lock(&sim.ledger);
        let order = ledger
            .orders
            .get_mut(&request.order_id)
            .ok_or_else(|| RazorpayError::control_not_found("order_id", &request.order_id))?;
        if order.status == OrderStatus::Paid {
            return Err(RazorpayError::control_conflict(
                "order_id",
                format!("order {} is already paid", order.id),
            ));
        }
        let mut payment = Payment::new(
            &order.id,
            request.amount.unwrap_or(order.amount),
            request.currency.unwrap_or_else(|| order.currency.clone()),
            override_notes.unwrap_or_else(|| order.notes.clone()),
            now,
        );
        let mut bodies = Vec::new();
        let failed = |p: &Payment| {
            event_body(
                "payment.failed",
                &[("payment", p.entity_as(PaymentStatus::Failed))],
                now,
            )
        };
        match request.outcome {
            Outcome::Failed => {
                payment.status = PaymentStatus::Failed;
                order.record_failed_attempt();
                bodies.push(failed(&payment));
            }
            Outcome::Captured => {
                if request.failed_first {
                    bodies.push(failed(&payment));
                }
                order.record_capture(payment.amount);
                bodies.push(event_body(
                    "payment.captured",
                    &[("payment", payment.entity())],
                    now,
                ));
                if request.order_paid {
                    let order_entity = serde_json::to_value(&*order).map_err(|e| {
                        RazorpayError::bad_body(format!("could not serialise the order: {e}"))
                    })?;
                    bodies.push(event_body(
                        "order.paid",
                        &[("payment", payment.entity()), ("order", order_entity)],
                        now,
                    ));
                }
            }
        }
        ledger.payments.insert(payment.id.clone(), payment.clone());
        (payment, bodies)
    };
    let events = sign_all(sim, &bodies)?;
    let event_ids: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    sim.webhooks.deliver_in_order(events, copies);
    tracing::info!(payment.id = %payment.id, order.id = %payment.order_id, "razorpay payment simulated");
    // Checkout calls its success handler (with a signature) only for a successful payment.
    let checkout = (payment.status == PaymentStatus::Captured).then(|| {
        json!({
            "razorpay_order_id": payment.order_id,
            "razorpay_payment_id": payment.id,
            "razorpay_signature": sim.checkout_signature(&payment.order_id, &payment.id),
        })
    });
    Ok(json!({
        "payment_id": payment.id,
        "order_id": payment.order_id,
        "status": payment.status.as_str(),
        "event_ids": event_ids,
        "checkout": checkout,
    }))
}

/// Refunds a captured payment (in full by default) and posts `refund.processed`.
pub fn refund(sim: &RazorpaySim, request: RefundRequest) -> Result<Value, RazorpayError> {
    let copies = deliveries(request.deliveries)?;
    let now = chrono::Utc::now().timestamp();
    let (refund, body) = {
        let mut ledger = lock(&sim.ledger);
        let payment = ledger
            .payments
            .get_mut(&request.payment_id)
            .ok_or_else(|| RazorpayError::control_not_found("payment_id", &request.payment_id))?;
        if payment.status != PaymentStatus::Captured {
            return Err(RazorpayError::control_conflict(
                "payment_id",
                format!(
                    "payment {} is {}; only a captured payment can be refunded",
                    payment.id,
                    payment.status.as_str()
                ),
            ));
        }
        let refundable = payment.refundable();
        let amount = request.amount.unwrap_or(refundable);
        if amount == 0 || amount > refundable {
            return Err(RazorpayError::invalid(
                "amount",
                format!("The refund amount must be between 1 and {refundable}"),
            ));
        }
        payment.refund(amount);
        let refund = Refund {
            id: ids::razorpay("rfnd"),
            payment_id: payment.id.clone(),
            amount,
            currency: payment.currency.clone(),
            created_at: now,
        };
        let body = event_body(
            "refund.processed",
            &[("refund", refund.entity()), ("payment", payment.entity())],
            now,
        );
        ledger.refunds += 1;
        (refund, body)
    };
    let events = sign_all(sim, &[body])?;
    let event_ids: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    sim.webhooks.deliver_in_order(events, copies);
    Ok(json!({"refund_id": refund.id, "event_ids": event_ids}))
}

/// Posts `body` exactly once, signed (or with the given signature), and waits for the answer.
pub async fn event(sim: &RazorpaySim, request: EventRequest) -> Result<Value, RazorpayError> {
    let bytes = serde_json::to_vec(&request.body)
        .map_err(|e| RazorpayError::bad_body(format!("could not serialise body: {e}")))?;
    let event = sim
        .webhooks
        .signed_bytes(Bytes::from(bytes), request.signature, request.event_id);
    let status = sim
        .webhooks
        .post_once(&event)
        .await
        .map_err(|e| RazorpayError::control_conflict("url", e.to_string()))?;
    Ok(json!({"status": status, "event_id": event.event_id, "signature": event.signature}))
}
