//! The ledger's invariants, checked by the SQL function `wallet_invariant_violations`
//! (migration 20261121000006): for tests and the daily reconciliation.

use rust_decimal::Decimal;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::model::Violation;

/// wallet_id, vendor_id, invariant, expected, actual
type ViolationRow = (Uuid, Uuid, String, Option<Decimal>, Option<Decimal>);

/// Every violated invariant, of one wallet or of all; empty when the books are right.
pub async fn invariant_violations(
    pg: impl PgExecutor<'_>,
    wallet_id: Option<Uuid>,
) -> Result<Vec<Violation>, sqlx::Error> {
    let rows: Vec<ViolationRow> = sqlx::query_as(
        "SELECT wallet_id, vendor_id, invariant, expected, actual
         FROM wallet_invariant_violations($1)",
    )
    .bind(wallet_id)
    .fetch_all(pg)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(wallet_id, vendor_id, invariant, expected, actual)| Violation {
                wallet_id,
                vendor_id,
                invariant,
                expected,
                actual,
            },
        )
        .collect())
}
