//! Password rules (GB/T 22239-2019 level 3, 8.1.4.1: identification information has
//! complexity requirements and is changed periodically): what a password must be, how
//! long it lasts, and when it must be changed. Pure: the caller decides where the
//! password comes from and keeps the dates.

use chrono::NaiveDateTime;

/// The shortest password accepted.
pub const MIN_LENGTH: usize = 10;

/// Character classes a password must mix, at least [`MIN_CLASSES`] of the four.
pub const MIN_CLASSES: usize = 3;

/// Passwords too common to allow whatever their length (compared without case).
const COMMON: [&str; 12] = [
    "password",
    "passw0rd",
    "qwertyuiop",
    "1234567890",
    "0123456789",
    "abcd1234",
    "a123456789",
    "1qaz2wsx3edc",
    "iloveyou",
    "admin12345",
    "p@ssw0rd",
    "woaini1314",
];

/// Why a password is refused, in words for the person choosing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must be at least {MIN_LENGTH} characters long")]
    TooShort,
    #[error("the password must mix at least {MIN_CLASSES} of: capital letters, small letters, digits, other characters")]
    TooSimple,
    #[error("the password must not contain the username")]
    ContainsUsername,
    #[error("the password is one of the most common ones")]
    Common,
}

/// Check `password` for the account `username`.
pub fn check(username: &str, password: &str) -> Result<(), PasswordError> {
    if password.chars().count() < MIN_LENGTH {
        return Err(PasswordError::TooShort);
    }
    let lower = password.to_lowercase();
    if COMMON.iter().any(|c| lower.contains(c)) {
        return Err(PasswordError::Common);
    }
    let name = username.trim().to_lowercase();
    if name.chars().count() >= 3 && lower.contains(&name) {
        return Err(PasswordError::ContainsUsername);
    }
    let classes = [
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ]
    .iter()
    .filter(|&&x| x)
    .count();
    if classes < MIN_CLASSES {
        return Err(PasswordError::TooSimple);
    }
    Ok(())
}

/// How long a password lasts and how many earlier ones may not come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    /// Days a password lasts; 0: it does not expire.
    pub max_age_days: i64,
    /// Earlier passwords of the account that may not be chosen again (the current one
    /// never may).
    pub history: usize,
}

impl Default for Lifecycle {
    /// 90 days and the last 5: the common reading of "changed periodically" in level-3
    /// assessments.
    fn default() -> Self {
        Self {
            max_age_days: 90,
            history: 5,
        }
    }
}

/// Why a password must be changed before the account can do anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeReason {
    /// Someone else set it: an administrator made the account or reset the password.
    SetByAdministrator,
    /// It is older than the policy allows.
    Expired,
}

impl ChangeReason {
    /// Its name in the audit log and in API answers.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeReason::SetByAdministrator => "set by an administrator",
            ChangeReason::Expired => "expired",
        }
    }
}

/// Whether a password set at `changed_at` (`None`: not known, counted from now) must be
/// changed at `now`.
pub fn change_needed(
    policy: &Lifecycle,
    must_change: bool,
    changed_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> Option<ChangeReason> {
    if must_change {
        return Some(ChangeReason::SetByAdministrator);
    }
    let changed = changed_at?;
    (policy.max_age_days > 0 && now - changed >= chrono::Duration::days(policy.max_age_days))
        .then_some(ChangeReason::Expired)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: u32) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
            .unwrap()
            .and_hms_opt(8, 0, 0)
            .unwrap()
            + chrono::Duration::days(i64::from(day))
    }

    #[test]
    fn a_password_expires_after_its_days_and_an_administrators_at_once() {
        let p = Lifecycle::default();
        assert_eq!(change_needed(&p, false, Some(at(0)), at(89)), None);
        assert_eq!(
            change_needed(&p, false, Some(at(0)), at(90)),
            Some(ChangeReason::Expired)
        );
        assert_eq!(
            change_needed(&p, true, Some(at(0)), at(1)),
            Some(ChangeReason::SetByAdministrator)
        );
        assert_eq!(
            change_needed(&p, false, None, at(900)),
            None,
            "unknown: from now"
        );
        let never = Lifecycle {
            max_age_days: 0,
            ..p
        };
        assert_eq!(change_needed(&never, false, Some(at(0)), at(900)), None);
    }

    #[test]
    fn each_rule_refuses_with_its_own_reason() {
        assert_eq!(check("li", "Ab1!xyz"), Err(PasswordError::TooShort));
        assert_eq!(check("li", "abcdefghijkl"), Err(PasswordError::TooSimple));
        assert_eq!(check("li", "abcdefghij12"), Err(PasswordError::TooSimple));
        assert_eq!(
            check("wangfang", "Wangfang2026!"),
            Err(PasswordError::ContainsUsername)
        );
        assert_eq!(check("li", "MyPassw0rd!!"), Err(PasswordError::Common));
        assert_eq!(check("li", "Qingpu-2026-zx"), Ok(()));
        assert_eq!(check("li", "Qingpu区卫生2026"), Ok(()));
    }
}
