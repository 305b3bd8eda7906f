//! Recipient addresses in logs: enough to tell mails apart, not enough to harvest.

/// `asha@example.com` → `a***@example.com`; anything without an `@` → `***`.
pub fn mask_address(address: &str) -> String {
    match address.trim().rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// `text` with every occurrence of `address` masked: SMTP servers quote the recipient back
/// in their errors, and those end up in logs and dead letters.
pub(crate) fn redact(text: &str, address: &str) -> String {
    let address = address.trim();
    if address.is_empty() {
        return text.to_owned();
    }
    text.replace(address, &mask_address(address))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_letter_and_the_domain() {
        assert_eq!(mask_address("asha@example.com"), "a***@example.com");
        assert_eq!(mask_address("é@example.com"), "é***@example.com");
        assert_eq!(mask_address("@example.com"), "***@example.com");
        assert_eq!(mask_address("not-an-address"), "***");
    }

    #[test]
    fn redacts_the_recipient_quoted_in_an_error() {
        assert_eq!(
            redact(
                "permanent error (550): <asha@example.com>: no such user",
                "asha@example.com"
            ),
            "permanent error (550): <a***@example.com>: no such user"
        );
        assert_eq!(redact("timeout", ""), "timeout");
    }
}
