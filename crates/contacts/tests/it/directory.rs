//! The directory: pages and filters, get, patch (number, attributes, opt-out), delete, the
//! change audit, and tenancy.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use kloyst_contacts::model::{ContactFilter, ContactPatch, ListMembersInput, NewContactList};
use kloyst_contacts::ContactsError;
use kloyst_core::DomainError;
use kloyst_identity::Role;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::helpers::*;

fn filter() -> ContactFilter {
    ContactFilter::default()
}

fn attributes(value: Value) -> Option<Map<String, Value>> {
    Some(value.as_object().unwrap().clone())
}

/// (field, code) of each field error of a 422.
fn field_errors(error: &ContactsError) -> Vec<(String, String)> {
    assert!(matches!(error, ContactsError::Invalid(_)), "{error:?}");
    error
        .field_errors()
        .into_iter()
        .map(|e| (e.field, e.code))
        .collect()
}

#[tokio::test]
async fn walking_the_pages_returns_every_existing_contact_once_while_more_are_inserted() {
    let (stores, contacts) = setup().await;
    let who = new_vendor(&stores.pg).await;
    let originals: BTreeSet<Uuid> = insert_contacts(&stores.pg, who.vendor_id, 0, 250)
        .await
        .into_iter()
        .collect();

    // Another writer keeps inserting (random ids land before and after the cursor).
    let writer = {
        let pg = stores.pg.clone();
        let vendor = who.vendor_id;
        tokio::spawn(async move {
            for batch in 0..30 {
                insert_contacts(&pg, vendor, 1_000 + batch * 10, 10).await;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let mut seen: HashMap<Uuid, u32> = HashMap::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = contacts
            .list_contacts(
                &who,
                ContactFilter {
                    limit: Some(50),
                    cursor: cursor.take(),
                    ..filter()
                },
            )
            .await
            .unwrap();
        pages += 1;
        assert!(page.data.len() <= 50);
        for contact in &page.data {
            *seen.entry(contact.id).or_default() += 1;
        }
        // And between every two pages, more contacts for certain.
        insert_contacts(&stores.pg, who.vendor_id, 5_000 + pages * 20, 20).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    writer.await.unwrap();

    assert!(pages >= 5, "{pages} pages");
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts")
        .fetch_one(&stores.pg)
        .await
        .unwrap();
    assert_eq!(total, 250 + 300 + 20 * i64::from(pages));
    assert!(
        seen.values().all(|&n| n == 1),
        "a contact was returned twice"
    );
    let missing: Vec<_> = originals
        .iter()
        .filter(|id| !seen.contains_key(id))
        .collect();
    assert!(missing.is_empty(), "{} originals never seen", missing.len());
}

#[tokio::test]
async fn pages_are_ordered_by_id_capped_and_the_last_has_no_cursor() {
    let (stores, contacts) = setup().await;
    let who = new_vendor(&stores.pg).await;
    let mut ids = insert_contacts(&stores.pg, who.vendor_id, 0, 60).await;
    ids.sort();

    let first = contacts.list_contacts(&who, filter()).await.unwrap();
    assert_eq!(first.data.len(), 50, "the default limit is 50");
    let first_ids: Vec<Uuid> = first.data.iter().map(|c| c.id).collect();
    assert_eq!(first_ids, ids[..50]);
    let rest = contacts
        .list_contacts(
            &who,
            ContactFilter {
                cursor: first.next_cursor.clone(),
                ..filter()
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.data.len(), 10);
    assert_eq!(rest.next_cursor, None);

    let exact = contacts
        .list_contacts(
            &who,
            ContactFilter {
                limit: Some(60),
                ..filter()
            },
        )
        .await
        .unwrap();
    assert_eq!(exact.data.len(), 60);
    assert_eq!(exact.next_cursor, None, "no cursor when nothing follows");

    let capped = contacts
        .list_contacts(
            &who,
            ContactFilter {
                limit: Some(100_000),
                ..filter()
            },
        )
        .await
        .unwrap();
    assert_eq!(capped.data.len(), 60);

    let err = contacts
        .list_contacts(
            &who,
            ContactFilter {
                limit: Some(0),
                ..filter()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        field_errors(&err),
        [("limit".into(), "out_of_range".into())]
    );
}

#[tokio::test]
async fn a_malformed_cursor_or_one_of_another_order_is_422() {
    let (stores, contacts) = setup().await;
    let who = new_vendor(&stores.pg).await;
    insert_contacts(&stores.pg, who.vendor_id, 0, 3).await;
    for bad in ["garbage!", "aaaa", "", "bm90LWEtY3Vyc29y"] {
        let err = contacts
            .list_contacts(
                &who,
                ContactFilter {
                    cursor: Some(bad.to_owned()),
                    ..filter()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(
            field_errors(&err),
            [("cursor".into(), "invalid_cursor".into())],
            "{bad:?}"
        );
    }
    // A cursor of the name order does not position the id order.
    let by_name = contacts
        .list_contacts(
            &who,
            ContactFilter {
                name_prefix: Some("contact".into()),
                limit: Some(1),
                ..filter()
            },
        )
        .await
        .unwrap();
    let err = contacts
        .list_contacts(
            &who,
            ContactFilter {
                cursor: by_name.next_cursor,
                ..filter()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        field_errors(&err),
        [("cursor".into(), "invalid_cursor".into())]
    );
}

#[tokio::test]
async fn name_prefix_is_case_insensitive_and_pages_in_name_order() {
    let (stores, contacts) = setup().await;
    let who = new_vendor(&stores.pg).await;
    let v = who.vendor_id;
    for (mobile, name) in [
        ("919800000001", Some("Asha Rao")),
        ("919800000002", Some("asha k")),
        ("919800000003", Some("ASHOK")),
        ("919800000004", Some("  Ashwin ")),
        ("919800000005", Some("Bala Ash")),
        ("919800000006", None),
        ("919800000007", Some("Élodie")),
    ] {
        insert_contact(&stores.pg, v, mobile, name).await;
    }
    let names = |contacts: Vec<kloyst_contacts::model::ContactView>| {
        contacts
            .into_iter()
            .map(|c| c.name.unwrap())
            .collect::<Vec<_>>()
    };
    let expected = ["asha k", "Asha Rao", "ASHOK", "Ashwin"];
    for prefix in ["ash", "ASH", " As"] {
        let all = contacts
            .list_contacts(
                &who,
                ContactFilter {
                    name_prefix: Some(prefix.into()),
                    ..filter()
                },
            )
            .await
            .unwrap();
        assert_eq!(names(all.data), expected, "{prefix:?}");
    }
    // One per page: the same rows, the same order.
    let walked = walk(
        &contacts,
        &who,
        ContactFilter {
            name_prefix: Some("Ash".into()),
            ..filter()
        },
        1,
    )
    .await;
    assert_eq!(names(walked), expected);

    let longer = contacts
        .list_contacts(
            &who,
            ContactFilter {
                name_prefix: Some("asha ".into()),
                ..filter()
            },
        )
        .await
        .unwrap();
    assert_eq!(names(longer.data), ["asha k", "Asha Rao"]);
    let accented = contacts
        .list_contacts(
            &who,
            ContactFilter {
                name_prefix: Some("Élo".into()),
                ..filter()
            },
        )
        .await
        .unwrap();
    assert_eq!(names(accented.data), ["Élodie"]);
    let none = contacts
        .list_contacts(
            &who,
            ContactFilter {
                name_prefix: Some("zz".into()),
                ..filter()
            },
        )
        .await
        .unwrap();
    assert!(none.data.is_empty());
    assert_eq!(none.next_cursor, None);
    // A blank prefix is no filter.
    let blank = contacts
        .list_contacts(
            &who,
            ContactFilter {
                name_prefix: Some("  ".into()),
                ..filter()
            },
        )
        .await
        .unwrap();
    assert_eq!(blank.data.len(), 7);
}

#[tokio::test]
async fn mobile_prefix_ignores_formatting_and_pages_in_number_order() {
    let (stores, contacts) = setup().await;
    let who = new_vendor(&stores.pg).await;
    let v = who.vendor_id;
    for mobile in [
        "919800000002",
        "919800000001",
        "919811111111",
        "14155550100",
    ] {
        insert_contact(&stores.pg, v, mobile, None).await;
    }
    let mobiles = |page: Vec<kloyst_contacts::model::ContactView>| {
        page.into_iter().map(|c| c.mobile).collect::<Vec<_>>()
    };
    let found = contacts
        .list_contacts(
            &who,
            ContactFilter {
                mobile_prefix: Some("+91 98000-0".into()),
                ..filter()
            },
        )
        .await
        .unwrap();
    assert_eq!(mobiles(found.data), ["919800000001", "919800000002"]);
    let us = contacts
        .list_contacts(
            &who,
            ContactFilter {
                mobile_prefix: Some("+1".into()),
                ..filter()
            },
        )
        .await
        .unwrap();
    assert_eq!(mobiles(us.data), ["14155550100"]);
    let walked = walk(
        &contacts,
        &who,
        ContactFilter {
            mobile_prefix: Some("91".into()),
            ..filter()
        },
        1,
    )
    .await;
    assert_eq!(
        mobiles(walked),
        ["919800000001", "919800000002", "919811111111"]
    );
    let full = contacts
        .list_contacts(
            &who,
            ContactFilter {
                mobile_prefix: Some("919811111111".into()),
                ..filter()
            },
        )
        .await
        .unwrap();
    assert_eq!(full.data.len(), 1);

    for bad in ["91abc", "9198765432101234"] {
        let err = contacts
            .list_contacts(
                &who,
                ContactFilter {
                    mobile_prefix: Some(bad.into()),
                    ..filter()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(field_errors(&err)[0].0, "mobile_prefix", "{bad}");
    }
}

#[tokio::test]
async fn opted_out_filters_either_way() {
    let (stores, contacts) = setup().await;
    let who = new_vendor(&stores.pg).await;
    let ids = insert_contacts(&stores.pg, who.vendor_id, 0, 6).await;
    for id in &ids[..2] {
        contacts
            .update_contact(
                &who,
                *id,
                ContactPatch {
                    opted_out: Some(true),
                    ..ContactPatch::default()
                },
                &meta(),
            )
            .await
            .unwrap();
    }
    let out = walk(
        &contacts,
        &who,
        ContactFilter {
            opted_out: Some(true),
            ..filter()
        },
        1,
    )
    .await;
    let out: BTreeSet<Uuid> = out.iter().map(|c| c.id).collect();
    assert_eq!(out, ids[..2].iter().copied().collect());
    let opted_in = contacts
        .list_contacts(
            &who,
            ContactFilter {
                opted_out: Some(false),
                ..filter()
            },
        )
        .await
        .unwrap();
    assert_eq!(opted_in.data.len(), 4);
    assert!(opted_in.data.iter().all(|c| !c.opted_out));
}

#[tokio::test]
async fn filters_combine_with_the_list_filter() {
    let (stores, contacts) = setup().await;
    let who = new_vendor(&stores.pg).await;
    let ids = insert_contacts(&stores.pg, who.vendor_id, 0, 20).await;
    let list = contacts
        .create_list(
            &who,
            NewContactList {
                name: "VIP".into(),
                description: None,
            },
            &meta(),
        )
        .await
        .unwrap();
    // Members: contacts 0–9; of them 0 and 1 opted out.
    contacts
        .add_list_members(
            &who,
            list.id,
            ListMembersInput {
                contact_ids: ids[..10].to_vec(),
            },
            &meta(),
        )
        .await
        .unwrap();
    for id in &ids[..2] {
        contacts
            .update_contact(
                &who,
                *id,
                ContactPatch {
                    opted_out: Some(true),
                    ..ContactPatch::default()
                },
                &meta(),
            )
            .await
            .unwrap();
    }
    let in_list = |extra: ContactFilter| ContactFilter {
        list_id: Some(list.id),
        ..extra
    };
    let members = walk(&contacts, &who, in_list(filter()), 3).await;
    let mut expected: Vec<Uuid> = ids[..10].to_vec();
    expected.sort();
    assert_eq!(members.iter().map(|c| c.id).collect::<Vec<_>>(), expected);

    let opted_in_members = walk(
        &contacts,
        &who,
        in_list(ContactFilter {
            opted_out: Some(false),
            ..filter()
        }),
        3,
    )
    .await;
    assert_eq!(opted_in_members.len(), 8);

    // Names are `Contact 0000` …: `contact 000` matches the members 0000–0009,
    // `contact 001` matches 0010–0019, none of them a member.
    let by_name = walk(
        &contacts,
        &who,
        in_list(ContactFilter {
            name_prefix: Some("contact 000".into()),
            ..filter()
        }),
        4,
    )
    .await;
    assert_eq!(by_name.len(), 10);
    let outside = contacts
        .list_contacts(
            &who,
            in_list(ContactFilter {
                name_prefix: Some("contact 001".into()),
                ..filter()
            }),
        )
        .await
        .unwrap();
    assert!(outside.data.is_empty());
    let by_number = walk(
        &contacts,
        &who,
        in_list(ContactFilter {
            mobile_prefix: Some("9190000000".into()),
            opted_out: Some(true),
            ..filter()
        }),
        1,
    )
    .await;
    assert_eq!(
        by_number
            .iter()
            .map(|c| c.mobile.as_str())
            .collect::<Vec<_>>(),
        ["919000000000", "919000000001"]
    );

    // A list that is not there is a 404, not an empty page.
    let err = contacts
        .list_contacts(
            &who,
            ContactFilter {
                list_id: Some(Uuid::new_v4()),
                ..filter()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ContactsError::NotFound("contact list")),
        "{err:?}"
    );
    // An empty list is an empty page.
    let empty = contacts
        .create_list(
            &who,
            NewContactList {
                name: "Empty".into(),
                description: None,
            },
            &meta(),
        )
        .await
        .unwrap();
    let page = contacts
        .list_contacts(
            &who,
            ContactFilter {
                list_id: Some(empty.id),
                ..filter()
            },
        )
        .await
        .unwrap();
    assert!(page.data.is_empty());
}

#[tokio::test]
async fn get_returns_the_contact_and_a_missing_one_is_not_found() {
    let (stores, contacts) = setup().await;
    let who = new_vendor(&stores.pg).await;
    let id = insert_contact(&stores.pg, who.vendor_id, "919876543210", Some("Asha")).await;
    let contact = contacts.get_contact(&who, id).await.unwrap();
    assert_eq!(contact.id, id);
    assert_eq!(contact.mobile, "919876543210");
    assert_eq!(contact.country.as_deref(), Some("IN"));
    assert_eq!(contact.name.as_deref(), Some("Asha"));
    assert_eq!(
        contact.attributes.0,
        *attributes(json!({ "name": "Asha" })).as_ref().unwrap()
    );
    assert!(!contact.opted_out);
    let err = contacts
        .get_contact(&who, Uuid::new_v4())
        .await
        .unwrap_err();
    assert!(matches!(err, ContactsError::NotFound("contact")));
}

#[tokio::test]
async fn a_patch_merges_attributes() {
    let (stores, contacts) = setup().await;
    let who = new_vendor(&stores.pg).await;
    let id = insert_contact(&stores.pg, who.vendor_id, "919876543210", None).await;
    let patch = |value: Value| ContactPatch {
        attributes: attributes(value),
        ..ContactPatch::default()
    };
    contacts
        .update_contact(
            &who,
            id,
            patch(json!({ "name": "Asha", "city": "Pune", "tier": 1 })),
            &meta(),
        )
        .await
        .unwrap();
    let updated = contacts
        .update_contact(
            &who,
            id,
            patch(json!({ "city": "Mumbai", "tier": null, "vip": true, "absent": null })),
            &meta(),
        )
        .await
        .unwrap();
    assert_eq!(
        Value::Object(updated.attributes.0.clone()),
        json!({ "name": "Asha", "city": "Mumbai", "vip": true })
    );
    assert_eq!(updated.name.as_deref(), Some("Asha"));
    let renamed = contacts
        .update_contact(&who, id, patch(json!({ "name": "Asha Rao" })), &meta())
        .await
        .unwrap();
    assert_eq!(renamed.name.as_deref(), Some("Asha Rao"));
    assert!(renamed.updated_at >= updated.updated_at);
    let found = contacts
        .list_contacts(
            &who,
            ContactFilter {
                name_prefix: Some("asha r".into()),
                ..filter()
            },
        )
        .await
        .unwrap();
    assert_eq!(found.data.len(), 1, "the name search key follows the name");
    let unnamed = contacts
        .update_contact(&who, id, patch(json!({ "name": null })), &meta())
        .await
        .unwrap();
    assert_eq!(unnamed.name, None);
}

#[tokio::test]
async fn a_patch_reports_every_invalid_field_and_changes_nothing() {
    let (stores, contacts) = setup().await;
    let who = new_vendor(&stores.pg).await;
    let id = insert_contact(&stores.pg, who.vendor_id, "919876543210", Some("Asha")).await;
    let err = contacts
        .update_contact(
            &who,
            id,
            ContactPatch {
                mobile: Some("12".into()),
                attributes: attributes(json!({
                    "tags": ["a", "b"],
                    "note": "x".repeat(1_001),
                    "k".repeat(65): "v",
                })),
                opt_out_reason: Some("r".repeat(1_001)),
                ..ContactPatch::default()
            },
            &meta(),
        )
        .await
        .unwrap_err();
    let mut errors = field_errors(&err);
    errors.sort();
    let short = kloyst_contacts::phone::normalize("12", kloyst_contacts::phone::Region::IN)
        .unwrap_err()
        .code();
    assert_eq!(
        errors,
        [
            ("attributes".into(), "ATTRIBUTE_NAME_INVALID".into()),
            ("attributes.note".into(), "ATTRIBUTE_TOO_LONG".into()),
            ("attributes.tags".into(), "ATTRIBUTE_TYPE".into()),
            ("mobile".into(), short.into()),
            ("opt_out_reason".into(), "too_long".into()),
        ]
    );

    // 49 more keys make 50: allowed; one more is not.
    let many: Map<String, Value> = (0..49).map(|i| (format!("k{i}"), json!(i))).collect();
    contacts
        .update_contact(
            &who,
            id,
            ContactPatch {
                attributes: Some(many),
                ..ContactPatch::default()
            },
            &meta(),
        )
        .await
        .unwrap();
    let err = contacts
        .update_contact(
            &who,
            id,
            ContactPatch {
                attributes: attributes(json!({ "one_more": "x" })),
                ..ContactPatch::default()
            },
            &meta(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        field_errors(&err),
        [("attributes".into(), "TOO_MANY_ATTRIBUTES".into())]
    );
    // Replacing one and removing one stays within the limit.
    contacts
        .update_contact(
            &who,
            id,
            ContactPatch {
                attributes: attributes(json!({ "one_more": "x", "k0": null, "k1": "changed" })),
                ..ContactPatch::default()
            },
            &meta(),
        )
        .await
        .unwrap();
    let contact = contacts.get_contact(&who, id).await.unwrap();
    assert_eq!(contact.attributes.0.len(), 50);
    assert_eq!(contact.mobile, "919876543210");
}

#[tokio::test]
async fn a_new_number_is_normalised_with_the_vendors_default_country() {
    let (stores, contacts) = setup().await;
    let who = new_vendor(&stores.pg).await;
    let id = insert_contact(&stores.pg, who.vendor_id, "919876543210", None).await;
    let set_mobile = |mobile: &str| ContactPatch {
        mobile: Some(mobile.to_owned()),
        ..ContactPatch::default()
    };
    let updated = contacts
        .update_contact(&who, id, set_mobile("+91 98765 43211"), &meta())
        .await
        .unwrap();
    assert_eq!(updated.mobile, "919876543211");
    assert_eq!(updated.country.as_deref(), Some("IN"));
    // A national number is read in the vendor's country (IN by default) …
    let national = contacts
        .update_contact(&who, id, set_mobile("098765 43212"), &meta())
        .await
        .unwrap();
    assert_eq!(national.mobile, "919876543212");
    // … and in its own default country once it has another one.
    sqlx::query("UPDATE vendors SET default_country = 'US' WHERE id = $1")
        .bind(who.vendor_id.as_uuid())
        .execute(&stores.pg)
        .await
        .unwrap();
    let us = contacts
        .update_contact(&who, id, set_mobile("(415) 555-0123"), &meta())
        .await
        .unwrap();
    assert_eq!(us.mobile, "14155550123");
    assert_eq!(us.country.as_deref(), Some("US"));

    for bad in ["12", "not a number"] {
        let err = contacts
            .update_contact(&who, id, set_mobile(bad), &meta())
            .await
            .unwrap_err();
        let reason =
            kloyst_contacts::phone::normalize(bad, kloyst_contacts::phone::Region::US).unwrap_err();
        assert_eq!(
            field_errors(&err),
            [("mobile".into(), reason.code().into())],
            "{bad}"
        );
    }
    assert_eq!(
        contacts.get_contact(&who, id).await.unwrap().mobile,
        "14155550123"
    );
}

#[tokio::test]
async fn a_number_another_contact_has_is_409_mobile_taken() {
    let (stores, contacts) = setup().await;
    let who = new_vendor(&stores.pg).await;
    let id = insert_contact(&stores.pg, who.vendor_id, "919876543210", None).await;
    insert_contact(&stores.pg, who.vendor_id, "919876543211", None).await;
    let err = contacts
        .update_contact(
            &who,
            id,
            ContactPatch {
                mobile: Some("+919876543211".into()),
                ..ContactPatch::default()
            },
            &meta(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ContactsError::Conflict {
                code: "mobile_taken",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), "mobile_taken");
    // Its own number again is no conflict (and no change).
    let same = contacts
        .update_contact(
            &who,
            id,
            ContactPatch {
                mobile: Some("+91 98765 43210".into()),
                ..ContactPatch::default()
            },
            &meta(),
        )
        .await
        .unwrap();
    assert_eq!(same.mobile, "919876543210");
    // Another vendor may have the same number.
    let other = new_vendor(&stores.pg).await;
    insert_contact(&stores.pg, other.vendor_id, "919876543212", None).await;
    contacts
        .update_contact(
            &who,
            id,
            ContactPatch {
                mobile: Some("+919876543212".into()),
                ..ContactPatch::default()
            },
            &meta(),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn opting_out_stamps_time_and_source_and_opting_in_clears_them() {
    let (stores, contacts) = setup().await;
    let who = new_vendor(&stores.pg).await;
    let id = insert_contact(&stores.pg, who.vendor_id, "919876543210", None).await;
    let opt = |out: Option<bool>, reason: Option<&str>| ContactPatch {
        opted_out: out,
        opt_out_reason: reason.map(str::to_owned),
        ..ContactPatch::default()
    };

    // A reason alone is refused while the contact is opted in.
    let err = contacts
        .update_contact(&who, id, opt(None, Some("asked")), &meta())
        .await
        .unwrap_err();
    assert_eq!(
        field_errors(&err),
        [("opt_out_reason".into(), "not_opted_out".into())]
    );

    let out = contacts
        .update_contact(&who, id, opt(Some(true), Some("  replied STOP ")), &meta())
        .await
        .unwrap();
    assert!(out.opted_out);
    let at = out.opted_out_at.expect("opted_out_at is set");
    assert_eq!(out.opt_out_source.as_deref(), Some("API"));
    assert_eq!(out.opt_out_reason.as_deref(), Some("replied STOP"));

    // Opting out again keeps the time and source; a reason may be changed.
    let again = contacts
        .update_contact(&who, id, opt(Some(true), None), &meta())
        .await
        .unwrap();
    assert_eq!(again.opted_out_at, Some(at));
    assert_eq!(again.opt_out_reason.as_deref(), Some("replied STOP"));
    let reason = contacts
        .update_contact(&who, id, opt(None, Some("called us")), &meta())
        .await
        .unwrap();
    assert_eq!(reason.opted_out_at, Some(at));
    assert_eq!(reason.opt_out_reason.as_deref(), Some("called us"));

    let back = contacts
        .update_contact(&who, id, opt(Some(false), None), &meta())
        .await
        .unwrap();
    assert!(!back.opted_out);
    assert_eq!(back.opted_out_at, None);
    assert_eq!(back.opt_out_source, None);
    assert_eq!(back.opt_out_reason, None);
}

#[tokio::test]
async fn changes_leave_audit_rows_with_actor_and_request_id() {
    let (stores, contacts) = setup().await;
    let who = new_vendor(&stores.pg).await;
    let id = insert_contact(&stores.pg, who.vendor_id, "919876543210", Some("Asha")).await;
    let patch_meta = meta();
    contacts
        .update_contact(
            &who,
            id,
            ContactPatch {
                attributes: attributes(json!({ "city": "Pune" })),
                opted_out: Some(true),
                ..ContactPatch::default()
            },
            &patch_meta,
        )
        .await
        .unwrap();
    let actor = format!("user:{}", who.user_id);
    let changes = changes_of(&stores.pg, id).await;
    assert_eq!(changes.len(), 2, "{changes:?}"); // the insert, then the patch
    let update = &changes[1];
    assert_eq!(update["action"], "UPDATE");
    assert_eq!(update["actor"], actor.as_str());
    assert_eq!(
        update["request_id"],
        patch_meta.request_id.as_deref().unwrap()
    );
    assert_eq!(update["import_job_id"], Value::Null);
    assert_eq!(update["before"]["attributes"], json!({ "name": "Asha" }));
    assert_eq!(update["before"]["opted_out"], false);
    assert_eq!(
        update["after"]["attributes"],
        json!({ "name": "Asha", "city": "Pune" })
    );
    assert_eq!(update["after"]["opted_out"], true);
    assert_eq!(update["after"]["opt_out_source"], "API");
    let logged = audit_rows(&stores.pg, "contact.updated").await;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0]["target_id"], id.to_string());
    assert_eq!(
        logged[0]["details"],
        json!({ "fields": ["attributes", "opted_out"] })
    );
    assert_eq!(
        logged[0]["request_id"],
        patch_meta.request_id.as_deref().unwrap()
    );

    // A patch that changes nothing writes nothing.
    contacts
        .update_contact(
            &who,
            id,
            ContactPatch {
                attributes: attributes(json!({ "city": "Pune" })),
                mobile: Some("+919876543210".into()),
                ..ContactPatch::default()
            },
            &meta(),
        )
        .await
        .unwrap();
    contacts
        .update_contact(&who, id, ContactPatch::default(), &meta())
        .await
        .unwrap();
    assert_eq!(changes_of(&stores.pg, id).await.len(), 2);
    assert_eq!(audit_rows(&stores.pg, "contact.updated").await.len(), 1);

    let delete_meta = meta();
    contacts
        .delete_contact(&who, id, &delete_meta)
        .await
        .unwrap();
    let changes = changes_of(&stores.pg, id).await;
    let delete = changes.last().unwrap();
    assert_eq!(delete["action"], "DELETE");
    assert_eq!(delete["actor"], actor.as_str());
    assert_eq!(
        delete["request_id"],
        delete_meta.request_id.as_deref().unwrap()
    );
    assert_eq!(delete["before"]["mobile"], "919876543210");
    assert_eq!(delete["after"], Value::Null);
    assert_eq!(audit_rows(&stores.pg, "contact.deleted").await.len(), 1);
}

#[tokio::test]
async fn a_deleted_contact_is_gone() {
    let (stores, contacts) = setup().await;
    let who = new_vendor(&stores.pg).await;
    let id = insert_contact(&stores.pg, who.vendor_id, "919876543210", None).await;
    contacts.delete_contact(&who, id, &meta()).await.unwrap();
    let err = contacts.get_contact(&who, id).await.unwrap_err();
    assert!(matches!(err, ContactsError::NotFound("contact")));
    let err = contacts
        .delete_contact(&who, id, &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, ContactsError::NotFound("contact")));
    let err = contacts
        .update_contact(&who, id, ContactPatch::default(), &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, ContactsError::NotFound("contact")));
}

#[tokio::test]
async fn another_vendors_contacts_are_not_found_and_never_listed() {
    let (stores, contacts) = setup().await;
    let a = new_vendor(&stores.pg).await;
    let b = new_vendor(&stores.pg).await;
    insert_contact(&stores.pg, a.vendor_id, "919800000001", Some("Asha A")).await;
    let theirs = insert_contact(&stores.pg, b.vendor_id, "919800000002", Some("Asha B")).await;
    insert_contacts(&stores.pg, b.vendor_id, 0, 30).await;

    let missing = Uuid::new_v4();
    for id in [theirs, missing] {
        let err = contacts.get_contact(&a, id).await.unwrap_err();
        assert!(matches!(err, ContactsError::NotFound("contact")), "{err:?}");
        let err = contacts
            .update_contact(
                &a,
                id,
                ContactPatch {
                    attributes: attributes(json!({ "name": "Taken over" })),
                    opted_out: Some(true),
                    ..ContactPatch::default()
                },
                &meta(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ContactsError::NotFound("contact")), "{err:?}");
        let err = contacts.delete_contact(&a, id, &meta()).await.unwrap_err();
        assert!(matches!(err, ContactsError::NotFound("contact")), "{err:?}");
    }
    let still = contacts.get_contact(&b, theirs).await.unwrap();
    assert_eq!(still.name.as_deref(), Some("Asha B"));
    assert!(!still.opted_out);
    assert_eq!(
        changes_of(&stores.pg, theirs).await.len(),
        1,
        "only its insert"
    );

    for search in [
        filter(),
        ContactFilter {
            name_prefix: Some("asha".into()),
            ..filter()
        },
        ContactFilter {
            mobile_prefix: Some("91".into()),
            ..filter()
        },
        ContactFilter {
            opted_out: Some(false),
            ..filter()
        },
    ] {
        let seen = walk(&contacts, &a, search.clone(), 7).await;
        assert_eq!(
            seen.iter().map(|c| c.mobile.as_str()).collect::<Vec<_>>(),
            ["919800000001"],
            "{search:?}"
        );
    }
    // B's cursor only positions A's own rows.
    let b_page = contacts
        .list_contacts(
            &b,
            ContactFilter {
                limit: Some(1),
                ..filter()
            },
        )
        .await
        .unwrap();
    let a_page = contacts
        .list_contacts(
            &a,
            ContactFilter {
                cursor: b_page.next_cursor,
                ..filter()
            },
        )
        .await
        .unwrap();
    assert!(a_page.data.iter().all(|c| c.mobile == "919800000001"));
}

#[tokio::test]
async fn staff_may_change_contacts() {
    let (stores, contacts) = setup().await;
    let admin = new_vendor(&stores.pg).await;
    let staff = new_user(&stores.pg, admin.vendor_id, Role::Staff).await;
    let id = insert_contact(&stores.pg, admin.vendor_id, "919876543210", None).await;
    let updated = contacts
        .update_contact(
            &staff,
            id,
            ContactPatch {
                attributes: attributes(json!({ "name": "Ravi" })),
                ..ContactPatch::default()
            },
            &meta(),
        )
        .await
        .unwrap();
    assert_eq!(updated.name.as_deref(), Some("Ravi"));
    let changes = changes_of(&stores.pg, id).await;
    assert_eq!(changes[1]["actor"], format!("user:{}", staff.user_id));
    contacts.delete_contact(&staff, id, &meta()).await.unwrap();
}

#[tokio::test]
async fn a_disabled_user_is_refused() {
    let (stores, contacts) = setup().await;
    let admin = new_vendor(&stores.pg).await;
    let staff = new_user(&stores.pg, admin.vendor_id, Role::Staff).await;
    sqlx::query("UPDATE users SET status = 'DISABLED', disabled_at = now() WHERE id = $1")
        .bind(staff.user_id.as_uuid())
        .execute(&stores.pg)
        .await
        .unwrap();
    let err = contacts.list_contacts(&staff, filter()).await.unwrap_err();
    assert!(matches!(err, ContactsError::SessionRevoked), "{err:?}");
}
