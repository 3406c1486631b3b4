//! The district's wall clock: China Standard Time (UTC+8, no summer time), whatever
//! zone the host is set to. Times the platform keeps as district-local (appointments,
//! referrals, runs) and "today" are read from it, so that a server on a UTC host
//! neither stamps records eight hours early nor turns the day at 08:00.

use chrono::{Duration, NaiveDate, NaiveDateTime, Utc};

/// Hours China Standard Time is ahead of UTC.
pub const UTC_OFFSET_HOURS: i64 = 8;

/// Now, in district-local time.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc() + Duration::hours(UTC_OFFSET_HOURS)
}

/// Today, in the district.
pub fn today() -> NaiveDate {
    now().date()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_district_clock_is_eight_hours_ahead_of_utc() {
        let utc = chrono::Utc::now().naive_utc();
        let d = super::now() - utc;
        assert!(
            (d - chrono::Duration::hours(8)).num_seconds().abs() <= 1,
            "{d}"
        );
    }
}
