//! The fold against every order, grouping and duplication of Meta's four statuses.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use chrono::{DateTime, TimeZone, Utc};

use super::*;

const T0: i64 = 1_750_030_073;

fn at(offset: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(T0 + offset, 0).unwrap()
}

fn marketing_regular() -> PricingFacts {
    PricingFacts::from_meta(
        Some("PMP"),
        Some("marketing"),
        Some("regular"),
        Some(true),
        None,
    )
    .unwrap()
}

fn event(kind: EventKind, pricing: Option<PricingFacts>) -> StatusEvent {
    let offset = match kind {
        EventKind::Sent => 0,
        EventKind::Delivered => 2,
        EventKind::Read => 30,
        EventKind::Failed => 5,
        EventKind::Other(_) => 60,
    };
    let error = (kind == EventKind::Failed).then(|| ErrorFacts {
        code: Some(131_049),
        title: Some("not delivered".to_owned()),
        message: Some("not delivered".to_owned()),
        details: Some(serde_json::json!({ "details": "ecosystem" })),
    });
    StatusEvent {
        kind,
        at: at(offset),
        pricing,
        error,
    }
}

/// The four statuses, each with the same PMP marketing pricing (as pre-v24 webhooks carry it).
fn four(pricing: impl Fn(&EventKind) -> Option<PricingFacts>) -> Vec<StatusEvent> {
    [
        EventKind::Sent,
        EventKind::Delivered,
        EventKind::Read,
        EventKind::Failed,
    ]
    .into_iter()
    .map(|kind| {
        let p = pricing(&kind);
        event(kind, p)
    })
    .collect()
}

fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut tail in permutations(&rest) {
            tail.insert(0, first.clone());
            out.push(tail);
        }
    }
    out
}

fn subsets<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    (1..(1u32 << items.len()))
        .map(|mask| {
            items
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, item)| item.clone())
                .collect()
        })
        .collect()
}

/// Applies `chunks` one fold each, charging when told; returns the state and the charges.
fn run(chunks: &[Vec<StatusEvent>]) -> (MessageState, u32) {
    let mut state = MessageState::pending(Some("MARKETING".to_owned()));
    let mut charges = 0;
    for chunk in chunks {
        let folded = state.fold(chunk);
        if folded.charge.is_some() {
            charges += 1;
            state.mark_charged();
        }
    }
    (state, charges)
}

/// Every way the sequence can arrive: one at a time, all at once, in pairs, and each of
/// those with every status delivered twice.
fn arrivals(sequence: &[StatusEvent]) -> Vec<Vec<Vec<StatusEvent>>> {
    let doubled: Vec<StatusEvent> = sequence.iter().chain(sequence).cloned().collect();
    let mut out = Vec::new();
    for seq in [sequence.to_vec(), doubled] {
        out.push(seq.iter().map(|e| vec![e.clone()]).collect());
        out.push(vec![seq.clone()]);
        out.push(seq.chunks(2).map(<[StatusEvent]>::to_vec).collect());
    }
    out
}

/// Every subset of `events`, in every order and grouping, ends in one state, charged at most
/// once (exactly once when delivered or read is in it and pricing is known).
fn assert_order_independent(events: &[StatusEvent]) -> u32 {
    let mut checked = 0;
    for subset in subsets(events) {
        let mut reference: Option<(MessageState, u32)> = None;
        for order in permutations(&subset) {
            for chunks in arrivals(&order) {
                let outcome = run(&chunks);
                match &reference {
                    None => reference = Some(outcome),
                    Some(expected) => assert_eq!(
                        &outcome,
                        expected,
                        "subset {:?} order {:?}",
                        subset.iter().map(|e| &e.kind).collect::<Vec<_>>(),
                        order.iter().map(|e| &e.kind).collect::<Vec<_>>()
                    ),
                }
                checked += 1;
            }
        }
        let (state, charges) = reference.unwrap();
        let delivered = subset
            .iter()
            .any(|e| matches!(e.kind, EventKind::Delivered | EventKind::Read));
        let priced = subset.iter().any(|e| e.pricing.is_some());
        assert_eq!(charges, u32::from(delivered && priced), "{state:?}");
        assert_eq!(state.delivery_evidence(), delivered);
    }
    checked
}

#[test]
fn every_order_of_every_subset_ends_in_the_same_state_and_charges_once() {
    // Pricing on every status (CBP era), on `sent` only, on `delivered` only (v24: "the object
    // can only appear in one or the other"), and nowhere.
    let all = four(|_| Some(marketing_regular()));
    let on_sent = four(|k| (*k == EventKind::Sent).then(marketing_regular));
    let on_delivered = four(|k| (*k == EventKind::Delivered).then(marketing_regular));
    let none = four(|_| None);
    let mut checked = 0;
    for events in [all, on_sent, on_delivered, none] {
        checked += assert_order_independent(&events);
    }
    // 4 × (subsets of sizes 1..4: 4·1 + 6·2 + 4·6 + 1·24 = 64 orders) × 6 arrivals
    assert_eq!(checked, 4 * 64 * 6);
}

#[test]
fn with_a_free_and_a_billable_object_the_billable_one_wins_in_any_order() {
    let free = PricingFacts::from_meta(
        Some("PMP"),
        Some("utility"),
        Some("free_customer_service"),
        Some(false),
        None,
    )
    .unwrap();
    let events = vec![
        event(EventKind::Sent, Some(free)),
        event(EventKind::Delivered, Some(marketing_regular())),
    ];
    for order in permutations(&events) {
        // all at once: the billable object is chosen
        let (state, charges) = run(std::slice::from_ref(&order));
        assert_eq!(state.pricing, Some(marketing_regular()));
        assert_eq!(state.pricing_status, Some(Status::Delivered));
        assert_eq!(charges, 1);
    }
}

#[test]
fn the_final_states_are_the_expected_ones() {
    let all = four(|_| Some(marketing_regular()));
    let pick = |kinds: &[EventKind]| -> Vec<StatusEvent> {
        all.iter()
            .filter(|e| kinds.contains(&e.kind))
            .cloned()
            .collect()
    };

    // sent → read without delivered: READ, counts as delivered, delivered_at stays NULL
    let (state, charges) = run(&[pick(&[EventKind::Read, EventKind::Sent])]);
    assert_eq!(state.status, Status::Read);
    assert_eq!(state.status_at, Some(at(30)));
    assert_eq!((state.sent_at, state.delivered_at), (Some(at(0)), None));
    assert!(state.delivery_evidence());
    assert_eq!(charges, 1);

    // failed alone (or after sent): FAILED with the error, never charged
    let (state, charges) = run(&[pick(&[EventKind::Failed]), pick(&[EventKind::Sent])]);
    assert_eq!(state.status, Status::Failed);
    assert_eq!(state.status_at, Some(at(5)));
    assert_eq!(state.error.code, Some(131_049));
    assert!(state.flags.is_empty());
    assert_eq!(charges, 0);

    // delivered and failed, failed first: follows the delivery, flagged, error kept
    let (state, charges) = run(&[pick(&[EventKind::Failed]), pick(&[EventKind::Delivered])]);
    assert_eq!(state.status, Status::Delivered);
    assert_eq!(state.status_at, Some(at(2)));
    assert_eq!(state.failed_at, Some(at(5)));
    assert_eq!(state.error.code, Some(131_049));
    assert_eq!(state.flags, vec![DELIVERY_AND_FAILED.to_owned()]);
    assert_eq!(charges, 1);

    // forward only: a late sent does not move a read message back
    let (state, _) = run(&[pick(&[EventKind::Read]), pick(&[EventKind::Sent])]);
    assert_eq!(
        (state.status, state.status_at),
        (Status::Read, Some(at(30)))
    );
}

#[test]
fn duplicates_keep_the_earliest_timestamp_and_change_nothing_the_second_time() {
    let mut state = MessageState::pending(None);
    let first = event(EventKind::Delivered, None);
    let mut later = first.clone();
    later.at = at(100);
    assert!(state.fold([&later]).changed);
    assert!(state.fold([&first]).changed);
    assert_eq!(state.delivered_at, Some(at(2)));
    let folded = state.fold([&first, &later]);
    assert!(!folded.changed);
}

#[test]
fn unknown_statuses_are_applied_without_changing_anything() {
    let mut state = MessageState::pending(None);
    state.fold([&event(EventKind::Sent, None)]);
    let before = state.clone();
    let played = event(
        EventKind::Other("PLAYED".to_owned()),
        Some(marketing_regular()),
    );
    let folded = state.fold([&played]);
    assert_eq!(
        folded,
        Folded {
            changed: false,
            charge: None
        }
    );
    assert_eq!(state, before);
}

#[test]
fn billability_free_and_billable_objects() {
    let facts = |model, kind, billable| {
        PricingFacts::from_meta(model, Some("utility"), kind, billable, None).map(|p| p.billable)
    };
    // billable wins when present
    assert_eq!(facts(Some("PMP"), Some("regular"), Some(true)), Some(true));
    assert_eq!(
        facts(Some("PMP"), Some("free_entry_point"), Some(false)),
        Some(false)
    );
    // absent: PMP's type decides
    assert_eq!(facts(Some("PMP"), Some("regular"), None), Some(true));
    assert_eq!(
        facts(Some("PMP"), Some("free_customer_service"), None),
        Some(false)
    );
    assert_eq!(
        facts(Some("PMP"), Some("free_entry_point"), None),
        Some(false)
    );
    // nothing to tell from: no facts
    assert_eq!(facts(Some("PMP"), None, None), None);
    assert_eq!(facts(Some("CBP"), Some("regular"), None), None);
    // values the columns would refuse are dropped, not stored
    let odd = PricingFacts::from_meta(
        Some("XYZ"),
        Some("market ing!"),
        Some("Regular"),
        Some(true),
        None,
    )
    .unwrap();
    assert_eq!(
        (odd.model, odd.category, odd.kind.as_deref()),
        (None, None, Some("regular"))
    );
    // Meta's two spellings of authentication-international
    let intl = PricingFacts::from_meta(
        Some("PMP"),
        Some("authentication-international"),
        None,
        Some(true),
        None,
    )
    .unwrap();
    assert_eq!(
        intl.category.as_deref(),
        Some("AUTHENTICATION_INTERNATIONAL")
    );
}

#[test]
fn a_free_message_is_recorded_free_and_a_cbp_one_is_billable() {
    let free = PricingFacts::from_meta(
        Some("PMP"),
        Some("utility"),
        Some("free_customer_service"),
        Some(false),
        None,
    );
    let mut state = MessageState::pending(Some("UTILITY".to_owned()));
    let folded = state.fold([&event(EventKind::Delivered, free)]);
    assert_eq!(folded.charge, Some(Charge::Free));
    assert!(state.flags.is_empty());

    // a CBP-era pair: pricing on both, billable, a conversation
    let cbp = PricingFacts::from_meta(
        Some("CBP"),
        Some("utility"),
        None,
        Some(true),
        Some("f5fdae3920125a39a1e6a23e5f877c16"),
    );
    let mut state = MessageState::pending(Some("UTILITY".to_owned()));
    assert_eq!(
        state.fold([&event(EventKind::Sent, cbp.clone())]).charge,
        None
    );
    let folded = state.fold([&event(EventKind::Delivered, cbp)]);
    assert_eq!(folded.charge, Some(Charge::Billable));
    let pricing = state.pricing.unwrap();
    assert_eq!(pricing.model.as_deref(), Some("CBP"));
    assert_eq!(
        pricing.conversation_id.as_deref(),
        Some("f5fdae3920125a39a1e6a23e5f877c16")
    );
    assert_eq!(state.pricing_status, Some(Status::Sent));
}

#[test]
fn a_category_meta_reports_differently_is_flagged() {
    let utility =
        PricingFacts::from_meta(Some("PMP"), Some("UTILITY"), Some("regular"), None, None);
    let mut state = MessageState::pending(Some("MARKETING".to_owned()));
    let folded = state.fold([&event(EventKind::Delivered, utility)]);
    assert_eq!(folded.charge, Some(Charge::Billable));
    assert_eq!(state.flags, vec![CATEGORY_DIFFERS.to_owned()]);
    assert_eq!(
        state.pricing.unwrap().category.as_deref(),
        Some("UTILITY"),
        "Meta's category is what is priced"
    );
}

#[test]
fn refused_or_unpriced_messages_are_not_chargeable_again() {
    for flag in [UNPRICED, CHARGE_REFUSED] {
        let mut state = MessageState::pending(None);
        state.fold([&event(EventKind::Delivered, Some(marketing_regular()))]);
        assert_eq!(state.chargeable(), Some(Charge::Billable));
        state.add_flag(flag);
        let folded = state.fold([&event(EventKind::Read, None)]);
        assert_eq!(folded.charge, None);
    }
}
