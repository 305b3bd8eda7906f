//! Contact lists: create, read, page, delete; members and their count; tenancy.

use std::collections::BTreeSet;

use kloyst_contacts::model::{ContactFilter, ListMembersInput, NewContactList, PageRequest};
use kloyst_contacts::ContactsError;
use kloyst_core::DomainError;
use kloyst_identity::{Principal, Role};
use uuid::Uuid;

use crate::helpers::*;

fn new_list(name: &str) -> NewContactList {
    NewContactList {
        name: name.to_owned(),
        description: None,
    }
}

fn ids(contact_ids: &[Uuid]) -> ListMembersInput {
    ListMembersInput {
        contact_ids: contact_ids.to_vec(),
    }
}

async fn member_count(contacts: &kloyst_contacts::Contacts, who: &Principal, list: Uuid) -> i32 {
    contacts.get_list(who, list).await.unwrap().member_count
}

async fn memberships(pg: &sqlx::PgPool, list: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM contact_list_members WHERE list_id = $1")
        .bind(list)
        .fetch_one(pg)
        .await
        .unwrap()
}

#[tokio::test]
async fn lists_are_created_read_and_deleted() {
    let (stores, contacts) = setup().await;
    let who = new_vendor(&stores.pg).await;
    let created = contacts
        .create_list(
            &who,
            NewContactList {
                name: "  Diwali 2026 ".into(),
                description: Some("  festive offers ".into()),
            },
            &meta(),
        )
        .await
        .unwrap();
    assert_eq!(created.name, "Diwali 2026");
    assert_eq!(created.description.as_deref(), Some("festive offers"));
    assert_eq!(created.member_count, 0);
    assert_eq!(created.created_by, Some(who.user_id.as_uuid()));

    let read = contacts.get_list(&who, created.id).await.unwrap();
    assert_eq!(read.id, created.id);
    assert_eq!(read.name, "Diwali 2026");
    let blank = contacts
        .create_list(
            &who,
            NewContactList {
                name: "No description".into(),
                description: Some("   ".into()),
            },
            &meta(),
        )
        .await
        .unwrap();
    assert_eq!(blank.description, None);

    contacts
        .delete_list(&who, created.id, &meta())
        .await
        .unwrap();
    let err = contacts.get_list(&who, created.id).await.unwrap_err();
    assert!(matches!(err, ContactsError::NotFound("contact list")));
    let err = contacts
        .delete_list(&who, created.id, &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, ContactsError::NotFound("contact list")));
    assert_eq!(
        audit_rows(&stores.pg, "contact_list.created").await.len(),
        2
    );
    assert_eq!(
        audit_rows(&stores.pg, "contact_list.deleted").await.len(),
        1
    );
}

#[tokio::test]
async fn list_names_are_checked_and_unique_per_vendor() {
    let (stores, contacts) = setup().await;
    let who = new_vendor(&stores.pg).await;
    contacts
        .create_list(&who, new_list("VIP"), &meta())
        .await
        .unwrap();
    let err = contacts
        .create_list(&who, new_list(" VIP "), &meta())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ContactsError::Conflict {
                code: "list_name_taken",
                ..
            }
        ),
        "{err:?}"
    );
    // Another vendor may use the name.
    let other = new_vendor(&stores.pg).await;
    contacts
        .create_list(&other, new_list("VIP"), &meta())
        .await
        .unwrap();

    let invalid = |input: NewContactList| {
        let contacts = contacts.clone();
        let who = who.clone();
        async move {
            let err = contacts
                .create_list(&who, input, &meta())
                .await
                .unwrap_err();
            assert!(matches!(err, ContactsError::Invalid(_)), "{err:?}");
            err.field_errors()
                .into_iter()
                .map(|e| (e.field, e.code))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        invalid(new_list("   ")).await,
        [("name".to_owned(), "required".to_owned())]
    );
    assert_eq!(
        invalid(new_list(&"n".repeat(201))).await,
        [("name".to_owned(), "too_long".to_owned())]
    );
    assert_eq!(
        invalid(NewContactList {
            name: "Fine".into(),
            description: Some("d".repeat(2_001)),
        })
        .await,
        [("description".to_owned(), "too_long".to_owned())]
    );
    contacts
        .create_list(&who, new_list(&"n".repeat(200)), &meta())
        .await
        .unwrap();
}

#[tokio::test]
async fn lists_page_newest_first() {
    let (stores, contacts) = setup().await;
    let who = new_vendor(&stores.pg).await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(
            contacts
                .create_list(&who, new_list(&format!("List {i}")), &meta())
                .await
                .unwrap()
                .id,
        );
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = contacts
            .list_lists(
                &who,
                PageRequest {
                    limit: Some(2),
                    cursor: cursor.take(),
                },
            )
            .await
            .unwrap();
        assert!(page.data.len() <= 2);
        seen.extend(page.data);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut expected = seen.clone();
    expected.sort_by_key(|l| std::cmp::Reverse((l.created_at, l.id)));
    assert_eq!(
        seen.iter().map(|l| l.id).collect::<Vec<_>>(),
        expected.iter().map(|l| l.id).collect::<Vec<_>>()
    );
    assert_eq!(
        seen.iter().map(|l| l.id).collect::<BTreeSet<_>>(),
        created.into_iter().collect::<BTreeSet<_>>()
    );

    // A contact cursor is not a list cursor.
    let contact_cursor = {
        insert_contacts(&stores.pg, who.vendor_id, 0, 2).await;
        contacts
            .list_contacts(
                &who,
                ContactFilter {
                    limit: Some(1),
                    ..ContactFilter::default()
                },
            )
            .await
            .unwrap()
            .next_cursor
            .unwrap()
    };
    for bad in [contact_cursor.as_str(), "nonsense"] {
        let err = contacts
            .list_lists(
                &who,
                PageRequest {
                    limit: None,
                    cursor: Some(bad.to_owned()),
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.field_errors()[0].code, "invalid_cursor");
    }
}

#[tokio::test]
async fn members_are_added_once_removed_and_counted() {
    let (stores, contacts) = setup().await;
    let who = new_vendor(&stores.pg).await;
    let c = insert_contacts(&stores.pg, who.vendor_id, 0, 4).await;
    let list = contacts
        .create_list(&who, new_list("VIP"), &meta())
        .await
        .unwrap()
        .id;

    let added = contacts
        .add_list_members(&who, list, ids(&[c[0], c[1], c[0]]), &meta())
        .await
        .unwrap();
    assert_eq!(added.added, 2, "a repeated id counts once");
    assert_eq!(member_count(&contacts, &who, list).await, 2);
    let added = contacts
        .add_list_members(&who, list, ids(&[c[1], c[2]]), &meta())
        .await
        .unwrap();
    assert_eq!(added.added, 1, "a member is not added twice");
    assert_eq!(member_count(&contacts, &who, list).await, 3);

    let removed = contacts
        .remove_list_members(&who, list, ids(&[c[0], c[3], Uuid::new_v4()]), &meta())
        .await
        .unwrap();
    assert_eq!(removed.removed, 1, "only members are counted");
    assert_eq!(member_count(&contacts, &who, list).await, 2);
    let removed = contacts
        .remove_list_members(&who, list, ids(&[c[0]]), &meta())
        .await
        .unwrap();
    assert_eq!(removed.removed, 0);

    // Deleting a contact takes it out of its lists.
    contacts.delete_contact(&who, c[1], &meta()).await.unwrap();
    assert_eq!(member_count(&contacts, &who, list).await, 1);
    assert_eq!(memberships(&stores.pg, list).await, 1);

    // Deleting the list removes its memberships, not the contacts.
    contacts.delete_list(&who, list, &meta()).await.unwrap();
    assert_eq!(memberships(&stores.pg, list).await, 0);
    assert!(contacts.get_contact(&who, c[2]).await.is_ok());

    assert_eq!(
        audit_rows(&stores.pg, "contact_list.members_added")
            .await
            .len(),
        2
    );
    assert_eq!(
        audit_rows(&stores.pg, "contact_list.members_removed")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn adding_an_unknown_contact_adds_nothing_and_names_it() {
    let (stores, contacts) = setup().await;
    let who = new_vendor(&stores.pg).await;
    let c = insert_contacts(&stores.pg, who.vendor_id, 0, 2).await;
    let list = contacts
        .create_list(&who, new_list("VIP"), &meta())
        .await
        .unwrap()
        .id;
    let missing = Uuid::new_v4();
    let err = contacts
        .add_list_members(&who, list, ids(&[c[0], missing, c[1]]), &meta())
        .await
        .unwrap_err();
    let errors = err.field_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "contact_ids[1]");
    assert_eq!(errors[0].code, "unknown_contact");
    assert_eq!(member_count(&contacts, &who, list).await, 0);
    assert_eq!(memberships(&stores.pg, list).await, 0);

    for bad in [Vec::new(), vec![c[0]; 1_001]] {
        let err = contacts
            .add_list_members(&who, list, ids(&bad), &meta())
            .await
            .unwrap_err();
        assert_eq!(err.field_errors()[0].field, "contact_ids");
        let err = contacts
            .remove_list_members(&who, list, ids(&bad), &meta())
            .await
            .unwrap_err();
        assert_eq!(err.field_errors()[0].field, "contact_ids");
    }
    // 1,000 ids are fine.
    let many = insert_contacts(&stores.pg, who.vendor_id, 100, 1_000).await;
    let added = contacts
        .add_list_members(&who, list, ids(&many), &meta())
        .await
        .unwrap();
    assert_eq!(added.added, 1_000);
    assert_eq!(member_count(&contacts, &who, list).await, 1_000);
    let err = contacts
        .add_list_members(&who, Uuid::new_v4(), ids(&c), &meta())
        .await
        .unwrap_err();
    assert!(matches!(err, ContactsError::NotFound("contact list")));
}

#[tokio::test]
async fn another_vendors_lists_and_contacts_are_out_of_reach() {
    let (stores, contacts) = setup().await;
    let a = new_vendor(&stores.pg).await;
    let b = new_vendor(&stores.pg).await;
    let a_contact = insert_contacts(&stores.pg, a.vendor_id, 0, 1).await[0];
    let b_contact = insert_contacts(&stores.pg, b.vendor_id, 0, 1).await[0];
    let a_list = contacts
        .create_list(&a, new_list("A's"), &meta())
        .await
        .unwrap()
        .id;
    let b_list = contacts
        .create_list(&b, new_list("B's"), &meta())
        .await
        .unwrap()
        .id;
    contacts
        .add_list_members(&b, b_list, ids(&[b_contact]), &meta())
        .await
        .unwrap();

    // B's contact cannot join A's list: refused like a missing one, nothing added.
    let err = contacts
        .add_list_members(&a, a_list, ids(&[a_contact, b_contact]), &meta())
        .await
        .unwrap_err();
    assert_eq!(err.field_errors()[0].field, "contact_ids[1]");
    assert_eq!(err.field_errors()[0].code, "unknown_contact");
    assert_eq!(memberships(&stores.pg, a_list).await, 0);

    // B's list is not found for A, whatever A does with it.
    let not_found = |err: ContactsError| {
        assert!(
            matches!(err, ContactsError::NotFound("contact list")),
            "{err:?}"
        );
    };
    not_found(contacts.get_list(&a, b_list).await.unwrap_err());
    not_found(
        contacts
            .add_list_members(&a, b_list, ids(&[a_contact]), &meta())
            .await
            .unwrap_err(),
    );
    not_found(
        contacts
            .remove_list_members(&a, b_list, ids(&[b_contact]), &meta())
            .await
            .unwrap_err(),
    );
    not_found(
        contacts
            .list_contacts(
                &a,
                ContactFilter {
                    list_id: Some(b_list),
                    ..ContactFilter::default()
                },
            )
            .await
            .unwrap_err(),
    );
    not_found(contacts.delete_list(&a, b_list, &meta()).await.unwrap_err());
    let b_view = contacts.get_list(&b, b_list).await.unwrap();
    assert_eq!(b_view.member_count, 1);
    assert_eq!(memberships(&stores.pg, b_list).await, 1);

    let a_lists = contacts
        .list_lists(&a, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        a_lists.data.iter().map(|l| l.id).collect::<Vec<_>>(),
        [a_list]
    );
}

#[tokio::test]
async fn staff_may_manage_lists() {
    let (stores, contacts) = setup().await;
    let admin = new_vendor(&stores.pg).await;
    let staff = new_user(&stores.pg, admin.vendor_id, Role::Staff).await;
    let c = insert_contacts(&stores.pg, admin.vendor_id, 0, 2).await;
    let list = contacts
        .create_list(&staff, new_list("Staff's"), &meta())
        .await
        .unwrap();
    assert_eq!(list.created_by, Some(staff.user_id.as_uuid()));
    contacts
        .add_list_members(&staff, list.id, ids(&c), &meta())
        .await
        .unwrap();
    contacts
        .remove_list_members(&staff, list.id, ids(&c[..1]), &meta())
        .await
        .unwrap();
    contacts
        .delete_list(&staff, list.id, &meta())
        .await
        .unwrap();
}
