//! `books reconcile` and `campaigns settle`: the worker-pool's periodic money jobs, run once
//! by an operator (after an incident, or before closing a month).

use kloyst_config::{ConfigError, Env};
use kloyst_db::PgPool;
use kloyst_delivery::{SettlementError, SettlementSettings};

#[derive(Debug, thiserror::Error)]
pub enum BooksError {
    #[error(transparent)]
    Settlement(#[from] SettlementError),
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    /// The report was printed; the books have this many differences.
    #[error("the books have {0} difference(s) (stored in books_reconciliations)")]
    Differences(usize),
    #[error("cannot print the report: {0}")]
    Print(#[from] serde_json::Error),
}

/// Reconciles the books now and prints the report as JSON; `Differences` (exit code 1) when
/// any difference that is not informational was found.
pub async fn reconcile(pool: &PgPool) -> Result<(), BooksError> {
    let report = kloyst_delivery::reconcile_books(pool).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    if report.difference_count > 0 {
        return Err(BooksError::Differences(report.difference_count));
    }
    Ok(())
}

/// One settlement pass (`CAMPAIGN_SETTLE_AFTER` as the services read it); prints the report.
pub async fn settle(pool: &PgPool) -> Result<(), BooksError> {
    let settings = SettlementSettings::from_env(&Env::from_process())?;
    let report =
        kloyst_delivery::settle_campaigns(pool, settings.settle_after, chrono::Utc::now()).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
