//! Wallet recharges, the vendor's side: create a Razorpay order (`init`) and check what the
//! browser's checkout reports (`verify`). Neither credits the wallet: only the signed
//! `payment.captured` webhook does (see [`crate::apply`]).

use chrono::{DateTime, Utc};
use kloyst_audit::{Actor, AuditEntry, RequestMeta};
use kloyst_config::Secret;
use kloyst_core::FieldError;
use kloyst_db::{PgPool, Postgres, Transaction};
use kloyst_identity::{Principal, Role};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::error::PaymentError;
use crate::razorpay::{NewOrder, RazorpayClient};
use crate::repo::{self, NewOrderRow, OrderRow};
use crate::settings::RechargeSettings;
use crate::signature;

/// Razorpay orders are in INR here (the wallet's currency); amounts have whole paise.
const ORDER_CURRENCY: &str = "INR";
const PAISE_DP: u32 = 2;
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// `POST /v1/wallet/recharge/init` body.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RechargeRequest {
    /// In the wallet's currency (INR), e.g. `"500"` or `500.50`.
    pub amount: Decimal,
}

/// What the frontend's Razorpay Checkout needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RechargeOrder {
    /// Our payment order id.
    pub id: Uuid,
    pub razorpay_order_id: String,
    pub amount: Decimal,
    /// What Checkout takes (`amount` option).
    pub amount_paise: i64,
    pub currency: String,
    /// Razorpay's public key id (Checkout's `key` option).
    pub key_id: String,
    pub receipt: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    /// A retry with the same Idempotency-Key: this is the order the first call created.
    #[serde(skip)]
    pub replayed: bool,
}

/// `POST /v1/wallet/recharge/verify` body: what Checkout's success handler received.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckoutResult {
    pub razorpay_order_id: String,
    pub razorpay_payment_id: String,
    pub razorpay_signature: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifiedCheckout {
    pub id: Uuid,
    pub razorpay_order_id: String,
    /// `attempted` until Razorpay's webhook confirms the capture, then `paid`.
    pub status: String,
    /// The wallet has been credited for this order.
    pub credited: bool,
}

/// The recharge service.
#[derive(Clone, Debug)]
pub struct Recharges {
    pg: PgPool,
    client: RazorpayClient,
    key_secret: Secret<String>,
    settings: RechargeSettings,
}

impl Recharges {
    pub fn new(
        pg: PgPool,
        client: RazorpayClient,
        key_secret: Secret<String>,
        settings: RechargeSettings,
    ) -> Self {
        Self {
            pg,
            client,
            key_secret,
            settings,
        }
    }

    /// Creates a Razorpay order for `amount`. With an Idempotency-Key, a retry returns the
    /// order the first call created (a different amount is refused).
    ///
    /// The order row is inserted, Razorpay called and the row completed in ONE tenant
    /// transaction: a concurrent retry with the same key waits on the row and then reads
    /// the finished order; a failed call leaves nothing behind. If the commit itself failed
    /// after Razorpay answered, Razorpay keeps an order nobody can pay (it expires unused).
    pub async fn init(
        &self,
        who: &Principal,
        request: RechargeRequest,
        idempotency_key: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<RechargeOrder, PaymentError> {
        require_admin(who)?;
        let amount = self.checked_amount(request.amount, idempotency_key)?;
        let mut tx = self.begin_for(who).await?;
        if let Some(key) = idempotency_key {
            if let Some(found) = repo::lock_by_idempotency_key(&mut tx, who.vendor_id, key).await? {
                return self.replay(tx, found, amount).await;
            }
        }
        let (wallet_id, currency) = repo::wallet_of(&mut tx, who.vendor_id)
            .await?
            .ok_or(PaymentError::WalletNotFound)?;
        if currency != ORDER_CURRENCY {
            return Err(invalid(
                "amount",
                "currency",
                format!("recharges are in {ORDER_CURRENCY}; this wallet is in {currency}"),
            ));
        }
        let id = Uuid::new_v4();
        let receipt = format!("kl_{}", id.simple());
        let amount_paise = to_paise(amount)?;
        let notes = json!({
            "vendor_id": who.vendor_id.to_string(),
            "payment_order_id": id.to_string(),
        });
        let inserted = repo::insert_creating(
            &mut tx,
            &NewOrderRow {
                id,
                vendor: who.vendor_id,
                wallet_id,
                receipt: &receipt,
                amount,
                amount_paise,
                currency: &currency,
                idempotency_key,
                created_by: who.user_id.as_uuid(),
                notes: &notes,
            },
        )
        .await?;
        let Some(row) = inserted else {
            // A concurrent request with this key committed while we waited on its row.
            let key = idempotency_key.unwrap_or_default();
            let found = repo::lock_by_idempotency_key(&mut tx, who.vendor_id, key)
                .await?
                .ok_or(PaymentError::OrderNotFound)?;
            return self.replay(tx, found, amount).await;
        };
        let notes = match notes {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let order = self
            .client
            .create_order(&NewOrder {
                amount: row.amount_paise,
                currency: row.currency.clone(),
                receipt: row.receipt.clone(),
                notes,
            })
            .await
            .map_err(PaymentError::ProviderUnavailable)?;
        let row = repo::mark_created(&mut tx, row.id, &order.id).await?;
        kloyst_audit::record(
            &mut tx,
            &AuditEntry {
                vendor_id: Some(who.vendor_id),
                actor: Actor::User(who.user_id),
                action: "wallet.recharge_initiated",
                target_type: Some("payment_order"),
                target_id: Some(row.id.to_string()),
                details: json!({
                    "razorpay_order_id": order.id,
                    "amount": row.amount,
                    "currency": row.currency,
                }),
            },
            meta,
        )
        .await?;
        tx.commit().await?;
        self.view(row, false)
    }

    /// Checks Checkout's signature against the order id we stored. It does not credit:
    /// it tells the frontend the payment is under way (or already credited).
    pub async fn verify(
        &self,
        who: &Principal,
        checkout: CheckoutResult,
    ) -> Result<VerifiedCheckout, PaymentError> {
        require_admin(who)?;
        let mut errors = Vec::new();
        if !is_razorpay_id(&checkout.razorpay_order_id, "order_") {
            errors.push(field(
                "razorpay_order_id",
                "format",
                "expected order_ followed by letters and digits",
            ));
        }
        if !is_razorpay_id(&checkout.razorpay_payment_id, "pay_") {
            errors.push(field(
                "razorpay_payment_id",
                "format",
                "expected pay_ followed by letters and digits",
            ));
        }
        if !errors.is_empty() {
            return Err(PaymentError::Invalid(errors));
        }
        let mut tx = self.begin_for(who).await?;
        let order =
            repo::vendor_order_by_razorpay_id(&mut tx, who.vendor_id, &checkout.razorpay_order_id)
                .await?
                .ok_or(PaymentError::OrderNotFound)?;
        let stored_order_id = order.razorpay_order_id.clone().unwrap_or_default();
        signature::verify_checkout(
            self.key_secret.expose().as_bytes(),
            &stored_order_id,
            &checkout.razorpay_payment_id,
            &checkout.razorpay_signature,
        )
        .map_err(PaymentError::SignatureInvalid)?;
        let status = if order.status == "created" {
            repo::mark_attempted(&mut tx, order.id).await?;
            "attempted".to_owned()
        } else {
            order.status.clone()
        };
        tx.commit().await?;
        Ok(VerifiedCheckout {
            id: order.id,
            razorpay_order_id: stored_order_id,
            credited: matches!(status.as_str(), "paid" | "refunded" | "partially_refunded"),
            status,
        })
    }

    fn checked_amount(
        &self,
        amount: Decimal,
        idempotency_key: Option<&str>,
    ) -> Result<Decimal, PaymentError> {
        let mut errors = Vec::new();
        let (min, max) = (self.settings.min_amount, self.settings.max_amount);
        if amount.normalize().scale() > PAISE_DP {
            errors.push(field(
                "amount",
                "precision",
                "at most 2 decimal places (paise)",
            ));
        } else if amount < min || amount > max {
            errors.push(field(
                "amount",
                "out_of_range",
                &format!("must be between {min} and {max} {ORDER_CURRENCY}"),
            ));
        }
        if let Some(key) = idempotency_key {
            let printable = key.bytes().all(|b| (0x21..=0x7e).contains(&b));
            if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN || !printable {
                errors.push(field(
                    "Idempotency-Key",
                    "format",
                    "1 to 255 printable ASCII characters",
                ));
            }
        }
        if errors.is_empty() {
            Ok(amount.round_dp(PAISE_DP))
        } else {
            Err(PaymentError::Invalid(errors))
        }
    }

    async fn replay(
        &self,
        tx: Transaction<'static, Postgres>,
        found: OrderRow,
        amount: Decimal,
    ) -> Result<RechargeOrder, PaymentError> {
        kloyst_db::end_read_only(tx);
        if found.amount != amount {
            return Err(PaymentError::IdempotencyKeyReused);
        }
        self.view(found, true)
    }

    fn view(&self, row: OrderRow, replayed: bool) -> Result<RechargeOrder, PaymentError> {
        Ok(RechargeOrder {
            id: row.id,
            // Never committed without it (see `init`); a row without it is not an order.
            razorpay_order_id: row.razorpay_order_id.ok_or(PaymentError::OrderNotFound)?,
            amount: row.amount,
            amount_paise: row.amount_paise,
            currency: row.currency,
            key_id: self.client.key_id().to_owned(),
            receipt: row.receipt,
            status: row.status,
            created_at: row.created_at,
            replayed,
        })
    }

    async fn begin_for(
        &self,
        who: &Principal,
    ) -> Result<Transaction<'static, Postgres>, PaymentError> {
        Ok(
            kloyst_db::begin_as_user(&self.pg, who.vendor_id, who.user_id, who.role.as_str())
                .await?,
        )
    }
}

fn require_admin(who: &Principal) -> Result<(), PaymentError> {
    if who.role == Role::Admin {
        Ok(())
    } else {
        Err(PaymentError::AdminOnly)
    }
}

/// Paise of an amount with at most 2 decimal places.
fn to_paise(amount: Decimal) -> Result<i64, PaymentError> {
    let paise = (amount * Decimal::from(100)).normalize();
    i64::try_from(paise).map_err(|_| invalid("amount", "out_of_range", "too large".to_owned()))
}

/// `order_…` / `pay_…`: Razorpay ids are a prefix and 14 alphanumerics; allow some slack.
fn is_razorpay_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        (1..=40).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

fn field(name: &str, code: &str, message: &str) -> FieldError {
    FieldError {
        field: name.to_owned(),
        code: code.to_owned(),
        message: message.to_owned(),
    }
}

fn invalid(name: &str, code: &str, message: String) -> PaymentError {
    PaymentError::Invalid(vec![field(name, code, &message)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn paise_of_whole_and_fractional_rupees() {
        assert_eq!(to_paise(Decimal::from(500)).unwrap(), 50_000);
        assert_eq!(
            to_paise(Decimal::from_str("500.5").unwrap()).unwrap(),
            50_050
        );
        assert_eq!(to_paise(Decimal::from_str("1.01").unwrap()).unwrap(), 101);
    }

    #[test]
    fn razorpay_ids_need_their_prefix_and_alphanumerics() {
        assert!(is_razorpay_id("order_RB58MiP5SPFYyM", "order_"));
        assert!(is_razorpay_id("pay_29QQoUBi66xm2f", "pay_"));
        assert!(!is_razorpay_id("pay_29QQoUBi66xm2f", "order_"));
        assert!(!is_razorpay_id("order_", "order_"));
        assert!(!is_razorpay_id("order_a b", "order_"));
        assert!(!is_razorpay_id("order_x'; DROP", "order_"));
    }
}
