//! The building blocks a service's configuration is made of. Names follow DESIGN.md.

use std::time::Duration;

use url::Url;

use crate::{ConfigError, Env, Secret};

/// Postgres: `DATABASE_URL` (required), `DATABASE_MAX_CONNECTIONS`, `DATABASE_ACQUIRE_TIMEOUT`.
#[derive(Clone, Debug)]
pub struct DatabaseSettings {
    pub url: Secret<String>,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl DatabaseSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let url = env.url("DATABASE_URL")?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(ConfigError::Invalid {
                var: "DATABASE_URL",
                reason: "scheme must be postgres://".into(),
            });
        }
        Ok(Self {
            url: Secret::new(url.into()),
            max_connections: env.parse_or("DATABASE_MAX_CONNECTIONS", 10)?,
            acquire_timeout: env.duration_or("DATABASE_ACQUIRE_TIMEOUT", Duration::from_secs(3))?,
        })
    }
}

/// Redis: `REDIS_URL` (required), `REDIS_POOL_SIZE`, `REDIS_KEY_PREFIX` (namespaces every key).
#[derive(Clone, Debug)]
pub struct RedisSettings {
    pub url: Secret<String>,
    pub pool_size: usize,
    pub timeout: Duration,
    pub key_prefix: String,
}

impl RedisSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let url = env.url("REDIS_URL")?;
        if !matches!(url.scheme(), "redis" | "rediss") {
            return Err(ConfigError::Invalid {
                var: "REDIS_URL",
                reason: "scheme must be redis:// or rediss://".into(),
            });
        }
        Ok(Self {
            url: Secret::new(url.into()),
            pool_size: env.parse_or("REDIS_POOL_SIZE", 16)?,
            timeout: env.duration_or("REDIS_TIMEOUT", Duration::from_secs(2))?,
            key_prefix: env
                .optional("REDIS_KEY_PREFIX")
                .unwrap_or("kloyst")
                .to_owned(),
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Logging: `LOG_FORMAT` (json|pretty, default json), `LOKI_URL` (unset = no Loki layer).
/// `RUST_LOG` is read by the telemetry crate itself.
#[derive(Clone, Debug)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
    pub loki_url: Option<Url>,
    pub environment: String,
}

impl TelemetrySettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let log_format = match env.optional("LOG_FORMAT").unwrap_or("json") {
            "json" => LogFormat::Json,
            "pretty" => LogFormat::Pretty,
            other => {
                return Err(ConfigError::Invalid {
                    var: "LOG_FORMAT",
                    reason: format!("expected json or pretty, got {other:?}"),
                })
            }
        };
        Ok(Self {
            log_format,
            loki_url: env.optional_url("LOKI_URL")?,
            environment: env.optional("APP_ENV").unwrap_or("development").to_owned(),
        })
    }
}

/// What every service needs: the two stores and logging.
#[derive(Clone, Debug)]
pub struct CommonSettings {
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub telemetry: TelemetrySettings,
    /// How long in-flight work may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
}

impl CommonSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            database: DatabaseSettings::from_env(env)?,
            redis: RedisSettings::from_env(env)?,
            telemetry: TelemetrySettings::from_env(env)?,
            shutdown_grace: env.duration_or("SHUTDOWN_GRACE", Duration::from_secs(20))?,
        })
    }
}

/// Tokens: `JWT_SECRET` (required, ≥ 32 chars), `JWT_ACCESS_TTL` (15m), `JWT_REFRESH_TTL` (7d).
#[derive(Clone, Debug)]
pub struct AuthSettings {
    pub jwt_secret: Secret<String>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

impl AuthSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            jwt_secret: env.required_secret("JWT_SECRET", 32)?,
            access_ttl: env.duration_or("JWT_ACCESS_TTL", Duration::from_secs(15 * 60))?,
            refresh_ttl: env.duration_or("JWT_REFRESH_TTL", Duration::from_secs(7 * 24 * 3600))?,
        })
    }
}

/// `DATA_ENCRYPTION_KEY`: 32 bytes as 64 hex characters (AES-256-GCM for secrets at rest).
#[derive(Clone, Debug)]
pub struct DataKey(pub Secret<[u8; 32]>);

impl DataKey {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        const VAR: &str = "DATA_ENCRYPTION_KEY";
        let raw = env.required(VAR)?;
        let invalid = || ConfigError::Invalid {
            var: VAR,
            reason: "must be 64 hex characters (32 bytes)".into(),
        };
        if raw.len() != 64 {
            return Err(invalid());
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            let pair = raw.get(2 * i..2 * i + 2).ok_or_else(invalid)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| invalid())?;
        }
        Ok(Self(Secret::new(key)))
    }
}

/// Meta Cloud API (outbound): base, version, token, WABA and phone number, send rate.
#[derive(Clone, Debug)]
pub struct MetaApiSettings {
    pub api_base: Url,
    pub api_version: String,
    pub access_token: Secret<String>,
    pub waba_id: String,
    pub phone_number_id: String,
    /// Messages per second per phone number, shared by every worker copy.
    pub send_rate: u32,
}

impl MetaApiSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let api_version = env
            .optional("META_API_VERSION")
            .unwrap_or("v21.0")
            .to_owned();
        if !api_version.starts_with('v') {
            return Err(ConfigError::Invalid {
                var: "META_API_VERSION",
                reason: format!("expected e.g. v21.0, got {api_version:?}"),
            });
        }
        Ok(Self {
            api_base: env.url_or("META_API_BASE", "https://graph.facebook.com")?,
            api_version,
            access_token: env.required_secret("META_ACCESS_TOKEN", 1)?,
            waba_id: env.required("META_WABA_ID")?.to_owned(),
            phone_number_id: env.required("META_PHONE_NUMBER_ID")?.to_owned(),
            send_rate: env.parse_or("META_SEND_RATE", 80)?,
        })
    }
}

/// Meta webhooks (inbound): `META_APP_SECRET` signs them, `META_VERIFY_TOKEN` answers the handshake.
#[derive(Clone, Debug)]
pub struct MetaWebhookSettings {
    pub app_secret: Secret<String>,
    pub verify_token: Secret<String>,
}

impl MetaWebhookSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            app_secret: env.required_secret("META_APP_SECRET", 16)?,
            verify_token: env.required_secret("META_VERIFY_TOKEN", 8)?,
        })
    }
}

/// Razorpay API (orders) and its webhook secret (a different secret from the key secret).
#[derive(Clone, Debug)]
pub struct RazorpaySettings {
    pub api_base: Url,
    pub key_id: String,
    pub key_secret: Secret<String>,
}

impl RazorpaySettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            api_base: env.url_or("RAZORPAY_API_BASE", "https://api.razorpay.com")?,
            key_id: env.required("RAZORPAY_KEY_ID")?.to_owned(),
            key_secret: env.required_secret("RAZORPAY_KEY_SECRET", 8)?,
        })
    }
}

/// `RAZORPAY_WEBHOOK_SECRET`, read by the webhook-worker only.
pub fn razorpay_webhook_secret(env: &Env) -> Result<Secret<String>, ConfigError> {
    env.required_secret("RAZORPAY_WEBHOOK_SECRET", 8)
}

/// Mail: `SMTP_URL` (unset in development = mail is written to the log), `MAIL_FROM`.
#[derive(Clone, Debug)]
pub struct MailSettings {
    pub smtp_url: Option<Secret<Url>>,
    pub from: String,
}

impl MailSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            smtp_url: env.optional_url("SMTP_URL")?.map(Secret::new),
            from: env
                .optional("MAIL_FROM")
                .unwrap_or("Kloyst <no-reply@kloyst.com>")
                .to_owned(),
        })
    }
}

/// A listening port read from `var`, with the service's default.
pub fn port(env: &Env, var: &'static str, default: u16) -> Result<u16, ConfigError> {
    env.parse_or(var, default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Env {
        Env::from_pairs([
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kloyst"),
            ("REDIS_URL", "redis://127.0.0.1:6379"),
        ])
    }

    #[test]
    fn common_settings_have_defaults() {
        let settings = CommonSettings::from_env(&base()).unwrap();
        assert_eq!(settings.database.max_connections, 10);
        assert_eq!(settings.redis.key_prefix, "kloyst");
        assert_eq!(settings.telemetry.log_format, LogFormat::Json);
        assert!(settings.telemetry.loki_url.is_none());
    }

    #[test]
    fn missing_database_url_is_named() {
        let err = CommonSettings::from_env(&base().without("DATABASE_URL")).unwrap_err();
        assert_eq!(
            err,
            ConfigError::Missing {
                var: "DATABASE_URL"
            }
        );
    }

    #[test]
    fn wrong_scheme_is_refused() {
        let err = CommonSettings::from_env(&base().with("REDIS_URL", "http://x")).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                var: "REDIS_URL",
                ..
            }
        ));
    }

    #[test]
    fn log_format_must_be_known() {
        let err = TelemetrySettings::from_env(&base().with("LOG_FORMAT", "xml")).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                var: "LOG_FORMAT",
                ..
            }
        ));
    }

    #[test]
    fn auth_defaults_and_secret_length() {
        let env = base().with("JWT_SECRET", "x".repeat(40));
        let auth = AuthSettings::from_env(&env).unwrap();
        assert_eq!(auth.access_ttl, Duration::from_secs(900));
        assert_eq!(auth.refresh_ttl, Duration::from_secs(604_800));
        assert!(AuthSettings::from_env(&base()).is_err());
    }

    #[test]
    fn data_key_is_32_hex_bytes() {
        let env = base().with("DATA_ENCRYPTION_KEY", "0f".repeat(32));
        assert_eq!(DataKey::from_env(&env).unwrap().0.expose()[0], 0x0f);
        let bad = base().with("DATA_ENCRYPTION_KEY", "zz".repeat(32));
        assert!(DataKey::from_env(&bad).is_err());
        let short = base().with("DATA_ENCRYPTION_KEY", "00");
        assert!(DataKey::from_env(&short).is_err());
    }

    #[test]
    fn meta_settings_defaults() {
        let env = base()
            .with("META_ACCESS_TOKEN", "token")
            .with("META_WABA_ID", "1")
            .with("META_PHONE_NUMBER_ID", "2");
        let meta = MetaApiSettings::from_env(&env).unwrap();
        assert_eq!(meta.send_rate, 80);
        assert_eq!(meta.api_base.as_str(), "https://graph.facebook.com/");
        assert!(MetaApiSettings::from_env(&env.with("META_SEND_RATE", "-1")).is_err());
    }
}
