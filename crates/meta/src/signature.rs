//! `X-Hub-Signature-256: sha256=<hex>`: HMAC-SHA256 of the raw body keyed with the app secret.
//! Verified over the exact bytes received, before any parsing.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header Meta signs webhooks with.
pub const HEADER: &str = "x-hub-signature-256";
const PREFIX: &str = "sha256=";

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused. The text is safe to log and to answer with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    #[error("the X-Hub-Signature-256 header must be \"sha256=\" followed by 64 hex digits")]
    Malformed,
    #[error("the X-Hub-Signature-256 signature does not match the body")]
    Mismatch,
}

fn mac(secret: &[u8], body: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length (long keys are hashed): this error never happens.
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    mac
}

/// The header value Meta would send for `body` (used by the simulator and the load test).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let digest = mac(secret, body).finalize().into_bytes();
    format!("{PREFIX}{}", hex::encode(digest))
}

/// Checks `header` (the raw header value, if any) against `body` in constant time.
pub fn verify(secret: &[u8], header: Option<&[u8]>, body: &[u8]) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_digest = header
        .strip_prefix(PREFIX.as_bytes())
        .ok_or(SignatureError::Malformed)?;
    if hex_digest.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    let mut claimed = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut claimed).map_err(|_| SignatureError::Malformed)?;
    let expected = mac(secret, body).finalize().into_bytes();
    if bool::from(expected.as_slice().ct_eq(&claimed)) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"app-secret-for-tests";

    #[test]
    fn a_signed_body_verifies() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let header = sign(SECRET, body);
        assert!(header.starts_with("sha256="));
        assert_eq!(header.len(), 7 + 64);
        assert_eq!(verify(SECRET, Some(header.as_bytes()), body), Ok(()));
    }

    #[test]
    fn uppercase_hex_is_accepted() {
        let body = b"{}";
        let header = sign(SECRET, body);
        let upper = format!("sha256={}", header[7..].to_uppercase());
        assert_eq!(verify(SECRET, Some(upper.as_bytes()), body), Ok(()));
    }

    #[test]
    fn refusals_name_their_reason() {
        let body = b"{\"a\":1}";
        let good = sign(SECRET, body);
        assert_eq!(verify(SECRET, None, body), Err(SignatureError::Missing));
        assert_eq!(
            verify(SECRET, Some(good.as_bytes()), b"{\"a\":2}"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"another-secret", Some(good.as_bytes()), body),
            Err(SignatureError::Mismatch)
        );
        let sha1 = format!("sha1={}", &good[7..47]);
        assert_eq!(
            verify(SECRET, Some(sha1.as_bytes()), body),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(SECRET, Some(b"sha256=zz"), body),
            Err(SignatureError::Malformed)
        );
        let not_hex = format!("sha256={}", "g".repeat(64));
        assert_eq!(
            verify(SECRET, Some(not_hex.as_bytes()), body),
            Err(SignatureError::Malformed)
        );
    }
}
