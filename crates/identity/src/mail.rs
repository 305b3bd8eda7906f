//! The texts of the mails this crate sends: plain, short, one purpose each. Codes appear
//! only here (in the queued mail), never in logs or the audit trail.

use std::time::Duration;

use kloyst_mail::SendMail;

fn minutes(ttl: Duration) -> u64 {
    ttl.as_secs().div_ceil(60).max(1)
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// "5 minutes", or "72 hours" for whole hours of two or more.
fn lifetime(ttl: Duration) -> String {
    let secs = ttl.as_secs();
    if secs >= 7200 && secs % 3600 == 0 {
        plural(secs / 3600, "hour")
    } else {
        plural(minutes(ttl), "minute")
    }
}

pub(crate) fn verification_code(to: &str, name: &str, code: &str, ttl: Duration) -> SendMail {
    SendMail {
        to: to.to_owned(),
        subject: "Your Kloyst verification code".to_owned(),
        text: format!(
            "Hello {name},\n\n\
             Your Kloyst verification code is: {code}\n\n\
             It expires in {}. Enter it where you signed up to verify your email address.\n\n\
             If you did not sign up for Kloyst, ignore this mail: nothing happens without the code.\n\n\
             Kloyst\n",
            plural(minutes(ttl), "minute")
        ),
        category: "otp".to_owned(),
    }
}

/// Sent instead of a code when someone registers with an address that already has an
/// account, so the answer to the registration does not reveal that it exists.
pub(crate) fn account_exists(to: &str) -> SendMail {
    SendMail {
        to: to.to_owned(),
        subject: "You already have a Kloyst account".to_owned(),
        text: "Hello,\n\n\
               Someone tried to create a Kloyst account with this email address, but an \
               account with this address already exists.\n\n\
               If it was you, log in with your existing password instead.\n\
               If it was not you, you can ignore this mail: nothing has changed.\n\n\
               Kloyst\n"
            .to_owned(),
        category: "account_exists".to_owned(),
    }
}

pub(crate) fn invitation(
    to: &str,
    company: &str,
    inviter: &str,
    code: &str,
    ttl: Duration,
) -> SendMail {
    SendMail {
        to: to.to_owned(),
        subject: format!("You are invited to join {company} on Kloyst"),
        text: format!(
            "Hello,\n\n\
             {inviter} invited you to join {company} on Kloyst.\n\n\
             Your invitation code is: {code}\n\n\
             It expires in {}. To accept, open the Kloyst invitation page, enter this email \
             address, the code and a password of your choice (at least 10 characters).\n\n\
             If you did not expect this invitation, ignore this mail.\n\n\
             Kloyst\n",
            lifetime(ttl)
        ),
        category: "invite".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_carry_the_code_and_its_expiry() {
        let mail = verification_code("a@b.co", "Asha", "042042", Duration::from_secs(300));
        assert!(mail.text.contains("042042"));
        assert!(mail.text.contains("expires in 5 minutes"));
        assert_eq!(mail.category, "otp");
        let invite = invitation(
            "a@b.co",
            "Acme",
            "Ravi",
            "123456",
            Duration::from_secs(72 * 3600),
        );
        assert!(invite.text.contains("expires in 72 hours"));
        assert!(invite.subject.contains("Acme"));
        assert!(lifetime(Duration::from_secs(2)).contains("1 minute"));
        assert!(!account_exists("a@b.co").text.contains("code"));
    }
}
