//! `create_template` against the simulator.

use kloyst_meta::{ErrorClass, NewTemplate};
use meta_sim::Behaviour;
use serde_json::json;

use crate::helpers::{Sim, WABA_ID};

fn order_confirmation() -> NewTemplate {
    NewTemplate {
        name: "order_confirmation".to_owned(),
        language: "en_US".to_owned(),
        category: "utility".to_owned(),
        components: json!([{
            "type": "body",
            "text": "Hi {{1}}! Your order number is {{2}}. Thank you.",
            "example": { "body_text": [ [ "Pablo", "860198-230332" ] ] }
        }]),
        parameter_format: Some("positional".to_owned()),
    }
}

#[tokio::test]
async fn a_new_template_is_pending_with_an_id() {
    let sim = Sim::start(Behaviour::default()).await;
    let created = sim
        .client()
        .create_template(WABA_ID, &order_confirmation())
        .await
        .unwrap();
    assert!(!created.id.is_empty());
    assert!(
        created.id.chars().all(|c| c.is_ascii_digit()),
        "{}",
        created.id
    );
    assert_eq!(created.status, "PENDING");
    assert_eq!(created.category.as_deref(), Some("UTILITY"));
}

#[tokio::test]
async fn the_same_name_and_language_twice_is_permanent() {
    let sim = Sim::start(Behaviour::default()).await;
    let client = sim.client();
    client
        .create_template(WABA_ID, &order_confirmation())
        .await
        .unwrap();
    let error = client
        .create_template(WABA_ID, &order_confirmation())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(100), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Permanent);
}
