//! What callers hand the ledger and what it answers.
//!
//! Amounts are `Decimal` with at most 4 decimal places (the columns are numeric(14, 4)). They
//! are checked once, when they enter the ledger API ([`ledger_amount`]): more than 4 decimal
//! places is refused with [`BillingError::InvalidAmount`] rather than rounded, so that the
//! one rounding step stays with whoever priced the amount (the pricing engine rounds its
//! total to 4 dp, half-even) and the ledger never silently changes a figure.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::BillingError;

/// Decimal places the ledger keeps.
pub const AMOUNT_SCALE: u32 = 4;

/// numeric(14, 4): at most 10 digits before the point.
fn amount_limit() -> Decimal {
    Decimal::from(10_000_000_000_i64)
}

/// Checks an amount entering the ledger: > 0, at most 4 dp, within numeric(14, 4).
pub fn ledger_amount(amount: Decimal) -> Result<Decimal, BillingError> {
    let amount = amount.normalize();
    if amount.scale() > AMOUNT_SCALE {
        return Err(BillingError::InvalidAmount(format!(
            "{amount} has more than {AMOUNT_SCALE} decimal places"
        )));
    }
    if amount <= Decimal::ZERO {
        return Err(BillingError::InvalidAmount(format!(
            "{amount} must be greater than zero"
        )));
    }
    if amount >= amount_limit() {
        return Err(BillingError::InvalidAmount(format!(
            "{amount} is too large"
        )));
    }
    Ok(amount)
}

/// Checks a reference: 1 to 255 characters (the column's CHECK).
pub(crate) fn ledger_reference(reference: &str) -> Result<(), BillingError> {
    match reference.chars().count() {
        1..=255 => Ok(()),
        _ => Err(BillingError::InvalidAmount(
            "a reference must be 1 to 255 characters".to_owned(),
        )),
    }
}

/// The `transactions.kind` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransactionKind {
    CreditRecharge,
    DebitMessage,
    Refund,
    Hold,
    HoldRelease,
    Adjustment,
}

impl TransactionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreditRecharge => "CREDIT_RECHARGE",
            Self::DebitMessage => "DEBIT_MESSAGE",
            Self::Refund => "REFUND",
            Self::Hold => "HOLD",
            Self::HoldRelease => "HOLD_RELEASE",
            Self::Adjustment => "ADJUSTMENT",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "CREDIT_RECHARGE" => Self::CreditRecharge,
            "DEBIT_MESSAGE" => Self::DebitMessage,
            "REFUND" => Self::Refund,
            "HOLD" => Self::Hold,
            "HOLD_RELEASE" => Self::HoldRelease,
            "ADJUSTMENT" => Self::Adjustment,
            _ => return None,
        })
    }
}

/// What a credit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreditKind {
    /// A Razorpay recharge (reference `recharge:<payment id>`); amount must be > 0.
    Recharge,
    /// A manual correction by an admin (reference `adjustment:<uuid>`). The only credit whose
    /// amount may be negative: a negative adjustment takes money out and is refused with
    /// `InsufficientFunds` if available (balance − held) would go below −overdraft_limit.
    Adjustment,
}

#[derive(Clone, Debug)]
pub struct Credit {
    pub kind: CreditKind,
    pub amount: Decimal,
    pub reference: String,
    pub payment_order_id: Option<Uuid>,
    pub description: Option<String>,
    pub created_by: Option<Uuid>,
}

/// Money returned to the payer (Razorpay refund): `amount` > 0 is given, stored negative.
#[derive(Clone, Debug)]
pub struct Refund {
    pub amount: Decimal,
    pub reference: String,
    pub payment_order_id: Option<Uuid>,
    pub description: Option<String>,
}

/// A reservation, e.g. a campaign's quoted cost. Never uses the overdraft: available
/// (balance − held) must cover it.
#[derive(Clone, Debug)]
pub struct HoldRequest {
    pub amount: Decimal,
    pub reference: String,
    pub campaign_id: Option<Uuid>,
}

/// A message charge: `amount` > 0 is given, stored negative. With `hold_id`, up to the hold's
/// remaining is captured from it; the rest (or all of it, once the hold is closed) comes
/// from free balance.
#[derive(Clone, Debug)]
pub struct Debit {
    pub reference: String,
    pub amount: Decimal,
    pub hold_id: Option<Uuid>,
    pub campaign_id: Option<Uuid>,
    pub wa_message_id: Option<String>,
    /// Pricing facts; must be a JSON object (or null, stored as `{}`).
    pub metadata: serde_json::Value,
}

/// One ledger row as posted (or as first posted, when `replayed`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Posted {
    pub transaction_id: i64,
    pub kind: TransactionKind,
    /// Effect on the balance (debits and refunds negative).
    pub amount: Decimal,
    /// Effect on held (HOLD > 0; HOLD_RELEASE and captures < 0).
    pub hold_delta: Decimal,
    pub balance_after: Decimal,
    pub held_after: Decimal,
    pub reference: String,
    pub hold_id: Option<Uuid>,
    /// The reference had been posted before; nothing changed.
    pub replayed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HoldStatus {
    Active,
    Closed,
}

/// A hold as it stands after the call, with its HOLD ledger row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HoldView {
    pub id: Uuid,
    pub campaign_id: Option<Uuid>,
    pub reference: String,
    pub amount: Decimal,
    pub captured: Decimal,
    pub released: Decimal,
    pub remaining: Decimal,
    pub status: HoldStatus,
    pub posted: Posted,
}

/// A wallet's figures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WalletView {
    pub id: Uuid,
    pub currency: String,
    pub balance: Decimal,
    pub held: Decimal,
    pub available: Decimal,
    pub overdraft_limit: Decimal,
}

/// One row of `wallet_invariant_violations`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub wallet_id: Uuid,
    pub vendor_id: Uuid,
    pub invariant: String,
    pub expected: Option<Decimal>,
    pub actual: Option<Decimal>,
}

/// `GET /v1/wallet/transactions?…`: the page and the filters (all optional, combined with AND).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionFilter {
    /// 1–200, default 50; larger values are capped at 200.
    #[serde(default)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// A [`TransactionKind`] name, e.g. `CREDIT_RECHARGE` (any case).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// RFC 3339; rows created at or after it.
    #[serde(default)]
    pub from: Option<String>,
    /// RFC 3339; rows created before it.
    #[serde(default)]
    pub to: Option<String>,
}

/// One ledger row as a vendor reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TransactionView {
    pub id: i64,
    pub kind: TransactionKind,
    pub amount: Decimal,
    pub hold_delta: Decimal,
    pub balance_after: Decimal,
    pub held_after: Decimal,
    pub reference: String,
    pub campaign_id: Option<Uuid>,
    pub wa_message_id: Option<String>,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// One Razorpay payment order of the vendor (a recharge, paid or not).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct RechargeView {
    pub id: Uuid,
    pub amount: Decimal,
    pub currency: String,
    pub status: String,
    pub razorpay_order_id: Option<String>,
    pub razorpay_payment_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn amounts_with_more_than_four_places_are_refused_not_rounded() {
        let ok = Decimal::from_str("12.3400000").unwrap_or_default();
        assert_eq!(ledger_amount(ok).ok(), Decimal::from_str("12.34").ok());
        let too_fine = Decimal::from_str("0.00001").unwrap_or_default();
        assert!(matches!(
            ledger_amount(too_fine),
            Err(BillingError::InvalidAmount(_))
        ));
        assert!(ledger_amount(Decimal::ZERO).is_err());
        assert!(ledger_amount(Decimal::from(-1)).is_err());
        assert!(ledger_amount(Decimal::from(10_000_000_000_i64)).is_err());
    }
}
