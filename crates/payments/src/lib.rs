//! Payments: wallet recharges through Razorpay.
//!
//! - [`Recharges`]: `init` creates a Razorpay order (Idempotency-Key honoured); `verify`
//!   checks Checkout's signature. Neither credits.
//! - [`apply_payment_event`]: the signed webhooks (verified by the webhook-worker with
//!   [`signature::verify_webhook`] and stored in the inbox first) credit, fail or refund,
//!   exactly once per payment, event and refund.
//! - [`RazorpayClient`]: the Orders API, at `RAZORPAY_API_BASE` (Razorpay, or the simulator).

mod apply;
mod error;
pub mod event;
mod razorpay;
mod receipt;
mod recharge;
mod repo;
mod settings;
pub mod signature;

pub use apply::{apply_payment_event, ApplyError, PaymentOutcome};
pub use error::PaymentError;
pub use event::PaymentEvent;
pub use razorpay::{NewOrder, RazorpayClient, RazorpayError, RazorpayOrder};
pub use recharge::{CheckoutResult, RechargeOrder, RechargeRequest, Recharges, VerifiedCheckout};
pub use settings::RechargeSettings;
