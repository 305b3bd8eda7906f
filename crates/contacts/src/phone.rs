//! Phone-number normalisation: any common written form → E.164 digits without `+`.
//!
//! [`normalize`] accepts `+` and IDD prefixes (the default region's, e.g. `00` or `011`,
//! and `00` anywhere as a second chance), national formats with the trunk prefix (`0…`)
//! or carrier codes, the country code written without `+`, and the usual separators
//! (spaces, dashes, dots, brackets, slashes); `"+91 98765-43210"` is stored as
//! `"919876543210"`. A number is refused with a [`RejectReason`]: empty, not a number, too
//! short or too long, not valid for its region, or one libphonenumber is sure is a
//! landline ([`RejectReason::FixedLine`]: WhatsApp cannot reach it). Numbers it classes as
//! "fixed line or mobile" (US, Canada, …) and other valid types are kept.
//!
//! The rules and data are libphonenumber's (the metadata of the `phonenumber` crate), and
//! the steps are libphonenumber's `parse` + `isValidNumber` + `getNumberType`. They are
//! re-implemented here over that metadata instead of calling `phonenumber::parse`,
//! because that crate (0.3.10) strips the default region's country code from valid
//! national numbers (`"9198765432"` with IN → invalid), applies the default region's trunk
//! prefix to foreign numbers (`"+44 121 496 0000"` with US → wrong), loses leading zeros
//! when typing a number (Italy, Côte d'Ivoire), and takes a process-wide mutex and hashes
//! the whole pattern text for every regex it runs (~25 µs per number for parse +
//! validate). Here each region's patterns are compiled once, on first use, anchored and
//! ASCII-only, and a number costs well under a microsecond.
//!
//! Brazil: mobiles gained a 9th digit (area code + `9` + 8 digits) between 2012 and 2016.
//! Lists still hold the old form (area code + 8 digits starting 6–9), so it is rewritten
//! to the current numbering plan and both spellings of one person become the same stored
//! number (`"+55 11 8765-4321"` and `"+55 11 98765-4321"` → `"5511987654321"`). Landlines
//! (first digit 2–5) are left alone. WhatsApp's `wa_id` for some older Brazilian accounts
//! lacks the 9; the messaging layer maps a `wa_id` back to this canonical form.

use std::sync::{LazyLock, OnceLock};

use phonenumber::metadata::{Descriptor, Metadata, DATABASE};
use regex::{Regex, RegexBuilder};
use regex_automata::dfa::{dense, Automaton, StartKind};
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input};
use serde::Serialize;

/// ISO 3166-1 alpha-2 region used when a number has no international prefix.
pub use phonenumber::country::Id as Region;

/// A number as stored: E.164 digits without `+`, and its region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NormalizedNumber {
    /// E.164 digits without `+`, e.g. `"919876543210"`.
    pub mobile: String,
    /// ISO 3166-1 alpha-2 region, e.g. `"IN"`; `None` for non-geographic codes (+800, …).
    pub country: Option<String>,
}

/// Why a number was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectReason {
    Empty,
    NotANumber,
    InvalidForRegion,
    TooShort,
    TooLong,
    FixedLine,
}

impl RejectReason {
    /// Stable machine code, e.g. `"NOT_A_NUMBER"`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Empty => "EMPTY",
            Self::NotANumber => "NOT_A_NUMBER",
            Self::InvalidForRegion => "INVALID_FOR_REGION",
            Self::TooShort => "TOO_SHORT",
            Self::TooLong => "TOO_LONG",
            Self::FixedLine => "FIXED_LINE",
        }
    }

    /// A sentence for the person who uploaded the number.
    pub fn message(self) -> &'static str {
        match self {
            Self::Empty => "The phone number is empty.",
            Self::NotANumber => {
                "This is not a phone number: only digits, a leading +, spaces, dashes, dots and brackets are allowed."
            }
            Self::InvalidForRegion => "The phone number is not valid for its country.",
            Self::TooShort => "The phone number has too few digits for its country.",
            Self::TooLong => "The phone number has too many digits for its country.",
            Self::FixedLine => "This is a landline number; WhatsApp can only reach mobile numbers.",
        }
    }
}

/// `"IN"` or `"in"` → the region; `None` for anything that is not a known region code.
pub fn parse_region(code: &str) -> Option<Region> {
    let code = code.trim().as_bytes();
    let [a, b] = code else { return None };
    if !a.is_ascii_alphabetic() || !b.is_ascii_alphabetic() {
        return None;
    }
    let upper = [a.to_ascii_uppercase(), b.to_ascii_uppercase()];
    std::str::from_utf8(&upper).ok()?.parse().ok()
}

/// More digits than this is never a phone number, whatever the prefixes (E.164 allows 15).
const MAX_DIGITS: usize = 20;
/// libphonenumber's bounds on a national significant number.
const MIN_NSN: usize = 2;
const MAX_NSN: usize = 17;

/// Parses `raw` (any common format) with `default_region` for national numbers.
pub fn normalize(raw: &str, default_region: Region) -> Result<NormalizedNumber, RejectReason> {
    let (plus, digits) = clean(raw)?;
    let table = &*TABLE;
    let Some(home) = table.region(default_region.as_ref()) else {
        // Every `Region` has metadata; this only guards a mismatched crate build.
        return Err(RejectReason::InvalidForRegion);
    };
    let Some(rules) = table.rules(home) else {
        return Err(RejectReason::InvalidForRegion);
    };
    if plus {
        return international(table, digits.as_bytes());
    }
    let d = digits.as_bytes();
    // The default region's IDD (`00`, `011`, …), unless a 0 follows (then it is national).
    if let Some(end) = rules
        .international_prefix
        .as_ref()
        .and_then(|p| p.match_end(digits.as_str()))
    {
        if d.get(end) != Some(&b'0') {
            return international(table, &d[end..]);
        }
    }
    let national = national(table, home, rules, d);
    // `00` is the IDD almost everywhere; accept it where the default region's differs
    // (a US list holding "0044 …"), but only when the number is not valid as national.
    if national.is_err() && d.len() > 4 && d.starts_with(b"00") && d[2] != b'0' {
        if let Ok(number) = international(table, &d[2..]) {
            return Ok(number);
        }
    }
    national
}

/// Up to [`MAX_DIGITS`] ASCII digits on the stack.
#[derive(Clone, Copy)]
struct Digits {
    buf: [u8; MAX_DIGITS],
    len: usize,
}

impl Digits {
    fn new(digits: &[u8]) -> Option<Self> {
        let mut buf = [0u8; MAX_DIGITS];
        buf.get_mut(..digits.len())?.copy_from_slice(digits);
        Some(Self {
            buf,
            len: digits.len(),
        })
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

/// The digits of `raw`, and whether it began with `+`. Refuses anything but digits (any
/// script's 0–9), a `+` before the first digit, and separators.
fn clean(raw: &str) -> Result<(bool, Digits), RejectReason> {
    let mut digits = Digits {
        buf: [0u8; MAX_DIGITS],
        len: 0,
    };
    let mut plus = false;
    let mut any = false;
    for ch in raw.chars() {
        if let Some(d) = decimal(ch) {
            if digits.len == MAX_DIGITS {
                return Err(RejectReason::TooLong);
            }
            digits.buf[digits.len] = b'0' + d;
            digits.len += 1;
        } else if ch == '+' || ch == '\u{FF0B}' {
            // "+91 …", "(+91) …"; never a second one or after a digit.
            if plus || digits.len > 0 {
                return Err(RejectReason::NotANumber);
            }
            plus = true;
        } else if !is_separator(ch) {
            return Err(RejectReason::NotANumber);
        }
        any = any || !ch.is_whitespace();
    }
    if !any {
        return Err(RejectReason::Empty);
    }
    if digits.len == 0 {
        return Err(RejectReason::NotANumber);
    }
    Ok((plus, digits))
}

/// The value of a decimal digit in ASCII, Arabic-Indic, Persian, Devanagari, Bengali or
/// full-width form (spreadsheets from the Gulf and South Asia carry these).
fn decimal(ch: char) -> Option<u8> {
    let c = u32::from(ch);
    let zero = match c {
        0x30..=0x39 => 0x30,
        0x660..=0x669 => 0x660,
        0x6F0..=0x6F9 => 0x6F0,
        0x966..=0x96F => 0x966,
        0x9E6..=0x9EF => 0x9E6,
        0xFF10..=0xFF19 => 0xFF10,
        _ => return None,
    };
    u8::try_from(c - zero).ok()
}

fn is_separator(ch: char) -> bool {
    matches!(
        ch,
        ' ' | '\t'
            | '-'
            | '.'
            | '('
            | ')'
            | '['
            | ']'
            | '/'
            | '~'
            | '\u{00A0}'
            | '\u{00AD}'
            | '\u{2007}'
            | '\u{200B}'
            | '\u{202F}'
            | '\u{2060}'
            | '\u{3000}'
            | '\u{2010}'
            ..='\u{2015}' | '\u{2212}' | '\u{30FC}' | '\u{FF08}' | '\u{FF09}' | '\u{FF0D}'
    )
}

/// `digits` = country code + national number (after `+` or an IDD).
fn international(table: &Table, digits: &[u8]) -> Result<NormalizedNumber, RejectReason> {
    if digits.len() <= MIN_NSN {
        return Err(RejectReason::TooShort);
    }
    if digits[0] == b'0' {
        return Err(RejectReason::InvalidForRegion);
    }
    // Country codes are prefix-free: the first known 1–3 digit prefix is the code.
    let mut code = 0u16;
    let mut found = None;
    for (i, &d) in digits.iter().take(3).enumerate() {
        code = code * 10 + u16::from(d - b'0');
        if let Some(regions) = table.code(code) {
            found = Some((code, i + 1, regions));
            break;
        }
    }
    let Some((code, len, regions)) = found else {
        return Err(RejectReason::InvalidForRegion);
    };
    let main = regions.first().and_then(|&i| table.rules(i));
    let Some(main) = main else {
        return Err(RejectReason::InvalidForRegion);
    };
    let nsn = Digits::new(&digits[len..]).ok_or(RejectReason::TooLong)?;
    finish(table, code, main, nsn)
}

/// `digits` written as a national number of `home`, or with its country code but no `+`.
fn national(
    table: &Table,
    home: usize,
    rules: &Rules,
    digits: &[u8],
) -> Result<NormalizedNumber, RejectReason> {
    let code = table.entries[home].meta.country_code();
    let mut nsn = Digits::new(digits).ok_or(RejectReason::TooLong)?;
    // libphonenumber's maybeExtractCountryCode: "919876543210" with IN. The code is only
    // taken off when the whole is not a valid national number ("9198765432" is one) or
    // is too long to be one.
    if let Some(rest) = digits.strip_prefix(code_digits(code).as_bytes()) {
        let rest = Digits::new(rest).ok_or(RejectReason::TooLong)?;
        let potential = rules.strip_national_prefix(rest).unwrap_or(rest);
        if (!rules.general.is_match(nsn.as_str()) && rules.general.is_match(potential.as_str()))
            || rules.test_length(digits.len()) == Length::TooLong
        {
            nsn = potential;
        }
    }
    finish(table, code, rules, nsn)
}

fn code_digits(code: u16) -> Digits {
    let mut rev = [0u8; 5];
    let mut n = code;
    let mut len = 0;
    loop {
        rev[len] = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
        if n == 0 || len == rev.len() {
            break;
        }
    }
    let mut digits = Digits {
        buf: [0u8; MAX_DIGITS],
        len,
    };
    for i in 0..len {
        digits.buf[i] = rev[len - 1 - i];
    }
    digits
}

/// libphonenumber's last parse step (strip a trunk prefix / carrier code if what remains
/// is still a possible length), then validation.
fn finish(
    table: &Table,
    code: u16,
    rules: &Rules,
    mut nsn: Digits,
) -> Result<NormalizedNumber, RejectReason> {
    if let Some(stripped) = rules.strip_national_prefix(nsn) {
        if matches!(
            rules.test_length(stripped.len),
            Length::Possible | Length::TooLong
        ) {
            nsn = stripped;
        }
    }
    if nsn.len < MIN_NSN {
        return Err(RejectReason::TooShort);
    }
    if nsn.len > MAX_NSN {
        return Err(RejectReason::TooLong);
    }
    classify(table, code, nsn)
}

/// libphonenumber's isValidNumber + getNumberType for country code `code`.
fn classify(table: &Table, code: u16, nsn: Digits) -> Result<NormalizedNumber, RejectReason> {
    let nsn = if code == 55 && nsn.len == 10 && matches!(nsn.buf[2], b'6'..=b'9') {
        // Old-format Brazilian mobile → current form with the 9th digit (see module doc).
        let mut nine = nsn;
        nine.buf[3..=10].copy_from_slice(&nsn.buf[2..10]);
        nine.buf[2] = b'9';
        nine.len = 11;
        nine
    } else {
        nsn
    };
    let text = nsn.as_str();
    let Some(regions) = table.code(code) else {
        return Err(RejectReason::InvalidForRegion);
    };
    let mut main = None;
    let mut chosen = None;
    for &i in regions {
        let Some(rules) = table.rules(i) else {
            continue;
        };
        main = main.or(Some(rules));
        // Shared codes (+1, +44, +7, …): libphonenumber's choice of region.
        let picked = regions.len() == 1
            || match &rules.leading_digits {
                Some(re) => re.is_match(text),
                None => rules.kind(text) != Kind::Unknown,
            };
        if picked {
            chosen = Some(rules);
            break;
        }
    }
    let Some(rules) = chosen else {
        return Err(main.map_or(RejectReason::InvalidForRegion, |r| r.length_reason(nsn.len)));
    };
    match rules.kind(text) {
        Kind::Unknown => Err(rules.length_reason(nsn.len)),
        Kind::FixedLine => Err(RejectReason::FixedLine),
        Kind::Reachable => {
            let code = code_digits(code);
            let mut mobile = String::with_capacity(code.len + nsn.len);
            mobile.push_str(code.as_str());
            mobile.push_str(text);
            Ok(NormalizedNumber {
                mobile,
                country: (rules.id != "001").then(|| rules.id.to_owned()),
            })
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Unknown,
    FixedLine,
    /// Mobile, fixed-line-or-mobile, or any other valid type (VoIP, toll-free, …).
    Reachable,
}

/// libphonenumber's ValidationResult for a length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Length {
    Possible,
    LocalOnly,
    TooShort,
    Invalid,
    TooLong,
}

/// Every region of the metadata, each compiled on first use.
struct Table {
    entries: Vec<Entry>,
    /// Alpha-2 id (`AA`…`ZZ` as 0‥676) → entry.
    by_id: Vec<Option<usize>>,
    /// Country code (0‥999) → regions, the code's main region first (libphonenumber's
    /// order); empty for unassigned codes.
    by_code: Vec<Vec<usize>>,
}

struct Entry {
    meta: &'static Metadata,
    rules: OnceLock<Option<Rules>>,
}

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    let db: &'static phonenumber::metadata::Database = &DATABASE;
    let mut entries = Vec::new();
    let mut by_id = vec![None; 26 * 26];
    let mut by_code = vec![Vec::new(); 1000];
    // `Database::iter` keeps one entry per id, which loses all but one of the
    // non-geographic ("001") codes; `by_code` has them all.
    for code in 1..1000u16 {
        let Some(metas) = db.by_code(&code) else {
            continue;
        };
        let mut list = Vec::with_capacity(metas.len());
        for meta in metas {
            let index = entries.len();
            entries.push(Entry {
                meta,
                rules: OnceLock::new(),
            });
            if let Some(slot) = alpha2(meta.id()).and_then(|i| by_id.get_mut(i)) {
                *slot = Some(index);
            }
            list.push(index);
        }
        by_code[usize::from(code)] = list;
    }
    Table {
        entries,
        by_id,
        by_code,
    }
});

fn alpha2(id: &str) -> Option<usize> {
    match id.as_bytes() {
        &[a @ b'A'..=b'Z', b @ b'A'..=b'Z'] => {
            Some(usize::from(a - b'A') * 26 + usize::from(b - b'A'))
        }
        _ => None,
    }
}

impl Table {
    fn region(&self, id: &str) -> Option<usize> {
        *self.by_id.get(alpha2(id)?)?
    }

    fn code(&self, code: u16) -> Option<&[usize]> {
        Some(self.by_code.get(usize::from(code))?.as_slice()).filter(|r| !r.is_empty())
    }

    fn rules(&self, index: usize) -> Option<&Rules> {
        let entry = self.entries.get(index)?;
        entry
            .rules
            .get_or_init(|| Rules::compile(entry.meta))
            .as_ref()
    }
}

/// One region's metadata, compiled.
struct Rules {
    id: &'static str,
    /// `nationalPrefixForParsing`, or the national prefix itself (libphonenumber's
    /// default).
    prefix_for_parsing: Option<NationalPrefix>,
    /// With `${n}` groups for `Captures::expand`.
    transform: Option<String>,
    international_prefix: Option<Pattern>,
    leading_digits: Option<Pattern>,
    general: Pattern,
    mobile: Option<Desc>,
    fixed: Option<Desc>,
    /// The region does not tell fixed from mobile (same pattern): never a sure landline.
    fixed_is_mobile: bool,
    /// Toll-free, premium, shared-cost, VoIP, personal, pager, UAN, voicemail.
    others: Vec<Desc>,
    /// Every type's possible lengths (the general description's, as libphonenumber
    /// builds it), sorted, and those that are only locally diallable.
    lengths: Vec<u16>,
    local_lengths: Vec<u16>,
    /// Mobile lengths (else all) for "too short" / "too long" of an invalid number.
    mobile_bounds: (usize, usize),
}

enum NationalPrefix {
    /// Plain digits (most regions): a byte comparison, no regex.
    Literal(&'static str),
    /// Anchored at the start.
    Pattern(Regex),
}

struct Desc {
    re: Pattern,
    lengths: &'static [u16],
}

impl Desc {
    fn new(d: &'static Descriptor) -> Option<Self> {
        Some(Self {
            re: Pattern::whole(d.national_number().as_str())?,
            lengths: d.possible_length(),
        })
    }

    fn is_match(&self, nsn: &str) -> bool {
        let len = u16::try_from(nsn.len()).unwrap_or(u16::MAX);
        (self.lengths.is_empty() || self.lengths.contains(&len)) && self.re.is_match(nsn)
    }
}

/// A metadata pattern as a fully built DFA: ~25 ns a number and no lazily built state
/// (a lazy DFA over these large alternations stayed at ~1 µs for the first 100k numbers).
/// Patterns are written over several lines (whitespace is not significant) and only
/// ever see ASCII digits.
struct Pattern(dense::DFA<Vec<u32>>);

impl Pattern {
    /// Matches the whole number.
    fn whole(pattern: &str) -> Option<Self> {
        Self::build(&format!("^(?:{pattern})$"))
    }

    /// Matches at the start of the number.
    fn prefix(pattern: &str) -> Option<Self> {
        Self::build(&format!("^(?:{pattern})"))
    }

    fn build(pattern: &str) -> Option<Self> {
        dense::Builder::new()
            .syntax(
                syntax::Config::new()
                    .ignore_whitespace(true)
                    .unicode(false)
                    .utf8(false),
            )
            .configure(
                dense::Config::new()
                    .start_kind(StartKind::Anchored)
                    // Bounds a pathological pattern; the largest real one is ~10 KB.
                    .dfa_size_limit(Some(16 << 20))
                    .determinize_size_limit(Some(16 << 20)),
            )
            .build(pattern)
            .ok()
            .map(Self)
    }

    fn is_match(&self, text: &str) -> bool {
        let input = Input::new(text).anchored(Anchored::Yes).earliest(true);
        matches!(self.0.try_search_fwd(&input), Ok(Some(_)))
    }

    /// Where the (leftmost-first) match at the start ends.
    fn match_end(&self, text: &str) -> Option<usize> {
        let input = Input::new(text).anchored(Anchored::Yes);
        Some(self.0.try_search_fwd(&input).ok()??.offset())
    }
}

/// A `nationalPrefixForParsing` pattern: its capture groups feed the transform rule.
fn prefix_regex(pattern: &str) -> Option<Regex> {
    RegexBuilder::new(&format!("^(?:{pattern})"))
        .ignore_whitespace(true)
        .unicode(false)
        .build()
        .ok()
}

impl Rules {
    /// `None` if a pattern does not compile (the crate compiles the same ones, so never
    /// seen): the region's numbers are then refused rather than checked loosely.
    fn compile(meta: &'static Metadata) -> Option<Self> {
        let d = meta.descriptors();
        let opt_desc = |d: Option<&'static Descriptor>| match d {
            Some(d) => Desc::new(d).map(Some),
            None => Some(None),
        };
        let opt_prefix = |p: Option<&str>| match p {
            Some(p) if !p.trim().is_empty() => Pattern::prefix(p).map(Some),
            _ => Some(None),
        };
        let national_prefix = meta.national_prefix().filter(|p| !p.is_empty());
        let for_parsing = match meta.national_prefix_for_parsing().map(|re| re.as_str()) {
            Some(p) if !p.trim().is_empty() => Some(NationalPrefix::Pattern(prefix_regex(p)?)),
            _ => match national_prefix {
                Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => {
                    Some(NationalPrefix::Literal(p))
                }
                Some(p) => Some(NationalPrefix::Pattern(prefix_regex(p)?)),
                None => None,
            },
        };
        let transform = meta
            .national_prefix_transform_rule()
            .filter(|t| !t.is_empty())
            .map(|t| {
                // "9$1" → "9${1}": `expand` would read "$1…" greedily as a group name.
                let mut out = String::with_capacity(t.len() + 4);
                let mut chars = t.chars().peekable();
                while let Some(c) = chars.next() {
                    if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                        out.push_str("${");
                        while let Some(&n) = chars.peek().filter(|n| n.is_ascii_digit()) {
                            out.push(n);
                            chars.next();
                        }
                        out.push('}');
                    } else {
                        out.push(c);
                    }
                }
                out
            });

        let all = [
            d.fixed_line(),
            d.mobile(),
            d.toll_free(),
            d.premium_rate(),
            d.shared_cost(),
            d.personal_number(),
            d.voip(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ];
        let mut lengths: Vec<u16> = all
            .iter()
            .flatten()
            .flat_map(|d| d.possible_length().iter().copied())
            .collect();
        lengths.sort_unstable();
        lengths.dedup();
        let mut local_lengths: Vec<u16> = all
            .iter()
            .flatten()
            .flat_map(|d| d.possible_local_length().iter().copied())
            .filter(|l| !lengths.contains(l))
            .collect();
        local_lengths.sort_unstable();
        local_lengths.dedup();
        let bounds = |l: &[u16]| Some((usize::from(*l.first()?), usize::from(*l.last()?)));
        let mobile_bounds = d
            .mobile()
            .and_then(|m| bounds(m.possible_length()))
            .or_else(|| bounds(&lengths))
            .unwrap_or((MIN_NSN, MAX_NSN));

        let mut others = Vec::new();
        for other in all[2..].iter().flatten() {
            others.push(Desc::new(other)?);
        }
        Some(Self {
            id: meta.id(),
            prefix_for_parsing: for_parsing,
            transform,
            international_prefix: opt_prefix(meta.international_prefix().map(|re| re.as_str()))?,
            leading_digits: opt_prefix(meta.leading_digits().map(|re| re.as_str()))?,
            general: Pattern::whole(d.general().national_number().as_str())?,
            mobile: opt_desc(d.mobile())?,
            fixed: opt_desc(d.fixed_line())?,
            fixed_is_mobile: match (d.fixed_line(), d.mobile()) {
                (Some(f), Some(m)) => f.national_number().as_str() == m.national_number().as_str(),
                _ => false,
            },
            others,
            lengths,
            local_lengths,
            mobile_bounds,
        })
    }

    /// libphonenumber's maybeStripNationalPrefixAndCarrierCode: the number without its
    /// trunk prefix / carrier code (or transformed, e.g. Argentina's "0 11 15 …"), or
    /// `None` when there is none or stripping would spoil a valid-looking number.
    fn strip_national_prefix(&self, nsn: Digits) -> Option<Digits> {
        let text = nsn.as_str();
        let re = match self.prefix_for_parsing.as_ref()? {
            NationalPrefix::Literal(p) => {
                let rest = text.strip_prefix(p)?;
                if self.general.is_match(text) && !self.general.is_match(rest) {
                    return None;
                }
                return Digits::new(rest.as_bytes());
            }
            NationalPrefix::Pattern(re) => re,
        };
        let caps = re.captures(text)?;
        let end = caps.get(0)?.end();
        let viable = self.general.is_match(text);
        let last = caps
            .len()
            .checked_sub(1)
            .filter(|&n| n > 0)
            .and_then(|n| caps.get(n));
        match (&self.transform, last) {
            (Some(rule), Some(_)) => {
                let mut out = String::with_capacity(MAX_DIGITS);
                caps.expand(rule, &mut out);
                out.push_str(&text[end..]);
                if viable && !self.general.is_match(&out) {
                    return None;
                }
                if !out.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Digits::new(out.as_bytes())
            }
            _ => {
                let rest = &text[end..];
                if viable && !self.general.is_match(rest) {
                    return None;
                }
                Digits::new(rest.as_bytes())
            }
        }
    }

    /// libphonenumber's testNumberLength for an unknown type.
    fn test_length(&self, len: usize) -> Length {
        let len = u16::try_from(len).unwrap_or(u16::MAX);
        if self.local_lengths.contains(&len) {
            return Length::LocalOnly;
        }
        let (Some(&min), Some(&max)) = (self.lengths.first(), self.lengths.last()) else {
            return Length::Invalid;
        };
        if len < min {
            Length::TooShort
        } else if len > max {
            Length::TooLong
        } else if self.lengths.contains(&len) {
            Length::Possible
        } else {
            Length::Invalid
        }
    }

    /// libphonenumber's number type, reduced to what decides acceptance: a number is a
    /// sure landline only if it matches the fixed-line pattern and neither the mobile one
    /// nor any other type.
    fn kind(&self, nsn: &str) -> Kind {
        if !self.general.is_match(nsn) {
            return Kind::Unknown;
        }
        if self.mobile.as_ref().is_some_and(|m| m.is_match(nsn)) {
            return Kind::Reachable;
        }
        let other = || self.others.iter().any(|o| o.is_match(nsn));
        if self.fixed.as_ref().is_some_and(|f| f.is_match(nsn)) {
            return if self.fixed_is_mobile || other() {
                Kind::Reachable
            } else {
                Kind::FixedLine
            };
        }
        if other() {
            Kind::Reachable
        } else {
            Kind::Unknown
        }
    }

    /// Why a number that is not valid here was refused.
    fn length_reason(&self, len: usize) -> RejectReason {
        let (min, max) = self.mobile_bounds;
        if len < min {
            RejectReason::TooShort
        } else if len > max {
            RejectReason::TooLong
        } else {
            RejectReason::InvalidForRegion
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use phonenumber::country::Id;

    fn ok(raw: &str, region: Id) -> String {
        match normalize(raw, region) {
            Ok(n) => n.mobile,
            Err(e) => panic!("{raw:?} with {region:?}: {e:?}"),
        }
    }

    fn country(raw: &str, region: Id) -> Option<String> {
        normalize(raw, region).unwrap().country
    }

    fn err(raw: &str, region: Id) -> RejectReason {
        match normalize(raw, region) {
            Ok(n) => panic!("{raw:?} with {region:?} accepted as {n:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn india() {
        for raw in [
            "+91 98765-43210",
            "+919876543210",
            "0091 9876543210",
            "(098765) 43210",
            "098765 43210",
            "98765.43210",
            "98765 43210",
            "9876543210",
            "919876543210",
            "91 98765 43210",
            "+91 (0) 98765 43210",
            "+91-098765-43210",
            " 98765\u{00A0}43210 ",
            "٩٨٧٦٥٤٣٢١٠",
            "९८७६५४३२१०",
        ] {
            assert_eq!(ok(raw, Id::IN), "919876543210", "{raw}");
        }
        assert_eq!(country("98765 43210", Id::IN).as_deref(), Some("IN"));
        // A valid mobile that starts with the country code is not mistaken for "91 + …".
        assert_eq!(ok("9198765432", Id::IN), "919198765432");
        // From another default region, with + or that region's IDD.
        assert_eq!(ok("+91 98765 43210", Id::US), "919876543210");
        assert_eq!(ok("011 91 98765 43210", Id::US), "919876543210");
        assert_eq!(ok("0091 98765 43210", Id::US), "919876543210");
    }

    #[test]
    fn united_states() {
        for raw in [
            "+1 (415) 555-2671",
            "(415) 555-2671",
            "415-555-2671",
            "415.555.2671",
            "1 415 555 2671",
            "1-415-555-2671",
            "+14155552671",
            "001 415 555 2671",
        ] {
            assert_eq!(ok(raw, Id::US), "14155552671", "{raw}");
        }
        assert_eq!(ok("+1 (415) 555-2671", Id::IN), "14155552671");
        assert_eq!(ok("0014155552671", Id::IN), "14155552671");
        assert_eq!(country("+1 (415) 555-2671", Id::IN).as_deref(), Some("US"));
        // Canada shares +1; the region is told apart by area code.
        assert_eq!(country("+1 604 555 0123", Id::IN).as_deref(), Some("CA"));
    }

    #[test]
    fn united_kingdom() {
        for raw in [
            "07400 123456",
            "+44 7400 123456",
            "+44 (0)7400 123456",
            "0044 7400 123456",
            "447400123456",
        ] {
            assert_eq!(ok(raw, Id::GB), "447400123456", "{raw}");
        }
        assert_eq!(ok("+44 7400 123456", Id::IN), "447400123456");
        assert_eq!(country("07400 123456", Id::GB).as_deref(), Some("GB"));
        // Ofcom's "07911 123456" example lies in Guernsey's range in libphonenumber.
        assert_eq!(ok("07911 123456", Id::GB), "447911123456");
        assert_eq!(country("07911 123456", Id::GB).as_deref(), Some("GG"));
        // "0044 …" from a region whose IDD is not 00: second chance.
        assert_eq!(ok("0044 7400 123456", Id::US), "447400123456");
        assert_eq!(err("020 7946 0018", Id::GB), RejectReason::FixedLine);
        assert_eq!(err("+44 20 7946 0018", Id::US), RejectReason::FixedLine);
    }

    #[test]
    fn brazil_ninth_digit() {
        let canonical = "5511987654321";
        for raw in [
            "+55 11 98765-4321",
            "+55 11 8765-4321",
            "+55 (11) 98765-4321",
            "+5511987654321",
            "+551187654321",
            "0055 11 8765 4321",
            "0055 11 98765 4321",
        ] {
            assert_eq!(ok(raw, Id::IN), canonical, "{raw} (IN)");
        }
        // Brazil's own code without `+` is recognised only with BR as the default; from
        // elsewhere digits without `+`/IDD are read as national numbers of that region.
        assert_eq!(ok("5511987654321", Id::BR), canonical);
        assert_eq!(ok("551187654321", Id::BR), canonical);
        assert_eq!(err("5511987654321", Id::IN), RejectReason::TooLong);
        for raw in [
            "(11) 98765-4321",
            "(11) 8765-4321",
            "11 8765 4321",
            "011 98765 4321",
            "0 21 11 98765-4321",
            "0 21 11 8765-4321",
        ] {
            assert_eq!(ok(raw, Id::BR), canonical, "{raw} (BR)");
        }
        assert_eq!(country("+55 11 8765-4321", Id::IN).as_deref(), Some("BR"));
        // Every mobile-range first digit (6–9) gets the 9; other area codes too.
        assert_eq!(ok("+55 21 7123-4567", Id::IN), "5521971234567");
        assert_eq!(ok("+55 61 6123-4567", Id::IN), "5561961234567");
        // Landlines (first digit 2–5) are not touched, and refused as landlines.
        assert_eq!(err("+55 11 3456-7890", Id::IN), RejectReason::FixedLine);
        assert_eq!(err("(11) 2345-6789", Id::BR), RejectReason::FixedLine);
    }

    #[test]
    fn germany_indonesia_uae() {
        for raw in [
            "+49 1512 3456789",
            "01512 3456789",
            "0151 23456789",
            "+49 (0)151 23456789",
            "0049 151 2345 6789",
        ] {
            assert_eq!(ok(raw, Id::DE), "4915123456789", "{raw}");
        }
        assert_eq!(ok("+49 1512 3456789", Id::IN), "4915123456789");
        assert_eq!(err("030 1234567", Id::DE), RejectReason::FixedLine);

        for raw in [
            "0812-3456-7890",
            "+62 812 3456 7890",
            "62 812-3456-7890",
            "(0812) 3456 7890",
            "0812.3456.7890",
        ] {
            assert_eq!(ok(raw, Id::ID), "6281234567890", "{raw}");
        }
        assert_eq!(ok("+62 812-3456-7890", Id::IN), "6281234567890");
        assert_eq!(country("0812-3456-7890", Id::ID).as_deref(), Some("ID"));

        for raw in [
            "050 123 4567",
            "+971 50 123 4567",
            "00971501234567",
            "971-50-123-4567",
            "(050) 1234567",
        ] {
            assert_eq!(ok(raw, Id::AE), "971501234567", "{raw}");
        }
        assert_eq!(ok("+971 50 123 4567", Id::IN), "971501234567");
        assert_eq!(err("04 234 5678", Id::AE), RejectReason::FixedLine);
    }

    #[test]
    fn rejects() {
        assert_eq!(err("", Id::IN), RejectReason::Empty);
        assert_eq!(err("   \t ", Id::IN), RejectReason::Empty);
        assert_eq!(err("abc", Id::IN), RejectReason::NotANumber);
        assert_eq!(err("98765 4321O", Id::IN), RejectReason::NotANumber);
        assert_eq!(err("N/A", Id::IN), RejectReason::NotANumber);
        assert_eq!(err("---", Id::IN), RejectReason::NotANumber);
        assert_eq!(err("9.87654E+09", Id::IN), RejectReason::NotANumber);
        assert_eq!(err("98765 43210 ext 12", Id::IN), RejectReason::NotANumber);
        assert_eq!(err("98765+43210", Id::IN), RejectReason::NotANumber);
        assert_eq!(err("1", Id::IN), RejectReason::TooShort);
        assert_eq!(err("98765", Id::IN), RejectReason::TooShort);
        assert_eq!(err("98765 4321", Id::IN), RejectReason::TooShort);
        assert_eq!(err("+91 98765", Id::US), RejectReason::TooShort);
        assert_eq!(err("+9", Id::IN), RejectReason::TooShort);
        assert_eq!(err("98765 432101", Id::IN), RejectReason::TooLong);
        assert_eq!(err("+91 98765 43210 1234", Id::IN), RejectReason::TooLong);
        assert_eq!(
            err("123456789012345678901234", Id::IN),
            RejectReason::TooLong
        );
        assert_eq!(err("0791 112 345", Id::GB), RejectReason::TooShort);
        assert_eq!(err("07911 1234567", Id::GB), RejectReason::TooLong);
        // Right length, not a number range in use.
        assert_eq!(err("10000 00000", Id::IN), RejectReason::InvalidForRegion);
        assert_eq!(
            err("+1 123 456 7890", Id::IN),
            RejectReason::InvalidForRegion
        );
        assert_eq!(
            err("+999 1234 5678", Id::IN),
            RejectReason::InvalidForRegion
        );
        assert_eq!(err("+0 1234 5678", Id::IN), RejectReason::InvalidForRegion);
        // Landlines libphonenumber is sure about.
        assert_eq!(err("011 2345 6789", Id::IN), RejectReason::FixedLine);
        assert_eq!(err("+91 11 2345 6789", Id::US), RejectReason::FixedLine);
        assert_eq!(err("020 7946 0018", Id::GB), RejectReason::FixedLine);
    }

    #[test]
    fn kept_when_not_sure_it_is_a_landline() {
        // US/CA numbers are "fixed line or mobile": kept.
        assert_eq!(ok("+1 212 555 0100", Id::US), "12125550100");
        // Other valid types are not landlines: toll-free is kept.
        assert_eq!(ok("1800 123 4567", Id::IN), "9118001234567");
        // A leading zero that belongs to the number (Côte d'Ivoire mobiles, Italy).
        assert_eq!(ok("+225 07 07 12 34 56", Id::IN), "2250707123456");
        assert_eq!(ok("+39 312 345 6789", Id::IN), "393123456789");
        assert_eq!(err("+39 02 1234 5678", Id::IN), RejectReason::FixedLine);
        // Non-geographic code: no country.
        let n = normalize("+800 1234 5678", Id::IN).unwrap();
        assert_eq!((n.mobile.as_str(), n.country), ("80012345678", None));
    }

    #[test]
    fn codes_and_messages() {
        use RejectReason::*;
        for reason in [
            Empty,
            NotANumber,
            InvalidForRegion,
            TooShort,
            TooLong,
            FixedLine,
        ] {
            let json = serde_json::to_value(reason).unwrap();
            assert_eq!(json, reason.code());
            assert!(reason.message().ends_with('.'));
            assert_ne!(reason.message(), reason.code());
        }
    }

    #[test]
    fn regions() {
        assert_eq!(parse_region("IN"), Some(Id::IN));
        assert_eq!(parse_region("in"), Some(Id::IN));
        assert_eq!(parse_region(" br "), Some(Id::BR));
        assert_eq!(parse_region("Gb"), Some(Id::GB));
        assert_eq!(parse_region("XX"), None);
        assert_eq!(parse_region("India"), None);
        assert_eq!(parse_region("IND"), None);
        assert_eq!(parse_region(""), None);
        assert_eq!(parse_region("001"), None);
        assert_eq!(parse_region("I"), None);
        assert_eq!(parse_region("ÍN"), None);
    }

    /// Every region's metadata compiles, and its own example numbers come out as
    /// libphonenumber says: mobiles kept (written internationally and nationally),
    /// landlines refused.
    #[test]
    fn every_region_and_its_examples() {
        let table = &*TABLE;
        let mut checked = 0;
        for (index, entry) in table.entries.iter().enumerate() {
            let rules = table.rules(index);
            assert!(rules.is_some(), "{} does not compile", entry.meta.id());
            let rules = rules.unwrap();
            let code = entry.meta.country_code();
            let d = entry.meta.descriptors();
            let Some(example) = d.mobile().and_then(|m| m.example()) else {
                continue;
            };
            let international = format!("+{code} {example}");
            let got = normalize(&international, Id::US);
            let mut want = format!("{code}{example}");
            if code == 55 && example.len() == 10 {
                want.insert(4, '9');
            }
            assert_eq!(
                got.map(|n| n.mobile),
                Ok(want.clone()),
                "{} {international}",
                entry.meta.id()
            );
            // Colombian mobiles are dialled without the trunk 0 ("03…" reads as carrier
            // code 3 + a landline).
            if !matches!(entry.meta.id(), "001" | "CO") {
                let region: Id = entry.meta.id().parse().unwrap();
                let prefix = entry.meta.national_prefix().unwrap_or("");
                let national = format!("{prefix}{example}");
                let got = normalize(&national, region).map(|n| n.mobile);
                assert_eq!(got, Ok(want), "{} {national}", entry.meta.id());
            }
            if let Some(fixed) = d.fixed_line().and_then(|f| f.example()) {
                if rules.kind(fixed) == Kind::FixedLine {
                    let got = normalize(&format!("+{code}{fixed}"), Id::US);
                    assert_eq!(
                        got,
                        Err(RejectReason::FixedLine),
                        "{} {fixed}",
                        entry.meta.id()
                    );
                }
            }
            checked += 1;
        }
        assert!(checked > 200, "{checked}");
    }

    /// `cargo test -p kloyst-contacts --release --lib phone::tests::speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn speed() {
        let inputs: Vec<(String, Id)> = (0..100_000u32)
            .map(|i| {
                let n = i % 100_000;
                match i % 8 {
                    0 => (format!("+91 98765-{n:05}"), Id::IN),
                    1 => (format!("98{n:08}"), Id::IN),
                    2 => (format!("0{n:05}9876"), Id::IN),
                    3 => (format!("91 97{n:08}"), Id::IN),
                    4 => (format!("+1 (415) 55{}-{:04}", n % 10, n % 10_000), Id::IN),
                    5 => (format!("+55 11 9{n:04}-4321"), Id::IN),
                    6 => (format!("07700 9{n:05}"), Id::GB),
                    _ => (format!("+62 812 3{n:05} 789"), Id::IN),
                }
            })
            .collect();
        let start = std::time::Instant::now();
        let first = normalize("+91 98765 43210", Id::IN);
        println!(
            "first call (loads the metadata, compiles IN): {:?}",
            start.elapsed()
        );
        assert!(first.is_ok());
        for pass in ["cold (compiles the other regions)", "warm"] {
            let start = std::time::Instant::now();
            let mut accepted = 0;
            for (raw, region) in &inputs {
                if normalize(raw, *region).is_ok() {
                    accepted += 1;
                }
            }
            let elapsed = start.elapsed();
            println!(
                "normalize, {pass}: {} ns/call over {} calls ({accepted} accepted)",
                elapsed.as_nanos() / inputs.len() as u128,
                inputs.len()
            );
        }
        for kind in 0..8 {
            let start = std::time::Instant::now();
            for (raw, region) in inputs.iter().skip(kind).step_by(8) {
                let _ = std::hint::black_box(normalize(raw, *region));
            }
            let per = start.elapsed().as_nanos() * 8 / inputs.len() as u128;
            println!("  like {:?}: {per} ns/call", inputs[kind].0);
        }
    }
}
