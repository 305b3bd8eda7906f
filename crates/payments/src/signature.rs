//! Razorpay's two signatures, both lowercase hex HMAC-SHA256:
//! - webhooks: `X-Razorpay-Signature` over the raw body, keyed with the webhook secret;
//! - checkout: over `order_id|payment_id`, keyed with the API key secret.
//!
//! Compared in constant time over the exact bytes received, before anything is parsed.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header Razorpay signs webhooks with.
pub const WEBHOOK_HEADER: &str = "x-razorpay-signature";
/// The header carrying the event's unique id (the duplicate key of a delivery).
pub const EVENT_ID_HEADER: &str = "x-razorpay-event-id";

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused. The text is safe to log and to answer with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the signature is missing")]
    Missing,
    #[error("the signature must be 64 hex digits")]
    Malformed,
    #[error("the signature does not match")]
    Mismatch,
}

fn digest(secret: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes a key of any length (long keys are hashed): this error never happens.
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn verify_digest(claimed: Option<&[u8]>, expected: [u8; 32]) -> Result<(), SignatureError> {
    let claimed = claimed.ok_or(SignatureError::Missing)?;
    let claimed = claimed.trim_ascii();
    if claimed.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(claimed, &mut bytes).map_err(|_| SignatureError::Malformed)?;
    if bool::from(expected.ct_eq(&bytes)) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The `X-Razorpay-Signature` Razorpay would send for `body`.
pub fn sign_webhook(secret: &[u8], body: &[u8]) -> String {
    hex::encode(digest(secret, &[body]))
}

/// Checks a webhook's signature against any of `secrets` (the current webhook secret and,
/// during a rotation, the previous one: Razorpay retries older events signed with it).
pub fn verify_webhook(
    secrets: &[&[u8]],
    header: Option<&[u8]>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let mut outcome = Err(SignatureError::Mismatch);
    for secret in secrets {
        match verify_digest(header, digest(secret, &[body])) {
            Ok(()) => return Ok(()),
            Err(SignatureError::Mismatch) => {}
            Err(other) => outcome = Err(other),
        }
    }
    outcome
}

/// The signature Razorpay Checkout hands the browser for a successful payment.
pub fn sign_checkout(key_secret: &[u8], order_id: &str, payment_id: &str) -> String {
    hex::encode(digest(
        key_secret,
        &[order_id.as_bytes(), b"|", payment_id.as_bytes()],
    ))
}

/// Checks a checkout signature. `order_id` must come from our own database, not from the
/// browser.
pub fn verify_checkout(
    key_secret: &[u8],
    order_id: &str,
    payment_id: &str,
    signature: &str,
) -> Result<(), SignatureError> {
    let expected = digest(
        key_secret,
        &[order_id.as_bytes(), b"|", payment_id.as_bytes()],
    );
    verify_digest(Some(signature.as_bytes()), expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_body_verifies_and_any_change_does_not() {
        let body = br#"{"event":"payment.captured"}"#;
        let signature = sign_webhook(b"webhook-secret", body);
        assert_eq!(signature.len(), 64);
        assert_eq!(
            verify_webhook(&[b"webhook-secret"], Some(signature.as_bytes()), body),
            Ok(())
        );
        let altered = br#"{"event":"payment.captured" }"#;
        assert_eq!(
            verify_webhook(&[b"webhook-secret"], Some(signature.as_bytes()), altered),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_webhook(&[b"other-secret"], Some(signature.as_bytes()), body),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_previous_secret_still_verifies_during_a_rotation() {
        let body = b"{}";
        let old = sign_webhook(b"old-secret", body);
        assert_eq!(
            verify_webhook(&[b"new-secret", b"old-secret"], Some(old.as_bytes()), body),
            Ok(())
        );
    }

    #[test]
    fn missing_and_malformed_signatures_are_told_apart() {
        assert_eq!(
            verify_webhook(&[b"s"], None, b"{}"),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_webhook(&[b"s"], Some(b"abc"), b"{}"),
            Err(SignatureError::Malformed)
        );
        let not_hex = "z".repeat(64);
        assert_eq!(
            verify_webhook(&[b"s"], Some(not_hex.as_bytes()), b"{}"),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn checkout_signature_is_over_order_pipe_payment() {
        // Razorpay's documented construction: hmac_sha256(order_id + "|" + payment_id, secret).
        let expected = sign_webhook(b"key-secret", b"order_9A33XWu170gUtm|pay_29QQoUBi66xm2f");
        let signature = sign_checkout(b"key-secret", "order_9A33XWu170gUtm", "pay_29QQoUBi66xm2f");
        assert_eq!(signature, expected);
        assert_eq!(
            verify_checkout(
                b"key-secret",
                "order_9A33XWu170gUtm",
                "pay_29QQoUBi66xm2f",
                &signature
            ),
            Ok(())
        );
        assert_eq!(
            verify_checkout(
                b"key-secret",
                "order_other",
                "pay_29QQoUBi66xm2f",
                &signature
            ),
            Err(SignatureError::Mismatch)
        );
    }
}
