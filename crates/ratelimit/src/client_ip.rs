//! Who is asking: the socket peer, or, when the peer is a proxy we trust (nginx), the
//! address that proxy reports.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::ConnectInfo;
use http::request::Parts;
use http::HeaderName;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The peers whose forwarding headers are believed. Anyone else can write any
/// `X-Forwarded-For` they like, so from them it is ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedProxies(Arc<[IpAddr]>);

impl TrustedProxies {
    pub fn new(ips: impl IntoIterator<Item = IpAddr>) -> Self {
        Self(ips.into_iter().map(|ip| ip.to_canonical()).collect())
    }

    /// The default: a proxy on the same host (nginx in front of the gateway).
    pub fn loopback() -> Self {
        Self::new([
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ])
    }

    /// No proxy: only the socket peer counts.
    pub fn none() -> Self {
        Self::new([])
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }

    /// The client's address: the socket peer (from `ConnectInfo<SocketAddr>`, which
    /// `kloyst_http::server::serve` provides), unless that peer is trusted; then the
    /// right-most address of `X-Forwarded-For` that is not itself a trusted proxy, or else
    /// `X-Real-IP`. `None` only when the server was not started with connect info.
    pub fn client_ip(&self, parts: &Parts) -> Option<IpAddr> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()?
            .0
            .ip()
            .to_canonical();
        if !self.contains(peer) {
            return Some(peer);
        }
        Some(
            self.forwarded_client(parts, peer)
                .or_else(|| real_ip(parts))
                .unwrap_or(peer),
        )
    }

    /// Walks `X-Forwarded-For` from the right (each proxy appends the address it saw) and
    /// stops at the first hop we do not trust: everything left of it was written by the
    /// client and proves nothing. `None` when the header is absent.
    fn forwarded_client(&self, parts: &Parts, peer: IpAddr) -> Option<IpAddr> {
        let values: Vec<&str> = parts
            .headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            return None;
        }
        let hops = values.iter().flat_map(|v| v.split(',')).rev();
        let mut nearest = peer;
        for hop in hops {
            let Some(ip) = parse_hop(hop) else {
                // Garbage from a trusted hop's client: the last address we could vouch for.
                return Some(nearest);
            };
            if !self.contains(ip) {
                return Some(ip);
            }
            nearest = ip;
        }
        // Every hop is a trusted proxy: the left-most is as close to the client as we get.
        Some(nearest)
    }
}

/// Shorthand for [`TrustedProxies::client_ip`].
pub fn client_ip(parts: &Parts, trusted: &TrustedProxies) -> Option<IpAddr> {
    trusted.client_ip(parts)
}

fn real_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .headers
        .get(X_REAL_IP)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_hop)
}

/// An address as proxies write it: `203.0.113.7`, `2001:db8::1`, and, from some proxies,
/// with a port: `203.0.113.7:5123`, `[2001:db8::1]:5123`.
fn parse_hop(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    raw.parse::<IpAddr>()
        .or_else(|_| raw.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// The rate-limit key for an address. IPv6 is keyed by its /64: one subscriber usually
/// holds a whole /64 and could otherwise rotate addresses to reset its limit.
pub fn ip_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let prefix = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{prefix}/64")
        }
    }
}

/// A `key_fn` for [`crate::RateLimitLayer`] that limits per client address.
pub fn by_client_ip(
    trusted: TrustedProxies,
) -> impl Fn(&Parts) -> Option<String> + Clone + Send + Sync + 'static {
    move |parts: &Parts| trusted.client_ip(parts).map(ip_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(peer: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = http::Request::builder().uri("/");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let (mut parts, ()) = builder.body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        parts
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let p = parts(
            "198.51.100.9:4000",
            &[("x-forwarded-for", "1.2.3.4"), ("x-real-ip", "1.2.3.4")],
        );
        assert_eq!(
            TrustedProxies::loopback().client_ip(&p),
            Some(ip("198.51.100.9"))
        );
    }

    #[test]
    fn a_trusted_peer_is_believed_right_to_left() {
        let trusted = TrustedProxies::loopback();
        // The client forged the left part; nginx appended the address it saw.
        let p = parts(
            "127.0.0.1:4000",
            &[("x-forwarded-for", "6.6.6.6, 203.0.113.7")],
        );
        assert_eq!(trusted.client_ip(&p), Some(ip("203.0.113.7")));

        // A second trusted hop is skipped.
        let two = TrustedProxies::new([ip("127.0.0.1"), ip("10.0.0.2")]);
        let p = parts(
            "127.0.0.1:4000",
            &[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.2")],
        );
        assert_eq!(two.client_ip(&p), Some(ip("203.0.113.7")));

        // Several header lines are one list, in order.
        let p = parts(
            "127.0.0.1:4000",
            &[
                ("x-forwarded-for", "6.6.6.6"),
                ("x-forwarded-for", "203.0.113.8"),
            ],
        );
        assert_eq!(trusted.client_ip(&p), Some(ip("203.0.113.8")));
    }

    #[test]
    fn real_ip_ports_garbage_and_fallbacks() {
        let trusted = TrustedProxies::loopback();
        let p = parts("[::1]:4000", &[("x-real-ip", "203.0.113.9")]);
        assert_eq!(trusted.client_ip(&p), Some(ip("203.0.113.9")));

        let p = parts("127.0.0.1:1", &[("x-forwarded-for", "[2001:db8::5]:443")]);
        assert_eq!(trusted.client_ip(&p), Some(ip("2001:db8::5")));

        let p = parts("127.0.0.1:1", &[("x-forwarded-for", "not-an-ip")]);
        assert_eq!(trusted.client_ip(&p), Some(ip("127.0.0.1")));

        let p = parts("127.0.0.1:1", &[]);
        assert_eq!(trusted.client_ip(&p), Some(ip("127.0.0.1")));

        let p = parts("127.0.0.1:1", &[("x-forwarded-for", "127.0.0.1")]);
        assert_eq!(trusted.client_ip(&p), Some(ip("127.0.0.1")));

        // No connect info: nothing to go on.
        let (bare, ()) = http::Request::builder().body(()).unwrap().into_parts();
        assert_eq!(trusted.client_ip(&bare), None);
    }

    #[test]
    fn ipv4_mapped_peers_count_as_ipv4() {
        let p = parts("[::ffff:127.0.0.1]:4000", &[("x-real-ip", "203.0.113.9")]);
        assert_eq!(
            TrustedProxies::loopback().client_ip(&p),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn no_trusted_proxy_means_the_peer() {
        let p = parts("127.0.0.1:4000", &[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(TrustedProxies::none().client_ip(&p), Some(ip("127.0.0.1")));
    }

    #[test]
    fn keys_group_ipv6_by_64() {
        assert_eq!(ip_key(ip("203.0.113.7")), "203.0.113.7");
        assert_eq!(ip_key(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(ip_key(ip("2001:db8:1:2:bbbb::9")), "2001:db8:1:2::/64");
        assert_eq!(ip_key(ip("::ffff:203.0.113.7")), "203.0.113.7");
    }
}
