//! The identity settings, read from the environment with the defaults of the issue.

use std::time::Duration;

use kloyst_config::sections::AuthSettings;
use kloyst_config::{ConfigError, Env};

#[derive(Clone, Debug)]
pub struct IdentitySettings {
    /// `JWT_SECRET`, `JWT_ACCESS_TTL`, `JWT_REFRESH_TTL`.
    pub auth: AuthSettings,
    /// `OTP_TTL` (5m): how long an email-verification code is valid.
    pub otp_ttl: Duration,
    /// `OTP_RESEND_COOLDOWN` (60s) between two codes for one address.
    pub otp_resend_cooldown: Duration,
    /// `OTP_MAX_ATTEMPTS` (5) wrong tries per code, then it is burnt.
    pub otp_max_attempts: u32,
    /// `OTP_HOURLY_CAP_EMAIL` (5) codes per address per hour.
    pub otp_hourly_cap_per_email: u32,
    /// `OTP_HOURLY_CAP_IP` (30) codes per client IP per hour.
    pub otp_hourly_cap_per_ip: u32,
    /// `LOGIN_MAX_FAILURES_EMAIL` (10) failed logins per address per window.
    pub login_max_failures_per_email: u32,
    /// `LOGIN_MAX_FAILURES_IP` (100) failed logins per client IP per window.
    pub login_max_failures_per_ip: u32,
    /// `LOGIN_FAILURE_WINDOW` (15m).
    pub login_failure_window: Duration,
    /// `REDIS_KEY_PREFIX` ("kloyst"): every Redis key of this crate starts with it.
    pub redis_prefix: String,
    /// `INVITE_TTL` (72h): how long an invitation code is valid.
    pub invite_ttl: Duration,
}

impl IdentitySettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let settings = Self {
            auth: AuthSettings::from_env(env)?,
            otp_ttl: env.duration_or("OTP_TTL", Duration::from_secs(5 * 60))?,
            otp_resend_cooldown: env.duration_or("OTP_RESEND_COOLDOWN", Duration::from_secs(60))?,
            otp_max_attempts: env.parse_or("OTP_MAX_ATTEMPTS", 5)?,
            otp_hourly_cap_per_email: env.parse_or("OTP_HOURLY_CAP_EMAIL", 5)?,
            otp_hourly_cap_per_ip: env.parse_or("OTP_HOURLY_CAP_IP", 30)?,
            login_max_failures_per_email: env.parse_or("LOGIN_MAX_FAILURES_EMAIL", 10)?,
            login_max_failures_per_ip: env.parse_or("LOGIN_MAX_FAILURES_IP", 100)?,
            login_failure_window: env
                .duration_or("LOGIN_FAILURE_WINDOW", Duration::from_secs(15 * 60))?,
            redis_prefix: env
                .optional("REDIS_KEY_PREFIX")
                .unwrap_or("kloyst")
                .to_owned(),
            invite_ttl: env.duration_or("INVITE_TTL", Duration::from_secs(72 * 3600))?,
        };
        settings.check()?;
        Ok(settings)
    }

    /// Values that would silently disable a protection are refused at start-up.
    fn check(&self) -> Result<(), ConfigError> {
        let positive = |var: &'static str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::Invalid {
                    var,
                    reason: "must be greater than zero".into(),
                })
            }
        };
        // Redis expiries are in whole milliseconds; below that a key would never expire.
        let ms = |d: Duration| d.as_millis() >= 1;
        positive("OTP_TTL", ms(self.otp_ttl))?;
        positive("INVITE_TTL", ms(self.invite_ttl))?;
        positive("LOGIN_FAILURE_WINDOW", ms(self.login_failure_window))?;
        positive("OTP_MAX_ATTEMPTS", self.otp_max_attempts > 0)?;
        positive("OTP_HOURLY_CAP_EMAIL", self.otp_hourly_cap_per_email > 0)?;
        positive("OTP_HOURLY_CAP_IP", self.otp_hourly_cap_per_ip > 0)?;
        positive(
            "LOGIN_MAX_FAILURES_EMAIL",
            self.login_max_failures_per_email > 0,
        )?;
        positive("LOGIN_MAX_FAILURES_IP", self.login_max_failures_per_ip > 0)?;
        positive("JWT_ACCESS_TTL", self.auth.access_ttl.as_secs() > 0)?;
        positive("JWT_REFRESH_TTL", self.auth.refresh_ttl.as_secs() > 0)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env::from_pairs([("JWT_SECRET", "x".repeat(40))])
    }

    #[test]
    fn defaults_follow_the_issue() {
        let s = IdentitySettings::from_env(&env()).unwrap();
        assert_eq!(s.otp_ttl, Duration::from_secs(300));
        assert_eq!(s.otp_resend_cooldown, Duration::from_secs(60));
        assert_eq!(s.otp_max_attempts, 5);
        assert_eq!(s.otp_hourly_cap_per_email, 5);
        assert_eq!(s.otp_hourly_cap_per_ip, 30);
        assert_eq!(s.login_max_failures_per_email, 10);
        assert_eq!(s.login_max_failures_per_ip, 100);
        assert_eq!(s.login_failure_window, Duration::from_secs(900));
        assert_eq!(s.redis_prefix, "kloyst");
        assert_eq!(s.invite_ttl, Duration::from_secs(72 * 3600));
    }

    #[test]
    fn values_are_read_and_checked() {
        let s = IdentitySettings::from_env(
            &env()
                .with("OTP_TTL", "2s")
                .with("REDIS_KEY_PREFIX", "t1")
                .with("OTP_MAX_ATTEMPTS", "3"),
        )
        .unwrap();
        assert_eq!(s.otp_ttl, Duration::from_secs(2));
        assert_eq!(s.redis_prefix, "t1");
        assert_eq!(s.otp_max_attempts, 3);
        let err = IdentitySettings::from_env(&env().with("OTP_MAX_ATTEMPTS", "0")).unwrap_err();
        assert!(err.to_string().contains("OTP_MAX_ATTEMPTS"));
        assert!(IdentitySettings::from_env(&Env::default()).is_err());
    }
}
