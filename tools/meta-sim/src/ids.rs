//! Identifiers in Meta's formats.

use base64::Engine;
use rand::Rng;

/// A message id like Meta's: `wamid.` + base64 of opaque bytes (here random, so unique).
pub fn wamid() -> String {
    let mut raw = [0u8; 30];
    rand::thread_rng().fill(&mut raw[..]);
    // Meta's wamids start with the same protobuf-ish prefix; keep the look.
    raw[..3].copy_from_slice(&[0x1c, 0x18, 0x0b]);
    format!(
        "wamid.{}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// `fbtrace_id`: an opaque token Meta puts on every error.
pub fn fbtrace_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::thread_rng();
    (0..23)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// Template ids are 15–16 digit numbers (sent as a string in responses, an integer in webhooks).
pub fn template_id() -> u64 {
    rand::thread_rng().gen_range(1_000_000_000_000_000..9_999_999_999_999_999)
}

/// Pre-v24 `conversation.id`: 32 lowercase hex digits.
pub fn conversation_id() -> String {
    let raw: [u8; 16] = rand::thread_rng().gen();
    hex::encode(raw)
}

/// A Razorpay id: `prefix_` + 14 base62 characters (`order_RB58MiP5SPFYyM`, `pay_…`, `rfnd_…`).
pub fn razorpay(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let tail: String = (0..14)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    format!("{prefix}_{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wamids_look_like_metas_and_differ() {
        let a = wamid();
        assert!(a.starts_with("wamid.HBgL"), "{a}");
        assert_ne!(a, wamid());
        assert_eq!(fbtrace_id().len(), 23);
        assert_eq!(template_id().to_string().len(), 16);
        assert_eq!(conversation_id().len(), 32);
    }

    #[test]
    fn razorpay_ids_are_prefix_and_14_alphanumerics() {
        let id = razorpay("order");
        let tail = id.strip_prefix("order_").unwrap();
        assert_eq!(tail.len(), 14);
        assert!(tail.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
        assert_ne!(id, razorpay("order"));
    }
}
