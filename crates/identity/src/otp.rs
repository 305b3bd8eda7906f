//! One-time codes: 6 digits from the OS CSPRNG, stored in Redis only as a keyed hash with
//! an attempt counter, checked in constant time, burnt after too many wrong tries.

use std::sync::LazyLock;
use std::time::Duration;

use deadpool_redis::redis::{self, AsyncCommands, Script};
use kloyst_db::redis::RedisPool;
use rand::rngs::OsRng;
use rand::Rng;
use subtle::ConstantTimeEq;

use crate::error::IdentityError;
use crate::keys::{Keys, Purpose};

/// A uniform code in 000000–999999 (`gen_range` rejects the biased tail, so every code is
/// equally likely).
pub(crate) fn generate() -> String {
    format!("{:06}", OsRng.gen_range(0..1_000_000u32))
}

/// Stores the hash of a new code for `email`, replacing any earlier one (and its attempt
/// count): only the newest code works.
pub(crate) async fn store(
    redis: &RedisPool,
    keys: &Keys,
    purpose: Purpose,
    email: &str,
    code: &str,
    ttl: Duration,
) -> Result<(), IdentityError> {
    let key = keys.otp(purpose, email);
    let mut conn = redis.get().await?;
    let () = redis::pipe()
        .atomic()
        .del(&key)
        .ignore()
        .hset_multiple(
            &key,
            &[
                ("h", keys.otp_hash(purpose, email, code)),
                ("a", "0".to_owned()),
            ],
        )
        .ignore()
        .pexpire(&key, millis(ttl))
        .ignore()
        .query_async(&mut conn)
        .await?;
    Ok(())
}

/// Counts the attempt *before* the comparison (atomically, in Redis), so parallel guesses
/// cannot exceed the limit. Returns the stored hash and the attempt number, or nothing
/// when there is no live code.
static ATTEMPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local attempts = redis.call('HINCRBY', KEYS[1], 'a', 1)
local stored = redis.call('HGET', KEYS[1], 'h') or ''
return {stored, attempts}
",
    )
});

/// Checks `code` and consumes it on success. A wrong code uses up one of `max_attempts`;
/// the last wrong one burns the code.
pub(crate) async fn verify(
    redis: &RedisPool,
    keys: &Keys,
    purpose: Purpose,
    email: &str,
    code: &str,
    max_attempts: u32,
) -> Result<(), IdentityError> {
    let key = keys.otp(purpose, email);
    let mut conn = redis.get().await?;
    let attempt: Option<(String, u32)> = ATTEMPT.key(&key).invoke_async(&mut conn).await?;
    let Some((stored, attempts)) = attempt else {
        return Err(IdentityError::OtpExpired);
    };
    if attempts > max_attempts {
        // Parallel guesses that raced past the limit: the code is burnt whatever they say.
        let _: u32 = conn.del(&key).await?;
        return Err(IdentityError::OtpInvalid { attempts_left: 0 });
    }
    let candidate = keys.otp_hash(purpose, email, code.trim());
    if bool::from(stored.as_bytes().ct_eq(candidate.as_bytes())) {
        // Whoever deletes it wins: a code can be used once even by two parallel requests.
        let deleted: u32 = conn.del(&key).await?;
        return if deleted == 1 {
            Ok(())
        } else {
            Err(IdentityError::OtpExpired)
        };
    }
    if attempts >= max_attempts {
        let _: u32 = conn.del(&key).await?;
    }
    Err(IdentityError::OtpInvalid {
        attempts_left: max_attempts.saturating_sub(attempts),
    })
}

/// Redis expiries in milliseconds, at least 1 (0 would mean "expire now").
pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis())
        .unwrap_or(i64::MAX)
        .max(1)
}

/// Whole seconds to wait, rounded up, from a Redis PTTL in milliseconds.
pub(crate) fn secs_from_ms(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..1000 {
            let code = generate();
            assert_eq!(code.len(), 6);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn time_conversions() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_secs(2)), 2000);
        assert_eq!(secs_from_ms(1), 1);
        assert_eq!(secs_from_ms(59_001), 60);
        assert_eq!(secs_from_ms(-2), 1);
    }
}
