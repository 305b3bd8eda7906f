//! Razorpay webhooks, applied inside the inbox row's transaction (owner connection):
//!
//! - `payment.captured` credits the wallet exactly once per payment: the ledger reference is
//!   `recharge:<payment id>` and `payment_orders.razorpay_payment_id` is unique; the inbox
//!   stores each `x-razorpay-event-id` once. It credits only an order of ours whose amount,
//!   currency and vendor match the payment; anything else is flagged (`mismatch`), not
//!   credited. Each credit queues a receipt e-mail in the same transaction.
//! - `payment.failed` marks the order failed, unless it was paid (a failure may arrive
//!   before or after the capture of the same payment).
//! - `refund.processed` posts a REFUND once per refund id (`refund:<refund id>`).

use kloyst_audit::{Actor, AuditEntry, RequestMeta};
use kloyst_billing::{post_credit_in, post_refund_in, BillingError, Credit, CreditKind, Refund};
use kloyst_core::VendorId;
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::PgConnection;

use crate::event::{Payment, PaymentEvent, PaymentEventKind, RefundEntity};
use crate::receipt;
use crate::repo::{self, OrderRow};

/// What an event did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentOutcome {
    Credited {
        vendor_id: VendorId,
        payment_id: String,
        amount: Decimal,
    },
    /// This payment was credited before (a redelivery, or another event for it).
    AlreadyCredited {
        payment_id: String,
    },
    /// Not credited: the payment does not match its order (amount, currency, vendor, or
    /// the order was already paid by another payment). Recorded on the order and audited.
    Flagged {
        payment_id: String,
        reason: String,
    },
    MarkedFailed {
        payment_id: String,
    },
    /// A failure for an order already paid (or flagged): recorded in the logs only.
    FailureIgnored {
        payment_id: String,
    },
    Refunded {
        refund_id: String,
        amount: Decimal,
    },
    AlreadyRefunded {
        refund_id: String,
    },
    /// A refund of a payment that was flagged and never credited: no wallet money moves.
    RefundOfUncredited {
        refund_id: String,
    },
    /// An event we do not act on (`payment.authorized`, `order.paid`, …).
    Ignored {
        event: String,
    },
}

/// Why an event could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// May succeed later (e.g. a refund that arrived before its capture was applied).
    #[error("{0}")]
    Retry(String),
    /// Will never succeed as it stands (not our order, refund larger than the wallet …):
    /// dead-lettered for an operator.
    #[error("{0}")]
    Permanent(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<BillingError> for ApplyError {
    fn from(error: BillingError) -> Self {
        match error {
            BillingError::Database(error) => Self::Database(error),
            other => Self::Permanent(other.to_string()),
        }
    }
}

/// Applies one verified Razorpay event.
pub async fn apply_payment_event(
    conn: &mut PgConnection,
    event: &PaymentEvent,
    event_id: Option<&str>,
) -> Result<PaymentOutcome, ApplyError> {
    let kind = event
        .kind()
        .map_err(|error| ApplyError::Retry(error.to_string()))?;
    let outcome = match kind {
        PaymentEventKind::Captured(payment) => captured(conn, payment, event_id).await?,
        PaymentEventKind::Failed(payment) => failed(conn, payment).await?,
        PaymentEventKind::RefundProcessed(refund) => refund_processed(conn, refund).await?,
        PaymentEventKind::Ignored => PaymentOutcome::Ignored {
            event: event.event.clone(),
        },
    };
    Ok(outcome)
}

async fn order_of(conn: &mut PgConnection, payment: &Payment) -> Result<OrderRow, ApplyError> {
    let order_id = payment.order_id.as_deref().ok_or_else(|| {
        ApplyError::Permanent(format!(
            "payment {} has no order id: not a recharge of ours",
            payment.id
        ))
    })?;
    // Orders are committed before Checkout ever sees their id: an unknown one is not ours.
    repo::lock_by_razorpay_order_id(conn, order_id)
        .await?
        .ok_or_else(|| {
            ApplyError::Permanent(format!(
                "order {order_id} of payment {} is not ours",
                payment.id
            ))
        })
}

async fn captured(
    conn: &mut PgConnection,
    payment: &Payment,
    event_id: Option<&str>,
) -> Result<PaymentOutcome, ApplyError> {
    let order = order_of(conn, payment).await?;
    let vendor = VendorId::from_uuid(order.vendor_id);
    if order.razorpay_payment_id.as_deref() == Some(payment.id.as_str()) {
        return Ok(PaymentOutcome::AlreadyCredited {
            payment_id: payment.id.clone(),
        });
    }
    if let Some(reason) = mismatch(&order, payment) {
        return flag(conn, &order, payment, event_id, reason).await;
    }
    let amount = Decimal::new(payment.amount, 2);
    let posted = post_credit_in(
        conn,
        vendor,
        Credit {
            kind: CreditKind::Recharge,
            amount,
            reference: format!("recharge:{}", payment.id),
            payment_order_id: Some(order.id),
            description: Some(format!("Razorpay payment {}", payment.id)),
            created_by: None,
        },
    )
    .await?;
    if posted.replayed {
        return Ok(PaymentOutcome::AlreadyCredited {
            payment_id: payment.id.clone(),
        });
    }
    repo::mark_paid(conn, order.id, &payment.id).await?;
    audit(
        conn,
        vendor,
        "wallet.recharged",
        &order,
        json!({
            "razorpay_payment_id": payment.id,
            "razorpay_event_id": event_id,
            "amount": amount,
            "currency": payment.currency,
            "transaction_id": posted.transaction_id,
            "balance_after": posted.balance_after,
        }),
    )
    .await?;
    receipt::enqueue(conn, &order, payment, &posted).await?;
    metrics::counter!("wallet_recharges_credited_total").increment(1);
    Ok(PaymentOutcome::Credited {
        vendor_id: vendor,
        payment_id: payment.id.clone(),
        amount,
    })
}

/// Why a captured payment must not be credited to its order, if it must not.
fn mismatch(order: &OrderRow, payment: &Payment) -> Option<String> {
    if let Some(paid_by) = order
        .razorpay_payment_id
        .as_deref()
        .filter(|paid_by| *paid_by != payment.id)
    {
        return Some(format!("order already paid by {paid_by}"));
    }
    if let Some(noted) = payment.note("vendor_id") {
        if noted != order.vendor_id.to_string() {
            return Some(format!(
                "the payment's notes name vendor {noted}, the order belongs to another vendor"
            ));
        }
    }
    if payment.amount != order.amount_paise {
        return Some(format!(
            "amount {} paise differs from the order's {} paise",
            payment.amount, order.amount_paise
        ));
    }
    if payment.currency != order.currency {
        return Some(format!(
            "currency {} differs from the order's {}",
            payment.currency, order.currency
        ));
    }
    None
}

async fn flag(
    conn: &mut PgConnection,
    order: &OrderRow,
    payment: &Payment,
    event_id: Option<&str>,
    reason: String,
) -> Result<PaymentOutcome, ApplyError> {
    let detail = json!({
        "payment_id": payment.id,
        "event_id": event_id,
        "reason": reason,
        "expected": { "amount_paise": order.amount_paise, "currency": order.currency,
                      "vendor_id": order.vendor_id },
        "received": { "amount_paise": payment.amount, "currency": payment.currency,
                      "notes_vendor_id": payment.note("vendor_id") },
    });
    // An order already credited keeps its status; the stray payment is audited only.
    if order.razorpay_payment_id.is_none() {
        repo::mark_mismatch(conn, order.id, &detail).await?;
    }
    let vendor = VendorId::from_uuid(order.vendor_id);
    audit(conn, vendor, "wallet.recharge_flagged", order, detail).await?;
    metrics::counter!("wallet_recharges_flagged_total").increment(1);
    tracing::warn!(
        payment_id = %payment.id,
        order_id = %order.id,
        %reason,
        "a captured payment was flagged, not credited"
    );
    Ok(PaymentOutcome::Flagged {
        payment_id: payment.id.clone(),
        reason,
    })
}

async fn failed(conn: &mut PgConnection, payment: &Payment) -> Result<PaymentOutcome, ApplyError> {
    let order = order_of(conn, payment).await?;
    if matches!(
        order.status.as_str(),
        "paid" | "refunded" | "partially_refunded" | "mismatch"
    ) {
        tracing::info!(payment_id = %payment.id, status = %order.status, "payment.failed for a settled order");
        return Ok(PaymentOutcome::FailureIgnored {
            payment_id: payment.id.clone(),
        });
    }
    let reason = payment
        .error_description
        .as_deref()
        .or(payment.error_reason.as_deref());
    repo::mark_failed(conn, order.id, payment.error_code.as_deref(), reason).await?;
    Ok(PaymentOutcome::MarkedFailed {
        payment_id: payment.id.clone(),
    })
}

async fn refund_processed(
    conn: &mut PgConnection,
    refund: &RefundEntity,
) -> Result<PaymentOutcome, ApplyError> {
    let Some(order) = repo::lock_by_payment_id(conn, &refund.payment_id).await? else {
        if repo::flagged_payment_exists(conn, &refund.payment_id).await? {
            return Ok(PaymentOutcome::RefundOfUncredited {
                refund_id: refund.id.clone(),
            });
        }
        // Razorpay does not order events: the capture may not have been applied yet.
        return Err(ApplyError::Retry(format!(
            "refund {} is for payment {}, which has not been credited (yet)",
            refund.id, refund.payment_id
        )));
    };
    if refund.currency != order.currency {
        return Err(ApplyError::Permanent(format!(
            "refund {} is in {}, the order in {}",
            refund.id, refund.currency, order.currency
        )));
    }
    let vendor = VendorId::from_uuid(order.vendor_id);
    let amount = Decimal::new(refund.amount, 2);
    let already = Decimal::new(order.amount_refunded_paise, 2);
    if refund.amount <= 0 || order.amount_refunded_paise + refund.amount > order.amount_paise {
        // A redelivery of a refund already posted is caught by its reference below, so
        // check that first.
        if !repo::ledger_reference_exists(conn, &format!("refund:{}", refund.id)).await? {
            return Err(ApplyError::Permanent(format!(
                "refund {} of {amount} would take the refunds of order {} above its {} \
                 (already {already})",
                refund.id, order.id, order.amount
            )));
        }
    }
    // Refused (dead-lettered) if the wallet has already spent the money: an operator decides
    // (e.g. grants an overdraft) and replays it.
    let posted = post_refund_in(
        conn,
        vendor,
        Refund {
            amount,
            reference: format!("refund:{}", refund.id),
            payment_order_id: Some(order.id),
            description: Some(format!(
                "Razorpay refund {} of payment {}",
                refund.id, refund.payment_id
            )),
        },
    )
    .await?;
    if posted.replayed {
        return Ok(PaymentOutcome::AlreadyRefunded {
            refund_id: refund.id.clone(),
        });
    }
    repo::add_refund(conn, order.id, refund.amount).await?;
    audit(
        conn,
        vendor,
        "wallet.refunded",
        &order,
        json!({
            "razorpay_refund_id": refund.id,
            "razorpay_payment_id": refund.payment_id,
            "amount": amount,
            "transaction_id": posted.transaction_id,
        }),
    )
    .await?;
    Ok(PaymentOutcome::Refunded {
        refund_id: refund.id.clone(),
        amount,
    })
}

async fn audit(
    conn: &mut PgConnection,
    vendor: VendorId,
    action: &str,
    order: &OrderRow,
    details: serde_json::Value,
) -> Result<(), sqlx::Error> {
    kloyst_audit::record(
        conn,
        &AuditEntry {
            vendor_id: Some(vendor),
            actor: Actor::System,
            action,
            target_type: Some("payment_order"),
            target_id: Some(order.id.to_string()),
            details,
        },
        &RequestMeta::default(),
    )
    .await
}
