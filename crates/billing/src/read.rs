//! The vendor's read side of its money: the wallet's figures, the ledger and the recharges.
//! Any role of the vendor may read them (ADMIN only applies to calls that move money).
//!
//! Each call is one tenant transaction (`kloyst_db::begin_as_user`: RLS on the caller's
//! vendor, session checked) that also filters by the token's vendor, so another vendor's rows
//! are never seen, even with its cursor.

use chrono::{DateTime, Utc};
use kloyst_core::page::{self, Page, PageRequest};
use kloyst_core::{DomainError, ErrorClass, FieldError, VendorId};
use kloyst_db::{PgConnection, PgPool, Postgres, Transaction};
use kloyst_identity::Principal;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::model::{RechargeView, TransactionFilter, TransactionKind, TransactionView, WalletView};

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum WalletReadError {
    /// One entry per invalid query parameter (422).
    #[error("{} field(s) are invalid", .0.len())]
    Invalid(Vec<FieldError>),

    #[error("wallet not found")]
    WalletNotFound,

    /// The user's token no longer holds (disabled, or role changed): 401.
    #[error("the token is not valid; log in again")]
    SessionRevoked,

    #[error("internal error: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for WalletReadError {
    fn from(error: sqlx::Error) -> Self {
        if kloyst_db::is_session_revoked(&error) {
            return Self::SessionRevoked;
        }
        Self::Database(error)
    }
}

impl DomainError for WalletReadError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Invalid(_) => ErrorClass::Invalid,
            Self::WalletNotFound => ErrorClass::NotFound,
            Self::SessionRevoked => ErrorClass::Unauthenticated,
            Self::Database(_) => ErrorClass::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "validation_failed",
            Self::WalletNotFound => "wallet_not_found",
            Self::SessionRevoked => "token_invalid",
            Self::Database(_) => "internal_error",
        }
    }

    fn field_errors(&self) -> Vec<FieldError> {
        match self {
            Self::Invalid(fields) => fields.clone(),
            _ => Vec::new(),
        }
    }
}

/// Reads of the caller's own wallet, ledger and recharges.
#[derive(Clone, Debug)]
pub struct WalletReader {
    pg: PgPool,
}

impl WalletReader {
    pub fn new(pg: PgPool) -> Self {
        Self { pg }
    }

    /// The wallet's balance, held, available, currency and overdraft limit.
    pub async fn balance(&self, who: &Principal) -> Result<WalletView, WalletReadError> {
        let mut tx = self.begin_for(who).await?;
        let wallet = sqlx::query_as::<_, (Uuid, String, Decimal, Decimal, Decimal, Decimal)>(
            "SELECT id, currency, balance, held, available, overdraft_limit
               FROM wallets WHERE vendor_id = $1",
        )
        .bind(who.vendor_id.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        kloyst_db::end_read_only(tx);
        let (id, currency, balance, held, available, overdraft_limit) =
            wallet.ok_or(WalletReadError::WalletNotFound)?;
        Ok(WalletView {
            id,
            currency,
            balance,
            held,
            available,
            overdraft_limit,
        })
    }

    /// The ledger, newest first (by id), filtered by kind and `[from, to)`.
    pub async fn transactions(
        &self,
        who: &Principal,
        filter: TransactionFilter,
    ) -> Result<Page<TransactionView>, WalletReadError> {
        let query = TransactionQuery::parse(&filter).map_err(WalletReadError::Invalid)?;
        let mut tx = self.begin_for(who).await?;
        let mut rows = select_transactions(&mut tx, who.vendor_id, &query).await?;
        kloyst_db::end_read_only(tx);
        let limit = query.limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last()
                .map(|row| page::encode_bytes(&row.id.to_be_bytes()))
        } else {
            None
        };
        Ok(Page {
            data: rows,
            next_cursor,
        })
    }

    /// The vendor's payment orders, newest first.
    pub async fn recharges(
        &self,
        who: &Principal,
        request: PageRequest,
    ) -> Result<Page<RechargeView>, WalletReadError> {
        let mut errors = Vec::new();
        let limit = request
            .limit()
            .map_err(|e| errors.push(e))
            .unwrap_or(page::DEFAULT_LIMIT);
        let after = match request.cursor.as_deref() {
            None => None,
            Some(cursor) => page::decode_time_id(cursor)
                .map_err(|e| errors.push(e))
                .ok(),
        };
        if !errors.is_empty() {
            return Err(WalletReadError::Invalid(errors));
        }
        let mut tx = self.begin_for(who).await?;
        let mut rows = sqlx::query_as::<_, RechargeView>(
            "SELECT id, amount, currency, status, razorpay_order_id, razorpay_payment_id,
                    created_at, paid_at
               FROM payment_orders
              WHERE vendor_id = $1
                AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
              ORDER BY created_at DESC, id DESC
              LIMIT $4",
        )
        .bind(who.vendor_id.as_uuid())
        .bind(after.map(|(at, _)| at))
        .bind(after.map(|(_, id)| id))
        .bind(i64::from(limit) + 1)
        .fetch_all(&mut *tx)
        .await?;
        kloyst_db::end_read_only(tx);
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last()
                .map(|row| page::encode_time_id(row.created_at, row.id))
        } else {
            None
        };
        Ok(Page {
            data: rows,
            next_cursor,
        })
    }

    async fn begin_for(
        &self,
        who: &Principal,
    ) -> Result<Transaction<'static, Postgres>, WalletReadError> {
        Ok(
            kloyst_db::begin_as_user(&self.pg, who.vendor_id, who.user_id, who.role.as_str())
                .await?,
        )
    }
}

/// A transactions query, checked.
struct TransactionQuery {
    limit: u32,
    before_id: Option<i64>,
    kind: Option<TransactionKind>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

impl TransactionQuery {
    /// Every invalid parameter at once.
    fn parse(filter: &TransactionFilter) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let limit = PageRequest {
            limit: filter.limit,
            cursor: None,
        }
        .limit()
        .map_err(|e| errors.push(e))
        .unwrap_or(page::DEFAULT_LIMIT);
        let before_id = filter
            .cursor
            .as_deref()
            .and_then(|cursor| decode_id(cursor).map_err(|e| errors.push(e)).ok());
        let kind = non_blank(filter.kind.as_deref()).and_then(|kind| {
            let parsed = TransactionKind::parse(&kind.to_ascii_uppercase());
            if parsed.is_none() {
                errors.push(FieldError::new(
                    "type",
                    "invalid_type",
                    "must be one of CREDIT_RECHARGE, DEBIT_MESSAGE, REFUND, HOLD, \
                     HOLD_RELEASE, ADJUSTMENT",
                ));
            }
            parsed
        });
        let from = timestamp(filter.from.as_deref(), "from", &mut errors);
        let to = timestamp(filter.to.as_deref(), "to", &mut errors);
        if let (Some(from), Some(to)) = (from, to) {
            if from > to {
                errors.push(FieldError::new(
                    "to",
                    "out_of_range",
                    "must not be before `from`",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            limit,
            before_id,
            kind,
            from,
            to,
        })
    }
}

fn non_blank(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// An RFC 3339 timestamp parameter; blank means none.
fn timestamp(
    value: Option<&str>,
    field: &'static str,
    errors: &mut Vec<FieldError>,
) -> Option<DateTime<Utc>> {
    let value = non_blank(value)?;
    match DateTime::parse_from_rfc3339(value) {
        Ok(at) => Some(at.with_timezone(&Utc)),
        Err(_) => {
            errors.push(FieldError::new(
                field,
                "invalid_datetime",
                "must be an RFC 3339 date-time, e.g. 2026-11-01T00:00:00Z",
            ));
            None
        }
    }
}

/// A transactions cursor: the last id of the previous page, 8 bytes big-endian.
fn decode_id(cursor: &str) -> Result<i64, FieldError> {
    let bytes = page::decode_bytes(cursor).ok_or_else(page::invalid_cursor)?;
    let bytes: [u8; 8] = bytes.try_into().map_err(|_| page::invalid_cursor())?;
    let id = i64::from_be_bytes(bytes);
    if id <= 0 {
        return Err(page::invalid_cursor());
    }
    Ok(id)
}

#[derive(sqlx::FromRow)]
struct TransactionRow {
    id: i64,
    kind: String,
    amount: Decimal,
    hold_delta: Decimal,
    balance_after: Decimal,
    held_after: Decimal,
    reference: String,
    campaign_id: Option<Uuid>,
    wa_message_id: Option<String>,
    description: Option<String>,
    created_at: DateTime<Utc>,
}

/// Up to `limit + 1` rows: the extra one tells whether there is a next page.
async fn select_transactions(
    conn: &mut PgConnection,
    vendor: VendorId,
    query: &TransactionQuery,
) -> Result<Vec<TransactionView>, sqlx::Error> {
    let rows = sqlx::query_as::<_, TransactionRow>(
        "SELECT id, kind, amount, hold_delta, balance_after, held_after, reference,
                campaign_id, wa_message_id, description, created_at
           FROM transactions
          WHERE vendor_id = $1
            AND ($2::bigint IS NULL OR id < $2)
            AND ($3::text IS NULL OR kind = $3)
            AND ($4::timestamptz IS NULL OR created_at >= $4)
            AND ($5::timestamptz IS NULL OR created_at < $5)
          ORDER BY id DESC
          LIMIT $6",
    )
    .bind(vendor.as_uuid())
    .bind(query.before_id)
    .bind(query.kind.map(TransactionKind::as_str))
    .bind(query.from)
    .bind(query.to)
    .bind(i64::from(query.limit) + 1)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            let kind = TransactionKind::parse(&row.kind).ok_or_else(|| {
                sqlx::Error::Decode(format!("unknown transaction kind {:?}", row.kind).into())
            })?;
            Ok(TransactionView {
                id: row.id,
                kind,
                amount: row.amount,
                hold_delta: row.hold_delta,
                balance_after: row.balance_after,
                held_after: row.held_after,
                reference: row.reference,
                campaign_id: row.campaign_id,
                wa_message_id: row.wa_message_id,
                description: row.description,
                created_at: row.created_at,
            })
        })
        .collect()
}
