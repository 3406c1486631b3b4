//! Resident identity number (居民身份证号码), GB 11643-1999 — domain-rules §1.
//!
//! An 18-character number: 6-digit administrative region code (GB/T 2260), birth date
//! `YYYYMMDD`, 3-digit sequence (17th digit odd = male, even = female) and a check
//! character computed with ISO 7064 MOD 11-2.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::registry::Sex;

/// Weights applied to the first 17 digits (domain-rules §1, "Check").
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// `Σ mod 11` → check character (domain-rules §1, "Check").
const CHECK_CHARS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// Province-level prefixes of GB/T 2260 region codes (the first two digits).
/// 11–15 North, 21–23 North-east, 31–37 East, 41–46 Central-south, 50–54 South-west,
/// 61–65 North-west, 71 Taiwan, 81 Hong Kong, 82 Macao, 83 Taiwan residents' permits.
const PROVINCE_PREFIXES: [u32; 35] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83,
];

/// Why an identity number was rejected. Every rule has its own message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("identity number must be 18 characters, got {0}")]
    Length(usize),
    #[error("identity number character {position} must be a digit, got {found:?}")]
    NotDigit { position: usize, found: char },
    #[error("identity number check character must be a digit or X, got {0:?}")]
    BadCheckChar(char),
    #[error("identity number region code {0} has no province {1:02} in GB/T 2260")]
    UnknownRegion(String, u32),
    #[error("identity number birth date {0} is not a real date")]
    ImpossibleDate(String),
    #[error("identity number birth date {0} is in the future")]
    FutureDate(NaiveDate),
    #[error("identity number birth date {0} is before 1900")]
    DateTooEarly(NaiveDate),
    #[error("identity number check character should be {expected}, got {found}")]
    CheckDigit { expected: char, found: char },
}

/// A validated resident identity number, normalised (`x` → `X`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdentityNumber(String);

impl IdentityNumber {
    /// Validate `raw` as of `today` (a birth date after `today` is rejected).
    pub fn parse(raw: &str, today: NaiveDate) -> Result<Self, IdentityError> {
        let chars: Vec<char> = raw.trim().chars().collect();
        if chars.len() != 18 {
            return Err(IdentityError::Length(chars.len()));
        }
        let mut digits = [0u32; 17];
        for (i, c) in chars[..17].iter().enumerate() {
            digits[i] = c.to_digit(10).ok_or(IdentityError::NotDigit {
                position: i + 1,
                found: *c,
            })?;
        }
        let check = match chars[17] {
            'x' | 'X' => 'X',
            c if c.is_ascii_digit() => c,
            c => return Err(IdentityError::BadCheckChar(c)),
        };
        let region: String = chars[..6].iter().collect();
        let province = digits[0] * 10 + digits[1];
        if !PROVINCE_PREFIXES.contains(&province) {
            return Err(IdentityError::UnknownRegion(region, province));
        }
        let date_text: String = chars[6..14].iter().collect();
        let birth = NaiveDate::parse_from_str(&date_text, "%Y%m%d")
            .map_err(|_| IdentityError::ImpossibleDate(date_text.clone()))?;
        if birth > today {
            return Err(IdentityError::FutureDate(birth));
        }
        if birth < NaiveDate::from_ymd_opt(1900, 1, 1).expect("valid date") {
            return Err(IdentityError::DateTooEarly(birth));
        }
        let expected = check_char(&digits);
        if expected != check {
            return Err(IdentityError::CheckDigit {
                expected,
                found: check,
            });
        }
        let mut normalised: String = chars[..17].iter().collect();
        normalised.push(check);
        Ok(Self(normalised))
    }

    /// Build a number from its parts, computing the check character.
    /// `region` must be 6 digits and `sequence` < 1000; the caller guarantees them.
    pub fn compose(region: &str, birth: NaiveDate, sequence: u16) -> Self {
        let body = format!("{region}{}{sequence:03}", birth.format("%Y%m%d"));
        let digits: Vec<u32> = body.chars().filter_map(|c| c.to_digit(10)).collect();
        assert_eq!(digits.len(), 17, "region must be 6 digits, sequence < 1000");
        let mut arr = [0u32; 17];
        arr.copy_from_slice(&digits);
        let mut s = body;
        s.push(check_char(&arr));
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 6-digit region code of first registration.
    pub fn region(&self) -> &str {
        &self.0[..6]
    }

    pub fn birth_date(&self) -> NaiveDate {
        NaiveDate::parse_from_str(&self.0[6..14], "%Y%m%d").expect("validated at parse")
    }

    /// 17th digit odd = male, even = female.
    pub fn sex(&self) -> Sex {
        let d = self.0.as_bytes()[16] - b'0';
        if d % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    /// Display form with the birth date hidden: `310118********123X`. Shown with the
    /// birth year only (never the date; see [`masked_birth`]), about 33 numbers fit
    /// what is shown, so the number cannot be rebuilt.
    pub fn masked(&self) -> String {
        mask_text(&self.0)
    }
}

/// Any identifier as a reader without the need to know it sees it: of 10 characters or
/// more, the first 6 and the last 4 kept; of fewer, the last 2; the rest `*`.
pub fn mask_text(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    let (head, tail) = if n >= 10 { (6, 4) } else { (0, 2.min(n / 2)) };
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < head || i >= n - tail { *c } else { '*' })
        .collect()
}

/// The birth date as a masked reader gets it: the year only (`1950`, a FHIR date of
/// year precision).
pub fn masked_birth(date: NaiveDate) -> String {
    date.format("%Y").to_string()
}

fn check_char(digits: &[u32; 17]) -> char {
    let sum: u32 = digits.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum();
    CHECK_CHARS[(sum % 11) as usize]
}

impl fmt::Display for IdentityNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Debug never prints the full number: logs must not leak identities.
impl fmt::Debug for IdentityNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityNumber({})", self.masked())
    }
}

impl TryFrom<String> for IdentityNumber {
    type Error = IdentityError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        // Deserialisation has no clock; stored numbers were validated when written.
        Self::parse(&value, NaiveDate::MAX)
    }
}

impl From<IdentityNumber> for String {
    fn from(value: IdentityNumber) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;
    use proptest::prelude::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    }

    #[track_caller]
    /// What a masked reader sees (the masked number and the birth year) fits many
    /// numbers: try every day of the year as the hidden date, keep those whose check
    /// character matches the one shown.
    #[test]
    fn a_masked_number_with_the_birth_year_cannot_be_rebuilt() {
        let today = NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
        let mut fewest = usize::MAX;
        for (k, born) in NaiveDate::from_ymd_opt(1940, 1, 1)
            .unwrap()
            .iter_days()
            .step_by(37)
            .take(800)
            .enumerate()
        {
            let n = IdentityNumber::compose("310118", born, (k % 1000) as u16);
            let n = IdentityNumber::parse(n.as_str(), today).unwrap();
            let shown = n.masked();
            let year: i32 = masked_birth(n.birth_date()).parse().unwrap();
            let seq: u16 = shown[14..17].parse().unwrap();
            let candidates = NaiveDate::from_ymd_opt(year, 1, 1)
                .unwrap()
                .iter_days()
                .take_while(|d| d.year() == year)
                .filter(|d| IdentityNumber::compose(&shown[..6], *d, seq).masked() == shown)
                .count();
            assert!(candidates >= 1, "the true number always fits");
            fewest = fewest.min(candidates);
        }
        assert!(fewest >= 10, "a masked number fits only {fewest} numbers");
    }

    #[test]
    fn other_identifiers_are_masked_too() {
        assert_eq!(mask_text("MRN-2025-000123"), "MRN-20*****0123");
        assert_eq!(mask_text("A12345"), "****45");
        assert_eq!(mask_text("7"), "*");
        assert_eq!(mask_text(""), "");
    }

    fn check(input: &str, expect: Result<(&str, Sex, &str), IdentityError>) {
        let got = IdentityNumber::parse(input, today());
        match (got, expect) {
            (Ok(id), Ok((birth, sex, region))) => {
                assert_eq!(id.birth_date().to_string(), birth);
                assert_eq!(id.sex(), sex);
                assert_eq!(id.region(), region);
            }
            (Err(e), Err(want)) => assert_eq!(e, want),
            (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn domain_rules_vectors_are_valid() {
        check(
            "11010519491231002X",
            Ok(("1949-12-31", Sex::Female, "110105")),
        );
        check(
            "53010219200508011X",
            Ok(("1920-05-08", Sex::Male, "530102")),
        );
        // lower-case x is accepted and normalised
        let id = IdentityNumber::parse("11010519491231002x", today()).unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
    }

    #[test]
    fn each_rejection_has_its_own_message() {
        check("1101051949123100", Err(IdentityError::Length(16)));
        check(
            "1101051949123100AX",
            Err(IdentityError::NotDigit {
                position: 17,
                found: 'A',
            }),
        );
        check("11010519491231002Y", Err(IdentityError::BadCheckChar('Y')));
        check(
            "110105194912310021",
            Err(IdentityError::CheckDigit {
                expected: 'X',
                found: '1',
            }),
        );
        check(
            "110105194902300021",
            Err(IdentityError::ImpossibleDate("19490230".into())),
        );
        check(
            "990105194912310021",
            Err(IdentityError::UnknownRegion("990105".into(), 99)),
        );
        let future =
            IdentityNumber::compose("310118", NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(), 1);
        check(
            future.as_str(),
            Err(IdentityError::FutureDate(
                NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(),
            )),
        );
        let messages: Vec<String> = [
            "1",
            "1101051949123100AX",
            "11010519491231002Y",
            "110105194912310021",
            "110105194902300021",
            "990105194912310021",
            future.as_str(),
        ]
        .iter()
        .map(|s| IdentityNumber::parse(s, today()).unwrap_err().to_string())
        .collect();
        let mut unique = messages.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), messages.len(), "{messages:?}");
    }

    #[test]
    fn retired_region_codes_stay_valid() {
        // 310103 (Luwan) and 310108 (Zhabei) were merged away but still appear on cards.
        for region in ["310103", "310108", "310229"] {
            let id =
                IdentityNumber::compose(region, NaiveDate::from_ymd_opt(1960, 3, 1).unwrap(), 123);
            assert!(IdentityNumber::parse(id.as_str(), today()).is_ok());
        }
    }

    #[test]
    fn masking_hides_birth_date_and_keeps_the_tail() {
        let id =
            IdentityNumber::compose("310118", NaiveDate::from_ymd_opt(1970, 1, 2).unwrap(), 123);
        let masked = id.masked();
        assert!(masked.starts_with("310118********123"));
        assert_eq!(masked.chars().count(), 18);
        assert!(!format!("{id:?}").contains("19700102"));
    }

    proptest! {
        #[test]
        fn composed_numbers_round_trip(days in 0i64..45_000, seq in 0u16..1000) {
            let birth = NaiveDate::from_ymd_opt(1901, 1, 1).unwrap() + chrono::Duration::days(days);
            prop_assume!(birth <= today());
            let id = IdentityNumber::compose("310118", birth, seq);
            let parsed = IdentityNumber::parse(id.as_str(), today()).unwrap();
            prop_assert_eq!(parsed.birth_date(), birth);
            prop_assert_eq!(parsed.sex(), if seq % 2 == 1 { Sex::Male } else { Sex::Female });
        }

        #[test]
        fn any_single_digit_change_is_caught(pos in 0usize..17, delta in 1u32..10) {
            let id = IdentityNumber::compose("310118", NaiveDate::from_ymd_opt(1980, 6, 15).unwrap(), 77);
            let mut chars: Vec<char> = id.as_str().chars().collect();
            let d = chars[pos].to_digit(10).unwrap();
            chars[pos] = char::from_digit((d + delta) % 10, 10).unwrap();
            let s: String = chars.into_iter().collect();
            prop_assert!(IdentityNumber::parse(&s, today()).is_err());
        }
    }
}
