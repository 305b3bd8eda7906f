//! Recharge limits.

use kloyst_config::{ConfigError, Env};
use rust_decimal::Decimal;

/// `RECHARGE_MIN_AMOUNT` / `RECHARGE_MAX_AMOUNT`, in the wallet's currency (INR), whole
/// paise at most.
#[derive(Clone, Debug)]
pub struct RechargeSettings {
    pub min_amount: Decimal,
    pub max_amount: Decimal,
}

impl Default for RechargeSettings {
    fn default() -> Self {
        Self {
            min_amount: Decimal::from(100),
            max_amount: Decimal::from(500_000),
        }
    }
}

impl RechargeSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let settings = Self {
            min_amount: env.parse_or("RECHARGE_MIN_AMOUNT", defaults.min_amount)?,
            max_amount: env.parse_or("RECHARGE_MAX_AMOUNT", defaults.max_amount)?,
        };
        // Razorpay's own floor is INR 1.00.
        if settings.min_amount < Decimal::ONE || settings.max_amount < settings.min_amount {
            return Err(ConfigError::Invalid {
                var: "RECHARGE_MIN_AMOUNT",
                reason: "need 1 <= RECHARGE_MIN_AMOUNT <= RECHARGE_MAX_AMOUNT".to_owned(),
            });
        }
        Ok(settings)
    }
}
