//! Redis key names and the keyed hashes (HMAC-SHA256 with the JWT secret) that keep email
//! addresses and codes out of Redis in clear.

use std::fmt::Write as _;
use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What a one-time code is for. Separate keys and separate hashes: an invitation code can
/// never verify a registration, nor the other way round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    Verification,
    Invite,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Verification => "verify",
            Self::Invite => "invite",
        }
    }
}

pub(crate) struct Keys {
    /// `{REDIS_KEY_PREFIX}:identity`
    base: String,
    mac_key: Vec<u8>,
}

impl Keys {
    pub fn new(prefix: &str, mac_key: &[u8]) -> Self {
        Self {
            base: format!("{prefix}:identity"),
            mac_key: mac_key.to_vec(),
        }
    }

    /// HMAC-SHA256 over the parts, each ended by a NUL so that ("ab","c") ≠ ("a","bc").
    pub fn mac(&self, parts: &[&str]) -> [u8; 32] {
        // new_from_slice accepts keys of any length for HMAC; the error arm cannot happen.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.mac_key) {
            Ok(mac) => mac,
            Err(_) => return [0; 32],
        };
        for part in parts {
            mac.update(part.as_bytes());
            mac.update(&[0]);
        }
        mac.finalize().into_bytes().into()
    }

    /// The stored form of a code: bound to its purpose and address.
    pub fn otp_hash(&self, purpose: Purpose, email: &str, code: &str) -> String {
        hex::encode(self.mac(&["otp.v1", purpose.as_str(), email, code]))
    }

    /// An address as it appears in key names: a keyed hash, so a Redis dump lists no emails.
    fn subject(&self, email: &str) -> String {
        hex::encode(&self.mac(&["email.v1", email])[..16])
    }

    pub fn otp(&self, purpose: Purpose, email: &str) -> String {
        format!(
            "{}:otp:{}:{}",
            self.base,
            purpose.as_str(),
            self.subject(email)
        )
    }

    pub fn otp_cooldown(&self, purpose: Purpose, email: &str) -> String {
        format!(
            "{}:otp_cooldown:{}:{}",
            self.base,
            purpose.as_str(),
            self.subject(email)
        )
    }

    pub fn otp_hourly_email(&self, email: &str) -> String {
        format!("{}:otp_hourly:email:{}", self.base, self.subject(email))
    }

    pub fn otp_hourly_ip(&self, ip: IpAddr) -> String {
        format!("{}:otp_hourly:ip:{}", self.base, ip_bucket(ip))
    }

    pub fn login_failures_email(&self, email: &str) -> String {
        format!("{}:login_failures:email:{}", self.base, self.subject(email))
    }

    pub fn login_failures_ip(&self, ip: IpAddr) -> String {
        format!("{}:login_failures:ip:{}", self.base, ip_bucket(ip))
    }
}

/// IPv4 addresses count one by one; IPv6 by /64, the block one subscriber usually gets
/// (otherwise one client could rotate through 2^64 addresses to escape every limit).
fn ip_bucket(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let mut out = String::with_capacity(24);
                for segment in &s[..4] {
                    let _ = write!(out, "{segment:x}:");
                }
                out.push_str(":/64");
                out
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hide_the_address_and_separate_purposes() {
        let keys = Keys::new("p", b"secret");
        let verify = keys.otp(Purpose::Verification, "asha@example.com");
        let invite = keys.otp(Purpose::Invite, "asha@example.com");
        assert!(verify.starts_with("p:identity:otp:verify:"));
        assert!(!verify.contains("asha"));
        assert_ne!(verify, invite);
        assert_ne!(
            keys.otp_hash(Purpose::Verification, "a@b.co", "123456"),
            keys.otp_hash(Purpose::Invite, "a@b.co", "123456")
        );
        assert_ne!(
            keys.otp_hash(Purpose::Verification, "a@b.co", "123456"),
            Keys::new("p", b"other").otp_hash(Purpose::Verification, "a@b.co", "123456")
        );
    }

    #[test]
    fn ipv6_counts_by_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_bucket(a), ip_bucket(b));
        assert_ne!(ip_bucket(a), ip_bucket(c));
        assert_eq!(ip_bucket("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
        assert_eq!(ip_bucket("10.0.0.1".parse().unwrap()), "10.0.0.1");
    }
}
