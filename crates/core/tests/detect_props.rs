//! Properties every detector keeps (issue 5), and hand-worked cases for the detectors
//! without an R oracle (moving percentile, CUSUM, Hutwagner C3).

use dhp_core::surveillance::detect::{Algorithm, Cadence, ALGORITHMS};
use proptest::prelude::*;

fn configure(name: &str, params: &[(&str, &str)]) -> Algorithm {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Algorithm::configure(name, None, &params).unwrap()
}

#[test]
fn no_algorithm_alarms_on_an_all_zero_series() {
    for cadence in [Cadence::Daily, Cadence::Weekly] {
        let zeros = vec![0.0; 6 * cadence.period() + 30];
        for name in ALGORITHMS {
            let scores = configure(name, &[]).score(&zeros, cadence);
            let scored = scores.iter().flatten().count();
            assert!(scored > 0, "{name} scored nothing on {cadence:?}");
            assert!(
                scores.iter().flatten().all(|s| !s.alarm),
                "{name} alarmed on zeros ({cadence:?})"
            );
        }
    }
}

proptest! {
    #[test]
    fn scaling_a_series_does_not_change_ears_alarms(
        counts in proptest::collection::vec(0u32..40, 20..80),
        scale in prop_oneof![Just(2.0), Just(4.0), Just(0.5), Just(3.0), Just(10.0), Just(7.0)],
    ) {
        let x: Vec<f64> = counts.iter().map(|c| f64::from(*c)).collect();
        let scaled: Vec<f64> = x.iter().map(|v| v * scale).collect();
        for name in ["ears-c1", "ears-c2", "ears-c3", "ears-c3-hutwagner"] {
            let a = configure(name, &[]).score(&x, Cadence::Daily);
            let b = configure(name, &[]).score(&scaled, Cadence::Daily);
            for (t, (a, b)) in a.iter().zip(&b).enumerate() {
                let (Some(a), Some(b)) = (a, b) else {
                    prop_assert_eq!(a.is_some(), b.is_some());
                    continue;
                };
                // A point sitting exactly on its bound may round either way once scaled.
                let on_edge = (x[t] - a.threshold).abs() <= 1e-9 * (1.0 + x[t].abs())
                    || (a.statistic - 2.0).abs() < 1e-9;
                if !on_edge {
                    prop_assert_eq!(a.alarm, b.alarm, "{} at {}", name, t);
                }
            }
        }
    }

    #[test]
    fn fixed_threshold_diseases_always_signal_on_one_case(
        counts in proptest::collection::vec(0u32..3, 1..200),
    ) {
        let x: Vec<f64> = counts.iter().map(|c| f64::from(*c)).collect();
        let scores = configure("fixed", &[]).score(&x, Cadence::Daily);
        for (t, s) in scores.iter().enumerate() {
            prop_assert_eq!(s.unwrap().alarm, x[t] >= 1.0);
        }
    }

    #[test]
    fn scores_never_panic_and_cover_the_tail(
        counts in proptest::collection::vec(0u32..30, 0..400),
    ) {
        let x: Vec<f64> = counts.iter().map(|c| f64::from(*c)).collect();
        for name in ALGORITHMS {
            let scores = configure(name, &[("b", "1")].iter().filter(|_| name.starts_with("farrington")).copied().collect::<Vec<_>>()).score(&x, Cadence::Weekly);
            prop_assert_eq!(scores.len(), x.len());
        }
    }
}

#[test]
fn moving_percentile_by_hand() {
    // Weekly series, 3 years × 52 + 3: each earlier year's five windows around week t
    // hold 1..=5, 6..=10, 11..=15; P80 (linear) of 1..=15 is 12.2.
    let period = 52;
    let t = 3 * period + 2;
    let mut x = vec![0.0; t + 1];
    for y in 1..=3 {
        for j in 0..5 {
            x[t - y * period + j - 2] = ((3 - y) * 5 + j + 1) as f64;
        }
    }
    x[t] = 13.0;
    let s = configure("mpm", &[]).score(&x, Cadence::Weekly)[t].unwrap();
    assert!((s.threshold - 12.2).abs() < 1e-12, "{}", s.threshold);
    assert!(s.alarm);
    x[t] = 12.0;
    assert!(
        !configure("mpm", &[]).score(&x, Cadence::Weekly)[t]
            .unwrap()
            .alarm
    );
    // ≥ with the "higher" order statistic: P80 → 13.
    let s = configure("mpm", &[("strict", "false"), ("interpolation", "higher")])
        .score(&x, Cadence::Weekly)[t]
        .unwrap();
    assert_eq!(s.threshold, 13.0);
    assert!(!s.alarm);
    // Daily: the observed value is the rolling 7-day count.
    let daily = vec![1.0; 3 * 365 + 30];
    let s = configure("mpm", &[]).score(&daily, Cadence::Daily)[3 * 365 + 20].unwrap();
    assert_eq!(s.statistic, 7.0);
    assert_eq!(s.threshold, 7.0);
    assert!(!s.alarm);
}

#[test]
fn cusum_by_hand() {
    // m = 4 → z = (x − 4)/2; k = 1.04, h = 2.26.
    let x = [4.0, 8.0, 6.0, 9.0, 4.0];
    let s = configure("cusum", &[("m", "4")]).score(&x, Cadence::Daily);
    let sums: Vec<f64> = s.iter().map(|s| s.unwrap().statistic).collect();
    // 0; 0 + 2 − 1.04 = 0.96; 0.96 + 1 − 1.04 = 0.92; 0.92 + 2.5 − 1.04 = 2.38 → alarm, reset; 0.
    let expected = [0.0, 0.96, 0.92, 0.0, 0.0];
    let alarms: Vec<bool> = s.iter().map(|s| s.unwrap().alarm).collect();
    assert_eq!(alarms, [false, false, false, true, false]);
    for (i, e) in expected.iter().enumerate() {
        if i != 3 {
            assert!((sums[i] - e).abs() < 1e-12, "{i}: {}", sums[i]);
        }
    }
    assert!((s[3].unwrap().statistic - 2.38).abs() < 1e-12);
    // The count-scale threshold at t=3 is the count that just reaches h.
    let u = s[3].unwrap().threshold;
    assert!((u - (4.0 + 2.0 * (2.26 + 1.04 - 0.92))).abs() < 1e-12);
}

#[test]
fn hutwagner_c3_sums_three_days_of_c2_excess() {
    // Baseline of 7 alternating 0/2 (mean 1, sd √(8/7)) then three raised days.
    let mut x = vec![
        0.0, 2.0, 0.0, 2.0, 0.0, 2.0, 0.0, 2.0, 0.0, 2.0, 0.0, 2.0, 0.0,
    ];
    x.extend([3.0, 3.0, 3.0]);
    let s = configure("ears-c3-hutwagner", &[]).score(&x, Cadence::Daily);
    let last = s.last().unwrap().unwrap();
    let c2: Vec<f64> = configure("ears-c2", &[]).score(&x, Cadence::Daily)[x.len() - 3..]
        .iter()
        .map(|s| (s.unwrap().statistic - 1.0).max(0.0))
        .collect();
    assert!((last.statistic - c2.iter().sum::<f64>()).abs() < 1e-12);
    assert_eq!(last.alarm, last.statistic > 2.0);
}

#[test]
fn bad_parameters_name_the_field() {
    let err = Algorithm::configure("ears-c1", Some(1.5), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("alpha"), "{err}");
    let err = Algorithm::configure("mpm", None, &[("percentil".into(), "80".into())])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("percentil") && err.contains("percentile"),
        "{err}"
    );
    let err = Algorithm::configure("cusum", None, &[("h".into(), "abc".into())])
        .unwrap_err()
        .to_string();
    assert!(err.contains("`h`"), "{err}");
    let err = Algorithm::configure("mpm", Some(0.05), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("alpha"), "{err}");
    assert!(Algorithm::configure("ears-c4", None, &[]).is_err());
}
