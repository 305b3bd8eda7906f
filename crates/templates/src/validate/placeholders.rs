//! Placeholders in template text: `{{1}}`, `{{2}}`, … (positional) or `{{first_name}}`
//! (named), and Meta's rules on where they may stand. Meta refuses a body that starts or
//! ends with a placeholder (trailing punctuation still counts as the end) and two
//! placeholders with nothing but spaces between them.

use std::collections::BTreeSet;

use super::ParameterFormat;

/// A rule broken: a stable code and what to do about it.
pub(crate) type Problem = (&'static str, String);

/// One `{{…}}` in a text, by byte offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Placeholder<'a> {
    pub start: usize,
    pub end: usize,
    pub key: Key<'a>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Key<'a> {
    Number(u32),
    Name(&'a str),
}

/// Every placeholder of `text`, in order; malformed ones (`{{ 1 }}`, `{{01}}`, an unclosed
/// `{{`, a name in a positional template) are refused.
pub(crate) fn scan(text: &str, format: ParameterFormat) -> Result<Vec<Placeholder<'_>>, Problem> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = text[from..].find("{{") {
        let start = from + offset;
        let inner_start = start + 2;
        let Some(close) = text[inner_start..].find("}}") else {
            return Err((
                "invalid_placeholder",
                "a `{{` is not closed by `}}`".to_owned(),
            ));
        };
        let inner = &text[inner_start..inner_start + close];
        let end = inner_start + close + 2;
        found.push(Placeholder {
            start,
            end,
            key: key(inner, format)?,
        });
        from = end;
    }
    Ok(found)
}

fn key(inner: &str, format: ParameterFormat) -> Result<Key<'_>, Problem> {
    let is_number = !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit());
    let is_name = inner.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && inner
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    match format {
        ParameterFormat::Positional if is_number && !inner.starts_with('0') => inner
            .parse()
            .map(Key::Number)
            .map_err(|_| ("invalid_placeholder", format!("`{{{{{inner}}}}}` is too large"))),
        ParameterFormat::Positional if is_name => Err((
            "invalid_placeholder",
            format!(
                "`{{{{{inner}}}}}` is a named placeholder; set parameter_format NAMED, or use {{{{1}}}}, {{{{2}}}}, …"
            ),
        )),
        ParameterFormat::Named if is_name => Ok(Key::Name(inner)),
        ParameterFormat::Named if is_number => Err((
            "invalid_placeholder",
            format!(
                "`{{{{{inner}}}}}` is positional but parameter_format is NAMED; use names like {{{{first_name}}}}"
            ),
        )),
        ParameterFormat::Positional => Err((
            "invalid_placeholder",
            format!("`{{{{{inner}}}}}` is not a placeholder; use {{{{1}}}}, {{{{2}}}}, …"),
        )),
        ParameterFormat::Named => Err((
            "invalid_placeholder",
            format!(
                "`{{{{{inner}}}}}` is not a placeholder; names are lower-case letters, digits and _"
            ),
        )),
    }
}

/// The parameters a text asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Params {
    /// `{{1}}`…`{{n}}`.
    Positional(usize),
    /// Distinct names, sorted.
    Named(Vec<String>),
}

impl Params {
    pub fn count(&self) -> usize {
        match self {
            Self::Positional(n) => *n,
            Self::Named(names) => names.len(),
        }
    }
}

/// The parameters of `found`: positional ones must be exactly `{{1}}`…`{{n}}` (any order,
/// repeats allowed, no gaps).
pub(crate) fn params(
    found: &[Placeholder<'_>],
    format: ParameterFormat,
) -> Result<Params, Problem> {
    match format {
        ParameterFormat::Positional => {
            let numbers: BTreeSet<u32> = found
                .iter()
                .filter_map(|p| match p.key {
                    Key::Number(n) => Some(n),
                    Key::Name(_) => None,
                })
                .collect();
            let highest = numbers.last().copied().unwrap_or(0) as usize;
            if numbers.len() != highest {
                return Err((
                    "placeholder_gap",
                    format!(
                        "placeholders must be numbered {{{{1}}}} to {{{{{highest}}}}} without gaps"
                    ),
                ));
            }
            Ok(Params::Positional(highest))
        }
        ParameterFormat::Named => {
            let names: BTreeSet<String> = found
                .iter()
                .filter_map(|p| match p.key {
                    Key::Name(name) => Some(name.to_owned()),
                    Key::Number(_) => None,
                })
                .collect();
            Ok(Params::Named(names.into_iter().collect()))
        }
    }
}

/// Meta's placement rules for a body.
pub(crate) fn check_body_placement(text: &str, found: &[Placeholder<'_>]) -> Result<(), Problem> {
    let (Some(first), Some(last)) = (found.first(), found.last()) else {
        return Ok(());
    };
    if text[..first.start].trim().is_empty() {
        return Err((
            "placeholder_at_start",
            "the body must not start with a placeholder; put some text before it".to_owned(),
        ));
    }
    if text[last.end..]
        .chars()
        .all(|c| c.is_whitespace() || c.is_ascii_punctuation())
    {
        return Err((
            "placeholder_at_end",
            "the body must not end with a placeholder; put some text after it".to_owned(),
        ));
    }
    for pair in found.windows(2) {
        if text[pair[0].end..pair[1].start].trim().is_empty() {
            return Err((
                "adjacent_placeholders",
                "two placeholders need text between them, not only spaces".to_owned(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const POS: ParameterFormat = ParameterFormat::Positional;
    const NAMED: ParameterFormat = ParameterFormat::Named;

    fn code(result: Result<impl std::fmt::Debug, Problem>) -> &'static str {
        result.unwrap_err().0
    }

    #[test]
    fn scans_positional_placeholders_with_offsets() {
        let found = scan("Hi {{1}}, order {{2}} ok", POS).unwrap();
        assert_eq!(
            found,
            vec![
                Placeholder {
                    start: 3,
                    end: 8,
                    key: Key::Number(1)
                },
                Placeholder {
                    start: 16,
                    end: 21,
                    key: Key::Number(2)
                },
            ]
        );
        assert_eq!(params(&found, POS).unwrap(), Params::Positional(2));
        assert!(scan("no placeholders } { here", POS).unwrap().is_empty());
    }

    #[test]
    fn malformed_placeholders_are_refused() {
        for text in [
            "Hi {{ 1 }} x",
            "Hi {{01}} x",
            "Hi {{1 x",
            "Hi {{}} x",
            "Hi {{1a}} x",
            "{{99999999999}}",
        ] {
            assert_eq!(code(scan(text, POS)), "invalid_placeholder", "{text}");
        }
        assert_eq!(code(scan("Hi {{name}} x", POS)), "invalid_placeholder");
        assert_eq!(code(scan("Hi {{1}} x", NAMED)), "invalid_placeholder");
        assert_eq!(code(scan("Hi {{First}} x", NAMED)), "invalid_placeholder");
    }

    #[test]
    fn positional_placeholders_must_have_no_gaps() {
        let gap = scan("a {{1}} b {{3}} c", POS).unwrap();
        assert_eq!(code(params(&gap, POS)), "placeholder_gap");
        let from_two = scan("a {{2}} c", POS).unwrap();
        assert_eq!(code(params(&from_two, POS)), "placeholder_gap");
        // Any order, repeats allowed.
        let shuffled = scan("a {{2}} b {{1}} c {{2}} d", POS).unwrap();
        assert_eq!(params(&shuffled, POS).unwrap(), Params::Positional(2));
    }

    #[test]
    fn named_placeholders_count_distinct_names() {
        let found = scan(
            "Hi {{first_name}}, {{order_id}} for {{first_name}} ok",
            NAMED,
        )
        .unwrap();
        let params = params(&found, NAMED).unwrap();
        assert_eq!(
            params,
            Params::Named(vec!["first_name".to_owned(), "order_id".to_owned()])
        );
        assert_eq!(params.count(), 2);
    }

    #[test]
    fn body_placement_rules() {
        let check = |text: &str| check_body_placement(text, &scan(text, POS).unwrap());
        assert!(check("Hi {{1}}, your order {{2}} ships today.").is_ok());
        assert!(check("No placeholders at all").is_ok());
        assert_eq!(
            code(check("{{1}}, your order ships")),
            "placeholder_at_start"
        );
        assert_eq!(
            code(check("  {{1}} your order ships")),
            "placeholder_at_start"
        );
        assert_eq!(
            code(check("Your order ships on {{1}}")),
            "placeholder_at_end"
        );
        assert_eq!(
            code(check("Your order ships on {{1}}.")),
            "placeholder_at_end"
        );
        assert_eq!(
            code(check("Your order ships on {{1}} !\n")),
            "placeholder_at_end"
        );
        assert_eq!(code(check("Hi {{1}}{{2}} there")), "adjacent_placeholders");
        assert_eq!(code(check("Hi {{1}} {{2}} there")), "adjacent_placeholders");
        assert!(check("Hi {{1}} and {{2}} there").is_ok());
    }
}
