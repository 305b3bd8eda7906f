use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use url::Url;

use crate::Secret;

/// Why start-up stopped. `Display` is the one line an operator reads.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("configuration error: {var} is required but not set")]
    Missing { var: &'static str },
    #[error("configuration error: {var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

/// A snapshot of the variables to read, so that tests never touch the process environment.
#[derive(Clone, Debug, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// The process environment, after loading `.env` (development) without overriding
    /// anything already set.
    pub fn from_process() -> Self {
        // A missing .env is normal outside development.
        let _ = dotenvy::dotenv();
        Self {
            vars: std::env::vars().collect(),
        }
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Returns a copy with `var` set (tests and tools adjust one value this way).
    pub fn with(mut self, var: &str, value: impl Into<String>) -> Self {
        self.vars.insert(var.to_owned(), value.into());
        self
    }

    /// Returns a copy without `var`.
    pub fn without(mut self, var: &str) -> Self {
        self.vars.remove(var);
        self
    }

    /// A set, non-blank value; blank counts as unset so `FOO=` in a .env file means "default".
    pub fn optional(&self, var: &str) -> Option<&str> {
        self.vars
            .get(var)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, var: &'static str) -> Result<&str, ConfigError> {
        self.optional(var).ok_or(ConfigError::Missing { var })
    }

    pub fn required_secret(
        &self,
        var: &'static str,
        min_len: usize,
    ) -> Result<Secret<String>, ConfigError> {
        let value = self.required(var)?;
        if value.len() < min_len {
            return Err(ConfigError::Invalid {
                var,
                reason: format!("must be at least {min_len} characters"),
            });
        }
        Ok(Secret::new(value.to_owned()))
    }

    pub fn parse_or<T>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.optional(var) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e: T::Err| ConfigError::Invalid {
                var,
                reason: format!("{e} (got {raw:?})"),
            }),
        }
    }

    /// Durations are written like `15m`, `7d`, `250ms`.
    pub fn duration_or(
        &self,
        var: &'static str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match self.optional(var) {
            None => Ok(default),
            Some(raw) => humantime::parse_duration(raw).map_err(|e| ConfigError::Invalid {
                var,
                reason: format!("{e} (expected e.g. 15m, 7d, 500ms; got {raw:?})"),
            }),
        }
    }

    pub fn url(&self, var: &'static str) -> Result<Url, ConfigError> {
        parse_url(var, self.required(var)?)
    }

    pub fn url_or(&self, var: &'static str, default: &str) -> Result<Url, ConfigError> {
        parse_url(var, self.optional(var).unwrap_or(default))
    }

    pub fn optional_url(&self, var: &'static str) -> Result<Option<Url>, ConfigError> {
        self.optional(var)
            .map(|raw| parse_url(var, raw))
            .transpose()
    }
}

/// URLs may carry passwords: never echo the value in the error.
fn parse_url(var: &'static str, raw: &str) -> Result<Url, ConfigError> {
    Url::parse(raw).map_err(|e| ConfigError::Invalid {
        var,
        reason: format!("not a URL ({e})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_unset() {
        let env = Env::from_pairs([("A", "  ")]);
        assert_eq!(env.optional("A"), None);
        assert_eq!(env.required("A"), Err(ConfigError::Missing { var: "A" }));
    }

    #[test]
    fn error_line_names_the_variable() {
        let env = Env::from_pairs([("PORT", "eighty")]);
        let err = env.parse_or::<u16>("PORT", 1).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("configuration error: PORT is invalid"));
        assert_eq!(
            Env::default()
                .required("JWT_SECRET")
                .unwrap_err()
                .to_string(),
            "configuration error: JWT_SECRET is required but not set"
        );
    }

    #[test]
    fn durations_accept_human_units() {
        let env = Env::from_pairs([("TTL", "7d"), ("BAD", "soon")]);
        assert_eq!(
            env.duration_or("TTL", Duration::ZERO).unwrap(),
            Duration::from_secs(7 * 24 * 3600)
        );
        assert_eq!(
            env.duration_or("MISSING", Duration::from_secs(900))
                .unwrap(),
            Duration::from_secs(900)
        );
        assert!(env.duration_or("BAD", Duration::ZERO).is_err());
    }

    #[test]
    fn short_secret_is_refused_without_echoing_it() {
        let env = Env::from_pairs([("JWT_SECRET", "short")]);
        let err = env.required_secret("JWT_SECRET", 32).unwrap_err();
        assert!(!err.to_string().contains("short\""));
        assert!(err.to_string().contains("at least 32"));
    }

    #[test]
    fn url_errors_do_not_echo_the_value() {
        let env = Env::from_pairs([("DATABASE_URL", "postgres//user:pw@host")]);
        let err = env.url("DATABASE_URL").unwrap_err().to_string();
        assert!(err.contains("DATABASE_URL"));
        assert!(!err.contains("pw"));
    }
}
