use chrono::{DateTime, Utc};
use kloyst_meta::webhook::StatusUpdate;
use sqlx::PgConnection;

/// Where a batch of statuses came from.
#[derive(Clone, Copy, Debug)]
pub struct StatusSource<'a> {
    pub inbox_id: i64,
    /// `entry[].id`.
    pub waba_id: &'a str,
    /// `metadata.phone_number_id`.
    pub phone_number_id: Option<&'a str>,
}

/// How many statuses were new, and how many were duplicates of stored ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoredStatuses {
    pub new: u64,
    pub duplicates: u64,
}

/// Stores `statuses` in one statement. A (wamid, status) already stored, by an earlier
/// delivery or earlier in this batch, is a duplicate and is not stored again.
///
/// `raw` is the `statuses` array exactly as Meta sent it (same order), kept as each row's
/// payload so fields this code does not know survive; without it the parsed form is kept.
pub async fn store_statuses(
    conn: &mut PgConnection,
    source: StatusSource<'_>,
    statuses: &[StatusUpdate],
    raw: Option<&[serde_json::Value]>,
) -> Result<StoredStatuses, sqlx::Error> {
    if statuses.is_empty() {
        return Ok(StoredStatuses::default());
    }
    let raw = raw.filter(|raw| raw.len() == statuses.len());
    let mut columns = Columns::with_capacity(statuses.len());
    for (i, status) in statuses.iter().enumerate() {
        let payload = match raw {
            Some(raw) => raw[i].clone(),
            None => serde_json::to_value(status).unwrap_or(serde_json::Value::Null),
        };
        columns.push(status, payload);
    }
    let result = sqlx::query(
        "INSERT INTO message_status_events \
             (inbox_id, waba_id, phone_number_id, wa_message_id, status, status_at, recipient_id, \
              recipient_user_id, pricing_model, pricing_category, pricing_type, billable, \
              conversation_id, conversation_origin, error_code, error_title, payload) \
         SELECT $1, $2, $3, t.* \
           FROM unnest($4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::text[], \
                       $9::text[], $10::text[], $11::text[], $12::bool[], $13::text[], \
                       $14::text[], $15::int4[], $16::text[], $17::jsonb[]) AS t \
         ON CONFLICT (wa_message_id, status) DO NOTHING",
    )
    .bind(source.inbox_id)
    .bind(source.waba_id)
    .bind(source.phone_number_id)
    .bind(&columns.wamids)
    .bind(&columns.statuses)
    .bind(&columns.times)
    .bind(&columns.recipient_ids)
    .bind(&columns.recipient_user_ids)
    .bind(&columns.pricing_models)
    .bind(&columns.pricing_categories)
    .bind(&columns.pricing_types)
    .bind(&columns.billables)
    .bind(&columns.conversation_ids)
    .bind(&columns.conversation_origins)
    .bind(&columns.error_codes)
    .bind(&columns.error_titles)
    .bind(&columns.payloads)
    .execute(conn)
    .await?;
    let new = result.rows_affected();
    Ok(StoredStatuses {
        new,
        duplicates: statuses.len() as u64 - new,
    })
}

/// The statuses as column arrays, for one `unnest` insert.
#[derive(Default)]
pub(crate) struct Columns {
    pub(crate) wamids: Vec<String>,
    pub(crate) statuses: Vec<String>,
    pub(crate) times: Vec<DateTime<Utc>>,
    pub(crate) recipient_ids: Vec<Option<String>>,
    pub(crate) recipient_user_ids: Vec<Option<String>>,
    pub(crate) pricing_models: Vec<Option<String>>,
    pub(crate) pricing_categories: Vec<Option<String>>,
    pub(crate) pricing_types: Vec<Option<String>>,
    pub(crate) billables: Vec<Option<bool>>,
    pub(crate) conversation_ids: Vec<Option<String>>,
    pub(crate) conversation_origins: Vec<Option<String>>,
    pub(crate) error_codes: Vec<Option<i32>>,
    pub(crate) error_titles: Vec<Option<String>>,
    pub(crate) payloads: Vec<serde_json::Value>,
}

impl Columns {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            wamids: Vec::with_capacity(n),
            payloads: Vec::with_capacity(n),
            ..Self::default()
        }
    }

    pub(crate) fn push(&mut self, status: &StatusUpdate, payload: serde_json::Value) {
        let pricing = status.pricing.as_ref();
        let conversation = status.conversation.as_ref();
        let first_error = status.errors.first();
        self.wamids.push(status.id.clone());
        self.statuses.push(status.status.as_upper());
        self.times.push(status.timestamp.0);
        self.recipient_ids.push(status.recipient_id.clone());
        self.recipient_user_ids
            .push(status.recipient_user_id.clone());
        self.pricing_models
            .push(pricing.and_then(|p| p.pricing_model.clone()));
        self.pricing_categories
            .push(pricing.and_then(|p| p.normalized_category()));
        self.pricing_types
            .push(pricing.and_then(|p| p.kind.clone()));
        self.billables.push(pricing.and_then(|p| p.billable));
        self.conversation_ids
            .push(conversation.and_then(|c| c.id.clone()));
        self.conversation_origins.push(
            conversation
                .and_then(|c| c.origin.as_ref())
                .and_then(|o| o.kind.clone()),
        );
        self.error_codes
            .push(first_error.and_then(|e| i32::try_from(e.code).ok()));
        self.error_titles
            .push(first_error.and_then(|e| e.title.clone().or_else(|| e.message.clone())));
        self.payloads.push(payload);
    }
}
