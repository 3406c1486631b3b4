//! Password rules for accounts made by `dhp user add` (GB/T 22239-2019 level 3, 8.1.4.1:
//! identification information has complexity requirements). Pure: the caller decides
//! where the password comes from.

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

#[cfg(test)]
mod tests {
    use super::*;

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
