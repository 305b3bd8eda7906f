//! Opt-out / opt-in keywords: a message whose whole text (trimmed, any case) is one of the
//! configured words changes the contact's consent.

use super::settings::{same_keyword, InboundSettings};

/// What a message asks for, with the keyword as configured (for the audit trail).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ConsentRequest<'a> {
    OptOut(&'a str),
    OptIn(&'a str),
}

/// Longer than any keyword can be (settings cap them at 64 characters): such texts are
/// conversation, not commands, and are not compared at all.
const MAX_KEYWORD_BYTES: usize = 256;

/// The consent request in `text`, if its trimmed whole equals a keyword.
pub(crate) fn consent_request<'s>(
    settings: &'s InboundSettings,
    text: Option<&str>,
) -> Option<ConsentRequest<'s>> {
    let text = text?.trim();
    if text.is_empty() || text.len() > MAX_KEYWORD_BYTES {
        return None;
    }
    let matches = |keyword: &&String| same_keyword(keyword, text);
    if let Some(keyword) = settings.opt_out_keywords.iter().find(matches) {
        return Some(ConsentRequest::OptOut(keyword));
    }
    settings
        .opt_in_keywords
        .iter()
        .find(matches)
        .map(|keyword| ConsentRequest::OptIn(keyword))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> InboundSettings {
        InboundSettings {
            default_vendor_id: None,
            opt_out_keywords: vec!["STOP".into(), "UNSUBSCRIBE".into(), "Band Karo".into()],
            opt_in_keywords: vec!["START".into()],
        }
    }

    #[test]
    fn whole_trimmed_text_matches_in_any_case() {
        let s = settings();
        assert_eq!(
            consent_request(&s, Some(" stop \n")),
            Some(ConsentRequest::OptOut("STOP"))
        );
        assert_eq!(
            consent_request(&s, Some("Unsubscribe")),
            Some(ConsentRequest::OptOut("UNSUBSCRIBE"))
        );
        assert_eq!(
            consent_request(&s, Some("band karo")),
            Some(ConsentRequest::OptOut("Band Karo"))
        );
        assert_eq!(
            consent_request(&s, Some("Start")),
            Some(ConsentRequest::OptIn("START"))
        );
    }

    #[test]
    fn anything_else_is_not_a_keyword() {
        let s = settings();
        for text in [
            "please stop",
            "STOP!",
            "S T O P",
            "",
            "   ",
            "stopp",
            "ＳＴＯＰ",
        ] {
            assert_eq!(consent_request(&s, Some(text)), None, "{text:?}");
        }
        assert_eq!(consent_request(&s, None), None);
        let long = format!("STOP{}", " ".repeat(300));
        assert_eq!(
            consent_request(&s, Some(&long)),
            Some(ConsentRequest::OptOut("STOP"))
        );
        assert_eq!(consent_request(&s, Some(&"stop ".repeat(100))), None);
    }
}
