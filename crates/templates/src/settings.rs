//! Configuration of the template submitter (worker-pool).

use kloyst_config::sections::MetaApiSettings;
use kloyst_config::{ConfigError, Env};
use kloyst_meta::MetaClientSettings;

/// `META_*` (the shared WABA and its token), `META_HTTP_TIMEOUT`, `TEMPLATE_SUBMIT_PER_HOUR`.
#[derive(Clone, Debug)]
pub struct TemplateSubmitterSettings {
    /// `META_WABA_ID`: the shared WABA every template is created under.
    pub waba_id: String,
    pub client: MetaClientSettings,
    /// `TEMPLATE_SUBMIT_PER_HOUR` (100): Meta creates at most 100 templates per WABA per
    /// hour; more wait in the queue instead of failing.
    pub per_hour: u32,
}

impl TemplateSubmitterSettings {
    /// `None` when neither `META_ACCESS_TOKEN` nor `META_WABA_ID` is set (a development
    /// machine without Meta); set partly or wrongly is an error.
    pub fn from_env_if_configured(env: &Env) -> Result<Option<Self>, ConfigError> {
        if env.optional("META_ACCESS_TOKEN").is_none() && env.optional("META_WABA_ID").is_none() {
            return Ok(None);
        }
        Self::from_env(env).map(Some)
    }

    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let api = MetaApiSettings::from_env(env)?;
        let per_hour = env.parse_or("TEMPLATE_SUBMIT_PER_HOUR", 100)?;
        if per_hour == 0 {
            return Err(ConfigError::Invalid {
                var: "TEMPLATE_SUBMIT_PER_HOUR",
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(Self {
            waba_id: api.waba_id.clone(),
            client: MetaClientSettings::from_env(&api, env)?,
            per_hour,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn meta_env() -> Env {
        Env::from_pairs([
            ("META_ACCESS_TOKEN", "token"),
            ("META_WABA_ID", "1001"),
            ("META_PHONE_NUMBER_ID", "2002"),
        ])
    }

    #[test]
    fn defaults_and_limits() {
        let settings = TemplateSubmitterSettings::from_env(&meta_env()).unwrap();
        assert_eq!(
            (settings.waba_id.as_str(), settings.per_hour),
            ("1001", 100)
        );
        let env = meta_env().with("TEMPLATE_SUBMIT_PER_HOUR", "0");
        assert!(TemplateSubmitterSettings::from_env(&env).is_err());
    }

    #[test]
    fn unconfigured_is_none_and_half_configured_is_an_error() {
        let empty = Env::from_pairs([("UNRELATED", "x")]);
        assert!(TemplateSubmitterSettings::from_env_if_configured(&empty)
            .unwrap()
            .is_none());
        assert!(
            TemplateSubmitterSettings::from_env_if_configured(&meta_env())
                .unwrap()
                .is_some()
        );
        let half = meta_env().without("META_ACCESS_TOKEN");
        assert!(TemplateSubmitterSettings::from_env_if_configured(&half).is_err());
    }
}
