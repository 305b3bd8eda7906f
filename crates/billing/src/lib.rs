//! Billing: the prepaid wallet, holds and the append-only ledger.
//!
//! - [`Ledger`] / the `*_in` functions: credits, refunds, holds, releases and debits, each
//!   one transaction that locks the wallet row, appends ledger rows with their
//!   `balance_after`/`held_after` and moves the wallet; exactly once per reference.
//! - [`post_debits_in`]: the batch path for hot wallets (one lock, one insert, one update).
//!   `Ledger::post_debits` and the batcher post a batch without holds as ONE autocommit
//!   statement (`ledger/one_statement.rs`), falling back to `post_debits_in` when needed.
//! - [`DebitBatcher`]: group commit over the batch path — callers hand single debits and
//!   whatever queued for a wallet while its previous batch committed goes in the next one.
//! - [`invariant_violations`]: the SQL function's findings.
//! - [`WalletReader`]: a vendor's own balance, ledger page and recharges (tenant reads).
//!
//! Amounts: `Decimal`, at most 4 decimal places, checked where they enter (see [`model`]).

mod batcher;
mod error;
mod invariants;
mod ledger;
pub mod model;
mod read;

pub use batcher::{BatcherSettings, DebitBatcher};
pub use error::BillingError;
pub use invariants::invariant_violations;
pub use ledger::{
    hold_in, post_credit_in, post_debits_in, post_refund_in, release_in, wallet_in, Ledger,
};
pub use model::{
    Credit, CreditKind, Debit, HoldRequest, HoldStatus, HoldView, Posted, Refund, TransactionKind,
    Violation, WalletView,
};
pub use model::{RechargeView, TransactionFilter, TransactionView};
pub use read::{WalletReadError, WalletReader};
