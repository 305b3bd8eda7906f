//! Razorpay webhook events, typed for what we act on. Parsing is lenient where Razorpay is
//! (`notes` is `[]` when empty and an object otherwise; most fields may be null).

use serde::Deserialize;
use serde_json::Value;

/// `{"entity":"event","event":"payment.captured","payload":{…},"created_at":…}`.
#[derive(Clone, Debug, Deserialize)]
pub struct PaymentEvent {
    pub event: String,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub payload: EventPayload,
    #[serde(default)]
    pub created_at: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct EventPayload {
    #[serde(default)]
    pub payment: Option<Wrapped<Payment>>,
    #[serde(default)]
    pub refund: Option<Wrapped<RefundEntity>>,
}

/// Razorpay wraps each entity: `"payment": {"entity": {…}}`.
#[derive(Clone, Debug, Deserialize)]
pub struct Wrapped<T> {
    pub entity: T,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Payment {
    pub id: String,
    /// In paise.
    pub amount: i64,
    pub currency: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub notes: Value,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub error_description: Option<String>,
    #[serde(default)]
    pub error_reason: Option<String>,
}

impl Payment {
    /// A note we set on the order (Razorpay copies order notes to the payment). `None` when
    /// notes are absent or empty (`[]`).
    pub fn note(&self, key: &str) -> Option<&str> {
        self.notes.as_object()?.get(key)?.as_str()
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct RefundEntity {
    pub id: String,
    /// In paise.
    pub amount: i64,
    pub currency: String,
    pub payment_id: String,
    #[serde(default)]
    pub status: Option<String>,
}

/// What an event asks of us.
#[derive(Clone, Debug)]
pub enum PaymentEventKind<'a> {
    Captured(&'a Payment),
    Failed(&'a Payment),
    RefundProcessed(&'a RefundEntity),
    /// Anything else (`payment.authorized`, `order.paid`, …): acknowledged, not acted on.
    Ignored,
}

/// Why an event cannot be acted on as it stands.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("not a Razorpay event: {0}")]
    Malformed(String),
    #[error("{event} without its {entity} entity")]
    MissingEntity { event: String, entity: &'static str },
}

impl PaymentEvent {
    pub fn parse(body: &[u8]) -> Result<Self, EventError> {
        serde_json::from_slice(body).map_err(|e| EventError::Malformed(e.to_string()))
    }

    pub fn kind(&self) -> Result<PaymentEventKind<'_>, EventError> {
        let payment = || {
            self.payload
                .payment
                .as_ref()
                .map(|p| &p.entity)
                .ok_or_else(|| EventError::MissingEntity {
                    event: self.event.clone(),
                    entity: "payment",
                })
        };
        Ok(match self.event.as_str() {
            "payment.captured" => PaymentEventKind::Captured(payment()?),
            "payment.failed" => PaymentEventKind::Failed(payment()?),
            "refund.processed" => PaymentEventKind::RefundProcessed(
                self.payload
                    .refund
                    .as_ref()
                    .map(|r| &r.entity)
                    .ok_or_else(|| EventError::MissingEntity {
                        event: self.event.clone(),
                        entity: "refund",
                    })?,
            ),
            _ => PaymentEventKind::Ignored,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Razorpay's documented UPI `payment.captured` sample (notes as an empty array).
    const CAPTURED: &str = r#"{
      "entity": "event", "account_id": "acc_BFQ7uQEaa7j2z7", "event": "payment.captured",
      "contains": ["payment"],
      "payload": { "payment": { "entity": {
        "id": "pay_DESyzxuld02Zul", "entity": "payment", "amount": 100, "currency": "INR",
        "base_amount": 100, "status": "captured", "order_id": "order_DESxiijbl9xjDB",
        "invoice_id": null, "international": false, "method": "upi", "amount_refunded": 0,
        "amount_transferred": 0, "refund_status": null, "captured": true, "description": null,
        "card_id": null, "bank": null, "wallet": null, "vpa": "gaurav.kumar@upi",
        "email": "gaurav.kumar@example.com", "contact": "+919876543210", "notes": [],
        "fee": 2, "tax": 0, "error_code": null, "error_description": null,
        "error_source": null, "error_step": null, "error_reason": null,
        "acquirer_data": { "rrn": "0125836177" }, "created_at": 1567675356,
        "upi": { "payer_account_type": "credit_card", "vpa": "gaurav.kumar@upi", "flow": "intent" }
      } } },
      "created_at": 1567675356
    }"#;

    #[test]
    fn the_documented_captured_sample_parses() {
        let event = PaymentEvent::parse(CAPTURED.as_bytes()).unwrap();
        match event.kind().unwrap() {
            PaymentEventKind::Captured(payment) => {
                assert_eq!(payment.id, "pay_DESyzxuld02Zul");
                assert_eq!(payment.amount, 100);
                assert_eq!(payment.order_id.as_deref(), Some("order_DESxiijbl9xjDB"));
                assert_eq!(payment.note("vendor_id"), None);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn object_notes_are_readable_and_unknown_events_ignored() {
        let body = r#"{"event":"payment.authorized","payload":{"payment":{"entity":{
            "id":"pay_1","amount":5000,"currency":"INR","notes":{"vendor_id":"v"}}}}}"#;
        let event = PaymentEvent::parse(body.as_bytes()).unwrap();
        assert_eq!(
            event
                .payload
                .payment
                .as_ref()
                .unwrap()
                .entity
                .note("vendor_id"),
            Some("v")
        );
        assert!(matches!(event.kind().unwrap(), PaymentEventKind::Ignored));
    }

    #[test]
    fn a_captured_event_without_its_payment_is_an_error() {
        let event = PaymentEvent::parse(br#"{"event":"payment.captured","payload":{}}"#).unwrap();
        assert!(matches!(
            event.kind(),
            Err(EventError::MissingEntity {
                entity: "payment",
                ..
            })
        ));
        assert!(PaymentEvent::parse(b"[1,2]").is_err());
    }
}
