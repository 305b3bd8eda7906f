//! `client_ip` over a real socket: forwarding headers count only from a trusted peer.

use std::net::IpAddr;

use axum::extract::Request;
use axum::routing::get;
use axum::Router;
use kloyst_ratelimit::{client_ip, TrustedProxies};

use crate::support::Server;

async fn echo_server(trusted: TrustedProxies) -> Server {
    let router = Router::new().route(
        "/ip",
        get(move |request: Request| {
            let trusted = trusted.clone();
            async move {
                let (parts, _) = request.into_parts();
                client_ip(&parts, &trusted).map_or_else(|| "none".to_owned(), |ip| ip.to_string())
            }
        }),
    );
    Server::start(router).await
}

async fn ip_seen(server: &Server, headers: &[(&str, &str)]) -> String {
    let mut request = server.get("/ip");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn a_trusted_proxy_is_believed() {
    let server = echo_server(TrustedProxies::loopback()).await;
    assert_eq!(ip_seen(&server, &[]).await, "127.0.0.1");
    assert_eq!(
        ip_seen(&server, &[("x-forwarded-for", "6.6.6.6, 203.0.113.7")]).await,
        "203.0.113.7"
    );
    assert_eq!(
        ip_seen(&server, &[("x-real-ip", "203.0.113.8")]).await,
        "203.0.113.8"
    );
}

#[tokio::test]
async fn a_chain_of_trusted_proxies_is_walked() {
    let server = echo_server(TrustedProxies::new([
        "127.0.0.1".parse::<IpAddr>().unwrap(),
        "10.0.0.2".parse().unwrap(),
    ]))
    .await;
    assert_eq!(
        ip_seen(
            &server,
            &[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.2")]
        )
        .await,
        "203.0.113.7"
    );
}

#[tokio::test]
async fn an_untrusted_peer_cannot_claim_another_address() {
    // Nobody trusted: the loopback peer is the client, whatever the headers say.
    let server = echo_server(TrustedProxies::none()).await;
    assert_eq!(
        ip_seen(
            &server,
            &[
                ("x-forwarded-for", "203.0.113.7"),
                ("x-real-ip", "203.0.113.8")
            ]
        )
        .await,
        "127.0.0.1"
    );
    // Trusting another proxy does not make loopback trusted either.
    let server = echo_server(TrustedProxies::new(["10.0.0.2".parse::<IpAddr>().unwrap()])).await;
    assert_eq!(
        ip_seen(&server, &[("x-forwarded-for", "203.0.113.7")]).await,
        "127.0.0.1"
    );
}
