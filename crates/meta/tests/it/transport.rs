//! Failures before or around Meta's answer: timeouts, refused connections, and answers that
//! are not Meta's shape.

use std::time::{Duration, Instant};

use kloyst_meta::{ErrorClass, MetaError};
use tokio::net::TcpListener;
use url::Url;

use crate::helpers::{canned_server, client_for, template_to, PHONE_NUMBER_ID, TEMPLATE, TOKEN};

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    // Accepts and holds connections without ever answering.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let client = client_for(base, TOKEN, Duration::from_millis(300));
    let started = Instant::now();
    let error = client
        .send(PHONE_NUMBER_ID, &template_to("919812345678", TEMPLATE, &[]))
        .await
        .unwrap_err();
    assert!(matches!(error, MetaError::Timeout), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Transient);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    holder.abort();
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let error = client_for(base, TOKEN, Duration::from_secs(2))
        .send(PHONE_NUMBER_ID, &template_to("919812345678", TEMPLATE, &[]))
        .await
        .unwrap_err();
    assert!(matches!(error, MetaError::Connect(_)), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Transient);
    assert!(!format!("{error:?}").contains(TOKEN));
}

#[tokio::test]
async fn a_proxy_error_page_is_http_with_an_excerpt() {
    let (base, server) = canned_server(502, &[], "<html>Bad Gateway</html>").await;
    let error = client_for(base, TOKEN, Duration::from_secs(2))
        .send(PHONE_NUMBER_ID, &template_to("919812345678", TEMPLATE, &[]))
        .await
        .unwrap_err();
    match &error {
        MetaError::Http {
            http_status,
            body_excerpt,
        } => {
            assert_eq!(*http_status, 502);
            assert_eq!(body_excerpt, "<html>Bad Gateway</html>");
        }
        other => panic!("expected Http, got {other:?}"),
    }
    assert_eq!(error.class(), ErrorClass::Transient);
    server.abort();
}

#[tokio::test]
async fn retry_after_from_meta_sets_the_delay() {
    let (base, server) = canned_server(
        429,
        &[("retry-after", "3")],
        r#"{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"fbtrace_id":"Az"}}"#,
    )
    .await;
    let error = client_for(base, TOKEN, Duration::from_secs(2))
        .send(PHONE_NUMBER_ID, &template_to("919812345678", TEMPLATE, &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(error, MetaError::Api { retry_after: Some(d), .. } if d == Duration::from_secs(3)),
        "{error:?}"
    );
    assert_eq!(
        error.class(),
        ErrorClass::RetryLater(Duration::from_secs(3))
    );
    server.abort();
}

#[tokio::test]
async fn a_2xx_without_a_message_id_is_a_decode_error() {
    let (base, server) = canned_server(
        200,
        &[],
        r#"{"messaging_product":"whatsapp","messages":[]}"#,
    )
    .await;
    let error = client_for(base, TOKEN, Duration::from_secs(2))
        .send(PHONE_NUMBER_ID, &template_to("919812345678", TEMPLATE, &[]))
        .await
        .unwrap_err();
    assert!(matches!(error, MetaError::Decode(_)), "{error:?}");
    assert_eq!(error.class(), ErrorClass::Permanent);
    server.abort();
}
