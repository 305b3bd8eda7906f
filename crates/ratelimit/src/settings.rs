//! Rate-limit configuration: `RATE_LIMIT_AUTH_PER_IP` (default `20/min`),
//! `RATE_LIMIT_API_PER_VENDOR` (default `6000/min`), `TRUSTED_PROXIES` (comma-separated
//! IPs; default the loopback addresses).

use std::net::IpAddr;
use std::num::NonZeroU32;

use kloyst_config::{ConfigError, Env};

use crate::client_ip::TrustedProxies;
use crate::quota::Quota;

pub const AUTH_PER_IP_DEFAULT: Quota = Quota::per_minute(nonzero(20));
pub const API_PER_VENDOR_DEFAULT: Quota = Quota::per_minute(nonzero(6000));

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitSettings {
    pub auth_per_ip: Quota,
    pub api_per_vendor: Quota,
    pub trusted_proxies: Vec<IpAddr>,
}

impl RateLimitSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            auth_per_ip: Quota::from_env(env, "RATE_LIMIT_AUTH_PER_IP", AUTH_PER_IP_DEFAULT)?,
            api_per_vendor: Quota::from_env(
                env,
                "RATE_LIMIT_API_PER_VENDOR",
                API_PER_VENDOR_DEFAULT,
            )?,
            trusted_proxies: trusted_proxies(env)?,
        })
    }

    pub fn trusted(&self) -> TrustedProxies {
        TrustedProxies::new(self.trusted_proxies.iter().copied())
    }
}

/// Setting the variable replaces the default, so a deployment whose nginx is elsewhere
/// does not also trust loopback by accident. Plain addresses only: a handful of proxies
/// does not need CIDR ranges, and a range is easy to write too wide.
fn trusted_proxies(env: &Env) -> Result<Vec<IpAddr>, ConfigError> {
    const VAR: &str = "TRUSTED_PROXIES";
    let Some(raw) = env.optional(VAR) else {
        return Ok(vec![
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]),
        ]);
    };
    raw.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpAddr>().map_err(|_| ConfigError::Invalid {
                var: VAR,
                reason: if item.contains('/') {
                    format!("{item:?}: list single IP addresses, not CIDR ranges")
                } else {
                    format!("{item:?} is not an IP address")
                },
            })
        })
        .collect()
}

/// Compile-time only (the defaults above): a zero here fails the build, not start-up.
const fn nonzero(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => panic!("a quota limit must not be zero"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let settings = RateLimitSettings::from_env(&Env::default()).unwrap();
        assert_eq!(settings.auth_per_ip, Quota::parse("20/min").unwrap());
        assert_eq!(settings.api_per_vendor, Quota::parse("6000/min").unwrap());
        assert_eq!(settings.trusted(), TrustedProxies::loopback());
    }

    #[test]
    fn overrides() {
        let env = Env::from_pairs([
            ("RATE_LIMIT_AUTH_PER_IP", "5/s"),
            ("RATE_LIMIT_API_PER_VENDOR", "100/h"),
            ("TRUSTED_PROXIES", "10.0.0.2, 2001:db8::1,"),
        ]);
        let settings = RateLimitSettings::from_env(&env).unwrap();
        assert_eq!(settings.auth_per_ip, Quota::parse("5/s").unwrap());
        assert_eq!(settings.api_per_vendor, Quota::parse("100/h").unwrap());
        assert_eq!(
            settings.trusted_proxies,
            vec![
                "10.0.0.2".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("RATE_LIMIT_AUTH_PER_IP", "20 per minute"),
            ("RATE_LIMIT_API_PER_VENDOR", "0/min"),
            ("TRUSTED_PROXIES", "10.0.0.0/8"),
            ("TRUSTED_PROXIES", "nginx"),
        ] {
            let err = RateLimitSettings::from_env(&Env::from_pairs([(var, value)])).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("configuration error: {var} is invalid")),
                "{err}"
            );
        }
        let err =
            RateLimitSettings::from_env(&Env::from_pairs([("TRUSTED_PROXIES", "10.0.0.0/8")]))
                .unwrap_err();
        assert!(err.to_string().contains("CIDR"), "{err}");
    }
}
