//! What a contact's attributes may hold: a flat object of at most [`MAX_KEYS`] keys, each a
//! short name, each value a string, number or boolean of bounded size. Bounded so that a
//! contact row stays small (a campaign reads millions of them) and personalisation stays
//! predictable.

use serde_json::{Map, Value};

pub const MAX_KEYS: usize = 50;
pub const MAX_KEY_CHARS: usize = 64;
pub const MAX_VALUE_CHARS: usize = 1_000;

/// Why an attribute map was refused: a stable code, a message, and the key at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeProblem {
    pub code: &'static str,
    pub message: String,
    pub key: Option<String>,
}

/// Checks `attributes`; `null` values are allowed when `allow_null` (a PATCH removing a key).
pub fn check(attributes: &Map<String, Value>, allow_null: bool) -> Result<(), AttributeProblem> {
    if attributes.len() > MAX_KEYS {
        return Err(AttributeProblem {
            code: "TOO_MANY_ATTRIBUTES",
            message: format!("at most {MAX_KEYS} attributes per contact"),
            key: None,
        });
    }
    for (key, value) in attributes {
        let problem = |code, message: String| AttributeProblem {
            code,
            message,
            key: Some(key.clone()),
        };
        if key.trim().is_empty() || key.chars().count() > MAX_KEY_CHARS {
            return Err(problem(
                "ATTRIBUTE_NAME_INVALID",
                format!("attribute names are 1–{MAX_KEY_CHARS} characters"),
            ));
        }
        match value {
            Value::String(s) if s.chars().count() > MAX_VALUE_CHARS => {
                return Err(problem(
                    "ATTRIBUTE_TOO_LONG",
                    format!("attribute {key:?} is longer than {MAX_VALUE_CHARS} characters"),
                ))
            }
            Value::String(_) | Value::Number(_) | Value::Bool(_) => {}
            Value::Null if allow_null => {}
            _ => {
                return Err(problem(
                    "ATTRIBUTE_TYPE",
                    format!("attribute {key:?} must be a string, a number or a boolean"),
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn flat_scalars_pass_and_everything_else_names_its_key() {
        assert!(check(&map(json!({"name": "Asha", "age": 31, "vip": true})), false).is_ok());
        let nested = check(&map(json!({"address": {"city": "Pune"}})), false);
        assert_eq!(
            nested.map_err(|p| (p.code, p.key)),
            Err(("ATTRIBUTE_TYPE", Some("address".into())))
        );
        let long = check(
            &map(json!({"note": "x".repeat(MAX_VALUE_CHARS + 1)})),
            false,
        );
        assert_eq!(long.map_err(|p| p.code), Err("ATTRIBUTE_TOO_LONG"));
        assert!(check(&map(json!({"city": null})), true).is_ok());
        assert!(check(&map(json!({"city": null})), false).is_err());
        assert_eq!(
            check(&map(json!({"": "x"})), false).map_err(|p| p.code),
            Err("ATTRIBUTE_NAME_INVALID")
        );
    }
}
