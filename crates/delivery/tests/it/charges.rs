//! What each kind of pricing costs: free vs billable, a CBP payload, Meta's category over the
//! template's, an unpriced message and a refused wallet, in one batch.

use serde_json::json;

use crate::*;

#[tokio::test]
async fn free_billable_cbp_category_unpriced_and_refused_in_one_batch() {
    let world = World::new().await;
    let vendor = world.vendor("20").await;
    let campaign = world.campaign(&vendor, Some("1")).await;
    let broke = world.vendor("0").await;
    let broke_campaign = world.campaign(&broke, None).await;
    for (wamid, category, country) in [
        ("wamid.free", "UTILITY", Some("IN")),
        ("wamid.cbp", "UTILITY", Some("IN")),
        ("wamid.differs", "MARKETING", Some("IN")),
        ("wamid.unpriced", "MARKETING", None),
        ("wamid.nopricing", "MARKETING", Some("IN")),
    ] {
        world
            .message(&vendor, Some(campaign), wamid, category, country)
            .await;
    }
    world
        .message(
            &broke,
            Some(broke_campaign),
            "wamid.broke",
            "MARKETING",
            Some("IN"),
        )
        .await;

    let free = json!({ "billable": false, "pricing_model": "PMP", "type": "free_customer_service",
                       "category": "utility" });
    let cbp = json!({ "billable": true, "pricing_model": "CBP", "category": "utility" });
    let mut cbp_sent = status("wamid.cbp", "sent", 0, Some(cbp.clone()));
    cbp_sent["conversation"] = json!({ "id": "f5fdae3920125a39a1e6a23e5f877c16",
        "expiration_timestamp": (T0 + 86_400).to_string(), "origin": { "type": "utility" } });
    let mut cbp_delivered = status("wamid.cbp", "delivered", 2, Some(cbp));
    cbp_delivered["conversation"] =
        json!({ "id": "f5fdae3920125a39a1e6a23e5f877c16", "origin": { "type": "utility" } });
    world
        .store(&[
            status("wamid.free", "delivered", 2, Some(free)),
            cbp_sent,
            cbp_delivered,
            // Meta priced a MARKETING template as utility: Meta's category is charged
            status("wamid.differs", "delivered", 2, Some(regular("utility"))),
            status("wamid.unpriced", "delivered", 2, Some(regular("marketing"))),
            // v24: no pricing object on this message's statuses (yet)
            status("wamid.nopricing", "read", 9, None),
            status("wamid.broke", "delivered", 2, Some(regular("marketing"))),
        ])
        .await;
    let report = world.drain(&world.applier(100)).await;
    assert_eq!(report.applied, 7);
    assert_eq!(
        (report.charged, report.free, report.unpriced, report.refused),
        (2, 1, 1, 1)
    );

    let free = world.log("wamid.free").await;
    assert_eq!(
        (
            free.billable,
            free.pricing_type.as_deref(),
            free.cost,
            free.charged
        ),
        (
            Some(false),
            Some("free_customer_service"),
            Some(Decimal::ZERO),
            true
        )
    );
    assert_eq!(
        (
            free.ledger_transaction_id,
            world.debits("wamid.free").await.0
        ),
        (None, 0)
    );

    let cbp = world.log("wamid.cbp").await;
    assert_eq!(cbp.pricing_model.as_deref(), Some("CBP"));
    assert_eq!(
        cbp.conversation_id.as_deref(),
        Some("f5fdae3920125a39a1e6a23e5f877c16")
    );
    assert_eq!((cbp.cost, cbp.billable), (Some(d(IN_UTILITY)), Some(true)));
    assert_eq!(world.debits("wamid.cbp").await, (1, Some(d(IN_UTILITY))));

    let differs = world.log("wamid.differs").await;
    assert_eq!(differs.flags, vec!["CATEGORY_DIFFERS".to_owned()]);
    assert_eq!(differs.pricing_category.as_deref(), Some("UTILITY"));
    assert_eq!(differs.cost, Some(d(IN_UTILITY)));
    assert_eq!(
        (differs.meta_rate, differs.rate_currency.as_deref()),
        (Some(d("0.0013")), Some("USD"))
    );
    assert_eq!(
        (differs.meta_cost, differs.margin),
        (Some(d("0.1144")), Some(d(IN_UTILITY) - d("0.1144")))
    );

    let unpriced = world.log("wamid.unpriced").await;
    assert_eq!(
        (unpriced.flags, unpriced.charged),
        (vec!["UNPRICED".to_owned()], false)
    );
    assert_eq!(world.debits("wamid.unpriced").await.0, 0);

    let waiting = world.log("wamid.nopricing").await;
    assert_eq!((waiting.status.as_str(), waiting.charged), ("READ", false));
    assert!(waiting.flags.is_empty());

    let broke = world.log("wamid.broke").await;
    assert_eq!(
        (broke.flags, broke.charged),
        (vec!["CHARGE_REFUSED".to_owned()], false)
    );
    assert_eq!(world.debits("wamid.broke").await.0, 0);

    // the pricing object comes later (on a duplicate-free delivered status): charged then
    world
        .store(&[status(
            "wamid.nopricing",
            "delivered",
            4,
            Some(regular("marketing")),
        )])
        .await;
    let later = world.drain(&world.applier(100)).await;
    assert_eq!(later.charged, 1);
    assert_eq!(
        world.debits("wamid.nopricing").await,
        (1, Some(d(IN_MARKETING)))
    );

    // counters: 5 delivered in the campaign (the unpriced one was delivered too), 1 read;
    // cost: two utility charges and one marketing
    let cost = d(IN_UTILITY) * Decimal::from(2) + d(IN_MARKETING);
    assert_eq!(
        world.counters(campaign).await,
        Counters {
            delivered_count: 5,
            read_count: 1,
            failed_count: 0,
            actual_cost: cost
        }
    );
    assert_eq!(
        world.counters(broke_campaign).await.actual_cost,
        Decimal::ZERO
    );
    // the hold (1) was captured first
    let captured: Decimal =
        sqlx::query_scalar("SELECT captured FROM wallet_holds WHERE campaign_id = $1")
            .bind(campaign)
            .fetch_one(world.pg())
            .await
            .unwrap();
    assert_eq!(captured, d("1"));
    let wallet = world
        .ledger
        .wallet(VendorId::from_uuid(vendor.id))
        .await
        .unwrap();
    assert_eq!(wallet.balance, d("20") - cost);
    world.books_ok().await;
}
