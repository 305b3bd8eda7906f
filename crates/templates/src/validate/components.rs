//! Meta's rules for each component: HEADER (TEXT ≤ 60 characters with at most one
//! placeholder, or a media format with an example handle), BODY (≤ 1,024 characters,
//! placeholders with one example each), FOOTER (≤ 60 characters, no placeholders) and
//! BUTTONS (≤ 10: QUICK_REPLY, URL, PHONE_NUMBER, COPY_CODE).

use kloyst_core::FieldError;
use serde_json::{Map, Value};

use super::placeholders::{self, Params};
use super::ParameterFormat;

pub(crate) const BODY_MAX_CHARS: usize = 1_024;
pub(crate) const HEADER_MAX_CHARS: usize = 60;
pub(crate) const FOOTER_MAX_CHARS: usize = 60;
pub(crate) const BUTTON_TEXT_MAX_CHARS: usize = 25;
pub(crate) const MAX_BUTTONS: usize = 10;
pub(crate) const MAX_URL_BUTTONS: usize = 2;
pub(crate) const URL_MAX_CHARS: usize = 2_000;
pub(crate) const PHONE_MAX_CHARS: usize = 20;
pub(crate) const COPY_CODE_MAX_CHARS: usize = 15;
/// The table's limit on `param_count`.
pub(crate) const MAX_PARAMS: usize = 100;

/// Collects field errors under a path prefix.
pub(crate) struct Errors<'e> {
    pub list: &'e mut Vec<FieldError>,
}

impl Errors<'_> {
    pub fn push(&mut self, field: impl Into<String>, code: &str, message: impl Into<String>) {
        self.list.push(FieldError::new(field, code, message));
    }
}

/// A required string member of `object`; `None` (and an error) when absent or not a string.
fn text_member<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    path: &str,
    errors: &mut Errors<'_>,
) -> Option<&'a str> {
    match object.get(key) {
        None | Some(Value::Null) => {
            errors.push(
                format!("{path}.{key}"),
                "required",
                format!("`{key}` is required"),
            );
            None
        }
        Some(Value::String(text)) if text.trim().is_empty() => {
            errors.push(
                format!("{path}.{key}"),
                "required",
                format!("`{key}` must not be blank"),
            );
            None
        }
        Some(Value::String(text)) => Some(text),
        Some(_) => {
            errors.push(
                format!("{path}.{key}"),
                "not_a_string",
                format!("`{key}` must be a string"),
            );
            None
        }
    }
}

fn too_long(text: &str, max: usize, field: String, errors: &mut Errors<'_>) -> bool {
    let long = text.chars().count() > max;
    if long {
        errors.push(field, "too_long", format!("at most {max} characters"));
    }
    long
}

/// `example.<key>` of a component, if any.
fn example<'a>(component: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    component.get("example").and_then(|e| e.get(key))
}

fn non_blank_strings(values: &[Value]) -> bool {
    values
        .iter()
        .all(|v| v.as_str().is_some_and(|s| !s.trim().is_empty()))
}

/// The BODY at `path`; the number of its parameters.
pub(crate) fn body(
    component: &Map<String, Value>,
    path: &str,
    format: ParameterFormat,
    errors: &mut Errors<'_>,
) -> usize {
    let Some(text) = text_member(component, "text", path, errors) else {
        return 0;
    };
    let field = format!("{path}.text");
    if too_long(text, BODY_MAX_CHARS, field.clone(), errors) {
        return 0;
    }
    let found = match placeholders::scan(text, format) {
        Ok(found) => found,
        Err((code, message)) => {
            errors.push(field, code, message);
            return 0;
        }
    };
    let params = match placeholders::params(&found, format)
        .and_then(|params| placeholders::check_body_placement(text, &found).map(|()| params))
    {
        Ok(params) => params,
        Err((code, message)) => {
            errors.push(field, code, message);
            return 0;
        }
    };
    if params.count() > MAX_PARAMS {
        errors.push(
            field,
            "too_many_placeholders",
            format!("at most {MAX_PARAMS} placeholders"),
        );
        return 0;
    }
    match &params {
        Params::Positional(n) => {
            let examples = example(component, "body_text");
            let fits = match examples {
                None => *n == 0,
                Some(Value::Array(sets)) => match sets.as_slice() {
                    [Value::Array(values)] => values.len() == *n && non_blank_strings(values),
                    [] => *n == 0,
                    _ => false,
                },
                Some(_) => false,
            };
            if !fits {
                errors.push(
                    format!("{path}.example.body_text"),
                    "examples_mismatch",
                    format!("give one set of exactly {n} example value(s): [[\"…\", …]]"),
                );
            }
        }
        Params::Named(names) => {
            named_examples(component, "body_text_named_params", names, path, errors);
        }
    }
    params.count()
}

/// `example.<key>` = `[{param_name, example}, …]`, one per name, each non-blank.
fn named_examples(
    component: &Map<String, Value>,
    key: &str,
    names: &[String],
    path: &str,
    errors: &mut Errors<'_>,
) {
    let given = example(component, key).and_then(Value::as_array);
    let fits = match given {
        None => names.is_empty(),
        Some(items) => {
            let mut given_names: Vec<&str> = Vec::with_capacity(items.len());
            let all_valid = items.iter().all(|item| {
                let name = item.get("param_name").and_then(Value::as_str);
                let value = item.get("example").and_then(Value::as_str);
                match (name, value) {
                    (Some(name), Some(value)) if !value.trim().is_empty() => {
                        given_names.push(name);
                        true
                    }
                    _ => false,
                }
            });
            given_names.sort_unstable();
            all_valid
                && given_names
                    .iter()
                    .copied()
                    .eq(names.iter().map(String::as_str))
        }
    };
    if !fits {
        errors.push(
            format!("{path}.example.{key}"),
            "examples_mismatch",
            format!(
                "give one {{\"param_name\", \"example\"}} per placeholder: {}",
                names.join(", ")
            ),
        );
    }
}

/// The HEADER at `path`; returns its `format` upper-cased, when valid.
pub(crate) fn header(
    component: &Map<String, Value>,
    path: &str,
    format: ParameterFormat,
    errors: &mut Errors<'_>,
) -> Option<String> {
    let kind = text_member(component, "format", path, errors)?.to_ascii_uppercase();
    match kind.as_str() {
        "TEXT" => {
            let text = text_member(component, "text", path, errors)?;
            let field = format!("{path}.text");
            if too_long(text, HEADER_MAX_CHARS, field.clone(), errors) {
                return Some(kind);
            }
            let found = match placeholders::scan(text, format) {
                Ok(found) => found,
                Err((code, message)) => {
                    errors.push(field, code, message);
                    return Some(kind);
                }
            };
            match (found.as_slice(), format) {
                ([], _) => {}
                ([one], ParameterFormat::Positional) => {
                    if one.key != placeholders::Key::Number(1) {
                        errors.push(field, "placeholder_gap", "a header placeholder is {{1}}");
                    } else {
                        let fits = matches!(example(component, "header_text"),
                            Some(Value::Array(values)) if values.len() == 1 && non_blank_strings(values));
                        if !fits {
                            errors.push(
                                format!("{path}.example.header_text"),
                                "examples_mismatch",
                                "give exactly one example value: [\"…\"]",
                            );
                        }
                    }
                }
                ([one], ParameterFormat::Named) => {
                    if let placeholders::Key::Name(name) = one.key {
                        named_examples(
                            component,
                            "header_text_named_params",
                            &[name.to_owned()],
                            path,
                            errors,
                        );
                    }
                }
                _ => errors.push(
                    field,
                    "too_many_placeholders",
                    "a header has at most one placeholder",
                ),
            }
        }
        "IMAGE" | "VIDEO" | "DOCUMENT" => {
            let fits = matches!(example(component, "header_handle"),
                Some(Value::Array(handles)) if !handles.is_empty() && non_blank_strings(handles));
            if !fits {
                errors.push(
                    format!("{path}.example.header_handle"),
                    "required",
                    "a media header needs an uploaded sample: [\"<handle>\"]",
                );
            }
            if component.contains_key("text") {
                errors.push(
                    format!("{path}.text"),
                    "not_allowed",
                    "a media header has no text",
                );
            }
        }
        "LOCATION" => {}
        _ => {
            errors.push(
                format!("{path}.format"),
                "invalid_format",
                "one of TEXT, IMAGE, VIDEO, DOCUMENT, LOCATION",
            );
            return None;
        }
    }
    Some(kind)
}

/// The FOOTER at `path`.
pub(crate) fn footer(component: &Map<String, Value>, path: &str, errors: &mut Errors<'_>) {
    let Some(text) = text_member(component, "text", path, errors) else {
        return;
    };
    let field = format!("{path}.text");
    if !too_long(text, FOOTER_MAX_CHARS, field.clone(), errors) && text.contains("{{") {
        errors.push(
            field,
            "placeholder_not_allowed",
            "a footer cannot have placeholders",
        );
    }
}

/// The BUTTONS at `path`; returns the buttons with their `type` upper-cased.
pub(crate) fn buttons(
    component: &Map<String, Value>,
    path: &str,
    errors: &mut Errors<'_>,
) -> Vec<Value> {
    let field = format!("{path}.buttons");
    let Some(buttons) = component.get("buttons").and_then(Value::as_array) else {
        errors.push(field, "required", "`buttons` must be an array of buttons");
        return Vec::new();
    };
    if buttons.is_empty() || buttons.len() > MAX_BUTTONS {
        errors.push(
            field.clone(),
            "out_of_range",
            format!("between 1 and {MAX_BUTTONS} buttons"),
        );
    }
    let mut counts = (0usize, 0usize, 0usize); // URL, PHONE_NUMBER, COPY_CODE
    let mut normalised = Vec::with_capacity(buttons.len());
    for (i, button) in buttons.iter().enumerate() {
        let path = format!("{field}[{i}]");
        let Some(object) = button.as_object() else {
            errors.push(path, "not_an_object", "a button is an object");
            continue;
        };
        let Some(kind) = text_member(object, "type", &path, errors) else {
            continue;
        };
        let kind = kind.to_ascii_uppercase();
        match kind.as_str() {
            "QUICK_REPLY" => button_text(object, &path, errors),
            "URL" => {
                counts.0 += 1;
                button_text(object, &path, errors);
                url_button(object, &path, errors);
            }
            "PHONE_NUMBER" => {
                counts.1 += 1;
                button_text(object, &path, errors);
                if let Some(phone) = text_member(object, "phone_number", &path, errors) {
                    let digits = phone.strip_prefix('+').unwrap_or(phone);
                    if phone.chars().count() > PHONE_MAX_CHARS
                        || digits.is_empty()
                        || !digits.bytes().all(|b| b.is_ascii_digit())
                    {
                        errors.push(
                            format!("{path}.phone_number"),
                            "invalid_phone_number",
                            format!("digits with an optional leading +, at most {PHONE_MAX_CHARS} characters"),
                        );
                    }
                }
            }
            "COPY_CODE" => {
                counts.2 += 1;
                if let Some(code) = text_member(object, "example", &path, errors) {
                    too_long(code, COPY_CODE_MAX_CHARS, format!("{path}.example"), errors);
                }
            }
            _ => {
                errors.push(
                    format!("{path}.type"),
                    "unsupported_button",
                    "one of QUICK_REPLY, URL, PHONE_NUMBER, COPY_CODE",
                );
                continue;
            }
        }
        let mut object = object.clone();
        object.insert("type".to_owned(), Value::String(kind));
        normalised.push(Value::Object(object));
    }
    let (urls, phones, copy_codes) = counts;
    if urls > MAX_URL_BUTTONS {
        errors.push(
            field.clone(),
            "too_many_buttons",
            format!("at most {MAX_URL_BUTTONS} URL buttons"),
        );
    }
    if phones > 1 {
        errors.push(
            field.clone(),
            "too_many_buttons",
            "at most one PHONE_NUMBER button",
        );
    }
    if copy_codes > 1 {
        errors.push(field, "too_many_buttons", "at most one COPY_CODE button");
    }
    normalised
}

fn button_text(button: &Map<String, Value>, path: &str, errors: &mut Errors<'_>) {
    if let Some(text) = text_member(button, "text", path, errors) {
        let field = format!("{path}.text");
        if !too_long(text, BUTTON_TEXT_MAX_CHARS, field.clone(), errors) && text.contains("{{") {
            errors.push(
                field,
                "placeholder_not_allowed",
                "a button label cannot have placeholders",
            );
        }
    }
}

/// An http(s) URL, optionally ending with `{{1}}` (then one example URL is required).
fn url_button(button: &Map<String, Value>, path: &str, errors: &mut Errors<'_>) {
    let Some(url) = text_member(button, "url", path, errors) else {
        return;
    };
    let field = format!("{path}.url");
    if too_long(url, URL_MAX_CHARS, field.clone(), errors) {
        return;
    }
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        errors.push(field.clone(), "invalid_url", "an http:// or https:// URL");
    }
    let placeholders = url.matches("{{").count();
    let dynamic = url.ends_with("{{1}}");
    if placeholders > 1 || (placeholders == 1 && !dynamic) {
        errors.push(
            field,
            "invalid_placeholder",
            "a URL may only end with {{1}}",
        );
        return;
    }
    if dynamic {
        let fits = matches!(button.get("example"),
            Some(Value::Array(values)) if values.len() == 1 && non_blank_strings(values));
        if !fits {
            errors.push(
                format!("{path}.example"),
                "examples_mismatch",
                "give one example URL: [\"https://…\"]",
            );
        }
    }
}
