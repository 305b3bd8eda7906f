//! A wallet to post to, short constructors, and the books check.

use std::str::FromStr;

use kloyst_billing::{invariant_violations, Credit, CreditKind, Debit, Ledger, Posted, WalletView};
use kloyst_core::VendorId;
use kloyst_testkit::TestStores;
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

pub async fn setup() -> (TestStores, Ledger) {
    let stores = TestStores::new().await;
    let ledger = Ledger::new(stores.pg.clone());
    (stores, ledger)
}

/// A vendor with a wallet (balance 0) allowed to go `overdraft` below zero.
pub async fn new_wallet(pg: &PgPool, overdraft: Decimal) -> VendorId {
    let vendor: Uuid =
        sqlx::query_scalar("INSERT INTO vendors (name) VALUES ('Acme') RETURNING id")
            .fetch_one(pg)
            .await
            .expect("insert a vendor");
    sqlx::query("INSERT INTO wallets (vendor_id, overdraft_limit) VALUES ($1, $2)")
        .bind(vendor)
        .bind(overdraft)
        .execute(pg)
        .await
        .expect("insert a wallet");
    VendorId::from_uuid(vendor)
}

pub fn d(value: &str) -> Decimal {
    Decimal::from_str(value).expect("a decimal")
}

/// A reference no other test uses.
pub fn reference(prefix: &str) -> String {
    format!("{prefix}:{}", Uuid::new_v4())
}

pub fn recharge(reference: &str, amount: &str) -> Credit {
    Credit {
        kind: CreditKind::Recharge,
        amount: d(amount),
        reference: reference.to_owned(),
        payment_order_id: None,
        description: None,
        created_by: None,
    }
}

pub fn debit(reference: &str, amount: &str, hold_id: Option<Uuid>) -> Debit {
    Debit {
        reference: reference.to_owned(),
        amount: d(amount),
        hold_id,
        campaign_id: None,
        wa_message_id: Some(format!("wamid.{reference}")),
        metadata: serde_json::json!({ "category": "marketing" }),
    }
}

/// Funds a new wallet with `amount`.
pub async fn funded_wallet(ledger: &Ledger, amount: &str, overdraft: &str) -> VendorId {
    let vendor = new_wallet(&ledger.pg, d(overdraft)).await;
    ledger
        .post_credit(vendor, recharge(&reference("recharge:pay"), amount))
        .await
        .expect("fund the wallet");
    vendor
}

/// The wallet after asserting that no invariant is violated.
pub async fn books(ledger: &Ledger, vendor: VendorId) -> WalletView {
    let wallet = ledger.wallet(vendor).await.expect("the wallet");
    let violations = invariant_violations(&ledger.pg, Some(wallet.id))
        .await
        .expect("check invariants");
    assert!(
        violations.is_empty(),
        "invariants violated: {violations:#?}"
    );
    wallet
}

/// (balance, held, available) of the wallet, books checked.
pub async fn figures(ledger: &Ledger, vendor: VendorId) -> (Decimal, Decimal, Decimal) {
    let wallet = books(ledger, vendor).await;
    assert_eq!(wallet.available, wallet.balance - wallet.held);
    (wallet.balance, wallet.held, wallet.available)
}

pub async fn ledger_rows(pg: &PgPool, vendor: VendorId) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM transactions WHERE vendor_id = $1")
        .bind(vendor.as_uuid())
        .fetch_one(pg)
        .await
        .expect("count ledger rows")
}

/// The fields that identify a posting, without the replay flag.
pub fn same_posting(a: &Posted, b: &Posted) -> bool {
    Posted {
        replayed: false,
        ..a.clone()
    } == Posted {
        replayed: false,
        ..b.clone()
    }
}
