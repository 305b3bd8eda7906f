//! Checks a template against Meta's rules before it is saved, so that a vendor learns of a
//! mistake at once (a 422 naming the field) instead of a day later from Meta's review.

mod components;
mod placeholders;

use kloyst_core::FieldError;
use serde_json::{Map, Value};

use crate::model::{TemplateInput, CATEGORIES};
use components::Errors;

pub(crate) const NAME_MAX_CHARS: usize = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParameterFormat {
    /// `{{1}}`, `{{2}}`, …
    Positional,
    /// `{{first_name}}`, …
    Named,
}

impl ParameterFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Positional => "POSITIONAL",
            Self::Named => "NAMED",
        }
    }
}

/// A template that passed every rule, normalised: language with `_`, category and
/// parameter format upper-case, component `type`/`format` and button `type` upper-case.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidTemplate {
    pub name: String,
    pub language: String,
    pub category: &'static str,
    pub parameter_format: ParameterFormat,
    pub components: Value,
    /// Body placeholders a send must fill (0–100).
    pub param_count: i16,
}

/// All the rules at once: every invalid field is reported, not only the first.
pub fn validate(input: &TemplateInput) -> Result<ValidTemplate, Vec<FieldError>> {
    let mut list = Vec::new();
    let mut errors = Errors { list: &mut list };
    check_name(&input.name, &mut errors);
    let language = input.language.trim().replace('-', "_");
    if !is_language_code(&language) {
        errors.push(
            "language",
            "invalid_language",
            "a Meta language code such as en, en_US or pt_BR",
        );
    }
    let category = CATEGORIES
        .into_iter()
        .find(|c| c.eq_ignore_ascii_case(input.category.trim()));
    if category.is_none() {
        errors.push(
            "category",
            "invalid_category",
            "one of MARKETING, UTILITY, AUTHENTICATION",
        );
    }
    let format = match input.parameter_format.as_deref().map(str::trim) {
        None => Some(ParameterFormat::Positional),
        Some(f) if f.eq_ignore_ascii_case("POSITIONAL") => Some(ParameterFormat::Positional),
        Some(f) if f.eq_ignore_ascii_case("NAMED") => Some(ParameterFormat::Named),
        Some(_) => {
            errors.push(
                "parameter_format",
                "invalid_parameter_format",
                "POSITIONAL or NAMED",
            );
            None
        }
    };
    let (components, param_count) = check_components(
        &input.components,
        format.unwrap_or(ParameterFormat::Positional),
        &mut errors,
    );

    match (category, format) {
        (Some(category), Some(parameter_format)) if list.is_empty() => Ok(ValidTemplate {
            name: input.name.clone(),
            language,
            category,
            parameter_format,
            components: Value::Array(components),
            param_count: i16::try_from(param_count).unwrap_or(i16::MAX),
        }),
        _ => Err(list),
    }
}

fn check_name(name: &str, errors: &mut Errors<'_>) {
    if name.is_empty() {
        errors.push("name", "required", "a template needs a name");
    } else if name.chars().count() > NAME_MAX_CHARS {
        errors.push(
            "name",
            "too_long",
            format!("at most {NAME_MAX_CHARS} characters"),
        );
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        errors.push(
            "name",
            "invalid_name",
            "lower-case letters, digits and _ only (e.g. order_update)",
        );
    }
}

/// The table's CHECK: `^[a-z]{2,3}([_-][A-Za-z0-9]{2,4})?$`.
fn is_language_code(code: &str) -> bool {
    let (language, region) = match code.split_once('_') {
        Some((language, region)) => (language, Some(region)),
        None => (code, None),
    };
    (2..=3).contains(&language.len())
        && language.bytes().all(|b| b.is_ascii_lowercase())
        && region.is_none_or(|r| {
            (2..=4).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// Each component once, exactly one BODY; returns the normalised components and the
/// body's parameter count.
fn check_components(
    given: &[Value],
    format: ParameterFormat,
    errors: &mut Errors<'_>,
) -> (Vec<Value>, usize) {
    let mut normalised = Vec::with_capacity(given.len());
    let mut seen: Vec<String> = Vec::new();
    let mut param_count = 0;
    // A component whose type cannot be read may have been meant as the BODY.
    let mut unreadable = false;
    for (i, component) in given.iter().enumerate() {
        let path = format!("components[{i}]");
        let Some(object) = component.as_object() else {
            errors.push(path, "not_an_object", "a component is an object");
            unreadable = true;
            continue;
        };
        let Some(kind) = object.get("type").and_then(Value::as_str) else {
            errors.push(
                format!("{path}.type"),
                "required",
                "HEADER, BODY, FOOTER or BUTTONS",
            );
            unreadable = true;
            continue;
        };
        let kind = kind.to_ascii_uppercase();
        if seen.contains(&kind) {
            errors.push(
                format!("{path}.type"),
                "duplicate",
                format!("only one {kind} component"),
            );
            continue;
        }
        let mut object: Map<String, Value> = object.clone();
        match kind.as_str() {
            "BODY" => param_count = components::body(&object, &path, format, errors),
            "HEADER" => {
                if let Some(header_format) = components::header(&object, &path, format, errors) {
                    object.insert("format".to_owned(), Value::String(header_format));
                }
            }
            "FOOTER" => components::footer(&object, &path, errors),
            "BUTTONS" => {
                let buttons = components::buttons(&object, &path, errors);
                object.insert("buttons".to_owned(), Value::Array(buttons));
            }
            _ => {
                errors.push(
                    format!("{path}.type"),
                    "unsupported_component",
                    "HEADER, BODY, FOOTER or BUTTONS",
                );
                continue;
            }
        }
        object.insert("type".to_owned(), Value::String(kind.clone()));
        seen.push(kind);
        normalised.push(Value::Object(object));
    }
    if !unreadable && !seen.iter().any(|k| k == "BODY") {
        errors.push(
            "components",
            "body_required",
            "a template needs exactly one BODY component",
        );
    }
    (normalised, param_count)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn input(components: Value) -> TemplateInput {
        TemplateInput {
            name: "order_update".to_owned(),
            language: "en_US".to_owned(),
            category: "UTILITY".to_owned(),
            components: serde_json::from_value(components).unwrap(),
            parameter_format: None,
        }
    }

    fn body(text: &str, examples: Value) -> Value {
        json!({ "type": "BODY", "text": text, "example": { "body_text": [examples] } })
    }

    fn good_body() -> Value {
        body(
            "Hi {{1}}, your order {{2}} ships today.",
            json!(["Asha", "A-1"]),
        )
    }

    /// (field, code) of each error.
    fn problems(input: &TemplateInput) -> Vec<(String, String)> {
        validate(input)
            .unwrap_err()
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect()
    }

    fn one_problem(input: &TemplateInput) -> (String, String) {
        let all = problems(input);
        assert_eq!(all.len(), 1, "{all:?}");
        all.into_iter().next().unwrap()
    }

    fn pair(field: &str, code: &str) -> (String, String) {
        (field.to_owned(), code.to_owned())
    }

    #[test]
    fn a_full_template_passes_and_is_normalised() {
        let mut template = input(json!([
            { "type": "header", "format": "text", "text": "Order {{1}}", "example": { "header_text": ["A-1"] } },
            good_body(),
            { "type": "footer", "text": "Reply STOP to opt out" },
            { "type": "buttons", "buttons": [
                { "type": "quick_reply", "text": "Track" },
                { "type": "URL", "text": "Open", "url": "https://shop.test/o/{{1}}", "example": ["https://shop.test/o/A-1"] },
                { "type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+919800000001" },
                { "type": "COPY_CODE", "example": "SAVE10" }
            ]}
        ]));
        template.language = "en-US".to_owned();
        template.category = "utility".to_owned();
        let valid = validate(&template).unwrap();
        assert_eq!(valid.language, "en_US");
        assert_eq!(valid.category, "UTILITY");
        assert_eq!(valid.parameter_format, ParameterFormat::Positional);
        assert_eq!(valid.param_count, 2);
        assert_eq!(valid.components[0]["type"], "HEADER");
        assert_eq!(valid.components[0]["format"], "TEXT");
        assert_eq!(valid.components[3]["buttons"][0]["type"], "QUICK_REPLY");
        assert_eq!(
            valid.components[1]["text"],
            "Hi {{1}}, your order {{2}} ships today."
        );
    }

    #[test]
    fn a_body_without_placeholders_needs_no_example() {
        let valid = validate(&input(
            json!([{ "type": "BODY", "text": "Your order shipped." }]),
        ))
        .unwrap();
        assert_eq!(valid.param_count, 0);
    }

    #[test]
    fn name_rules() {
        let mut template = input(json!([good_body()]));
        for (name, code) in [
            ("", "required"),
            ("Order", "invalid_name"),
            ("order-update", "invalid_name"),
            ("order update", "invalid_name"),
        ] {
            template.name = name.to_owned();
            assert_eq!(one_problem(&template), pair("name", code), "{name:?}");
        }
        template.name = "a".repeat(513);
        assert_eq!(one_problem(&template), pair("name", "too_long"));
        template.name = "a".repeat(512);
        assert!(validate(&template).is_ok());
    }

    #[test]
    fn language_rules_follow_the_table_check() {
        let mut template = input(json!([good_body()]));
        for ok in ["en", "en_US", "pt_BR", "fil", "zh_HK", "es_LA", "sr_Latn"] {
            template.language = ok.to_owned();
            assert!(validate(&template).is_ok(), "{ok}");
        }
        for bad in [
            "", "e", "EN", "english", "en_", "en_U", "en_USABC", "en_US_x", "e1",
        ] {
            template.language = bad.to_owned();
            assert_eq!(
                one_problem(&template),
                pair("language", "invalid_language"),
                "{bad}"
            );
        }
    }

    #[test]
    fn category_and_parameter_format_rules() {
        let mut template = input(json!([good_body()]));
        template.category = "TRANSACTIONAL".to_owned();
        assert_eq!(one_problem(&template), pair("category", "invalid_category"));
        template.category = "marketing".to_owned();
        template.parameter_format = Some("numbered".to_owned());
        assert_eq!(
            one_problem(&template),
            pair("parameter_format", "invalid_parameter_format")
        );
        template.parameter_format = Some("positional".to_owned());
        assert_eq!(validate(&template).unwrap().category, "MARKETING");
    }

    #[test]
    fn exactly_one_body_and_known_components() {
        assert_eq!(
            one_problem(&input(json!([{ "type": "FOOTER", "text": "Thanks" }]))),
            pair("components", "body_required")
        );
        assert_eq!(
            one_problem(&input(json!([]))),
            pair("components", "body_required")
        );
        assert_eq!(
            one_problem(&input(json!([good_body(), good_body()]))),
            pair("components[1].type", "duplicate")
        );
        assert_eq!(
            one_problem(&input(json!([good_body(), { "type": "CAROUSEL" }]))),
            pair("components[1].type", "unsupported_component")
        );
        assert_eq!(
            one_problem(&input(json!([good_body(), "x"]))),
            pair("components[1]", "not_an_object")
        );
        assert_eq!(
            one_problem(&input(json!([good_body(), { "text": "x" }]))),
            pair("components[1].type", "required")
        );
    }

    #[test]
    fn body_text_rules() {
        assert_eq!(
            one_problem(&input(json!([{ "type": "BODY", "text": "  " }]))),
            pair("components[0].text", "required")
        );
        assert_eq!(
            one_problem(&input(json!([{ "type": "BODY" }]))),
            pair("components[0].text", "required")
        );
        assert_eq!(
            one_problem(&input(json!([{ "type": "BODY", "text": 5 }]))),
            pair("components[0].text", "not_a_string")
        );
        let long = "é".repeat(1_025);
        assert_eq!(
            one_problem(&input(json!([{ "type": "BODY", "text": long }]))),
            pair("components[0].text", "too_long")
        );
        assert!(validate(&input(
            json!([{ "type": "BODY", "text": "é".repeat(1_024) }])
        ))
        .is_ok());
    }

    #[test]
    fn body_placeholder_rules() {
        for (text, examples, code) in [
            (
                "Hi {{1}}, gate {{3}} today",
                json!(["a", "b"]),
                "placeholder_gap",
            ),
            (
                "{{1}} is your code today",
                json!(["a"]),
                "placeholder_at_start",
            ),
            ("Your code is {{1}}.", json!(["a"]), "placeholder_at_end"),
            (
                "Hi {{1}}{{2}} welcome",
                json!(["a", "b"]),
                "adjacent_placeholders",
            ),
            ("Hi {{ 1 }} welcome", json!(["a"]), "invalid_placeholder"),
            ("Hi {{name}} welcome", json!(["a"]), "invalid_placeholder"),
        ] {
            assert_eq!(
                one_problem(&input(json!([body(text, examples)]))),
                pair("components[0].text", code),
                "{text}"
            );
        }
        let many: String = (1..=101)
            .map(|n| format!("a {{{{{n}}}}} "))
            .collect::<String>()
            + "end";
        let examples: Vec<String> = (1..=101).map(|n| n.to_string()).collect();
        assert_eq!(
            one_problem(&input(json!([body(&many, json!(examples))]))),
            pair("components[0].text", "too_many_placeholders")
        );
    }

    #[test]
    fn body_examples_must_match_the_placeholders() {
        let text = "Hi {{1}}, your order {{2}} ships today.";
        let field = "components[0].example.body_text";
        for examples in [
            json!(["Asha"]),
            json!(["Asha", "A-1", "x"]),
            json!(["Asha", " "]),
            json!(["Asha", 2]),
        ] {
            assert_eq!(
                one_problem(&input(json!([body(text, examples.clone())]))),
                pair(field, "examples_mismatch"),
                "{examples}"
            );
        }
        assert_eq!(
            one_problem(&input(json!([{ "type": "BODY", "text": text }]))),
            pair(field, "examples_mismatch")
        );
        assert_eq!(
            one_problem(&input(
                json!([{ "type": "BODY", "text": text, "example": { "body_text": [["a", "b"], ["c", "d"]] } }])
            )),
            pair(field, "examples_mismatch")
        );
        // Examples given for a body without placeholders.
        assert_eq!(
            one_problem(&input(json!([body("Your order shipped.", json!(["x"]))]))),
            pair(field, "examples_mismatch")
        );
    }

    #[test]
    fn named_parameters() {
        let mut template = input(json!([{
            "type": "BODY",
            "text": "Thanks {{first_name}}, order {{order_id}} is on its way, {{first_name}}!",
            "example": { "body_text_named_params": [
                { "param_name": "order_id", "example": "A-1" },
                { "param_name": "first_name", "example": "Asha" }
            ] }
        }]));
        template.parameter_format = Some("NAMED".to_owned());
        // Ends with a placeholder and "!".
        assert_eq!(
            one_problem(&template),
            pair("components[0].text", "placeholder_at_end")
        );
        template.components[0]["text"] =
            json!("Thanks {{first_name}}, order {{order_id}} is on its way.");
        let valid = validate(&template).unwrap();
        assert_eq!(valid.param_count, 2);
        assert_eq!(valid.parameter_format.as_str(), "NAMED");
        template.components[0]["example"]["body_text_named_params"][1]["param_name"] =
            json!("name");
        assert_eq!(
            one_problem(&template),
            pair(
                "components[0].example.body_text_named_params",
                "examples_mismatch"
            )
        );
    }

    #[test]
    fn header_rules() {
        let with_header = |header: Value| input(json!([header, good_body()]));
        let cases = [
            (
                json!({ "type": "HEADER", "format": "TEXT", "text": "x".repeat(61) }),
                "components[0].text",
                "too_long",
            ),
            (
                json!({ "type": "HEADER", "format": "TEXT", "text": "{{1}} and {{2}}", "example": { "header_text": ["a", "b"] } }),
                "components[0].text",
                "too_many_placeholders",
            ),
            (
                json!({ "type": "HEADER", "format": "TEXT", "text": "Order {{2}}", "example": { "header_text": ["a"] } }),
                "components[0].text",
                "placeholder_gap",
            ),
            (
                json!({ "type": "HEADER", "format": "TEXT", "text": "Order {{1}}" }),
                "components[0].example.header_text",
                "examples_mismatch",
            ),
            (
                json!({ "type": "HEADER", "format": "TEXT" }),
                "components[0].text",
                "required",
            ),
            (
                json!({ "type": "HEADER", "format": "GIF" }),
                "components[0].format",
                "invalid_format",
            ),
            (
                json!({ "type": "HEADER" }),
                "components[0].format",
                "required",
            ),
            (
                json!({ "type": "HEADER", "format": "IMAGE" }),
                "components[0].example.header_handle",
                "required",
            ),
            (
                json!({ "type": "HEADER", "format": "IMAGE", "text": "x", "example": { "header_handle": ["4::aW1h"] } }),
                "components[0].text",
                "not_allowed",
            ),
        ];
        for (header, field, code) in cases {
            assert_eq!(
                one_problem(&with_header(header.clone())),
                pair(field, code),
                "{header}"
            );
        }
        for ok in [
            json!({ "type": "HEADER", "format": "TEXT", "text": "x".repeat(60) }),
            json!({ "type": "HEADER", "format": "video", "example": { "header_handle": ["4::aW1h"] } }),
            json!({ "type": "HEADER", "format": "LOCATION" }),
        ] {
            assert!(validate(&with_header(ok.clone())).is_ok(), "{ok}");
        }
    }

    #[test]
    fn footer_rules() {
        let with_footer =
            |text: Value| input(json!([good_body(), { "type": "FOOTER", "text": text }]));
        assert_eq!(
            one_problem(&with_footer(json!("x".repeat(61)))),
            pair("components[1].text", "too_long")
        );
        assert_eq!(
            one_problem(&with_footer(json!("Hi {{1}} there"))),
            pair("components[1].text", "placeholder_not_allowed")
        );
        assert_eq!(
            one_problem(&with_footer(json!(""))),
            pair("components[1].text", "required")
        );
        assert!(validate(&with_footer(json!("x".repeat(60)))).is_ok());
    }

    #[test]
    fn button_rules() {
        let with_buttons =
            |buttons: Value| input(json!([good_body(), { "type": "BUTTONS", "buttons": buttons }]));
        let path = "components[1].buttons";
        let quick = json!({ "type": "QUICK_REPLY", "text": "Yes" });
        let url = json!({ "type": "URL", "text": "Open", "url": "https://shop.test/" });
        let phone =
            json!({ "type": "PHONE_NUMBER", "text": "Call", "phone_number": "+919800000001" });
        let copy = json!({ "type": "COPY_CODE", "example": "SAVE10" });
        let cases = [
            (json!([]), path.to_owned(), "out_of_range"),
            (
                json!(vec![quick.clone(); 11]),
                path.to_owned(),
                "out_of_range",
            ),
            (
                json!([url.clone(), url.clone(), url.clone()]),
                path.to_owned(),
                "too_many_buttons",
            ),
            (
                json!([phone.clone(), phone.clone()]),
                path.to_owned(),
                "too_many_buttons",
            ),
            (
                json!([copy.clone(), copy.clone()]),
                path.to_owned(),
                "too_many_buttons",
            ),
            (
                json!([{ "type": "OTP", "text": "x" }]),
                format!("{path}[0].type"),
                "unsupported_button",
            ),
            (
                json!([{ "type": "QUICK_REPLY", "text": "x".repeat(26) }]),
                format!("{path}[0].text"),
                "too_long",
            ),
            (
                json!([{ "type": "QUICK_REPLY", "text": "Hi {{1}}" }]),
                format!("{path}[0].text"),
                "placeholder_not_allowed",
            ),
            (
                json!([{ "type": "QUICK_REPLY" }]),
                format!("{path}[0].text"),
                "required",
            ),
            (
                json!([{ "type": "URL", "text": "Open", "url": "ftp://x" }]),
                format!("{path}[0].url"),
                "invalid_url",
            ),
            (
                json!([{ "type": "URL", "text": "Open", "url": "https://x/{{1}}/y" }]),
                format!("{path}[0].url"),
                "invalid_placeholder",
            ),
            (
                json!([{ "type": "URL", "text": "Open", "url": "https://x/{{1}}" }]),
                format!("{path}[0].example"),
                "examples_mismatch",
            ),
            (
                json!([{ "type": "URL", "text": "Open", "url": format!("https://x/{}", "a".repeat(2_000)) }]),
                format!("{path}[0].url"),
                "too_long",
            ),
            (
                json!([{ "type": "PHONE_NUMBER", "text": "Call", "phone_number": "98-00" }]),
                format!("{path}[0].phone_number"),
                "invalid_phone_number",
            ),
            (
                json!([{ "type": "PHONE_NUMBER", "text": "Call", "phone_number": "1".repeat(21) }]),
                format!("{path}[0].phone_number"),
                "invalid_phone_number",
            ),
            (
                json!([{ "type": "COPY_CODE", "example": "x".repeat(16) }]),
                format!("{path}[0].example"),
                "too_long",
            ),
            (json!(["x"]), format!("{path}[0]"), "not_an_object"),
        ];
        for (buttons, field, code) in cases {
            assert_eq!(
                one_problem(&with_buttons(buttons.clone())),
                pair(&field, code),
                "{buttons}"
            );
        }
        assert_eq!(
            one_problem(&input(json!([good_body(), { "type": "BUTTONS" }]))),
            pair(path, "required")
        );
        assert!(validate(&with_buttons(json!(vec![quick; 10]))).is_ok());
        assert!(validate(&with_buttons(json!([url.clone(), url, phone, copy]))).is_ok());
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let template = TemplateInput {
            name: "Bad Name".to_owned(),
            language: "english".to_owned(),
            category: "PROMO".to_owned(),
            components: vec![json!({ "type": "FOOTER", "text": "x".repeat(61) })],
            parameter_format: None,
        };
        let all = problems(&template);
        assert_eq!(
            all,
            vec![
                pair("name", "invalid_name"),
                pair("language", "invalid_language"),
                pair("category", "invalid_category"),
                pair("components[0].text", "too_long"),
                pair("components", "body_required"),
            ]
        );
    }
}
