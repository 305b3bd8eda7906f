//! The quote: a list's members counted by country in one query, each country priced once
//! from a [`PriceTable`], summed by market.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kloyst_core::VendorId;
use kloyst_pricing::{Category, Price, PriceTable, Pricing};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::QuoteError;
use crate::model::{
    MarketLine, Quote, QuotedList, QuotedRateCard, QuotedTemplate, QuotedWallet, RecipientCounts,
};
use crate::repo::{self, CountryCount, ListRow, TemplateRow};

/// Quotes sending `template_id` to every member of `list_id` at `at`, inside the caller's
/// tenant transaction on `conn` (RLS on `vendor`): the launch calls it in the transaction
/// that then places the hold. Reads only; locks nothing.
///
/// 404 (`TemplateNotFound`, `ListNotFound`) for a missing or another vendor's template or
/// list. The template's status does not matter: the quote is informative.
///
/// The price table loads over the pricing engine's own pool while `conn` counts the list, so
/// this holds a second connection while the caller's transaction is open. Where many callers
/// share one pool, load the table first ([`priced_category_in`] in a short transaction, then
/// `Pricing::price_table`) and call [`quote_with_table_in`], as [`crate::Quotes::quote`] does.
pub async fn quote_in(
    conn: &mut PgConnection,
    pricing: &Pricing,
    vendor: VendorId,
    template_id: Uuid,
    list_id: Uuid,
    at: DateTime<Utc>,
) -> Result<Quote, QuoteError> {
    let subject = Subject::read(conn, vendor, template_id, list_id).await?;
    let (table, countries) = tokio::join!(
        pricing.price_table(vendor, subject.category.as_str(), at),
        repo::count_by_country(conn, vendor, list_id),
    );
    assemble(conn, vendor, subject, &table?, &countries?, at).await
}

/// [`quote_in`] with the price table loaded beforehand (for `at`, the vendor and the
/// template's priced category), so no other connection is needed while `conn`'s
/// transaction is open. If Meta re-categorised the template in between, the right table is
/// loaded here after all.
pub async fn quote_with_table_in(
    conn: &mut PgConnection,
    pricing: &Pricing,
    table: &PriceTable,
    vendor: VendorId,
    template_id: Uuid,
    list_id: Uuid,
    at: DateTime<Utc>,
) -> Result<Quote, QuoteError> {
    let subject = Subject::read(conn, vendor, template_id, list_id).await?;
    let countries = repo::count_by_country(conn, vendor, list_id).await?;
    quote_subject(conn, pricing, table, vendor, subject, &countries, at).await
}

/// [`quote_with_table_in`] for a list already counted by country (the launch counts it in the
/// statement that freezes the recipients).
#[allow(clippy::too_many_arguments)] // the quote's inputs, as quote_with_table_in plus counts
pub(crate) async fn quote_counted_in(
    conn: &mut PgConnection,
    pricing: &Pricing,
    table: &PriceTable,
    vendor: VendorId,
    template_id: Uuid,
    list_id: Uuid,
    countries: &[CountryCount],
    at: DateTime<Utc>,
) -> Result<Quote, QuoteError> {
    let subject = Subject::read(conn, vendor, template_id, list_id).await?;
    quote_subject(conn, pricing, table, vendor, subject, countries, at).await
}

async fn quote_subject(
    conn: &mut PgConnection,
    pricing: &Pricing,
    table: &PriceTable,
    vendor: VendorId,
    subject: Subject,
    countries: &[CountryCount],
    at: DateTime<Utc>,
) -> Result<Quote, QuoteError> {
    if table.category() == subject.category {
        assemble(conn, vendor, subject, table, countries, at).await
    } else {
        let table = pricing
            .price_table(vendor, subject.category.as_str(), at)
            .await?;
        assemble(conn, vendor, subject, &table, countries, at).await
    }
}

/// The category a template is priced in: the one Meta assigned if it did (it may
/// re-categorise, and it charges what it assigned), else the vendor's. 404 like the quote.
pub async fn priced_category_in(
    conn: &mut PgConnection,
    vendor: VendorId,
    template_id: Uuid,
) -> Result<Category, QuoteError> {
    let template = repo::template(conn, vendor, template_id)
        .await?
        .ok_or(QuoteError::TemplateNotFound)?;
    priced_category(&template)
}

fn priced_category(template: &TemplateRow) -> Result<Category, QuoteError> {
    let raw = template
        .meta_category
        .as_deref()
        .unwrap_or(&template.category);
    Ok(Category::parse(raw)?)
}

/// The template and the list being quoted, both the vendor's.
struct Subject {
    template: TemplateRow,
    list: ListRow,
    category: Category,
}

impl Subject {
    async fn read(
        conn: &mut PgConnection,
        vendor: VendorId,
        template_id: Uuid,
        list_id: Uuid,
    ) -> Result<Self, QuoteError> {
        let template = repo::template(conn, vendor, template_id)
            .await?
            .ok_or(QuoteError::TemplateNotFound)?;
        let list = repo::list(conn, vendor, list_id)
            .await?
            .ok_or(QuoteError::ListNotFound)?;
        let category = priced_category(&template)?;
        Ok(Self {
            template,
            list,
            category,
        })
    }
}

/// Prices the counts and compares the total with the wallet.
async fn assemble(
    conn: &mut PgConnection,
    vendor: VendorId,
    subject: Subject,
    table: &PriceTable,
    countries: &[CountryCount],
    at: DateTime<Utc>,
) -> Result<Quote, QuoteError> {
    let list = QuotedList {
        id: subject.list.id,
        name: subject.list.name,
    };
    quote_counts_in(
        conn,
        vendor,
        subject.template,
        subject.category,
        list,
        table,
        countries,
        at,
    )
    .await
}

/// The quote of recipients already counted by country, whatever they were drawn from (a
/// list, or a campaign's failures for a retry): each country priced once from `table`, the
/// total compared with the wallet as it is now.
#[allow(clippy::too_many_arguments)] // the quote's parts, each read by the caller
pub(crate) async fn quote_counts_in(
    conn: &mut PgConnection,
    vendor: VendorId,
    template: TemplateRow,
    category: Category,
    list: QuotedList,
    table: &PriceTable,
    countries: &[CountryCount],
    at: DateTime<Utc>,
) -> Result<Quote, QuoteError> {
    let card = repo::rate_card(&mut *conn, table.rate_card_id()).await?;
    let wallet = kloyst_billing::wallet_in(conn, vendor).await?;
    let (recipients, markets) = price_countries(countries, |country| price_of(table, country));
    let total: Decimal = markets.iter().map(|line| line.subtotal).sum();
    let shortfall = (total - wallet.available).max(Decimal::ZERO);
    Ok(Quote {
        template: QuotedTemplate {
            id: template.id,
            name: template.name,
            language: template.language,
            category_priced: category,
            status: template.status,
        },
        list,
        rate_card: QuotedRateCard {
            id: table.rate_card_id(),
            name: card.name,
            currency: card.currency,
            effective_from: card.effective_from,
            is_sample: card.is_sample,
        },
        currency: table.wallet_currency().to_owned(),
        fx_rate: table.fx_rate(),
        recipients,
        markets,
        total,
        wallet: QuotedWallet {
            balance: wallet.balance,
            held: wallet.held,
            available: wallet.available,
        },
        covered: shortfall.is_zero(),
        shortfall,
        quoted_at: at,
    })
}

/// A country the card does not price for the category (or does not know) is not billable.
fn price_of(table: &PriceTable, country: &str) -> Option<Price> {
    table.price(country).ok()
}

/// Splits the list's counts into billable (by market), opted out and invalid, pricing each
/// country once. Markets come out sorted by name.
fn price_countries(
    countries: &[CountryCount],
    price_of: impl Fn(&str) -> Option<Price>,
) -> (RecipientCounts, Vec<MarketLine>) {
    let mut counts = RecipientCounts::default();
    let mut by_market: BTreeMap<String, (Price, i64)> = BTreeMap::new();
    for row in countries {
        counts.members += row.reachable + row.opted_out;
        counts.opted_out += row.opted_out;
        if row.reachable == 0 {
            continue;
        }
        match row.country.as_deref().and_then(&price_of) {
            Some(price) => {
                counts.billable += row.reachable;
                by_market
                    .entry(price.market.clone())
                    .or_insert((price, 0))
                    .1 += row.reachable;
            }
            None => counts.invalid += row.reachable,
        }
    }
    let markets = by_market
        .into_iter()
        .map(|(market, (price, recipients))| MarketLine {
            market,
            recipients,
            unit_price: price.total,
            meta_cost_unit: price.meta_cost,
            margin_unit: price.margin,
            subtotal: price.total * Decimal::from(recipients),
        })
        .collect();
    (counts, markets)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn price(market: &str, meta_cost: &str, total: &str) -> Price {
        Price {
            market: market.to_owned(),
            category: Category::Marketing,
            rate_card_id: Uuid::nil(),
            meta_rate: d("0.01"),
            rate_currency: "USD".to_owned(),
            fx_rate: d("88"),
            wallet_currency: "INR".to_owned(),
            meta_cost: d(meta_cost),
            margin: d(total) - d(meta_cost),
            total: d(total),
            margin_id: None,
        }
    }

    fn row(country: Option<&str>, reachable: i64, opted_out: i64) -> CountryCount {
        CountryCount {
            country: country.map(str::to_owned),
            reachable,
            opted_out,
        }
    }

    fn card(country: &str) -> Option<Price> {
        match country {
            "IN" => Some(price("India", "0.9416", "1.1299")),
            "US" | "CA" => Some(price("North America", "2.2000", "2.6400")),
            _ => None,
        }
    }

    #[test]
    fn countries_of_one_market_share_a_line_and_exclusions_are_counted_apart() {
        let rows = [
            row(Some("US"), 3, 1),
            row(Some("IN"), 2, 0),
            row(Some("CA"), 1, 0),
            row(None, 4, 2),
            row(Some("XX"), 5, 0),
        ];
        let (counts, markets) = price_countries(&rows, card);
        assert_eq!(
            counts,
            RecipientCounts {
                members: 18,
                billable: 6,
                opted_out: 3,
                invalid: 9,
            }
        );
        let lines: Vec<(&str, i64, Decimal)> = markets
            .iter()
            .map(|l| (l.market.as_str(), l.recipients, l.subtotal))
            .collect();
        assert_eq!(
            lines,
            [
                ("India", 2, d("2.2598")),
                ("North America", 4, d("10.5600")),
            ]
        );
        assert_eq!(markets[0].margin_unit, d("0.1883"));
    }

    #[test]
    fn an_empty_list_costs_nothing() {
        let (counts, markets) = price_countries(&[], card);
        assert_eq!(counts, RecipientCounts::default());
        assert!(markets.is_empty());
    }
}
