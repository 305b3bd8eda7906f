//! Redis-backed limits of the auth flows: how often a code may be mailed (cooldown and
//! hourly caps), and how many failed logins an address or a client may have in a window.
//! Both key on the address whether or not an account exists, so their answers do not
//! reveal which accounts exist. Windows are fixed, starting at the first event.

use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::Duration;

use deadpool_redis::redis::{self, AsyncCommands, Script};
use kloyst_db::redis::RedisPool;

use crate::error::IdentityError;
use crate::keys::{Keys, Purpose};
use crate::otp::{millis, secs_from_ms};

const HOUR: Duration = Duration::from_secs(3600);

/// Takes one "code mailed" slot, or says how long to wait (ms), atomically: a refused
/// request consumes nothing.
/// KEYS: cooldown, email hourly counter, [ip hourly counter].
/// ARGV: cooldown ms, window ms, email cap, [ip cap].
static TAKE_SEND_SLOT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local window = tonumber(ARGV[2])
local wait = redis.call('PTTL', KEYS[1])
if wait > 0 then return {1, wait} end
for i = 2, #KEYS do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if count >= tonumber(ARGV[i + 1]) then
    local left = redis.call('PTTL', KEYS[i])
    if left < 0 then redis.call('PEXPIRE', KEYS[i], window); left = window end
    return {2, left}
  end
end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
for i = 2, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], window) end
end
return {0, 0}
",
    )
});

pub(crate) struct SendLimits {
    pub cooldown: Duration,
    pub per_email: u32,
    pub per_ip: u32,
}

/// Before mailing a code to `email` at the request of `ip`.
pub(crate) async fn take_send_slot(
    redis: &RedisPool,
    keys: &Keys,
    purpose: Purpose,
    email: &str,
    ip: Option<IpAddr>,
    limits: &SendLimits,
) -> Result<(), IdentityError> {
    let mut script = TAKE_SEND_SLOT.key(keys.otp_cooldown(purpose, email));
    script
        .key(keys.otp_hourly_email(email))
        .arg(millis(limits.cooldown))
        .arg(millis(HOUR))
        .arg(limits.per_email);
    if let Some(ip) = ip {
        script.key(keys.otp_hourly_ip(ip)).arg(limits.per_ip);
    }
    let mut conn = redis.get().await?;
    let (verdict, wait_ms): (u8, i64) = script.invoke_async(&mut conn).await?;
    match verdict {
        0 => Ok(()),
        1 => Err(IdentityError::rate_limited(
            "otp_resend_cooldown",
            "a code was sent moments ago",
            secs_from_ms(wait_ms),
        )),
        _ => Err(IdentityError::rate_limited(
            "otp_rate_limited",
            "too many codes were requested",
            secs_from_ms(wait_ms),
        )),
    }
}

pub(crate) struct LoginLimits {
    pub per_email: u32,
    pub per_ip: u32,
    pub window: Duration,
}

/// Refuses a login attempt while the address or the client has too many recent failures
/// (checked before the password, so a locked-out guesser learns nothing more).
pub(crate) async fn check_login(
    redis: &RedisPool,
    keys: &Keys,
    email: &str,
    ip: Option<IpAddr>,
    limits: &LoginLimits,
) -> Result<(), IdentityError> {
    let mut pipe = redis::pipe();
    let email_key = keys.login_failures_email(email);
    pipe.get(&email_key).pttl(&email_key);
    let ip_key = ip.map(|ip| keys.login_failures_ip(ip));
    if let Some(ip_key) = &ip_key {
        pipe.get(ip_key).pttl(ip_key);
    }
    let mut conn = redis.get().await?;
    let replies: Vec<Option<i64>> = pipe.query_async(&mut conn).await?;
    let over = |count: Option<&Option<i64>>, ttl: Option<&Option<i64>>, max: u32| {
        let count = count.copied().flatten().unwrap_or(0);
        (count >= i64::from(max)).then(|| {
            let ttl = ttl.copied().flatten().unwrap_or(-1);
            if ttl > 0 {
                ttl
            } else {
                millis(limits.window)
            }
        })
    };
    let email_wait = over(replies.first(), replies.get(1), limits.per_email);
    let ip_wait = over(replies.get(2), replies.get(3), limits.per_ip);
    match email_wait.into_iter().chain(ip_wait).max() {
        None => Ok(()),
        Some(wait_ms) => Err(IdentityError::rate_limited(
            "login_rate_limited",
            "too many failed logins",
            secs_from_ms(wait_ms),
        )),
    }
}

/// KEYS: counters to bump. ARGV: window ms. The window starts at the first failure.
static COUNT_FAILURE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for i = 1, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 or redis.call('PTTL', KEYS[i]) < 0 then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  end
end
return 0
",
    )
});

pub(crate) async fn count_login_failure(
    redis: &RedisPool,
    keys: &Keys,
    email: &str,
    ip: Option<IpAddr>,
    window: Duration,
) -> Result<(), IdentityError> {
    let mut script = COUNT_FAILURE.key(keys.login_failures_email(email));
    if let Some(ip) = ip {
        script.key(keys.login_failures_ip(ip));
    }
    let mut conn = redis.get().await?;
    let _: i64 = script.arg(millis(window)).invoke_async(&mut conn).await?;
    Ok(())
}

/// A successful login clears the address's failures (not the client's: one good account
/// must not reset a guesser's budget for the others).
pub(crate) async fn clear_login_failures(
    redis: &RedisPool,
    keys: &Keys,
    email: &str,
) -> Result<(), IdentityError> {
    let mut conn = redis.get().await?;
    let _: u32 = conn.del(keys.login_failures_email(email)).await?;
    Ok(())
}
