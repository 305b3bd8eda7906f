//! The vendor API key as text: `kly_` + 12 base62 characters (the public, unique prefix that
//! lists and audit rows show) + `_` + 40 base62 characters (the secret). Generated from the
//! OS CSPRNG; only its SHA-256 is stored.

use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

/// What every key starts with: tells a key from a JWT in `Authorization: Bearer …`, and
/// lets secret scanners recognise a leaked key.
pub(crate) const KEY_START: &str = "kly_";
const PREFIX_RANDOM: usize = 12;
const SECRET_LEN: usize = 40;
/// `kly_` + 12: the stored, shown prefix.
const PREFIX_LEN: usize = KEY_START.len() + PREFIX_RANDOM;
/// The whole key: prefix, `_`, secret (57 characters).
const KEY_LEN: usize = PREFIX_LEN + 1 + SECRET_LEN;

/// A new key: shown once, then only `prefix` and `hash` are kept.
pub(crate) struct NewKey {
    pub key: String,
    pub prefix: String,
    pub hash: [u8; 32],
}

/// A new key: 52 base62 characters (about 309 bits) from `OsRng`. `Alphanumeric` samples
/// `[A-Za-z0-9]` uniformly (rejection sampling, no modulo bias).
pub(crate) fn generate() -> NewKey {
    let prefix = format!(
        "{KEY_START}{}",
        Alphanumeric.sample_string(&mut OsRng, PREFIX_RANDOM)
    );
    let secret = Alphanumeric.sample_string(&mut OsRng, SECRET_LEN);
    let key = format!("{prefix}_{secret}");
    let hash = hash(&key);
    NewKey { key, prefix, hash }
}

/// Whether `raw` has the shape of a key (exact length, `kly_`, base62, `_` at its place):
/// garbage is refused before it costs a database round trip.
pub(crate) fn is_well_formed(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let base62 = |part: &[u8]| part.iter().all(u8::is_ascii_alphanumeric);
    bytes.len() == KEY_LEN
        && raw.starts_with(KEY_START)
        && bytes.get(PREFIX_LEN) == Some(&b'_')
        && base62(&bytes[KEY_START.len()..PREFIX_LEN])
        && base62(&bytes[PREFIX_LEN + 1..])
}

/// SHA-256 of the whole key. A fast, unsalted hash is the right tool here, unlike for
/// passwords: the key has about 309 bits of entropy from a CSPRNG, so nobody can guess
/// their way back from a leaked hash however fast the hash is, and a deterministic hash is
/// what lets authentication find the key with one index probe on `api_keys_key_hash_key`
/// (a salted or stretched hash would need a lookup by prefix and a slow compare per request).
pub(crate) fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let new = generate();
        assert_eq!(new.key.len(), 57);
        assert!(new.key.starts_with("kly_"));
        assert_eq!(new.prefix.len(), 16);
        assert!(new.key.starts_with(&format!("{}_", new.prefix)));
        // The prefix satisfies the column's CHECK `^[A-Za-z0-9_]{4,32}$`.
        assert!(new
            .prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        assert!(is_well_formed(&new.key));
        assert_eq!(new.hash, hash(&new.key));
        assert_eq!(
            hex::encode(hash("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn generated_keys_differ_and_use_the_whole_alphabet() {
        let keys: Vec<NewKey> = (0..200).map(|_| generate()).collect();
        let prefixes: std::collections::HashSet<&str> =
            keys.iter().map(|k| k.prefix.as_str()).collect();
        assert_eq!(prefixes.len(), keys.len());
        let secrets: String = keys.iter().map(|k| &k.key[17..]).collect();
        assert!(secrets.bytes().any(|b| b.is_ascii_uppercase()));
        assert!(secrets.bytes().any(|b| b.is_ascii_lowercase()));
        assert!(secrets.bytes().any(|b| b.is_ascii_digit()));
    }

    #[test]
    fn malformed_keys_are_refused() {
        let good = generate().key;
        assert!(is_well_formed(&good));
        let mut wrong_separator = good.clone().into_bytes();
        wrong_separator[16] = b'x';
        let wrong_separator = String::from_utf8(wrong_separator).unwrap();
        let cases: Vec<String> = vec![
            String::new(),
            "kly_".to_owned(),
            "kly_short_secret".to_owned(),
            good[..56].to_owned(),
            format!("{good}a"),
            good.replacen("kly_", "KLY_", 1),
            good.replacen("kly_", "sk_x", 1),
            wrong_separator,
            format!("{}-{}", &good[..16], &good[17..]),
            format!("{}_{}", &good[..16], "é".repeat(20)),
            format!("{} ", &good[..56]),
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
                .to_owned(),
        ];
        for bad in &cases {
            assert!(!is_well_formed(bad), "{bad:?}");
        }
    }
}
