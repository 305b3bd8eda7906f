//! Passwords of at least 10 characters that appear near the top of public breach lists
//! (shorter ones are refused by length already). Compared case-insensitively, so each is
//! written in lower case. A list, not a breach-corpus lookup: it stops the obvious guesses
//! that online attacks try first, without a network call or a large file.

pub(crate) const COMMON_PASSWORDS: &[&str] = &[
    "0000000000",
    "0123456789",
    "0987654321",
    "1111111111",
    "1122334455",
    "1234512345",
    "1234567890",
    "12345678910",
    "123456789a",
    "123456789q",
    "1234567890a",
    "123123123123",
    "1234qwerasdf",
    "123qweasdzxc",
    "1q2w3e4r5t",
    "1q2w3e4r5t6y",
    "1qaz2wsx3edc",
    "2222222222",
    "5555555555",
    "6666666666",
    "7777777777",
    "8888888888",
    "9876543210",
    "9999999999",
    "a123456789",
    "aaaaaaaaaa",
    "abc1234567",
    "abcd123456",
    "abcdefghij",
    "abcdefg123",
    "admin12345",
    "admin@1234",
    "administrator",
    "asdfghjkl1",
    "asdfghjkl123",
    "asdfasdfasdf",
    "baseball123",
    "changeme123",
    "dragon12345",
    "football123",
    "iloveyou12",
    "iloveyou123",
    "india@1234",
    "india12345",
    "kloyst1234",
    "kloyst@123",
    "letmein123",
    "letmein1234",
    "monkey12345",
    "mypassword",
    "mypassword1",
    "p@ssw0rd123",
    "p@ssword123",
    "pass@12345",
    "passw0rd123",
    "password01",
    "password1!",
    "password12",
    "password123",
    "password1234",
    "password@1",
    "password@123",
    "princess123",
    "q1w2e3r4t5",
    "q1w2e3r4t5y6",
    "qazwsxedc123",
    "qazwsxedcrfv",
    "qwerty1234",
    "qwerty12345",
    "qwerty123456",
    "qwertyuiop",
    "qwertyuiop1",
    "qwertyuiop123",
    "starwars123",
    "sunshine123",
    "superman123",
    "trustno1234",
    "welcome123",
    "welcome@123",
    "whatsapp123",
    "whatever123",
    "zaq12wsxcde",
    "zxcvbnm123",
    "zxcvbnmasd",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_lower_case_long_enough_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for entry in COMMON_PASSWORDS {
            assert_eq!(*entry, entry.to_lowercase(), "{entry}");
            assert!(entry.chars().count() >= 10, "{entry}");
            assert!(seen.insert(entry), "duplicate {entry}");
        }
        assert!(COMMON_PASSWORDS.len() >= 50);
    }
}
