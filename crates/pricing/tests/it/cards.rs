//! Loading rate cards: every row of the shipped card, refusal of bad files and of a name
//! loaded twice, and the effective dates of consecutive cards.

use kloyst_pricing::{list_rate_cards, load_rate_card, PricingError};

use crate::helpers::{at, card, load_sample, setup, SAMPLE_CARD};

async fn card_count(pg: &sqlx::PgPool) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM rate_cards), (SELECT count(*) FROM rate_card_entries)",
    )
    .fetch_one(pg)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_shipped_card_loads_every_row() {
    let (stores, _) = setup().await;
    let loaded = load_sample(&stores.pg).await;
    let rows = SAMPLE_CARD
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .count() as i64
        - 1;
    assert_eq!(loaded.entries, rows);
    assert!(loaded.is_sample);
    assert_eq!(loaded.effective_to, None);
    assert_eq!(card_count(&stores.pg).await, (1, rows));
}

#[tokio::test]
async fn bad_lines_are_named_and_nothing_is_loaded() {
    let (stores, _) = setup().await;
    let text = "market,category,rate\n\
                India,MARKETING,0.0107\n\
                Atlantis,MARKETING,0.01\n\
                India,PROMOTIONAL,0.01\n\
                India,UTILITY,-0.5\n\
                India,AUTHENTICATION,cheap\n\
                India,marketing,0.02\n";
    let error = load_rate_card(&stores.pg, &card("bad", "2026-04-01T00:00:00Z"), text)
        .await
        .unwrap_err();
    let PricingError::InvalidCard(lines) = &error else {
        panic!("expected line errors, got {error:?}");
    };
    let numbers: Vec<u64> = lines.iter().map(|l| l.line).collect();
    // Syntax first (4..7); the market is checked against the database once those pass.
    assert_eq!(numbers, vec![4, 5, 6, 7], "{error}");
    let message = error.to_string();
    assert!(
        message.contains("line 5: rate -0.5 is negative"),
        "{message}"
    );
    assert!(
        message.contains("line 7: India MARKETING is already on line 2"),
        "{message}"
    );
    assert_eq!(card_count(&stores.pg).await, (0, 0));

    let unknown_market = "market,category,rate\nIndia,MARKETING,0.0107\nAtlantis,MARKETING,0.01\n";
    let error = load_rate_card(
        &stores.pg,
        &card("bad", "2026-04-01T00:00:00Z"),
        unknown_market,
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the rate card has 1 bad line(s): line 3: \"Atlantis\" is not a market"
    );
    assert_eq!(card_count(&stores.pg).await, (0, 0));
}

#[tokio::test]
async fn loading_a_name_again_is_refused() {
    let (stores, _) = setup().await;
    load_sample(&stores.pg).await;
    let again = load_rate_card(
        &stores.pg,
        &card("meta-sample-2026-04-01", "2026-07-01T00:00:00Z"),
        SAMPLE_CARD,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&again, PricingError::CardExists(name) if name == "meta-sample-2026-04-01"),
        "{again:?}"
    );
    let same_start = load_rate_card(
        &stores.pg,
        &card("other", "2026-04-01T00:00:00Z"),
        SAMPLE_CARD,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(same_start, PricingError::CardStartTaken { .. }),
        "{same_start:?}"
    );
    let cards = list_rate_cards(&stores.pg).await.unwrap();
    assert_eq!(cards.len(), 1);
    assert_eq!(
        cards[0].effective_to, None,
        "the failed loads closed nothing"
    );
}

#[tokio::test]
async fn a_new_card_closes_the_previous_one_in_either_loading_order() {
    let (stores, _) = setup().await;
    let july = load_rate_card(
        &stores.pg,
        &card("july", "2026-07-01T00:00:00Z"),
        SAMPLE_CARD,
    )
    .await
    .unwrap();
    // Loaded after the July card but starting before it: it ends where July starts.
    let april = load_sample(&stores.pg).await;
    assert_eq!(april.effective_to, Some(at("2026-07-01T00:00:00Z")));
    let october = load_rate_card(
        &stores.pg,
        &card("october", "2026-10-01T00:00:00Z"),
        SAMPLE_CARD,
    )
    .await
    .unwrap();
    assert_eq!(october.effective_to, None);
    let cards = list_rate_cards(&stores.pg).await.unwrap();
    let ends: Vec<(&str, Option<_>)> = cards
        .iter()
        .map(|c| (c.name.as_str(), c.effective_to))
        .collect();
    assert_eq!(
        ends,
        vec![
            ("meta-sample-2026-04-01", Some(at("2026-07-01T00:00:00Z"))),
            ("july", Some(at("2026-10-01T00:00:00Z"))),
            ("october", None),
        ]
    );
    assert_ne!(july.id, october.id);
}
