//! Resident identity numbers (GB 11643-1999): any text. None may panic; a number
//! accepted parses back to itself, and its masked form keeps only what masking keeps.
#![no_main]

use dhp_core::IdentityNumber;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let today = chrono::NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
    let Ok(id) = IdentityNumber::parse(text, today) else {
        return;
    };
    let again = IdentityNumber::parse(id.as_str(), today).expect("an accepted number parses again");
    assert_eq!(again.as_str(), id.as_str());
    assert_eq!(id.as_str().len(), 18);
    let masked = id.masked();
    assert_eq!(masked.chars().count(), 18);
    assert_eq!(masked.chars().filter(|c| *c != '*').count(), 10, "{masked}");
    let _ = dhp_core::identity::mask_text(text);
});
