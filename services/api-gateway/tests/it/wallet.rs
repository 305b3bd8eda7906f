//! `GET /v1/wallet/{balance,transactions,recharges}`: the vendor's own money, read by any
//! role, never another vendor's.

use std::str::FromStr;

use kloyst_billing::{Credit, CreditKind, Debit, HoldRequest, Ledger};
use kloyst_core::VendorId;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

use crate::client::{token, Api};
use crate::fixtures::{dec, vendor_of};

fn d(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

fn recharge(amount: &str) -> Credit {
    Credit {
        kind: CreditKind::Recharge,
        amount: d(amount),
        reference: format!("recharge:pay_{}", Uuid::new_v4().simple()),
        payment_order_id: None,
        description: Some("Razorpay recharge".to_owned()),
        created_by: None,
    }
}

/// Recharge 500, hold 120, debit 10, recharge 50: balance 540, held 120, available 420.
/// (No campaign ids: they must name a real campaign.)
async fn post_sample_ledger(api: &Api, vendor: VendorId) {
    let ledger = Ledger::new(api.stores.pg.clone());
    ledger.post_credit(vendor, recharge("500")).await.unwrap();
    let hold = Uuid::new_v4();
    ledger
        .hold(
            vendor,
            HoldRequest {
                amount: d("120"),
                reference: format!("hold:sample:{hold}"),
                campaign_id: None,
            },
        )
        .await
        .unwrap();
    ledger
        .post_debit(
            vendor,
            Debit {
                reference: "debit:wamid.sample".to_owned(),
                amount: d("10"),
                hold_id: None,
                campaign_id: None,
                wa_message_id: Some("wamid.sample".to_owned()),
                metadata: serde_json::json!({ "category": "marketing" }),
            },
        )
        .await
        .unwrap();
    ledger.post_credit(vendor, recharge("50")).await.unwrap();
}

async fn insert_payment_order(api: &Api, vendor: VendorId, amount: i64, status: &str) -> Uuid {
    let paid = status == "paid";
    let suffix = Uuid::new_v4().simple().to_string();
    sqlx::query_scalar(
        "INSERT INTO payment_orders (vendor_id, wallet_id, razorpay_order_id, receipt, amount,
                                     amount_paise, status, razorpay_payment_id, paid_at)
         SELECT $1, w.id, $2, $3, $4, $4 * 100, $5, $6, CASE WHEN $7 THEN now() END
           FROM wallets w WHERE w.vendor_id = $1
         RETURNING id",
    )
    .bind(vendor.as_uuid())
    .bind(format!("order_{suffix}"))
    .bind(format!("rcpt_{}", &suffix[..20]))
    .bind(amount)
    .bind(status)
    .bind(paid.then(|| format!("pay_{suffix}")))
    .bind(paid)
    .fetch_one(&api.stores.pg)
    .await
    .unwrap()
}

fn kinds(page: &Value) -> Vec<&str> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["kind"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn balance_shows_credits_and_holds_to_any_role() {
    let api = Api::start().await;
    let admin = token(&api.onboard("ada@wallet.example", "Alpha").await);
    let vendor = vendor_of(&api, "ada@wallet.example").await;
    post_sample_ledger(&api, vendor).await;

    let balance = api.get("/v1/wallet/balance", &admin).await;
    assert_eq!(balance.status, StatusCode::OK, "{}", balance.body);
    assert_eq!(dec(&balance.body["balance"]), d("540"));
    assert_eq!(dec(&balance.body["held"]), d("120"));
    assert_eq!(dec(&balance.body["available"]), d("420"));
    assert_eq!(dec(&balance.body["overdraft_limit"]), Decimal::ZERO);
    assert_eq!(balance.body["currency"], "INR");

    // Reading money is day-to-day work: a non-admin member sees the same figures.
    let (staff, _) = api.add_member(&admin, "sam@wallet.example", "STAFF").await;
    let seen = api.get("/v1/wallet/balance", &token(&staff)).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
    assert_eq!(dec(&seen.body["available"]), d("420"));

    for path in [
        "/v1/wallet/balance",
        "/v1/wallet/transactions",
        "/v1/wallet/recharges",
    ] {
        let anonymous = api.call(reqwest::Method::GET, path, None, None).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn transactions_page_newest_first_with_type_and_date_filters() {
    let api = Api::start().await;
    let admin = token(&api.onboard("tia@wallet.example", "Tango").await);
    let vendor = vendor_of(&api, "tia@wallet.example").await;
    post_sample_ledger(&api, vendor).await;

    let all = api.get("/v1/wallet/transactions", &admin).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(
        kinds(&all.body),
        [
            "CREDIT_RECHARGE",
            "DEBIT_MESSAGE",
            "HOLD",
            "CREDIT_RECHARGE"
        ]
    );
    assert!(all.body["next_cursor"].is_null());
    let rows = all.body["data"].as_array().unwrap();
    let debit = &rows[1];
    assert_eq!(dec(&debit["amount"]), d("-10"));
    assert_eq!(dec(&debit["hold_delta"]), Decimal::ZERO);
    assert_eq!(dec(&debit["balance_after"]), d("490"));
    assert_eq!(dec(&debit["held_after"]), d("120"));
    assert_eq!(debit["reference"], "debit:wamid.sample");
    assert_eq!(debit["wa_message_id"], "wamid.sample");
    assert!(debit["campaign_id"].is_null());
    assert_eq!(dec(&rows[2]["hold_delta"]), d("120"));
    assert_eq!(rows[0]["description"], "Razorpay recharge");
    assert_eq!(dec(&rows[0]["balance_after"]), d("540"));

    // Two pages of 3 and 1, chained by the cursor, give the same rows.
    let first = api.get("/v1/wallet/transactions?limit=3", &admin).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["data"].as_array().unwrap().len(), 3);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = api
        .get(
            &format!("/v1/wallet/transactions?limit=3&cursor={cursor}"),
            &admin,
        )
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(kinds(&second.body), ["CREDIT_RECHARGE"]);
    assert!(second.body["next_cursor"].is_null());
    assert_eq!(second.body["data"][0]["id"], rows[3]["id"]);

    let credits = api
        .get("/v1/wallet/transactions?type=credit_recharge", &admin)
        .await;
    assert_eq!(credits.status, StatusCode::OK, "{}", credits.body);
    assert_eq!(kinds(&credits.body), ["CREDIT_RECHARGE", "CREDIT_RECHARGE"]);
    let holds = api.get("/v1/wallet/transactions?type=HOLD", &admin).await;
    assert_eq!(kinds(&holds.body), ["HOLD"]);

    // `from` is inclusive and `to` exclusive: split the ledger at the debit's time.
    let debit_at = debit["created_at"].as_str().unwrap();
    let split: chrono::DateTime<chrono::Utc> = debit_at.parse().unwrap();
    let at_or_after = rows
        .iter()
        .filter(|row| {
            row["created_at"]
                .as_str()
                .unwrap()
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap()
                >= split
        })
        .count();
    let since = api
        .get(&format!("/v1/wallet/transactions?from={debit_at}"), &admin)
        .await;
    assert_eq!(since.status, StatusCode::OK, "{}", since.body);
    assert_eq!(since.body["data"].as_array().unwrap().len(), at_or_after);
    assert!(at_or_after >= 2);
    let before = api
        .get(&format!("/v1/wallet/transactions?to={debit_at}"), &admin)
        .await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.body);
    assert_eq!(
        before.body["data"].as_array().unwrap().len(),
        4 - at_or_after
    );
    let future = api
        .get("/v1/wallet/transactions?from=2999-01-01T00:00:00Z", &admin)
        .await;
    assert_eq!(future.status, StatusCode::OK, "{}", future.body);
    assert!(future.body["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn bad_type_cursor_or_date_is_422() {
    let api = Api::start().await;
    let admin = token(&api.onboard("val@wallet.example", "Victor").await);
    for (query, field) in [
        ("type=PAYMENT", "type"),
        ("cursor=zz", "cursor"),
        ("cursor=00", "cursor"),
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z", "to"),
        ("limit=0", "limit"),
    ] {
        let answer = api
            .get(&format!("/v1/wallet/transactions?{query}"), &admin)
            .await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {}",
            answer.body
        );
        assert_eq!(answer.body["errors"][0]["field"], field, "{query}");
    }
    let answer = api.get("/v1/wallet/recharges?cursor=abc", &admin).await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn recharges_newest_first_with_a_cursor() {
    let api = Api::start().await;
    let admin = token(&api.onboard("rui@wallet.example", "Romeo").await);
    let vendor = vendor_of(&api, "rui@wallet.example").await;
    let oldest = insert_payment_order(&api, vendor, 100, "created").await;
    let middle = insert_payment_order(&api, vendor, 250, "paid").await;
    let newest = insert_payment_order(&api, vendor, 500, "failed").await;

    let first = api.get("/v1/wallet/recharges?limit=2", &admin).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let rows = first.body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["id"], newest.to_string());
    assert_eq!(rows[0]["status"], "failed");
    assert_eq!(rows[1]["id"], middle.to_string());
    assert_eq!(dec(&rows[1]["amount"]), d("250"));
    assert_eq!(rows[1]["currency"], "INR");
    assert!(rows[1]["razorpay_order_id"]
        .as_str()
        .unwrap()
        .starts_with("order_"));
    assert!(rows[1]["razorpay_payment_id"]
        .as_str()
        .unwrap()
        .starts_with("pay_"));
    assert!(rows[1]["paid_at"].is_string());
    assert!(rows[0]["paid_at"].is_null());
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = api
        .get(
            &format!("/v1/wallet/recharges?limit=2&cursor={cursor}"),
            &admin,
        )
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.body["data"][0]["id"], oldest.to_string());
    assert_eq!(second.body["data"].as_array().unwrap().len(), 1);
    assert!(second.body["next_cursor"].is_null());
}

#[tokio::test]
async fn another_vendor_sees_only_its_own_empty_wallet() {
    let api = Api::start().await;
    let alice = token(&api.onboard("alice@wallet.example", "Alpha").await);
    let alice_vendor = vendor_of(&api, "alice@wallet.example").await;
    post_sample_ledger(&api, alice_vendor).await;
    insert_payment_order(&api, alice_vendor, 300, "paid").await;
    let bob = token(&api.onboard("bob@wallet.example", "Beta").await);

    let balance = api.get("/v1/wallet/balance", &bob).await;
    assert_eq!(balance.status, StatusCode::OK, "{}", balance.body);
    assert_eq!(dec(&balance.body["balance"]), Decimal::ZERO);
    assert_eq!(dec(&balance.body["held"]), Decimal::ZERO);
    let alice_wallet = api.get("/v1/wallet/balance", &alice).await;
    assert_ne!(balance.body["id"], alice_wallet.body["id"]);

    let transactions = api.get("/v1/wallet/transactions", &bob).await;
    assert_eq!(transactions.status, StatusCode::OK, "{}", transactions.body);
    assert!(transactions.body["data"].as_array().unwrap().is_empty());
    // Even positioned by Alice's own cursor, Bob's page has none of her rows.
    let alice_page = api.get("/v1/wallet/transactions?limit=1", &alice).await;
    let cursor = alice_page.body["next_cursor"].as_str().unwrap();
    let with_cursor = api
        .get(&format!("/v1/wallet/transactions?cursor={cursor}"), &bob)
        .await;
    assert_eq!(with_cursor.status, StatusCode::OK, "{}", with_cursor.body);
    assert!(with_cursor.body["data"].as_array().unwrap().is_empty());

    let recharges = api.get("/v1/wallet/recharges", &bob).await;
    assert_eq!(recharges.status, StatusCode::OK, "{}", recharges.body);
    assert!(recharges.body["data"].as_array().unwrap().is_empty());
    let alice_recharges = api.get("/v1/wallet/recharges", &alice).await;
    assert_eq!(alice_recharges.body["data"].as_array().unwrap().len(), 1);
}
