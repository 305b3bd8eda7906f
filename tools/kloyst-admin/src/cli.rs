//! The command line, parsed into a [`Command`] before anything touches the database, so bad
//! usage is refused (exit code 2) without side effects.

use kloyst_core::page::PageRequest;
use kloyst_inbox::dead_letters::DeadLetterQuery;
use kloyst_inbox::Source;

pub const USAGE: &str = "\
usage:
  kloyst-admin migrate
      Apply the database migrations (the deploy runs it once, before the services start).
  kloyst-admin dead-letters list [--source META|RAZORPAY] [--limit N] [--cursor C]
      Webhooks whose processing failed for good, newest first (N: 1-200, default 50).
      --cursor C continues a listing where the previous page ended.
  kloyst-admin dead-letters replay <id>...
  kloyst-admin dead-letters replay --all [--source META|RAZORPAY]
      Put dead letters back in the webhook inbox with fresh attempts; the webhook-worker
      picks them up on its next poll (WEBHOOK_POLL_INTERVAL).
  kloyst-admin rate-cards load <file.csv> --name NAME --currency USD
                             --effective-from 2026-04-01T00:00:00Z [--sample] [--source S]
      Load a rate card (market,category,rate; see data/rate-cards/README.md) in one
      transaction; the previous card of that currency ends where it starts.
  kloyst-admin rate-cards list
  kloyst-admin books reconcile
      Reconcile the books once (wallets vs ledger, campaign costs vs messages, charges vs
      ledger debits), store the run and print it as JSON; exit code 1 if differences.
  kloyst-admin campaigns settle
      One settlement pass: finished campaigns whose messages are final (or last sent
      CAMPAIGN_SETTLE_AFTER ago) release their hold and freeze actual_cost.
  kloyst-admin help

Reads DATABASE_URL (and .env in development). Exit codes: 0 done, 1 failed, 2 bad usage
or configuration.";

/// Replays at most this many ids per command (the ops endpoint has the same cap).
const MAX_REPLAY_IDS: usize = 1000;

#[derive(Debug)]
pub enum Command {
    Help,
    Migrate,
    ListDeadLetters(DeadLetterQuery),
    ReplayDeadLetters(Vec<i64>),
    ReplayAllDeadLetters(Option<Source>),
    RateCards(crate::rate_cards::RateCardCommand),
    BooksReconcile,
    CampaignsSettle,
}

/// What was wrong with the command line (printed above the usage text).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

fn usage_error(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] => Err(usage_error("a command is required")),
        ["help" | "--help" | "-h"] => Ok(Command::Help),
        ["migrate"] => Ok(Command::Migrate),
        ["migrate", ..] => Err(usage_error("migrate takes no arguments")),
        ["dead-letters", "list", options @ ..] => parse_list(options),
        ["dead-letters", "replay", rest @ ..] => parse_replay(rest),
        ["dead-letters", ..] => Err(usage_error("dead-letters needs `list` or `replay`")),
        ["rate-cards", rest @ ..] => crate::rate_cards::parse(rest)
            .map(Command::RateCards)
            .map_err(usage_error),
        ["books", "reconcile"] => Ok(Command::BooksReconcile),
        ["books", ..] => Err(usage_error(
            "books needs `reconcile` (and nothing after it)",
        )),
        ["campaigns", "settle"] => Ok(Command::CampaignsSettle),
        ["campaigns", ..] => Err(usage_error(
            "campaigns needs `settle` (and nothing after it)",
        )),
        [other, ..] => Err(usage_error(format!("unknown command {other:?}"))),
    }
}

fn parse_list(options: &[&str]) -> Result<Command, UsageError> {
    let mut query = DeadLetterQuery::default();
    let mut page = PageRequest::default();
    let mut options = options.iter();
    while let Some(option) = options.next() {
        let mut value = || {
            options
                .next()
                .copied()
                .ok_or_else(|| usage_error(format!("{option} needs a value")))
        };
        match *option {
            "--source" => query.source = Some(parse_source(value()?)?),
            "--limit" => {
                let raw = value()?;
                let limit = raw
                    .parse::<u32>()
                    .map_err(|_| usage_error(format!("--limit {raw:?} is not a number")))?;
                page.limit = Some(limit);
            }
            "--cursor" => query.cursor = Some(value()?.to_owned()),
            other => return Err(usage_error(format!("unknown option {other:?} for list"))),
        }
    }
    query.limit = page
        .limit()
        .map_err(|_| usage_error("--limit must be between 1 and 200"))?;
    Ok(Command::ListDeadLetters(query))
}

fn parse_replay(rest: &[&str]) -> Result<Command, UsageError> {
    match rest {
        ["--all"] => Ok(Command::ReplayAllDeadLetters(None)),
        ["--all", "--source", source] | ["--source", source, "--all"] => {
            Ok(Command::ReplayAllDeadLetters(Some(parse_source(source)?)))
        }
        [] => Err(usage_error("replay needs dead-letter ids, or --all")),
        ids if ids.iter().any(|arg| arg.starts_with('-')) => Err(usage_error(
            "give ids, or --all [--source S]; the two do not mix",
        )),
        ids if ids.len() > MAX_REPLAY_IDS => Err(usage_error(format!(
            "at most {MAX_REPLAY_IDS} ids at once (or --all)"
        ))),
        ids => ids
            .iter()
            .map(|raw| {
                raw.parse::<i64>()
                    .ok()
                    .filter(|id| *id > 0)
                    .ok_or_else(|| usage_error(format!("{raw:?} is not a dead-letter id")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Command::ReplayDeadLetters),
    }
}

fn parse_source(raw: &str) -> Result<Source, UsageError> {
    Source::parse(raw).ok_or_else(|| usage_error(format!("source {raw:?} is not META or RAZORPAY")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Command, UsageError> {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        parse(&args)
    }

    #[test]
    fn list_takes_source_limit_and_cursor_in_any_order() {
        let Ok(Command::ListDeadLetters(query)) =
            parse_str("dead-letters list --limit 7 --cursor abc --source meta")
        else {
            panic!("not a listing");
        };
        assert_eq!(query.source, Some(Source::Meta));
        assert_eq!(query.limit, 7);
        assert_eq!(query.cursor.as_deref(), Some("abc"));

        let Ok(Command::ListDeadLetters(query)) = parse_str("dead-letters list --limit 5000")
        else {
            panic!("not a listing");
        };
        assert_eq!(query.limit, 200, "capped like the API");
        let Ok(Command::ListDeadLetters(query)) = parse_str("dead-letters list") else {
            panic!("not a listing");
        };
        assert_eq!((query.source, query.limit), (None, 50));
    }

    #[test]
    fn replay_takes_ids_or_all_with_an_optional_source() {
        assert!(matches!(
            parse_str("dead-letters replay 3 12"),
            Ok(Command::ReplayDeadLetters(ids)) if ids == [3, 12]
        ));
        assert!(matches!(
            parse_str("dead-letters replay --all"),
            Ok(Command::ReplayAllDeadLetters(None))
        ));
        assert!(matches!(
            parse_str("dead-letters replay --source RAZORPAY --all"),
            Ok(Command::ReplayAllDeadLetters(Some(Source::Razorpay)))
        ));
    }

    #[test]
    fn bad_usage_is_refused() {
        for line in [
            "",
            "migrate now",
            "dead-letters",
            "dead-letters purge",
            "dead-letters list --limit 0",
            "dead-letters list --limit many",
            "dead-letters list --source SMS",
            "dead-letters list --cursor",
            "dead-letters list extra",
            "dead-letters replay",
            "dead-letters replay 0",
            "dead-letters replay abc",
            "dead-letters replay 5 --all",
            "dead-letters replay --source META",
            "frobnicate",
        ] {
            assert!(parse_str(line).is_err(), "accepted {line:?}");
        }
    }
}
