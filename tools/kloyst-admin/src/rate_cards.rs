//! `kloyst-admin rate-cards load|list`: Meta's rate cards from a CSV file (see
//! data/rate-cards/README.md for the format).

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use kloyst_db::PgPool;
use kloyst_pricing::{NewRateCard, PricingError, RateCardSummary};

#[derive(Debug)]
pub enum RateCardCommand {
    Load { path: PathBuf, card: NewRateCard },
    List,
}

#[derive(Debug, thiserror::Error)]
pub enum RateCardError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Pricing(#[from] PricingError),
}

/// Parses the arguments after `rate-cards`; the message says what is wrong.
pub fn parse(args: &[&str]) -> Result<RateCardCommand, String> {
    match args {
        ["list"] => Ok(RateCardCommand::List),
        ["list", ..] => Err("rate-cards list takes no arguments".to_owned()),
        ["load", rest @ ..] => parse_load(rest),
        _ => Err("rate-cards needs `load` or `list`".to_owned()),
    }
}

fn parse_load(args: &[&str]) -> Result<RateCardCommand, String> {
    let (mut path, mut name, mut currency, mut effective_from, mut source) =
        (None, None, None, None, None);
    let mut is_sample = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .map(|v| (*v).to_owned())
                .ok_or_else(|| format!("{arg} needs a value"))
        };
        match *arg {
            "--name" => name = Some(value()?),
            "--currency" => currency = Some(value()?),
            "--source" => source = Some(value()?),
            "--effective-from" => {
                let raw = value()?;
                let at = DateTime::parse_from_rfc3339(&raw).map_err(|_| {
                    format!("--effective-from {raw:?} is not an RFC 3339 instant (2026-04-01T00:00:00Z)")
                })?;
                effective_from = Some(at.with_timezone(&Utc));
            }
            "--sample" => is_sample = true,
            option if option.starts_with('-') => {
                return Err(format!("unknown option {option:?} for rate-cards load"))
            }
            file if path.is_none() => path = Some(PathBuf::from(file)),
            extra => return Err(format!("unexpected argument {extra:?}")),
        }
    }
    let missing = |what: &str| format!("rate-cards load needs {what}");
    let path = path.ok_or_else(|| missing("a CSV file"))?;
    let card = NewRateCard {
        name: name.ok_or_else(|| missing("--name"))?,
        currency: currency.ok_or_else(|| missing("--currency"))?,
        effective_from: effective_from.ok_or_else(|| missing("--effective-from"))?,
        // The file is where the figures came from unless told otherwise.
        source: source.or_else(|| path.file_name().map(|f| f.to_string_lossy().into_owned())),
        is_sample,
    };
    Ok(RateCardCommand::Load { path, card })
}

pub async fn run(pool: &PgPool, command: RateCardCommand) -> Result<(), RateCardError> {
    match command {
        RateCardCommand::Load { path, card } => {
            let text =
                tokio::fs::read_to_string(&path)
                    .await
                    .map_err(|source| RateCardError::Read {
                        path: path.display().to_string(),
                        source,
                    })?;
            let loaded = kloyst_pricing::load_rate_card(pool, &card, &text).await?;
            println!("kloyst-admin: loaded rate card:");
            print_card(&loaded);
        }
        RateCardCommand::List => {
            for card in kloyst_pricing::list_rate_cards(pool).await? {
                print_card(&card);
            }
        }
    }
    Ok(())
}

fn print_card(card: &RateCardSummary) {
    let to = card
        .effective_to
        .map_or_else(|| "open".to_owned(), |to| to.to_rfc3339());
    let sample = if card.is_sample { " SAMPLE" } else { "" };
    println!(
        "{}\t{}\t{}\t{} → {}\t{} entries{}",
        card.id,
        card.name,
        card.currency,
        card.effective_from.to_rfc3339(),
        to,
        card.entries,
        sample
    );
}
