//! The WABA's message templates as the simulator knows them.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::graph_error::GraphError;
use crate::ids;

#[derive(Clone, Debug, Serialize)]
pub struct TemplateRecord {
    pub id: u64,
    pub name: String,
    pub language: String,
    /// Upper-case, as Meta answers it: MARKETING, UTILITY, AUTHENTICATION.
    pub category: String,
    pub status: String,
    pub components: Value,
    /// Distinct `{{…}}` placeholders in the body; `None` when the body is unknown (seeded).
    #[serde(skip)]
    pub body_params: Option<usize>,
}

impl TemplateRecord {
    pub fn is_sendable(&self) -> bool {
        self.status == "APPROVED"
    }

    /// The `pricing.category` of a send of this template.
    pub fn pricing_category(&self) -> String {
        self.category.to_ascii_lowercase()
    }
}

/// What `POST /message_templates` and `POST /_sim/templates` ask for.
#[derive(Clone, Debug)]
pub struct NewTemplate {
    pub name: String,
    pub language: String,
    pub category: String,
    pub status: String,
    pub components: Value,
}

#[derive(Debug, Default)]
pub struct TemplateStore {
    by_id: HashMap<u64, TemplateRecord>,
    by_name_language: HashMap<(String, String), u64>,
}

impl TemplateStore {
    /// Checks Meta's rules and stores the template with a fresh id.
    pub fn create(&mut self, new: NewTemplate) -> Result<TemplateRecord, GraphError> {
        validate_name(&new.name)?;
        if new.language.trim().is_empty() {
            return Err(GraphError::missing_parameter("language"));
        }
        let category = parse_category(&new.category)?;
        let key = (new.name.clone(), new.language.clone());
        if self.by_name_language.contains_key(&key) {
            return Err(GraphError::template_exists(&new.language));
        }
        let record = TemplateRecord {
            id: ids::template_id(),
            body_params: body_text(&new.components).map(count_placeholders),
            name: new.name,
            language: new.language,
            category,
            status: new.status,
            components: new.components,
        };
        self.by_name_language.insert(key, record.id);
        self.by_id.insert(record.id, record.clone());
        Ok(record)
    }

    pub fn get(&self, id: u64) -> Option<&TemplateRecord> {
        self.by_id.get(&id)
    }

    pub fn find(&self, name: &str, language: &str) -> Option<&TemplateRecord> {
        self.by_name_language
            .get(&(name.to_owned(), language.to_owned()))
            .and_then(|id| self.by_id.get(id))
    }

    /// Sets the status; `REINSTATED`/`UNARCHIVED` make a template sendable again.
    pub fn set_status(&mut self, id: u64, event: &str) -> Option<TemplateRecord> {
        let record = self.by_id.get_mut(&id)?;
        record.status = match event {
            "REINSTATED" | "UNARCHIVED" => "APPROVED".to_owned(),
            other => other.to_owned(),
        };
        Some(record.clone())
    }

    /// Newest first is not needed by anyone; id order keeps paging stable.
    pub fn list(&self) -> Vec<TemplateRecord> {
        let mut all: Vec<_> = self.by_id.values().cloned().collect();
        all.sort_by(|a, b| (&a.name, &a.language).cmp(&(&b.name, &b.language)));
        all
    }
}

/// Lowercase letters, digits and `_`, at most 512 characters.
fn validate_name(name: &str) -> Result<(), GraphError> {
    if name.is_empty() {
        return Err(GraphError::missing_parameter("name"));
    }
    let valid = name.len() <= 512
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(GraphError::invalid_parameter(
            "name: template names may only contain lowercase alphanumeric characters and \
             underscores, at most 512 characters",
        ))
    }
}

fn parse_category(raw: &str) -> Result<String, GraphError> {
    let upper = raw.trim().to_ascii_uppercase();
    match upper.as_str() {
        "MARKETING" | "UTILITY" | "AUTHENTICATION" => Ok(upper),
        "" => Err(GraphError::missing_parameter("category")),
        _ => Err(GraphError::invalid_parameter(
            "category: must be one of AUTHENTICATION, MARKETING, UTILITY",
        )),
    }
}

fn body_text(components: &Value) -> Option<&str> {
    components.as_array()?.iter().find_map(|c| {
        let is_body = c
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("body"));
        if is_body {
            c.get("text").and_then(Value::as_str)
        } else {
            None
        }
    })
}

/// Distinct `{{1}}` / `{{first_name}}` placeholders.
pub fn count_placeholders(text: &str) -> usize {
    let mut seen: Vec<&str> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let inner = after[..end].trim();
        if !inner.is_empty() && !seen.contains(&inner) {
            seen.push(inner);
        }
        rest = &after[end + 2..];
    }
    seen.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn new(name: &str, language: &str) -> NewTemplate {
        NewTemplate {
            name: name.to_owned(),
            language: language.to_owned(),
            category: "utility".to_owned(),
            status: "PENDING".to_owned(),
            components: json!([{"type": "BODY", "text": "Hi {{1}}, order {{2}}; again {{1}}"}]),
        }
    }

    #[test]
    fn placeholders_are_counted_once_each() {
        assert_eq!(count_placeholders("Hi {{1}} {{2}} {{1}}"), 2);
        assert_eq!(count_placeholders("Thanks {{first_name}}!"), 1);
        assert_eq!(count_placeholders("no params {{"), 0);
    }

    #[test]
    fn create_applies_metas_rules() {
        let mut store = TemplateStore::default();
        let created = store.create(new("order_update", "en_US")).unwrap();
        assert_eq!(created.category, "UTILITY");
        assert_eq!(created.body_params, Some(2));
        let duplicate = store.create(new("order_update", "en_US")).unwrap_err();
        assert_eq!(duplicate.subcode(), Some(2388024));
        assert!(store.create(new("order_update", "hi")).is_ok());
        assert_eq!(store.create(new("Bad Name", "en")).unwrap_err().code, 100);
        let mut bad_category = new("x", "en");
        bad_category.category = "promo".into();
        assert_eq!(store.create(bad_category).unwrap_err().code, 100);
        assert!(store
            .set_status(created.id, "APPROVED")
            .unwrap()
            .is_sendable());
    }
}
