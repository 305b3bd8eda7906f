//! Payments and refunds, and the webhook event bodies that carry them, in the shapes of
//! Razorpay's `webhooks/payments.md` samples (a UPI payment).

use rand::Rng;
use serde_json::{json, Value};

use super::orders::Notes;
use crate::ids;

/// The simulated merchant account, as `account_id` of every event.
pub const ACCOUNT_ID: &str = "acc_KloystSim00001";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentStatus {
    Captured,
    Failed,
    /// Fully refunded (a partly refunded payment stays `captured`).
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Captured => "captured",
            Self::Failed => "failed",
            Self::Refunded => "refunded",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Payment {
    pub id: String,
    pub order_id: String,
    pub amount: u64,
    pub currency: String,
    pub status: PaymentStatus,
    pub amount_refunded: u64,
    pub notes: Notes,
    /// The bank's reference number, fixed for the payment's life.
    pub rrn: String,
    pub created_at: i64,
}

impl Payment {
    pub fn new(order_id: &str, amount: u64, currency: String, notes: Notes, now: i64) -> Self {
        Self {
            id: ids::razorpay("pay"),
            order_id: order_id.to_owned(),
            amount,
            currency,
            status: PaymentStatus::Captured,
            amount_refunded: 0,
            notes,
            rrn: format!(
                "{:012}",
                rand::thread_rng().gen_range(0..1_000_000_000_000u64)
            ),
            created_at: now,
        }
    }

    pub fn refundable(&self) -> u64 {
        self.amount.saturating_sub(self.amount_refunded)
    }

    /// Applies a refund of `amount` (at most [`Self::refundable`]).
    pub fn refund(&mut self, amount: u64) {
        self.amount_refunded = self.amount_refunded.saturating_add(amount);
        if self.amount_refunded >= self.amount {
            self.status = PaymentStatus::Refunded;
        }
    }

    /// The payment entity as it is now.
    pub fn entity(&self) -> Value {
        self.entity_as(self.status)
    }

    /// The payment entity with `status`: a failed one carries Razorpay's error fields and no fee.
    pub fn entity_as(&self, status: PaymentStatus) -> Value {
        let failed = status == PaymentStatus::Failed;
        let refund_status = match self.amount_refunded {
            0 => None,
            refunded if refunded < self.amount => Some("partial"),
            _ => Some("full"),
        };
        // Razorpay's standard rate: 2% plus 18% GST on the fee; `fee` includes `tax`.
        let (fee, tax) = if failed {
            (None, None)
        } else {
            (
                Some((self.amount * 236 + 5_000) / 10_000),
                Some((self.amount * 36 + 5_000) / 10_000),
            )
        };
        let error = |text: &'static str| if failed { Some(text) } else { None };
        let vpa = "kloyst.customer@okhdfcbank";
        json!({
            "id": self.id,
            "entity": "payment",
            "amount": self.amount,
            "currency": self.currency,
            "base_amount": self.amount,
            "status": status.as_str(),
            "order_id": self.order_id,
            "invoice_id": null,
            "international": false,
            "method": "upi",
            "amount_refunded": self.amount_refunded,
            "amount_transferred": 0,
            "refund_status": refund_status,
            "captured": !failed,
            "description": null,
            "card_id": null,
            "bank": null,
            "wallet": null,
            "vpa": vpa,
            "email": "customer@example.com",
            "contact": "+919876543210",
            "notes": self.notes.to_value(),
            "fee": fee,
            "tax": tax,
            "error_code": error("BAD_REQUEST_ERROR"),
            "error_description": error("Payment failed"),
            "error_source": error("customer"),
            "error_step": error("payment_authorization"),
            "error_reason": error("payment_failed"),
            "acquirer_data": {"rrn": if failed { Value::Null } else { json!(self.rrn) }},
            "created_at": self.created_at,
            "upi": {"payer_account_type": "bank_account", "vpa": vpa, "flow": "collect"},
        })
    }
}

#[derive(Clone, Debug)]
pub struct Refund {
    pub id: String,
    pub payment_id: String,
    pub amount: u64,
    pub currency: String,
    pub created_at: i64,
}

impl Refund {
    pub fn entity(&self) -> Value {
        json!({
            "id": self.id,
            "entity": "refund",
            "amount": self.amount,
            "currency": self.currency,
            "payment_id": self.payment_id,
            "notes": [],
            "receipt": null,
            "acquirer_data": {"arn": null},
            "created_at": self.created_at,
            "batch_id": null,
            "status": "processed",
            "speed_processed": "normal",
            "speed_requested": "normal",
        })
    }
}

/// The event envelope: `{"entity":"event", account_id, event, contains, payload, created_at}`;
/// `entities` are `(name, entity)` pairs, e.g. `("payment", {...})`.
pub fn event_body(event: &str, entities: &[(&str, Value)], created_at: i64) -> Value {
    let contains: Vec<&str> = entities.iter().map(|(name, _)| *name).collect();
    let payload: serde_json::Map<String, Value> = entities
        .iter()
        .map(|(name, entity)| ((*name).to_owned(), json!({"entity": entity})))
        .collect();
    json!({
        "entity": "event",
        "account_id": ACCOUNT_ID,
        "event": event,
        "contains": contains,
        "payload": payload,
        "created_at": created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(amount: u64) -> Payment {
        Payment::new("order_x", amount, "INR".to_owned(), Notes::default(), 7)
    }

    #[test]
    fn a_captured_payment_has_a_fee_and_no_error() {
        let entity = payment(10_000).entity();
        assert_eq!(entity["status"], "captured");
        assert_eq!(entity["captured"], true);
        assert_eq!(entity["fee"], 236);
        assert_eq!(entity["tax"], 36);
        assert_eq!(entity["error_code"], Value::Null);
        assert_eq!(entity["refund_status"], Value::Null);
        assert_eq!(entity["notes"], json!([]));
    }

    #[test]
    fn a_failed_payment_carries_the_error_fields() {
        let entity = payment(100).entity_as(PaymentStatus::Failed);
        assert_eq!(entity["status"], "failed");
        assert_eq!(entity["captured"], false);
        assert_eq!(entity["error_code"], "BAD_REQUEST_ERROR");
        assert_eq!(entity["error_description"], "Payment failed");
        assert_eq!(entity["fee"], Value::Null);
    }

    #[test]
    fn refunds_go_partial_then_full() {
        let mut p = payment(1000);
        p.refund(400);
        assert_eq!(p.entity()["refund_status"], "partial");
        assert_eq!(p.entity()["status"], "captured");
        assert_eq!(p.refundable(), 600);
        p.refund(600);
        assert_eq!(p.entity()["refund_status"], "full");
        assert_eq!(p.entity()["status"], "refunded");
        assert_eq!(p.entity()["amount_refunded"], 1000);
    }

    #[test]
    fn the_envelope_lists_what_it_contains() {
        let body = event_body(
            "payment.captured",
            &[("payment", json!({"id": "pay_1"}))],
            9,
        );
        assert_eq!(body["entity"], "event");
        assert_eq!(body["contains"], json!(["payment"]));
        assert_eq!(body["payload"]["payment"]["entity"]["id"], "pay_1");
        assert_eq!(body["created_at"], 9);
    }
}
