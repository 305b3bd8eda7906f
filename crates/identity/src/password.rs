//! The password policy and argon2id hashing.
//!
//! Hashing is deliberately slow (that is its point), so it runs on tokio's blocking pool
//! and never stalls the request workers.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::common_passwords::COMMON_PASSWORDS;
use crate::error::{IdentityError, Internal};
use crate::validate::Rule;

pub(crate) const MIN_CHARS: usize = 10;
/// Long enough for any passphrase; bounds the work an attacker can make us do per request.
pub(crate) const MAX_CHARS: usize = 128;

/// OWASP's minimum for argon2id (m = 19 MiB, t = 2, p = 1).
const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

/// An argon2id PHC string with exactly the parameters above whose password nobody knows:
/// verifying a login for an unknown email against it costs the same as for a real account,
/// so the answer's timing does not tell which emails exist. (A unit test keeps it in step
/// with the parameters.)
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$kWIoyEYzl2BNaPc9/HTy2KrM6JbvKCEnpd4pyWDwpFQ";

/// Checks the password rules; `email` is the normalised address of the account.
pub(crate) fn check_policy(password: &str, email: &str) -> Result<(), Rule> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(Rule::new(
            "password_too_short",
            format!("must be at least {MIN_CHARS} characters"),
        ));
    }
    if chars > MAX_CHARS {
        return Err(Rule::new(
            "password_too_long",
            format!("must be at most {MAX_CHARS} characters"),
        ));
    }
    let lower = password.to_lowercase();
    let distinct = {
        let mut seen: Vec<char> = lower.chars().collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    };
    if COMMON_PASSWORDS.contains(&lower.as_str()) || distinct < 4 {
        return Err(Rule::new(
            "password_too_common",
            "is too common or too simple; choose a less guessable password",
        ));
    }
    let local_part = email.split('@').next().unwrap_or_default();
    if lower == email || (!local_part.is_empty() && lower == local_part) {
        return Err(Rule::new(
            "password_like_email",
            "must not be your email address",
        ));
    }
    Ok(())
}

fn hasher() -> Result<Argon2<'static>, IdentityError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|e| Internal::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// An argon2id PHC string with a fresh random salt.
pub(crate) async fn hash(password: String) -> Result<String, IdentityError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        let hash = hasher()?
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| Internal::Hash(e.to_string()))?;
        Ok(hash.to_string())
    })
    .await?
}

/// Whether `password` matches `stored`; with `stored = None` (unknown account, or an
/// invitee without a password) the dummy hash is checked instead and the answer is `false`.
pub(crate) async fn verify(
    password: String,
    stored: Option<String>,
) -> Result<bool, IdentityError> {
    tokio::task::spawn_blocking(move || {
        let real = stored.is_some();
        let phc = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let parsed = PasswordHash::new(&phc)
            .map_err(|e| Internal::Corrupt(format!("stored password hash: {e}")))?;
        // The parameters come from the stored string, so old hashes keep verifying after
        // the parameters are raised.
        let matches = hasher()?
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(real && matches)
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        let email = "asha.rao.long@example.com";
        assert!(check_policy("correct horse battery", email).is_ok());
        assert_eq!(
            check_policy("short1!", email).unwrap_err().code,
            "password_too_short"
        );
        assert_eq!(
            check_policy(&"ab1!".repeat(33), email).unwrap_err().code,
            "password_too_long"
        );
        for common in ["Password123", "QWERTYUIOP", "1234567890", "abababababab"] {
            assert_eq!(
                check_policy(common, email).unwrap_err().code,
                "password_too_common",
                "{common}"
            );
        }
        assert_eq!(
            check_policy("Asha.Rao.Long", email).unwrap_err().code,
            "password_like_email"
        );
        // ten characters, counted as characters rather than bytes
        assert!(check_policy("ääääbcdefg", email).is_ok());
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let hash = hash("correct horse battery".into()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify("correct horse battery".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!verify("wrong horse battery".into(), Some(hash))
            .await
            .unwrap());
        assert!(!verify("anything at all".into(), None).await.unwrap());
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let parsed = PasswordHash::new(DUMMY_HASH).unwrap();
        let params = Params::try_from(&parsed).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (MEMORY_KIB, ITERATIONS, PARALLELISM)
        );
        assert_eq!(parsed.hash.map(|h| h.len()), Some(32));
    }
}
