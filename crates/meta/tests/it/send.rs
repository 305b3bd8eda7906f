//! `send` against the simulator: one test per error class Meta can answer with.

use std::time::Duration;

use kloyst_meta::{ErrorClass, MessageContent, MetaError, OutgoingMessage};
use meta_sim::Behaviour;

use crate::helpers::{client_for, template_to, Sim, PHONE_NUMBER_ID, TEMPLATE};

const RECIPIENT: &str = "919812345678";

#[tokio::test]
async fn an_approved_template_is_accepted_with_a_wamid() {
    let sim = Sim::with_template(Behaviour::default()).await;
    let accepted = sim
        .client()
        .send(
            PHONE_NUMBER_ID,
            &template_to(RECIPIENT, TEMPLATE, &["Asha", "A-1"]),
        )
        .await
        .unwrap();
    assert!(accepted.wamid.starts_with("wamid."), "{}", accepted.wamid);
    assert_eq!(accepted.wa_id.as_deref(), Some(RECIPIENT));
    assert_eq!(accepted.raw["messages"][0]["id"], accepted.wamid.as_str());
}

#[tokio::test]
async fn two_sends_get_two_wamids_over_one_client() {
    let sim = Sim::with_template(Behaviour::default()).await;
    let client = sim.client();
    let clone = client.clone();
    let first = client
        .send(PHONE_NUMBER_ID, &template_to(RECIPIENT, TEMPLATE, &[]))
        .await
        .unwrap();
    let second = clone
        .send(PHONE_NUMBER_ID, &template_to("447700900123", TEMPLATE, &[]))
        .await
        .unwrap();
    assert_ne!(first.wamid, second.wamid);
}

#[tokio::test]
async fn over_the_throughput_cap_is_130429_retry_later() {
    let sim = Sim::with_template(Behaviour {
        rate_per_second: 1,
        ..Behaviour::default()
    })
    .await;
    let client = sim.client();
    let message = template_to(RECIPIENT, TEMPLATE, &[]);
    client.send(PHONE_NUMBER_ID, &message).await.unwrap();
    let error = client
        .send(PHONE_NUMBER_ID, &template_to("447700900123", TEMPLATE, &[]))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(130429), "{error:?}");
    assert_eq!(
        error.class(),
        ErrorClass::RetryLater(Duration::from_secs(1))
    );
}

#[tokio::test]
async fn the_same_recipient_too_soon_is_131056_retry_later() {
    let sim = Sim::with_template(Behaviour {
        pair_limit_seconds: 6.0,
        ..Behaviour::default()
    })
    .await;
    let client = sim.client();
    let message = template_to(RECIPIENT, TEMPLATE, &[]);
    client.send(PHONE_NUMBER_ID, &message).await.unwrap();
    let error = client.send(PHONE_NUMBER_ID, &message).await.unwrap_err();
    assert_eq!(error.code(), Some(131056), "{error:?}");
    assert_eq!(
        error.class(),
        ErrorClass::RetryLater(Duration::from_secs(6))
    );
}

#[tokio::test]
async fn a_meta_outage_is_transient() {
    let sim = Sim::with_template(Behaviour {
        transient_error_rate: 1.0,
        ..Behaviour::default()
    })
    .await;
    let error = sim
        .client()
        .send(PHONE_NUMBER_ID, &template_to(RECIPIENT, TEMPLATE, &[]))
        .await
        .unwrap_err();
    match &error {
        MetaError::Api {
            http_status, code, ..
        } => {
            assert!(*http_status >= 500, "{error:?}");
            assert!(matches!(code, 1 | 2), "{error:?}");
        }
        other => panic!("expected Meta's envelope, got {other:?}"),
    }
    assert_eq!(error.class(), ErrorClass::Transient);
}

#[tokio::test]
async fn an_unknown_template_is_132001_permanent() {
    let sim = Sim::with_template(Behaviour::default()).await;
    let error = sim
        .client()
        .send(
            PHONE_NUMBER_ID,
            &template_to(RECIPIENT, "no_such_template", &[]),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(132001), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Permanent);
    let MetaError::Api {
        details,
        fbtrace_id,
        ..
    } = &error
    else {
        panic!("expected Meta's envelope, got {error:?}");
    };
    assert!(details
        .as_deref()
        .is_some_and(|d| d.contains("no_such_template")));
    assert!(fbtrace_id.as_deref().is_some_and(|t| !t.is_empty()));
}

#[tokio::test]
async fn an_invalid_recipient_is_100_permanent() {
    let sim = Sim::with_template(Behaviour::default()).await;
    let message = OutgoingMessage {
        to: "not-a-number".to_owned(),
        content: MessageContent::Text {
            body: "hello".to_owned(),
            preview_url: false,
        },
        biz_opaque_callback_data: None,
    };
    let error = sim
        .client()
        .send(PHONE_NUMBER_ID, &message)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(100), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Permanent);
}

#[tokio::test]
async fn a_wrong_token_is_190_account_fatal_and_never_echoed() {
    let sim = Sim::with_template(Behaviour::default()).await;
    let client = client_for(sim.base.clone(), "wrong-token-xyz", Duration::from_secs(5));
    let error = client
        .send(PHONE_NUMBER_ID, &template_to(RECIPIENT, TEMPLATE, &[]))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(190), "{error:?}");
    assert_eq!(error.class(), ErrorClass::AccountFatal);
    assert!(!format!("{error:?} {error}").contains("wrong-token-xyz"));
}
