//! What the simulator is (its identity at Meta) and how it behaves (tunable at run time).

use std::sync::{Arc, PoisonError, RwLock};

use kloyst_config::{ConfigError, Env};
use serde::{Deserialize, Serialize};

const DEFAULT_WEBHOOK_URL: &str = "http://127.0.0.1:3002/webhook/meta";
const DEFAULT_PAYMENT_WEBHOOK_URL: &str = "http://127.0.0.1:3002/webhook/payment";

/// The simulator's fixed identity plus its initial behaviour.
#[derive(Clone, Debug)]
pub struct SimSettings {
    /// The Bearer token it accepts (`META_ACCESS_TOKEN`).
    pub access_token: String,
    /// Signs webhooks (`META_APP_SECRET`).
    pub app_secret: String,
    /// `META_WABA_ID`: `entry[].id` of webhooks and the node of template calls.
    pub waba_id: String,
    /// `META_PHONE_NUMBER_ID`: the only number it accepts sends for.
    pub phone_number_id: String,
    /// `SIM_DISPLAY_PHONE_NUMBER`, default `15550001234`.
    pub display_phone_number: String,
    /// `SIM_WEBHOOK_URL` (default the webhook-worker); `none` or `off` = do not post.
    pub webhook_url: Option<String>,
    pub behaviour: Behaviour,
}

/// `var` as a URL (default `default`), or `None` when it says `none` or `off`.
fn webhook_url(env: &Env, var: &'static str, default: &str) -> Result<Option<String>, ConfigError> {
    Ok(match env.optional(var) {
        Some(off) if off.eq_ignore_ascii_case("none") || off.eq_ignore_ascii_case("off") => None,
        _ => Some(env.url_or(var, default)?.into()),
    })
}

impl SimSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let webhook_url = webhook_url(env, "SIM_WEBHOOK_URL", DEFAULT_WEBHOOK_URL)?;
        Ok(Self {
            access_token: env.required("META_ACCESS_TOKEN")?.to_owned(),
            app_secret: env.required("META_APP_SECRET")?.to_owned(),
            waba_id: env.required("META_WABA_ID")?.to_owned(),
            phone_number_id: env.required("META_PHONE_NUMBER_ID")?.to_owned(),
            display_phone_number: env
                .optional("SIM_DISPLAY_PHONE_NUMBER")
                .unwrap_or("15550001234")
                .to_owned(),
            webhook_url,
            behaviour: Behaviour::from_env(env)?,
        })
    }
}

/// The simulated Razorpay account: the keys its Orders API accepts and where its signed
/// payment webhooks go. A separate struct (not fields of [`SimSettings`]) so code that builds
/// `SimSettings` by hand keeps compiling; [`crate::serve`] uses [`Default`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RazorpaySimSettings {
    /// `RAZORPAY_KEY_ID`: the Basic-auth user of `/v1/*`.
    pub key_id: String,
    /// `RAZORPAY_KEY_SECRET`: the Basic-auth password; also signs Checkout's answer.
    pub key_secret: String,
    /// `RAZORPAY_WEBHOOK_SECRET`: signs `X-Razorpay-Signature` (a different key, as at Razorpay).
    pub webhook_secret: String,
    /// `SIM_PAYMENT_WEBHOOK_URL` (default the webhook-worker); `none` or `off` = do not post.
    pub webhook_url: Option<String>,
}

impl Default for RazorpaySimSettings {
    /// The development values of `.env.example`.
    fn default() -> Self {
        Self {
            key_id: "rzp_test_kloyst_dev".to_owned(),
            key_secret: "dev-razorpay-key-secret".to_owned(),
            webhook_secret: "dev-razorpay-webhook-secret".to_owned(),
            webhook_url: Some(DEFAULT_PAYMENT_WEBHOOK_URL.to_owned()),
        }
    }
}

impl RazorpaySimSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let d = Self::default();
        let or_default =
            |var: &str, default: String| env.optional(var).map_or(default, str::to_owned);
        Ok(Self {
            key_id: or_default("RAZORPAY_KEY_ID", d.key_id),
            key_secret: or_default("RAZORPAY_KEY_SECRET", d.key_secret),
            webhook_secret: or_default("RAZORPAY_WEBHOOK_SECRET", d.webhook_secret),
            webhook_url: webhook_url(env, "SIM_PAYMENT_WEBHOOK_URL", DEFAULT_PAYMENT_WEBHOOK_URL)?,
        })
    }
}

/// How the simulator behaves; `PUT /_sim/behaviour` replaces it at run time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Behaviour {
    /// Sends per second per phone number; 0 = no cap. Over it: error 130429.
    pub rate_per_second: u32,
    /// Fraction of sends answered with a 500/503 transient error (code 1 or 2).
    pub transient_error_rate: f64,
    /// Recipients starting with one of these are accepted, then fail with 131026.
    pub undeliverable_prefixes: Vec<String>,
    /// Fraction of accepted sends that fail (131049) instead of being delivered.
    pub failed_rate: f64,
    /// Fraction of delivered messages that are then read.
    pub read_rate: f64,
    /// Of those read, the fraction whose `delivered` is never sent (Meta does this).
    pub read_without_delivered_rate: f64,
    /// Fraction of status webhook deliveries posted twice.
    pub duplicate_rate: f64,
    /// Shuffle the statuses of a batch before posting.
    pub reorder: bool,
    /// Statuses per POST (1..=1000).
    pub batch_max: usize,
    /// How long to gather a batch.
    pub batch_window_ms: u64,
    /// Delay between accept and `sent`, and between the following statuses.
    pub status_delay_ms: u64,
    /// Which statuses carry `pricing`: `sent`, `delivered` or `both`.
    pub pricing_on: String,
    /// Delay before a created template's review webhook.
    pub template_review_delay_ms: u64,
    /// Templates whose name contains this are REJECTED; empty = none are.
    pub reject_names_containing: String,
    /// Accept sends of templates the simulator does not know as APPROVED.
    pub accept_unknown_templates: bool,
    /// Minimum seconds between two messages to the same recipient; 0 = off. Over it: 131056.
    pub pair_limit_seconds: f64,
    /// Webhook POSTs in flight at once.
    pub webhook_concurrency: usize,
    /// First retry delay of a webhook delivery; doubles up to `webhook_retry_max_ms`.
    pub webhook_retry_base_ms: u64,
    pub webhook_retry_max_ms: u64,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            rate_per_second: 80,
            transient_error_rate: 0.0,
            undeliverable_prefixes: Vec::new(),
            failed_rate: 0.0,
            read_rate: 0.5,
            read_without_delivered_rate: 0.1,
            duplicate_rate: 0.0,
            reorder: false,
            batch_max: 1,
            batch_window_ms: 50,
            status_delay_ms: 20,
            pricing_on: "both".to_owned(),
            template_review_delay_ms: 200,
            reject_names_containing: "reject".to_owned(),
            accept_unknown_templates: false,
            pair_limit_seconds: 0.0,
            webhook_concurrency: 8,
            webhook_retry_base_ms: 200,
            webhook_retry_max_ms: 5000,
        }
    }
}

/// Meta's maximum number of updates in one webhook POST.
pub const MAX_BATCH: usize = 1000;

impl Behaviour {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let d = Self::default();
        let behaviour = Self {
            rate_per_second: env.parse_or("SIM_RATE", d.rate_per_second)?,
            transient_error_rate: env
                .parse_or("SIM_TRANSIENT_ERROR_RATE", d.transient_error_rate)?,
            undeliverable_prefixes: env
                .optional("SIM_UNDELIVERABLE_PREFIXES")
                .map(|raw| {
                    raw.split(',')
                        .map(|p| p.trim().trim_start_matches('+').to_owned())
                        .filter(|p| !p.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            failed_rate: env.parse_or("SIM_FAILED_RATE", d.failed_rate)?,
            read_rate: env.parse_or("SIM_READ_RATE", d.read_rate)?,
            read_without_delivered_rate: env.parse_or(
                "SIM_READ_WITHOUT_DELIVERED_RATE",
                d.read_without_delivered_rate,
            )?,
            duplicate_rate: env.parse_or("SIM_DUPLICATE_RATE", d.duplicate_rate)?,
            reorder: env.parse_or("SIM_REORDER", d.reorder)?,
            batch_max: env.parse_or("SIM_BATCH_MAX", d.batch_max)?,
            batch_window_ms: env.parse_or("SIM_BATCH_WINDOW_MS", d.batch_window_ms)?,
            status_delay_ms: env.parse_or("SIM_STATUS_DELAY_MS", d.status_delay_ms)?,
            pricing_on: env
                .optional("SIM_PRICING_ON")
                .unwrap_or(&d.pricing_on)
                .to_owned(),
            template_review_delay_ms: env
                .parse_or("SIM_TEMPLATE_REVIEW_DELAY_MS", d.template_review_delay_ms)?,
            reject_names_containing: env
                .optional("SIM_REJECT_NAMES_CONTAINING")
                .unwrap_or(&d.reject_names_containing)
                .to_owned(),
            accept_unknown_templates: env
                .parse_or("SIM_ACCEPT_UNKNOWN_TEMPLATES", d.accept_unknown_templates)?,
            pair_limit_seconds: env.parse_or("SIM_PAIR_LIMIT_SECONDS", d.pair_limit_seconds)?,
            webhook_concurrency: env.parse_or("SIM_WEBHOOK_CONCURRENCY", d.webhook_concurrency)?,
            webhook_retry_base_ms: env
                .parse_or("SIM_WEBHOOK_RETRY_BASE_MS", d.webhook_retry_base_ms)?,
            webhook_retry_max_ms: env
                .parse_or("SIM_WEBHOOK_RETRY_MAX_MS", d.webhook_retry_max_ms)?,
        };
        behaviour
            .validate()
            .map_err(|reason| ConfigError::Invalid {
                var: "SIM_*",
                reason,
            })?;
        Ok(behaviour)
    }

    /// Refuses values the simulator cannot act on, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        let fractions = [
            ("transient_error_rate", self.transient_error_rate),
            ("failed_rate", self.failed_rate),
            ("read_rate", self.read_rate),
            (
                "read_without_delivered_rate",
                self.read_without_delivered_rate,
            ),
            ("duplicate_rate", self.duplicate_rate),
        ];
        for (field, value) in fractions {
            if !(0.0..=1.0).contains(&value) {
                return Err(format!("{field} must be between 0 and 1, got {value}"));
            }
        }
        if !(1..=MAX_BATCH).contains(&self.batch_max) {
            return Err(format!("batch_max must be 1..={MAX_BATCH}"));
        }
        if !matches!(self.pricing_on.as_str(), "sent" | "delivered" | "both") {
            return Err("pricing_on must be sent, delivered or both".to_owned());
        }
        if !(self.pair_limit_seconds.is_finite() && self.pair_limit_seconds >= 0.0) {
            return Err("pair_limit_seconds must be a number >= 0".to_owned());
        }
        if self.webhook_concurrency == 0 {
            return Err("webhook_concurrency must be at least 1".to_owned());
        }
        if self.webhook_retry_base_ms == 0 || self.webhook_retry_max_ms < self.webhook_retry_base_ms
        {
            return Err("webhook_retry_base_ms must be > 0 and <= webhook_retry_max_ms".to_owned());
        }
        Ok(())
    }

    pub fn pricing_on_sent(&self) -> bool {
        matches!(self.pricing_on.as_str(), "sent" | "both")
    }

    pub fn pricing_on_delivered(&self) -> bool {
        matches!(self.pricing_on.as_str(), "delivered" | "both")
    }

    pub fn is_undeliverable(&self, wa_id: &str) -> bool {
        self.undeliverable_prefixes
            .iter()
            .any(|p| wa_id.starts_with(p.trim_start_matches('+')))
    }

    /// An empty marker would match every name; it means "reject nothing".
    pub fn rejects_template(&self, name: &str) -> bool {
        !self.reject_names_containing.is_empty() && name.contains(&self.reject_names_containing)
    }
}

/// The current behaviour, swapped whole by `PUT /_sim/behaviour`; readers take a snapshot.
#[derive(Clone, Debug)]
pub struct SharedBehaviour(Arc<RwLock<Arc<Behaviour>>>);

impl SharedBehaviour {
    pub fn new(behaviour: Behaviour) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(behaviour))))
    }

    pub fn get(&self) -> Arc<Behaviour> {
        let guard = self.0.read().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(&guard)
    }

    pub fn set(&self, behaviour: Behaviour) {
        let mut guard = self.0.write().unwrap_or_else(PoisonError::into_inner);
        *guard = Arc::new(behaviour);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta_env() -> Env {
        Env::from_pairs([
            ("META_ACCESS_TOKEN", "token"),
            ("META_APP_SECRET", "secret"),
            ("META_WABA_ID", "1001"),
            ("META_PHONE_NUMBER_ID", "2002"),
        ])
    }

    #[test]
    fn defaults_need_only_the_meta_vars() {
        let settings = SimSettings::from_env(&meta_env()).unwrap();
        assert_eq!(settings.display_phone_number, "15550001234");
        assert_eq!(
            settings.webhook_url.as_deref(),
            Some("http://127.0.0.1:3002/webhook/meta")
        );
        assert_eq!(settings.behaviour, Behaviour::default());
    }

    #[test]
    fn env_overrides_and_off_switch() {
        let env = meta_env()
            .with("SIM_WEBHOOK_URL", "off")
            .with("SIM_RATE", "5")
            .with("SIM_UNDELIVERABLE_PREFIXES", "+9199, 4477 ,");
        let settings = SimSettings::from_env(&env).unwrap();
        assert_eq!(settings.webhook_url, None);
        assert_eq!(settings.behaviour.rate_per_second, 5);
        assert_eq!(settings.behaviour.undeliverable_prefixes, ["9199", "4477"]);
        assert!(settings.behaviour.is_undeliverable("919912345678"));
    }

    #[test]
    fn razorpay_defaults_and_overrides() {
        let defaults = RazorpaySimSettings::from_env(&meta_env()).unwrap();
        assert_eq!(defaults, RazorpaySimSettings::default());
        assert_eq!(defaults.key_id, "rzp_test_kloyst_dev");
        assert_eq!(
            defaults.webhook_url.as_deref(),
            Some("http://127.0.0.1:3002/webhook/payment")
        );
        let env = meta_env()
            .with("RAZORPAY_KEY_ID", "rzp_test_other")
            .with("RAZORPAY_WEBHOOK_SECRET", "whsec")
            .with("SIM_PAYMENT_WEBHOOK_URL", "none");
        let custom = RazorpaySimSettings::from_env(&env).unwrap();
        assert_eq!(custom.key_id, "rzp_test_other");
        assert_eq!(custom.key_secret, "dev-razorpay-key-secret");
        assert_eq!(custom.webhook_secret, "whsec");
        assert_eq!(custom.webhook_url, None);
        let bad = meta_env().with("SIM_PAYMENT_WEBHOOK_URL", "not a url");
        assert!(RazorpaySimSettings::from_env(&bad).is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(SimSettings::from_env(&meta_env().with("SIM_FAILED_RATE", "2")).is_err());
        assert!(SimSettings::from_env(&meta_env().with("SIM_BATCH_MAX", "1001")).is_err());
        assert!(SimSettings::from_env(&meta_env().without("META_APP_SECRET")).is_err());
    }

    #[test]
    fn empty_reject_marker_rejects_nothing() {
        let b = Behaviour {
            reject_names_containing: String::new(),
            ..Behaviour::default()
        };
        assert!(!b.rejects_template("anything"));
        assert!(Behaviour::default().rejects_template("promo_reject_me"));
    }
}
