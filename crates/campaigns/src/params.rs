//! A campaign's template parameters: what each `{{n}}` of the template's body becomes.
//!
//! Stored in `campaigns.parameters` as `{"1": {"attribute": "name", "fallback": "there"},
//! "2": {"literal": "50%"}}`; validated at launch against the template's `param_count`,
//! rendered per recipient at send time from the contact's attributes.

use std::collections::BTreeMap;

use kloyst_core::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Meta refuses longer body parameters.
pub const MAX_PARAMETER_LEN: usize = 1024;

/// One `{{n}}`: a contact attribute (with a literal used when the contact lacks it) or a
/// literal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Parameter {
    Attribute {
        attribute: String,
        #[serde(default)]
        fallback: Option<String>,
    },
    Literal {
        literal: String,
    },
}

/// `{{1}}..{{n}}` → [`Parameter`], keyed by the placeholder's number as a string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Parameters(pub BTreeMap<String, Parameter>);

impl Parameters {
    /// Every placeholder `1..=param_count` mapped, nothing else; attribute names sane;
    /// literals and fallbacks non-empty and within Meta's length. One error per problem.
    pub fn validate(&self, param_count: usize) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let error = |field: String, code: &str, message: String| FieldError {
            field,
            code: code.to_owned(),
            message,
        };
        for n in 1..=param_count {
            if !self.0.contains_key(&n.to_string()) {
                errors.push(error(
                    format!("parameters.{n}"),
                    "required",
                    format!(
                        "the template has {param_count} parameter(s); {{{{{n}}}}} is not mapped"
                    ),
                ));
            }
        }
        for (key, parameter) in &self.0 {
            let field = format!("parameters.{key}");
            let in_range = key
                .parse::<usize>()
                .is_ok_and(|n| n >= 1 && n <= param_count && n.to_string() == *key);
            if !in_range {
                errors.push(error(
                    field,
                    "unknown",
                    format!("the template has parameters 1..={param_count} only"),
                ));
                continue;
            }
            let texts: Vec<&str> = match parameter {
                Parameter::Attribute {
                    attribute,
                    fallback,
                } => {
                    let sane = !attribute.is_empty()
                        && attribute.len() <= 64
                        && attribute
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                    if !sane {
                        errors.push(error(
                            format!("{field}.attribute"),
                            "format",
                            "an attribute name: 1-64 letters, digits, _ or -".to_owned(),
                        ));
                    }
                    fallback.as_deref().into_iter().collect()
                }
                Parameter::Literal { literal } => vec![literal.as_str()],
            };
            for text in texts {
                if text.trim().is_empty() || text.chars().count() > MAX_PARAMETER_LEN {
                    errors.push(error(
                        field.clone(),
                        "length",
                        format!("1 to {MAX_PARAMETER_LEN} characters, not blank"),
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The body parameters for one contact, in order. `None` when an attribute is missing
    /// (or blank) and has no fallback: the recipient cannot be sent (FAILED, not retried).
    pub fn render(&self, attributes: &Map<String, Value>) -> Option<Vec<String>> {
        let mut values = Vec::with_capacity(self.0.len());
        for n in 1..=self.0.len() {
            let value = match self.0.get(&n.to_string())? {
                Parameter::Literal { literal } => literal.clone(),
                Parameter::Attribute {
                    attribute,
                    fallback,
                } => match attributes.get(attribute).and_then(attribute_text) {
                    Some(text) => text,
                    None => fallback.clone()?,
                },
            };
            values.push(value.chars().take(MAX_PARAMETER_LEN).collect());
        }
        Some(values)
    }
}

/// An attribute as text: strings trimmed, numbers and booleans as written; blank = missing.
fn attribute_text(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parameters(value: Value) -> Parameters {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn attributes_fall_back_and_literals_stay() {
        let p = parameters(json!({
            "1": {"attribute": "name", "fallback": "there"},
            "2": {"literal": "50%"},
            "3": {"attribute": "points"}
        }));
        assert_eq!(p.validate(3), Ok(()));
        let with_name = json!({"name": " Asha ", "points": 120});
        assert_eq!(
            p.render(with_name.as_object().unwrap()),
            Some(vec!["Asha".into(), "50%".into(), "120".into()])
        );
        let without_name = json!({"name": "", "points": "7"});
        assert_eq!(
            p.render(without_name.as_object().unwrap()),
            Some(vec!["there".into(), "50%".into(), "7".into()])
        );
        // No points and no fallback: cannot be rendered.
        assert_eq!(p.render(json!({}).as_object().unwrap()), None);
    }

    #[test]
    fn every_placeholder_must_be_mapped_and_nothing_else() {
        let p = parameters(
            json!({"1": {"literal": "x"}, "3": {"literal": "y"}, "01": {"literal": "z"}}),
        );
        let errors = p.validate(2).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"parameters.2"), "{fields:?}");
        assert!(fields.contains(&"parameters.3"), "{fields:?}");
        assert!(fields.contains(&"parameters.01"), "{fields:?}");
        let blank = parameters(json!({"1": {"literal": "  "}}));
        assert_eq!(blank.validate(1).unwrap_err()[0].code, "length");
        let odd = parameters(json!({"1": {"attribute": "na me"}}));
        assert_eq!(odd.validate(1).unwrap_err()[0].code, "format");
    }

    #[test]
    fn an_unknown_shape_does_not_parse() {
        assert!(serde_json::from_value::<Parameters>(json!({"1": {"value": "x"}})).is_err());
        assert!(serde_json::from_value::<Parameters>(json!({"1": "x"})).is_err());
    }
}
