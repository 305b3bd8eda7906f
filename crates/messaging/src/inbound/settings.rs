//! Configuration of inbound processing, read once at start-up.

use kloyst_config::{ConfigError, Env};
use uuid::Uuid;

/// Always opt-out keywords, whatever `OPT_OUT_KEYWORDS` says: WhatsApp's policy expects a
/// customer's STOP to work, so configuration can add words but never remove these.
const MANDATORY_OPT_OUT: [&str; 2] = ["STOP", "UNSUBSCRIBE"];
const DEFAULT_OPT_IN: &str = "START";
/// A keyword is a short word or phrase; anything longer is a configuration mistake.
const MAX_KEYWORD_CHARS: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundSettings {
    /// The vendor that receives messages from numbers no vendor has messaged yet; `None`
    /// leaves them unrouted (the raw webhook stays in `webhook_inbox`).
    pub default_vendor_id: Option<Uuid>,
    /// Matched case-insensitively against a message's trimmed text.
    pub opt_out_keywords: Vec<String>,
    pub opt_in_keywords: Vec<String>,
}

impl InboundSettings {
    /// `INBOUND_DEFAULT_VENDOR_ID` (optional uuid), `OPT_OUT_KEYWORDS` (comma list, default
    /// `STOP,UNSUBSCRIBE`, always including both), `OPT_IN_KEYWORDS` (default `START`).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let default_vendor_id = env
            .optional("INBOUND_DEFAULT_VENDOR_ID")
            .map(|raw| {
                Uuid::parse_str(raw).map_err(|e| ConfigError::Invalid {
                    var: "INBOUND_DEFAULT_VENDOR_ID",
                    reason: format!("{e} (got {raw:?})"),
                })
            })
            .transpose()?;
        let mut opt_out_keywords: Vec<String> =
            MANDATORY_OPT_OUT.iter().map(|k| (*k).to_owned()).collect();
        let configured = keyword_list(env, "OPT_OUT_KEYWORDS", "")?;
        for keyword in configured {
            push_unique(&mut opt_out_keywords, keyword);
        }
        let opt_in_keywords = keyword_list(env, "OPT_IN_KEYWORDS", DEFAULT_OPT_IN)?;
        if let Some(both) = opt_in_keywords
            .iter()
            .find(|k| opt_out_keywords.iter().any(|o| same_keyword(o, k)))
        {
            return Err(ConfigError::Invalid {
                var: "OPT_IN_KEYWORDS",
                reason: format!("{both:?} is also an opt-out keyword"),
            });
        }
        Ok(Self {
            default_vendor_id,
            opt_out_keywords,
            opt_in_keywords,
        })
    }
}

/// The comma-separated, trimmed, de-duplicated (case-insensitively) words of `var`.
fn keyword_list(env: &Env, var: &'static str, default: &str) -> Result<Vec<String>, ConfigError> {
    let raw = env.optional(var).unwrap_or(default);
    let mut keywords = Vec::new();
    for word in raw.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        if word.chars().count() > MAX_KEYWORD_CHARS {
            return Err(ConfigError::Invalid {
                var,
                reason: format!("keyword {word:?} is longer than {MAX_KEYWORD_CHARS} characters"),
            });
        }
        push_unique(&mut keywords, word.to_owned());
    }
    Ok(keywords)
}

fn push_unique(keywords: &mut Vec<String>, keyword: String) {
    if !keywords.iter().any(|k| same_keyword(k, &keyword)) {
        keywords.push(keyword);
    }
}

pub(crate) fn same_keyword(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<InboundSettings, ConfigError> {
        InboundSettings::from_env(&Env::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn defaults() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.default_vendor_id, None);
        assert_eq!(s.opt_out_keywords, ["STOP", "UNSUBSCRIBE"]);
        assert_eq!(s.opt_in_keywords, ["START"]);
    }

    #[test]
    fn stop_and_unsubscribe_survive_a_list_that_omits_them() {
        let s = settings(&[
            ("OPT_OUT_KEYWORDS", " band karo , stop,Cancel,,cancel"),
            ("OPT_IN_KEYWORDS", "start, Subscribe"),
            (
                "INBOUND_DEFAULT_VENDOR_ID",
                "0190f3c4-2b7a-7000-8000-000000000001",
            ),
        ])
        .unwrap();
        assert_eq!(
            s.opt_out_keywords,
            ["STOP", "UNSUBSCRIBE", "band karo", "Cancel"]
        );
        assert_eq!(s.opt_in_keywords, ["start", "Subscribe"]);
        assert!(s.default_vendor_id.is_some());
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(matches!(
            settings(&[("INBOUND_DEFAULT_VENDOR_ID", "vendor-1")]),
            Err(ConfigError::Invalid {
                var: "INBOUND_DEFAULT_VENDOR_ID",
                ..
            })
        ));
        assert!(matches!(
            settings(&[("OPT_IN_KEYWORDS", "START,stop")]),
            Err(ConfigError::Invalid {
                var: "OPT_IN_KEYWORDS",
                ..
            })
        ));
        let long = "x".repeat(65);
        assert!(matches!(
            settings(&[("OPT_OUT_KEYWORDS", long.as_str())]),
            Err(ConfigError::Invalid {
                var: "OPT_OUT_KEYWORDS",
                ..
            })
        ));
    }
}
