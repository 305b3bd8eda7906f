//! Rate-card CSV files: `market,category,rate`, one row per market × category Meta prices,
//! rates in the card's currency. Parsing reports every bad line by its number; the loader
//! writes the card and all its entries in one transaction, so a bad file loads nothing.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use rust_decimal::Decimal;
use sqlx::PgPool;

use crate::model::{CardRow, Category, NewRateCard, RateCardSummary};
use crate::{repo, CardLineError, PricingError};

const HEADER: [&str; 3] = ["market", "category", "rate"];
/// `rate_card_entries.rate` is numeric(14, 6).
const MAX_RATE_SCALE: u32 = 6;
const MAX_RATE_INTEGER_DIGITS: usize = 8;

/// Parses a card. The first non-comment line must be the header `market,category,rate`;
/// lines starting with `#` are comments. Markets are checked against the database by
/// [`load_rate_card`].
pub fn parse_card(text: &str) -> Result<Vec<CardRow>, PricingError> {
    // Spreadsheets save CSV with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut first_line_of: HashMap<(String, Category), u64> = HashMap::new();
    let mut header_seen = false;
    // Line by line (a rate row never spans lines), so that every error names its line:
    // the csv crate's own line numbers skip blank and comment lines.
    for (index, text_line) in text.lines().enumerate() {
        let line = index as u64 + 1;
        let trimmed = text_line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let record = match split_fields(trimmed) {
            Ok(record) => record,
            Err(error) => {
                errors.push(line_error(line, format!("not valid CSV: {error}")));
                continue;
            }
        };
        if !header_seen {
            header_seen = true;
            let header: Vec<String> = record.iter().map(str::to_ascii_lowercase).collect();
            if header != HEADER {
                errors.push(line_error(
                    line,
                    "the header must be `market,category,rate`",
                ));
            }
            continue;
        }
        match parse_row(line, &record) {
            Ok(row) => {
                let key = (row.market.clone(), row.category);
                if let Some(first) = first_line_of.get(&key) {
                    errors.push(line_error(
                        line,
                        format!("{} {} is already on line {first}", row.market, row.category),
                    ));
                } else {
                    first_line_of.insert(key, line);
                    rows.push(row);
                }
            }
            Err(error) => errors.push(error),
        }
    }
    if !errors.is_empty() {
        return Err(PricingError::InvalidCard(errors));
    }
    if rows.is_empty() {
        return Err(PricingError::InvalidCardDetails(
            "the file has no rate rows".to_owned(),
        ));
    }
    Ok(rows)
}

/// The fields of one CSV line, quotes honoured, whitespace around fields trimmed.
fn split_fields(line: &str) -> Result<csv::StringRecord, csv::Error> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(line.as_bytes());
    let mut record = csv::StringRecord::new();
    reader.read_record(&mut record)?;
    Ok(record)
}

fn parse_row(line: u64, record: &csv::StringRecord) -> Result<CardRow, CardLineError> {
    let [market, category, rate] = [0, 1, 2].map(|i| record.get(i).unwrap_or_default());
    if record.len() != 3 {
        return Err(line_error(
            line,
            format!(
                "expected 3 fields (market,category,rate), found {}",
                record.len()
            ),
        ));
    }
    if market.is_empty() {
        return Err(line_error(line, "the market is empty"));
    }
    let category = Category::parse(category)
        .map_err(|_| line_error(line, format!("{category:?} is not a category")))?;
    let rate = parse_rate(rate).map_err(|why| line_error(line, why))?;
    Ok(CardRow {
        line,
        market: market.to_owned(),
        category,
        rate,
    })
}

fn parse_rate(raw: &str) -> Result<Decimal, String> {
    let rate = Decimal::from_str(raw).map_err(|_| format!("rate {raw:?} is not a number"))?;
    if rate.is_sign_negative() && !rate.is_zero() {
        return Err(format!("rate {raw} is negative"));
    }
    let rate = rate.normalize();
    if rate.scale() > MAX_RATE_SCALE {
        return Err(format!(
            "rate {raw} has more than {MAX_RATE_SCALE} decimals"
        ));
    }
    if rate.trunc().abs().to_string().len() > MAX_RATE_INTEGER_DIGITS {
        return Err(format!("rate {raw} is too large"));
    }
    Ok(rate)
}

fn line_error(line: u64, message: impl Into<String>) -> CardLineError {
    CardLineError {
        line,
        message: message.into(),
    }
}

/// Loads a card: refused if its name is already loaded; the previous card of its currency
/// ends where it starts (and it ends where a later card starts). One transaction.
pub async fn load_rate_card(
    pg: &PgPool,
    card: &NewRateCard,
    csv_text: &str,
) -> Result<RateCardSummary, PricingError> {
    validate_details(card)?;
    let rows = parse_card(csv_text)?;
    let mut tx = pg.begin().await?;
    // Serialises loaders of one currency: closing and inserting must see each other.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('kloyst.rate_cards.' || $1))")
        .bind(&card.currency)
        .execute(&mut *tx)
        .await?;
    if repo::card_name_taken(&mut *tx, &card.name).await? {
        return Err(PricingError::CardExists(card.name.clone()));
    }
    let known: HashSet<String> = repo::market_names(&mut *tx).await?.into_iter().collect();
    let unknown: Vec<CardLineError> = rows
        .iter()
        .filter(|row| !known.contains(&row.market))
        .map(|row| line_error(row.line, format!("{:?} is not a market", row.market)))
        .collect();
    if !unknown.is_empty() {
        return Err(PricingError::InvalidCard(unknown));
    }
    repo::close_previous_card(&mut *tx, &card.currency, card.effective_from).await?;
    let effective_to = repo::next_card_start(&mut *tx, &card.currency, card.effective_from).await?;
    let id = repo::insert_card(&mut *tx, card, effective_to)
        .await
        .map_err(|error| unique_violation(error, card))?;
    let markets: Vec<String> = rows.iter().map(|row| row.market.clone()).collect();
    let categories: Vec<String> = rows
        .iter()
        .map(|row| row.category.as_str().to_owned())
        .collect();
    let rates: Vec<Decimal> = rows.iter().map(|row| row.rate).collect();
    repo::insert_entries(&mut *tx, id, &markets, &categories, &rates).await?;
    let summary = repo::card_summary(&mut *tx, id).await?;
    tx.commit().await?;
    Ok(summary)
}

/// Every loaded card, by currency and start.
pub async fn list_rate_cards(pg: &PgPool) -> Result<Vec<RateCardSummary>, PricingError> {
    Ok(repo::list_cards(pg).await?)
}

fn validate_details(card: &NewRateCard) -> Result<(), PricingError> {
    let name_len = card.name.chars().count();
    if card.name.trim().is_empty() || name_len > 200 {
        return Err(PricingError::InvalidCardDetails(
            "the name must be 1 to 200 characters".to_owned(),
        ));
    }
    if card.currency.len() != 3 || !card.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(PricingError::InvalidCardDetails(format!(
            "currency {:?} is not an ISO 4217 code such as USD",
            card.currency
        )));
    }
    Ok(())
}

fn unique_violation(error: sqlx::Error, card: &NewRateCard) -> PricingError {
    let constraint = error
        .as_database_error()
        .and_then(|db| db.constraint())
        .map(str::to_owned);
    match constraint.as_deref() {
        Some("rate_cards_name_key") => PricingError::CardExists(card.name.clone()),
        Some("rate_cards_currency_effective_from_key") => PricingError::CardStartTaken {
            currency: card.currency.clone(),
            effective_from: card.effective_from,
        },
        _ => PricingError::Db(error),
    }
}

#[cfg(test)]
#[allow(clippy::panic)] // test code: a failure should stop the test
mod tests {
    use super::*;

    fn lines(result: Result<Vec<CardRow>, PricingError>) -> Vec<u64> {
        match result {
            Err(PricingError::InvalidCard(errors)) => errors.iter().map(|e| e.line).collect(),
            other => panic!("expected line errors, got {other:?}"),
        }
    }

    #[test]
    fn parses_rows_with_meta_spellings() {
        let rows = parse_card(
            "# comment, with \"quotes\nmarket,category,rate\n\nIndia,marketing,0.0107\r\nIndia,authentication-international,0.028\n",
        )
        .unwrap_or_default();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].category, Category::AuthenticationInternational);
        assert_eq!(rows[1].rate, Decimal::new(28, 3));
        assert_eq!(rows[1].line, 5);
    }

    #[test]
    fn names_every_bad_line() {
        let text = "market,category,rate\nIndia,MARKETING,0.01\nIndia,PROMO,0.01\nIndia,UTILITY,-1\nIndia,UTILITY,abc\nIndia,marketing,0.02\nIndia,UTILITY\nIndia,UTILITY,0.0000001\n";
        assert_eq!(lines(parse_card(text)), vec![3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn requires_the_header() {
        assert_eq!(lines(parse_card("India,MARKETING,0.01\n")), vec![1]);
    }
}
