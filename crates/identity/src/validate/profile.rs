//! The vendor profile's fields: tax id, countries, time zones, postal addresses.

use super::{display_name, Fields, Rule};
use crate::countries;
use crate::model::BillingAddress;

/// An optional short text (address line 2, state): trimmed; blank means absent.
fn optional_text(raw: Option<&str>, max: usize) -> Result<Option<String>, Rule> {
    match raw.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(value) => display_name(value, max).map(Some),
    }
}

/// Indian GSTIN: `^[0-9]{2}[A-Z]{5}[0-9]{4}[A-Z][1-9A-Z]Z[0-9A-Z]$` after upper-casing
/// (the same pattern as the column's CHECK).
pub(crate) fn gstin(raw: &str) -> Result<String, Rule> {
    let value = raw.trim().to_ascii_uppercase();
    let b = value.as_bytes();
    let digit = |c: u8| c.is_ascii_digit();
    let upper = |c: u8| c.is_ascii_uppercase();
    let ok = b.len() == 15
        && b[0..2].iter().all(|&c| digit(c))
        && b[2..7].iter().all(|&c| upper(c))
        && b[7..11].iter().all(|&c| digit(c))
        && upper(b[11])
        && (upper(b[12]) || (b'1'..=b'9').contains(&b[12]))
        && b[13] == b'Z'
        && (upper(b[14]) || digit(b[14]));
    if ok {
        Ok(value)
    } else {
        Err(Rule::new(
            "invalid_gstin",
            "not a valid GSTIN (15 characters, e.g. 22AAAAA0000A1Z5)",
        ))
    }
}

/// An ISO 3166-1 alpha-2 country code (upper-cased first).
pub(crate) fn country(raw: &str) -> Result<String, Rule> {
    let value = raw.trim().to_ascii_uppercase();
    if value.len() == 2 && countries::is_known(&value) {
        Ok(value)
    } else {
        Err(Rule::new(
            "invalid_country",
            "not an ISO 3166-1 alpha-2 country code (e.g. IN)",
        ))
    }
}

/// The areas of the IANA time zone database's canonical names.
const TZ_AREAS: &[&str] = &[
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
    "Etc",
];

/// The shape of an IANA name: `UTC`, or `Area/Location[/Sub]` with a known area. Whether
/// the zone exists is then asked of PostgreSQL's own zone list (see the vendor service).
pub(crate) fn time_zone(raw: &str) -> Result<String, Rule> {
    let value = raw.trim();
    let invalid = || {
        Rule::new(
            "invalid_time_zone",
            "not an IANA time zone name (e.g. Asia/Kolkata or UTC)",
        )
    };
    if value == "UTC" {
        return Ok(value.to_owned());
    }
    if value.len() > 64 {
        return Err(invalid());
    }
    let mut parts = value.split('/');
    let area = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    let segments_ok = (1..=2).contains(&rest.len())
        && rest.iter().all(|segment| {
            segment
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_uppercase())
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c))
        });
    if TZ_AREAS.contains(&area) && segments_ok {
        Ok(value.to_owned())
    } else {
        Err(invalid())
    }
}

fn postal_code(raw: &str) -> Result<String, Rule> {
    let value = raw.trim().to_ascii_uppercase();
    let ok = (2..=12).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-');
    if ok {
        Ok(value)
    } else {
        Err(Rule::new("invalid_postal_code", "not a valid postal code"))
    }
}

/// Each part of an address is checked on its own, under `billing_address.<part>`.
pub(crate) fn billing_address(
    fields: &mut Fields,
    prefix: &str,
    address: &BillingAddress,
) -> Option<BillingAddress> {
    let at = |part: &str| format!("{prefix}.{part}");
    let line1 = fields.take(&at("line1"), display_name(&address.line1, 200));
    let line2 = fields.take(&at("line2"), optional_text(address.line2.as_deref(), 200));
    let city = fields.take(&at("city"), display_name(&address.city, 100));
    let state = fields.take(&at("state"), optional_text(address.state.as_deref(), 100));
    let postal_code = fields.take(&at("postal_code"), postal_code(&address.postal_code));
    let country = fields.take(&at("country"), country(&address.country));
    Some(BillingAddress {
        line1: line1?,
        line2: line2?,
        city: city?,
        state: state?,
        postal_code: postal_code?,
        country: country?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::IdentityError;
    use crate::validate::Fields;

    #[test]
    fn gstins() {
        assert_eq!(gstin("22aaaaa0000a1z5").unwrap(), "22AAAAA0000A1Z5");
        assert!(gstin("27AAPFU0939F1ZV").is_ok());
        for bad in [
            "",
            "22AAAAA0000A1Z",
            "22AAAAA0000A0Z5",
            "22AAAAA0000A1X5",
            "2AAAAAA0000A1Z5",
        ] {
            assert!(gstin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn countries_and_zones() {
        assert_eq!(country("in").unwrap(), "IN");
        assert!(country("ZZ").is_err() && country("IND").is_err());
        for ok in [
            "UTC",
            "Asia/Kolkata",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+5",
        ] {
            assert!(time_zone(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "utc",
            "Kolkata",
            "Mars/Olympus",
            "Asia/",
            "Asia/kolkata",
            "Asia/Kol kata",
        ] {
            assert!(time_zone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn address_errors_name_the_part() {
        let mut fields = Fields::default();
        let address = BillingAddress {
            line1: " ".into(),
            line2: Some("  ".into()),
            city: "Pune".into(),
            state: None,
            postal_code: "411001".into(),
            country: "XX".into(),
        };
        assert!(billing_address(&mut fields, "billing_address", &address).is_none());
        let Err(IdentityError::Invalid(errors)) = fields.finish() else {
            panic!("expected field errors");
        };
        let names: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(names, ["billing_address.line1", "billing_address.country"]);
    }
}
