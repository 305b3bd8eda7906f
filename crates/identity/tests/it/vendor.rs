//! The vendor profile: read by any role, changed by ADMINs, every bad field reported.

use kloyst_core::{DomainError, ErrorClass};
use kloyst_identity::{BillingAddress, VendorPatch};

use crate::helpers::*;

fn address() -> BillingAddress {
    BillingAddress {
        line1: " 12 MG Road ".into(),
        line2: Some("Floor 3".into()),
        city: "Pune".into(),
        state: Some("Maharashtra".into()),
        postal_code: "411001".into(),
        country: "in".into(),
    }
}

#[tokio::test]
async fn an_admin_updates_the_profile_and_the_values_are_normalised() {
    let (stores, identity) = setup().await;
    let (admin, _, _) = registered_admin(&identity, &stores).await;
    let before = identity.vendor_profile(&admin).await.unwrap();
    assert_eq!(before.time_zone, "Asia/Kolkata");
    assert_eq!(before.gstin, None);

    let after = identity
        .update_vendor_profile(
            &admin,
            VendorPatch {
                company_name: Some("  Acme Traders Pvt Ltd ".into()),
                billing_email: Some("Accounts@Acme.Example".into()),
                billing_address: Some(address()),
                gstin: Some("27aapfu0939f1zv".into()),
                default_country: Some("ae".into()),
                time_zone: Some("Asia/Dubai".into()),
            },
            &meta(),
        )
        .await
        .unwrap();
    assert_eq!(after.company_name.as_deref(), Some("Acme Traders Pvt Ltd"));
    assert_eq!(after.name, "Acme Traders Pvt Ltd");
    assert_eq!(
        after.billing_email.as_deref(),
        Some("accounts@acme.example")
    );
    assert_eq!(after.gstin.as_deref(), Some("27AAPFU0939F1ZV"));
    assert_eq!(after.default_country, "AE");
    assert_eq!(after.time_zone, "Asia/Dubai");
    let stored = after.billing_address.clone().unwrap();
    assert_eq!(stored.line1, "12 MG Road");
    assert_eq!(stored.country, "IN");
    assert!(after.updated_at >= before.updated_at);
    assert_eq!(identity.vendor_profile(&admin).await.unwrap(), after);

    // Only what is given changes.
    let partial = identity
        .update_vendor_profile(
            &admin,
            VendorPatch {
                time_zone: Some("UTC".into()),
                ..VendorPatch::default()
            },
            &meta(),
        )
        .await
        .unwrap();
    assert_eq!(partial.time_zone, "UTC");
    assert_eq!(partial.gstin.as_deref(), Some("27AAPFU0939F1ZV"));

    // The audit names the fields, not their values.
    let rows = audit_rows(&stores.pg, "vendor.profile_updated").await;
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0]["details"]["fields"],
        serde_json::json!([
            "company_name",
            "billing_email",
            "billing_address",
            "gstin",
            "default_country",
            "time_zone"
        ])
    );
    let text = rows[0].to_string();
    assert!(!text.contains("27AAPFU0939F1ZV") && !text.contains("accounts@acme"));

    // An empty patch changes nothing and writes no audit row.
    identity
        .update_vendor_profile(&admin, VendorPatch::default(), &meta())
        .await
        .unwrap();
    assert_eq!(
        audit_rows(&stores.pg, "vendor.profile_updated").await.len(),
        2
    );
}

#[tokio::test]
async fn every_invalid_field_is_reported_once_and_nothing_changes() {
    let (stores, identity) = setup().await;
    let (admin, _, _) = registered_admin(&identity, &stores).await;
    let before = identity.vendor_profile(&admin).await.unwrap();
    let err = identity
        .update_vendor_profile(
            &admin,
            VendorPatch {
                company_name: Some("   ".into()),
                billing_email: Some("accounts at acme".into()),
                billing_address: Some(BillingAddress {
                    postal_code: "!!".into(),
                    country: "XX".into(),
                    ..address()
                }),
                gstin: Some("27AAPFU0939F1Z".into()),
                default_country: Some("India".into()),
                // The right shape, but no such zone: PostgreSQL's zone list decides.
                time_zone: Some("Asia/Atlantis".into()),
            },
            &meta(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Invalid);
    let mut fields: Vec<(String, String)> = err
        .field_errors()
        .into_iter()
        .map(|f| (f.field, f.code))
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            ("billing_address.country".into(), "invalid_country".into()),
            (
                "billing_address.postal_code".into(),
                "invalid_postal_code".into()
            ),
            ("billing_email".into(), "invalid_email".into()),
            ("company_name".into(), "required".into()),
            ("default_country".into(), "invalid_country".into()),
            ("gstin".into(), "invalid_gstin".into()),
            ("time_zone".into(), "invalid_time_zone".into()),
        ]
        .map(|(a, b): (String, String)| (a, b))
    );
    assert_eq!(identity.vendor_profile(&admin).await.unwrap(), before);
    assert!(audit_rows(&stores.pg, "vendor.profile_updated")
        .await
        .is_empty());

    let err = identity
        .update_vendor_profile(
            &admin,
            VendorPatch {
                time_zone: Some("Kolkata".into()),
                ..VendorPatch::default()
            },
            &meta(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.field_errors().len(), 1);
    assert_eq!(err.field_errors()[0].field, "time_zone");
}

#[tokio::test]
async fn unknown_fields_in_a_patch_are_refused_by_name() {
    let err = serde_json::from_str::<VendorPatch>(r#"{"plan_type":"DEDICATED"}"#).unwrap_err();
    assert!(err.to_string().contains("plan_type"), "{err}");
    let err = serde_json::from_str::<VendorPatch>(
        r#"{"billing_address":{"line1":"x","city":"y","postal_code":"1","country":"IN","vendor_id":"z"}}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("vendor_id"), "{err}");
}
