//! Early-warning signals (预警信号): alarms of a run become signals, duplicates of one
//! disease and area within the merge window become one, and a CDC user verifies each.

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::Id;

/// One detector alarm on one day for one disease (or syndrome) and area.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    /// Disease code, or `syndrome:<code>@<site>` for sentinel counts.
    pub disease: String,
    /// Area code (district or street/town) or sentinel site code.
    pub area: String,
    pub algorithm: String,
    pub day: NaiveDate,
    pub observed: f64,
    pub expected: f64,
    pub statistic: f64,
    pub threshold: f64,
    /// The counts behind the alarm: the series' last days up to `day`, oldest first.
    pub counts: Vec<i64>,
}

/// Where a signal stands in verification (核实).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignalStatus {
    /// 待核实 — raised, nobody has taken it.
    New,
    /// 核实中
    Verifying,
    /// 确认暴发
    Confirmed,
    /// 排除
    Excluded,
}

impl SignalStatus {
    pub fn code(self) -> &'static str {
        match self {
            SignalStatus::New => "new",
            SignalStatus::Verifying => "verifying",
            SignalStatus::Confirmed => "confirmed",
            SignalStatus::Excluded => "excluded",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "new" => SignalStatus::New,
            "verifying" => SignalStatus::Verifying,
            "confirmed" => SignalStatus::Confirmed,
            "excluded" => SignalStatus::Excluded,
            _ => return None,
        })
    }
    /// new → verifying → confirmed | excluded; a new signal may also be excluded at
    /// once (an obvious artefact). Closed signals stay closed.
    pub fn can_move_to(self, to: SignalStatus) -> bool {
        matches!(
            (self, to),
            (SignalStatus::New, SignalStatus::Verifying)
                | (SignalStatus::New, SignalStatus::Excluded)
                | (SignalStatus::Verifying, SignalStatus::Confirmed)
                | (SignalStatus::Verifying, SignalStatus::Excluded)
        )
    }
    pub fn is_open(self) -> bool {
        matches!(self, SignalStatus::New | SignalStatus::Verifying)
    }
}

/// A signal: the merged alarms of one disease and area.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    pub id: Id,
    pub disease: String,
    pub area: String,
    /// Algorithms that alarmed, comma-separated, first first.
    pub algorithms: String,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    /// Alarm days merged into it.
    pub alarm_days: i64,
    /// The strongest alarm's figures (largest observed − threshold).
    pub observed: f64,
    pub expected: f64,
    pub statistic: f64,
    pub threshold: f64,
    pub counts: Vec<i64>,
    pub status: SignalStatus,
    pub raised_at: NaiveDateTime,
    /// When verification started: signal → verification is the response time.
    pub verifying_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
    pub note: String,
}

impl Signal {
    /// Hours from raising to the start of verification.
    pub fn response_hours(&self) -> Option<f64> {
        self.verifying_at
            .map(|v| (v - self.raised_at).num_minutes() as f64 / 60.0)
    }

    fn absorb(&mut self, a: &Alarm) -> bool {
        let mut changed = false;
        if !self.algorithms.split(',').any(|x| x == a.algorithm) {
            self.algorithms.push(',');
            self.algorithms.push_str(&a.algorithm);
            changed = true;
        }
        if a.day > self.last_day {
            self.last_day = a.day;
            self.alarm_days += 1;
            self.counts = a.counts.clone();
            changed = true;
        } else if a.day < self.first_day {
            self.first_day = a.day;
            self.alarm_days += 1;
            changed = true;
        }
        if a.observed - a.threshold > self.observed - self.threshold {
            self.observed = a.observed;
            self.expected = a.expected;
            self.statistic = a.statistic;
            self.threshold = a.threshold;
            changed = true;
        }
        changed
    }
}

/// Folds `alarms` into `signals`: an alarm joins a signal of the same disease and area
/// that is not excluded and whose days lie within `window` days of it; otherwise it
/// starts a new signal (id 0, to be assigned). Returns the indexes of the signals that
/// changed or were added. Folding the same alarms twice changes nothing.
pub fn merge_alarms(
    signals: &mut Vec<Signal>,
    alarms: &[Alarm],
    window: i64,
    now: NaiveDateTime,
) -> Vec<usize> {
    let mut sorted: Vec<&Alarm> = alarms.iter().collect();
    sorted.sort_by(|a, b| (a.day, &a.disease, &a.area).cmp(&(b.day, &b.disease, &b.area)));
    let mut touched = Vec::new();
    for a in sorted {
        let near = signals.iter().position(|s| {
            s.disease == a.disease
                && s.area == a.area
                && s.status != SignalStatus::Excluded
                && (a.day - s.last_day).num_days() <= window
                && (s.first_day - a.day).num_days() <= window
        });
        let index = match near {
            Some(i) => {
                if !signals[i].absorb(a) {
                    continue;
                }
                i
            }
            None => {
                signals.push(Signal {
                    id: 0,
                    disease: a.disease.clone(),
                    area: a.area.clone(),
                    algorithms: a.algorithm.clone(),
                    first_day: a.day,
                    last_day: a.day,
                    alarm_days: 1,
                    observed: a.observed,
                    expected: a.expected,
                    statistic: a.statistic,
                    threshold: a.threshold,
                    counts: a.counts.clone(),
                    status: SignalStatus::New,
                    raised_at: now,
                    verifying_at: None,
                    closed_at: None,
                    note: String::new(),
                });
                signals.len() - 1
            }
        };
        if !touched.contains(&index) {
            touched.push(index);
        }
    }
    touched
}

/// One step of a signal's verification history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalEvent {
    pub signal_id: Id,
    pub at: NaiveDateTime,
    pub username: String,
    pub from: SignalStatus,
    pub to: SignalStatus,
    pub note: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(disease: &str, area: &str, algorithm: &str, d: u32) -> Alarm {
        Alarm {
            disease: disease.into(),
            area: area.into(),
            algorithm: algorithm.into(),
            day: NaiveDate::from_ymd_opt(2026, 6, d).unwrap(),
            observed: 5.0,
            expected: 1.0,
            statistic: 5.0,
            threshold: 3.0,
            counts: vec![1, 5],
        }
    }

    fn now() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 6, 30)
            .unwrap()
            .and_hms_opt(8, 0, 0)
            .unwrap()
    }

    #[test]
    fn alarms_within_the_window_merge_per_disease_and_area() {
        let mut signals = Vec::new();
        let alarms = vec![
            alarm("hfmd", "S1", "mpm", 1),
            alarm("hfmd", "S1", "ears-c3", 3),
            alarm("hfmd", "S1", "mpm", 9), // 6 days after the 3rd: merged
            alarm("hfmd", "S1", "mpm", 20), // 11 days later: a new signal
            alarm("hfmd", "S2", "mpm", 2),
            alarm("mumps", "S1", "mpm", 2),
        ];
        merge_alarms(&mut signals, &alarms, 7, now());
        assert_eq!(signals.len(), 4);
        let first = &signals[0];
        assert_eq!((first.first_day.day(), first.last_day.day()), (1, 9));
        assert_eq!(first.alarm_days, 3);
        assert_eq!(first.algorithms, "mpm,ears-c3");
        // Idempotent.
        let again = merge_alarms(&mut signals, &alarms, 7, now());
        assert!(again.is_empty());
        assert_eq!(signals.len(), 4);
    }

    #[test]
    fn an_excluded_signal_does_not_swallow_new_alarms() {
        let mut signals = Vec::new();
        merge_alarms(&mut signals, &[alarm("hfmd", "S1", "mpm", 1)], 7, now());
        signals[0].status = SignalStatus::Excluded;
        merge_alarms(&mut signals, &[alarm("hfmd", "S1", "mpm", 2)], 7, now());
        assert_eq!(signals.len(), 2);
    }

    #[test]
    fn verification_moves_forward_only() {
        use SignalStatus::*;
        assert!(New.can_move_to(Verifying));
        assert!(Verifying.can_move_to(Confirmed));
        assert!(Verifying.can_move_to(Excluded));
        assert!(New.can_move_to(Excluded));
        assert!(!New.can_move_to(Confirmed));
        assert!(!Confirmed.can_move_to(Verifying));
        assert!(!Excluded.can_move_to(New));
    }

    use chrono::Datelike;
}
