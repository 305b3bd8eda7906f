//! The receipt e-mail of a credited recharge, queued through the outbox in the credit's
//! transaction (sent if and only if the credit commits).

use kloyst_billing::Posted;
use kloyst_core::VendorId;
use kloyst_mail::{enqueue_mail, SendMail};
use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::apply::ApplyError;
use crate::event::Payment;
use crate::repo::{self, OrderRow};

pub(crate) async fn enqueue(
    conn: &mut PgConnection,
    order: &OrderRow,
    payment: &Payment,
    posted: &Posted,
) -> Result<(), ApplyError> {
    let Some((to, company)) = repo::receipt_address(conn, order.vendor_id).await? else {
        tracing::warn!(order_id = %order.id, "no address for a recharge receipt");
        return Ok(());
    };
    let mail = SendMail {
        to,
        subject: format!(
            "Kloyst receipt {}: wallet recharged with {} {}",
            order.receipt,
            order.currency,
            money(posted.amount)
        ),
        text: text(company.as_str(), order, payment, posted),
        category: "receipt".to_owned(),
    };
    let vendor = VendorId::from_uuid(order.vendor_id);
    enqueue_mail(conn, &mail, Some(vendor), Some(payment.id.clone()))
        .await
        .map_err(|error| ApplyError::Retry(format!("receipt not queued: {error}")))?;
    Ok(())
}

fn text(company: &str, order: &OrderRow, payment: &Payment, posted: &Posted) -> String {
    format!(
        "Hello {company},\n\n\
         We received your payment and credited your Kloyst wallet.\n\n\
         Receipt:        {receipt}\n\
         Amount:         {currency} {amount}\n\
         Payment:        {payment_id}{method}\n\
         Razorpay order: {order_id}\n\
         Wallet balance: {currency} {balance}\n\n\
         Thank you,\nKloyst\n",
        receipt = order.receipt,
        currency = order.currency,
        amount = money(posted.amount),
        payment_id = payment.id,
        method = payment
            .method
            .as_deref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default(),
        order_id = order.razorpay_order_id.as_deref().unwrap_or_default(),
        balance = money(posted.balance_after),
    )
}

/// Two decimals, as money is read.
fn money(amount: Decimal) -> String {
    format!("{:.2}", amount)
}
