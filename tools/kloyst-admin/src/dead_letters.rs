//! `dead-letters list|replay`: the operators' view of webhooks whose processing failed for
//! good, over the same functions as the webhook-worker's `/internal/dead-letters` endpoint.
//! Needs only Postgres: a replayed row is found by the webhook-worker's poll.

use std::fmt::Write as _;

use kloyst_db::{DbError, PgPool};
use kloyst_inbox::dead_letters::{self, DeadLetter, DeadLetterQuery, ListError};
use kloyst_inbox::Source;

/// Characters of `last_error` shown per line (the ops endpoint returns all of it).
const ERROR_WIDTH: usize = 80;

const PICKUP_NOTE: &str = "the webhook-worker picks replayed rows up on its next poll \
                           (WEBHOOK_POLL_INTERVAL, default 2s)";

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("--cursor is not a cursor of this listing")]
    InvalidCursor,
    #[error(transparent)]
    Database(#[from] DbError),
    /// Some requested ids were not dead letters (already replayed, processed, or unknown).
    #[error("not dead letters (nothing done for them): {}", join_ids(.0))]
    NotDead(Vec<i64>),
}

impl From<ListError> for DeadLetterError {
    fn from(error: ListError) -> Self {
        match error {
            ListError::Cursor(_) => Self::InvalidCursor,
            ListError::Database(error) => Self::Database(error.into()),
        }
    }
}

/// Prints one line per dead letter, then how to get the next page.
pub async fn list(pool: &PgPool, query: &DeadLetterQuery) -> Result<(), DeadLetterError> {
    let page = dead_letters::list(pool, query).await?;
    if page.data.is_empty() {
        println!("no dead letters");
    } else {
        println!(
            "{:>10}  {:<8}  {:<24}  {:<20}  {:>8}  {:>7}  last_error",
            "id", "source", "event_type", "dead_at", "attempts", "replays"
        );
        for letter in &page.data {
            println!("{}", line(letter));
        }
    }
    if let Some(cursor) = &page.next_cursor {
        println!("more: {}", next_page_command(query, cursor));
    }
    Ok(())
}

fn line(letter: &DeadLetter) -> String {
    let dead_at = letter
        .dead_at
        .map(|at| at.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    format!(
        "{:>10}  {:<8}  {:<24}  {:<20}  {:>8}  {:>7}  {}",
        letter.id,
        letter.source,
        letter.event_type.as_deref().unwrap_or("-"),
        dead_at,
        letter.attempts,
        letter.replay_count,
        one_line(letter.last_error.as_deref().unwrap_or("-"), ERROR_WIDTH),
    )
}

/// The error on one line, cut to `width` characters (with an ellipsis when cut).
fn one_line(text: &str, width: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= width {
        flat
    } else {
        let mut cut: String = flat.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

fn next_page_command(query: &DeadLetterQuery, cursor: &str) -> String {
    let mut command = String::from("kloyst-admin dead-letters list");
    if let Some(source) = query.source {
        let _ = write!(command, " --source {}", source.as_str());
    }
    let _ = write!(command, " --limit {} --cursor {cursor}", query.limit);
    command
}

/// Replays the given ids; the ones that were not dead are reported as an error after the
/// others are replayed.
pub async fn replay(pool: &PgPool, ids: &[i64]) -> Result<(), DeadLetterError> {
    let replayed = dead_letters::replay(pool, ids)
        .await
        .map_err(DbError::from)?;
    if replayed.is_empty() {
        println!("replayed nothing");
    } else {
        println!(
            "replayed {} dead letter(s): {}",
            replayed.len(),
            join_ids(&replayed)
        );
        println!("{PICKUP_NOTE}");
    }
    let not_dead: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| !replayed.contains(id))
        .collect();
    if not_dead.is_empty() {
        Ok(())
    } else {
        Err(DeadLetterError::NotDead(not_dead))
    }
}

pub async fn replay_all(pool: &PgPool, source: Option<Source>) -> Result<(), DeadLetterError> {
    let count = dead_letters::replay_all(pool, source)
        .await
        .map_err(DbError::from)?;
    let scope = source.map_or("", Source::as_str);
    println!(
        "replayed {count} {scope}{}dead letter(s)",
        if scope.is_empty() { "" } else { " " }
    );
    if count > 0 {
        println!("{PICKUP_NOTE}");
    }
    Ok(())
}

fn join_ids(ids: &[i64]) -> String {
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_flattened_and_cut() {
        assert_eq!(one_line("a\nb\tc", 80), "a b c");
        let long = "x".repeat(100);
        let cut = one_line(&long, 10);
        assert_eq!(cut.chars().count(), 10);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn the_next_page_command_repeats_the_filter() {
        let query = DeadLetterQuery {
            source: Some(Source::Razorpay),
            limit: 20,
            cursor: None,
        };
        assert_eq!(
            next_page_command(&query, "AbC"),
            "kloyst-admin dead-letters list --source RAZORPAY --limit 20 --cursor AbC"
        );
    }
}
