//! Orders: Razorpay's `POST /v1/orders` validation and the order entity
//! (`created` → `attempted` → `paid`; an order stays `paid` after a refund).

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::error::RazorpayError;
use crate::ids;

/// Razorpay's limits on `receipt` and `notes`.
const RECEIPT_MAX_CHARS: usize = 40;
const NOTES_MAX_KEYS: usize = 15;
const NOTE_MAX_CHARS: usize = 256;
/// The smallest amount Razorpay accepts, in the currency's subunit (100 paise = ₹1.00).
const MIN_AMOUNT: u64 = 100;

/// `notes`: an object, serialised as `[]` when empty as Razorpay does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Notes(pub Map<String, Value>);

impl Serialize for Notes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.is_empty() {
            serializer.collect_seq(std::iter::empty::<()>())
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl Notes {
    pub fn to_value(&self) -> Value {
        if self.0.is_empty() {
            Value::Array(Vec::new())
        } else {
            Value::Object(self.0.clone())
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Created,
    Attempted,
    Paid,
}

/// The order entity, field for field as Razorpay answers it.
#[derive(Clone, Debug, Serialize)]
pub struct Order {
    pub id: String,
    pub entity: &'static str,
    pub amount: u64,
    pub amount_paid: u64,
    pub amount_due: u64,
    pub currency: String,
    pub receipt: Option<String>,
    pub offer_id: Option<String>,
    pub status: OrderStatus,
    pub attempts: u32,
    pub notes: Notes,
    pub created_at: i64,
}

impl Order {
    pub fn new(request: NewOrder, created_at: i64) -> Self {
        Self {
            id: ids::razorpay("order"),
            entity: "order",
            amount: request.amount,
            amount_paid: 0,
            amount_due: request.amount,
            currency: request.currency,
            receipt: request.receipt,
            offer_id: None,
            status: OrderStatus::Created,
            attempts: 0,
            notes: request.notes,
            created_at,
        }
    }

    /// A payment attempt that failed: the order is `attempted` unless already paid.
    pub fn record_failed_attempt(&mut self) {
        self.attempts += 1;
        if self.status == OrderStatus::Created {
            self.status = OrderStatus::Attempted;
        }
    }

    /// A captured payment of `amount`: the order becomes `paid`.
    pub fn record_capture(&mut self, amount: u64) {
        self.attempts += 1;
        self.amount_paid = self.amount_paid.saturating_add(amount);
        self.amount_due = self.amount.saturating_sub(self.amount_paid);
        self.status = OrderStatus::Paid;
    }
}

/// A validated `POST /v1/orders` body.
#[derive(Clone, Debug, PartialEq)]
pub struct NewOrder {
    pub amount: u64,
    pub currency: String,
    pub receipt: Option<String>,
    pub notes: Notes,
}

/// Checks the body the way Razorpay does; unknown fields are ignored.
pub fn parse_new_order(body: &[u8]) -> Result<NewOrder, RazorpayError> {
    let value: Value = serde_json::from_slice(body).map_err(RazorpayError::bad_body)?;
    let Value::Object(fields) = value else {
        return Err(RazorpayError::bad_body("expected an object"));
    };
    let amount = match fields.get("amount") {
        None | Some(Value::Null) => {
            return Err(RazorpayError::invalid(
                "amount",
                "The amount field is required.",
            ))
        }
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.as_u64(),
        Some(_) => {
            return Err(RazorpayError::invalid(
                "amount",
                "The amount must be an integer.",
            ))
        }
    };
    let currency = match fields.get("currency") {
        None | Some(Value::Null) => {
            return Err(RazorpayError::invalid(
                "currency",
                "The currency field is required.",
            ))
        }
        Some(Value::String(c)) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => {
            c.clone()
        }
        Some(_) => {
            return Err(RazorpayError::invalid(
                "currency",
                "Currency is not supported",
            ))
        }
    };
    // A negative amount has no u64: it is below the minimum too.
    let amount = match amount {
        Some(amount) if amount >= MIN_AMOUNT => amount,
        _ => {
            return Err(RazorpayError::invalid(
                "amount",
                format!("The amount must be at least {currency} 1.00"),
            ))
        }
    };
    let receipt = match fields.get("receipt") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) if r.chars().count() <= RECEIPT_MAX_CHARS => Some(r.clone()),
        Some(Value::String(_)) => {
            return Err(RazorpayError::invalid(
                "receipt",
                format!("The receipt may not be greater than {RECEIPT_MAX_CHARS} characters."),
            ))
        }
        Some(_) => {
            return Err(RazorpayError::invalid(
                "receipt",
                "The receipt must be a string.",
            ))
        }
    };
    let notes = parse_notes(fields.get("notes"))?;
    Ok(NewOrder {
        amount,
        currency,
        receipt,
        notes,
    })
}

/// `notes`: absent, `null`, `[]` or an object of at most 15 string values of ≤ 256 characters.
pub fn parse_notes(notes: Option<&Value>) -> Result<Notes, RazorpayError> {
    let notes = match notes {
        None | Some(Value::Null) => return Ok(Notes::default()),
        Some(Value::Array(items)) if items.is_empty() => return Ok(Notes::default()),
        Some(Value::Object(notes)) => notes,
        Some(_) => {
            return Err(RazorpayError::invalid(
                "notes",
                "The notes must be an object of key/value pairs.",
            ))
        }
    };
    if notes.len() > NOTES_MAX_KEYS {
        return Err(RazorpayError::invalid(
            "notes",
            format!("The notes may not have more than {NOTES_MAX_KEYS} items."),
        ));
    }
    for (key, value) in notes {
        let Value::String(text) = value else {
            return Err(RazorpayError::invalid(
                "notes",
                format!("The notes.{key} must be a string."),
            ));
        };
        if text.chars().count() > NOTE_MAX_CHARS {
            return Err(RazorpayError::invalid(
                "notes",
                format!("The notes.{key} may not be greater than {NOTE_MAX_CHARS} characters."),
            ));
        }
    }
    Ok(Notes(notes.clone()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn refused_field(body: Value) -> Option<String> {
        parse_new_order(body.to_string().as_bytes())
            .unwrap_err()
            .field
    }

    #[test]
    fn a_full_body_is_accepted() {
        let order = parse_new_order(
            json!({"amount": 29900, "currency": "INR", "receipt": "r#1", "notes": {"tenant_id": "t1"}})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(order.amount, 29900);
        assert_eq!(order.receipt.as_deref(), Some("r#1"));
        assert_eq!(order.notes.to_value(), json!({"tenant_id": "t1"}));
    }

    #[test]
    fn each_rule_names_its_field() {
        let ok = || json!({"amount": 100, "currency": "INR"});
        let with = |key: &str, value: Value| {
            let mut body = ok();
            body[key] = value;
            body
        };
        assert_eq!(
            refused_field(with("amount", json!(99))).as_deref(),
            Some("amount")
        );
        assert_eq!(
            refused_field(with("amount", json!(-5))).as_deref(),
            Some("amount")
        );
        assert_eq!(
            refused_field(with("amount", json!(100.5))).as_deref(),
            Some("amount")
        );
        assert_eq!(
            refused_field(with("amount", json!("100"))).as_deref(),
            Some("amount")
        );
        assert_eq!(
            refused_field(json!({"currency": "INR"})).as_deref(),
            Some("amount")
        );
        assert_eq!(
            refused_field(with("currency", json!("inr"))).as_deref(),
            Some("currency")
        );
        assert_eq!(
            refused_field(json!({"amount": 100})).as_deref(),
            Some("currency")
        );
        assert_eq!(
            refused_field(with("receipt", json!("x".repeat(41)))).as_deref(),
            Some("receipt")
        );
        let many: Map<String, Value> = (0..16).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert_eq!(
            refused_field(with("notes", Value::Object(many))).as_deref(),
            Some("notes")
        );
        assert_eq!(
            refused_field(with("notes", json!({"k": 1}))).as_deref(),
            Some("notes")
        );
        assert_eq!(
            refused_field(with("notes", json!({"k": "x".repeat(257)}))).as_deref(),
            Some("notes")
        );
        assert!(parse_new_order(
            with("receipt", json!("x".repeat(40)))
                .to_string()
                .as_bytes()
        )
        .is_ok());
        assert!(parse_new_order(with("notes", json!([])).to_string().as_bytes()).is_ok());
    }

    #[test]
    fn the_minimum_is_worded_as_razorpay_does() {
        let error = parse_new_order(br#"{"amount":99,"currency":"INR"}"#).unwrap_err();
        assert_eq!(error.description, "The amount must be at least INR 1.00");
        assert_eq!(error.code, "BAD_REQUEST_ERROR");
    }

    #[test]
    fn empty_notes_serialise_as_an_empty_array() {
        assert_eq!(serde_json::to_value(Notes::default()).unwrap(), json!([]));
        let order = Order::new(
            NewOrder {
                amount: 500,
                currency: "INR".to_owned(),
                receipt: None,
                notes: Notes::default(),
            },
            1,
        );
        let value = serde_json::to_value(&order).unwrap();
        assert_eq!(value["notes"], json!([]));
        assert_eq!(value["status"], "created");
        assert_eq!(value["offer_id"], Value::Null);
    }

    #[test]
    fn an_order_is_attempted_then_paid() {
        let mut order = Order::new(
            NewOrder {
                amount: 500,
                currency: "INR".to_owned(),
                receipt: None,
                notes: Notes::default(),
            },
            1,
        );
        order.record_failed_attempt();
        assert_eq!(order.status, OrderStatus::Attempted);
        order.record_capture(500);
        assert_eq!(order.status, OrderStatus::Paid);
        assert_eq!(
            (order.amount_paid, order.amount_due, order.attempts),
            (500, 0, 2)
        );
        order.record_failed_attempt();
        assert_eq!(order.status, OrderStatus::Paid, "a paid order stays paid");
    }
}
