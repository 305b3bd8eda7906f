//! Field rules. Each check returns the cleaned value or a [`FieldError`]; a [`Fields`]
//! collector gathers every error of a request so the client sees all of them at once.

mod profile;

pub(crate) use profile::{billing_address, country, gstin, time_zone};

use kloyst_core::FieldError;

use crate::error::IdentityError;

/// Gathers field errors; `finish` turns them into one [`IdentityError::Invalid`].
#[derive(Debug, Default)]
pub(crate) struct Fields(Vec<FieldError>);

impl Fields {
    /// Keeps the value, or records its error under `field` and returns `None`.
    pub fn take<T>(&mut self, field: &str, result: Result<T, Rule>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(rule) => {
                self.0.push(FieldError::new(field, rule.code, rule.message));
                None
            }
        }
    }

    pub fn push(&mut self, error: FieldError) {
        self.0.push(error);
    }

    /// The checked values when every field passed, else every error at once.
    pub fn finish_with<T>(self, values: Option<T>) -> Result<T, IdentityError> {
        match values {
            Some(values) if self.0.is_empty() => Ok(values),
            _ => Err(IdentityError::Invalid(self.0)),
        }
    }

    pub fn finish(self) -> Result<(), IdentityError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(IdentityError::Invalid(self.0))
        }
    }
}

/// A broken rule: a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub code: &'static str,
    pub message: String,
}

impl Rule {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// A one-time code as typed: six digits (surrounding spaces forgiven). A malformed code
/// is refused before it costs one of the code's attempts.
pub(crate) fn otp_code(raw: &str) -> Result<String, Rule> {
    let code = raw.trim();
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(code.to_owned())
    } else {
        Err(Rule::new(
            "invalid_otp_format",
            "must be the 6-digit code from the mail",
        ))
    }
}

/// Emails are stored lower-cased (the column's CHECK); compare and look up that way too.
pub(crate) fn normalize_email(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// A practical address check (RFC 5321 lengths, dot-atom local part, LDH domain with at
/// least two labels): strict enough that the mailer can always parse what we accept.
pub(crate) fn email(raw: &str) -> Result<String, Rule> {
    let email = normalize_email(raw);
    let invalid = || Rule::new("invalid_email", "not a valid email address");
    if email.is_empty() {
        return Err(Rule::new("required", "an email address is required"));
    }
    if email.len() > 254 {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let local_ok = (1..=64).contains(&local.len())
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c))
        });
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels.last().is_some_and(|tld| {
            tld.len() >= 2
                && (tld.chars().all(|c| c.is_ascii_alphabetic()) || tld.starts_with("xn--"))
        });
    if local_ok && domain_ok {
        Ok(email)
    } else {
        Err(invalid())
    }
}

/// A display name: trimmed, 1–`max` characters, no control characters (names go into
/// mail text and subjects).
pub(crate) fn display_name(raw: &str, max: usize) -> Result<String, Rule> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(Rule::new("required", "must not be empty"));
    }
    if name.chars().count() > max {
        return Err(Rule::new(
            "too_long",
            format!("must be at most {max} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Rule::new(
            "invalid_characters",
            "must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            email("  Asha.Rao@Example.COM ").unwrap(),
            "asha.rao@example.com"
        );
        for ok in [
            "a@b.co",
            "first+tag@sub.example.in",
            "x_y@xn--p1ai.xn--p1ai",
        ] {
            assert!(email(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "asha",
            "asha@",
            "@example.com",
            "a@b",
            "a b@example.com",
            "a@@b.co",
            "a..b@example.com",
            ".a@example.com",
            "a@-b.com",
            "a@b.c",
            "a@b.c0m1",
            "a@example.com\r\nBcc: x@y.z",
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
        assert_eq!(email("").unwrap_err().code, "required");
    }

    #[test]
    fn names() {
        assert_eq!(display_name("  Asha  ", 200).unwrap(), "Asha");
        assert_eq!(display_name(" ", 200).unwrap_err().code, "required");
        assert_eq!(
            display_name(&"x".repeat(201), 200).unwrap_err().code,
            "too_long"
        );
        assert_eq!(
            display_name("a\nb", 200).unwrap_err().code,
            "invalid_characters"
        );
    }
}
