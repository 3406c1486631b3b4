//! Reporting periods (统计期): a year `2025`, a quarter `2025Q3` or a month `2025-07`.

use std::fmt;

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use super::Window;

/// A calendar reporting period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Period {
    Year(i32),
    /// Year and quarter 1–4.
    Quarter(i32, u32),
    /// Year and month 1–12.
    Month(i32, u32),
}

/// A period that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("period: {0:?} is not a year (2025), quarter (2025Q3) or month (2025-07)")]
pub struct PeriodError(pub String);

impl Period {
    pub fn parse(s: &str) -> Result<Self, PeriodError> {
        let bad = || PeriodError(s.to_string());
        let year = |y: &str| -> Result<i32, PeriodError> {
            if y.len() != 4 || !y.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            y.parse().map_err(|_| bad())
        };
        if let Some((y, q)) = s.split_once(['Q', 'q']) {
            let q: u32 = q.parse().map_err(|_| bad())?;
            if !(1..=4).contains(&q) {
                return Err(bad());
            }
            return Ok(Period::Quarter(year(y)?, q));
        }
        if let Some((y, m)) = s.split_once('-') {
            if m.len() != 2 {
                return Err(bad());
            }
            let m: u32 = m.parse().map_err(|_| bad())?;
            if !(1..=12).contains(&m) {
                return Err(bad());
            }
            return Ok(Period::Month(year(y)?, m));
        }
        Ok(Period::Year(year(s)?))
    }

    pub fn year(self) -> i32 {
        match self {
            Period::Year(y) | Period::Quarter(y, _) | Period::Month(y, _) => y,
        }
    }

    /// First day.
    pub fn start(self) -> NaiveDate {
        let (y, m) = match self {
            Period::Year(y) => (y, 1),
            Period::Quarter(y, q) => (y, 3 * q - 2),
            Period::Month(y, m) => (y, m),
        };
        NaiveDate::from_ymd_opt(y, m, 1).expect("valid period start")
    }

    /// Last day.
    pub fn end(self) -> NaiveDate {
        let months = match self {
            Period::Year(_) => 12,
            Period::Quarter(..) => 3,
            Period::Month(..) => 1,
        };
        (self.start() + Months::new(months))
            .pred_opt()
            .expect("valid period end")
    }

    /// First day counted under `window` (the last day is always [`Period::end`]).
    pub fn window_start(self, window: Window) -> NaiveDate {
        match window {
            Window::AsAt => self.end(),
            Window::YearToDate => Period::Year(self.year()).start(),
            Window::Period => self.start(),
        }
    }

    pub fn contains(self, day: NaiveDate) -> bool {
        self.start() <= day && day <= self.end()
    }

    /// The year, its quarters and its months.
    pub fn all_of_year(year: i32) -> Vec<Period> {
        let mut v = vec![Period::Year(year)];
        v.extend((1..=4).map(|q| Period::Quarter(year, q)));
        v.extend((1..=12).map(|m| Period::Month(year, m)));
        v
    }

    /// The periods containing `day`: its year, quarter and month.
    pub fn containing(day: NaiveDate) -> [Period; 3] {
        [
            Period::Year(day.year()),
            Period::Quarter(day.year(), day.month0() / 3 + 1),
            Period::Month(day.year(), day.month()),
        ]
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Period::Year(y) => write!(f, "{y}"),
            Period::Quarter(y, q) => write!(f, "{y}Q{q}"),
            Period::Month(y, m) => write!(f, "{y}-{m:02}"),
        }
    }
}

impl TryFrom<String> for Period {
    type Error = PeriodError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Period::parse(&s)
    }
}

impl From<Period> for String {
    fn from(p: Period) -> Self {
        p.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_print_and_bound() {
        for (s, start, end) in [
            ("2025", "2025-01-01", "2025-12-31"),
            ("2024Q1", "2024-01-01", "2024-03-31"),
            ("2025Q4", "2025-10-01", "2025-12-31"),
            ("2024-02", "2024-02-01", "2024-02-29"),
            ("2025-12", "2025-12-01", "2025-12-31"),
        ] {
            let p = Period::parse(s).unwrap();
            assert_eq!(p.to_string(), s);
            assert_eq!(p.start().to_string(), start);
            assert_eq!(p.end().to_string(), end);
        }
        for bad in ["", "25", "2025Q5", "2025-13", "2025-1", "abcd", "2025Q"] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
        let d = NaiveDate::from_ymd_opt(2025, 8, 15).unwrap();
        assert_eq!(
            Period::containing(d).map(|p| p.to_string()),
            ["2025", "2025Q3", "2025-08"]
        );
        assert_eq!(Period::all_of_year(2025).len(), 17);
        assert_eq!(
            Period::Month(2025, 8)
                .window_start(Window::YearToDate)
                .to_string(),
            "2025-01-01"
        );
    }
}
