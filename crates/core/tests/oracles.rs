//! Detection algorithms against outside oracles: domain-rules §6 figures and the
//! reference outputs of R's `surveillance` package on its salmNewport data
//! (fixtures written by tests/oracles/surveillance.R).

use dhp_core::surveillance::detect::{
    anscombe_weights, farrington_delta_threshold, Algorithm, Cadence,
};

const SERIES: &str = include_str!("fixtures/surveillance/salmNewport-germany.csv");

fn series() -> (Vec<String>, Vec<f64>) {
    SERIES
        .lines()
        .skip(1)
        .map(|l| {
            let (d, c) = l.split_once(',').unwrap();
            (d.to_string(), c.parse::<f64>().unwrap())
        })
        .unzip()
}

fn configure(name: &str, alpha: Option<f64>, params: &[(&str, &str)]) -> Algorithm {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Algorithm::configure(name, alpha, &params).unwrap()
}

/// Compares every point R scored: upper bound to 1e-6 and the alarm flag.
fn against_r(fixture: &str, algorithm: &Algorithm) -> usize {
    let (_, y) = series();
    let scores = algorithm.score(&y, Cadence::Weekly);
    let mut compared = 0;
    for line in fixture.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let t = f[0].parse::<usize>().unwrap() - 1;
        let score = scores[t].unwrap_or_else(|| panic!("{algorithm}: no score at {t}"));
        if f[1] == "NA" {
            assert!(
                score.threshold.is_nan(),
                "{algorithm} at {t}: R has no bound, we have {}",
                score.threshold
            );
            assert!(!score.alarm);
            continue;
        }
        let r: f64 = f[1].parse().unwrap();
        assert!(
            (score.threshold - r).abs() < 1e-6,
            "{algorithm} at week {t}: upper bound {} vs R {r}",
            score.threshold
        );
        assert_eq!(score.alarm, f[2] == "1", "{algorithm} at week {t}: alarm");
        compared += 1;
    }
    compared
}

#[test]
fn ears_c1_salm_newport_2011_first_four_weeks() {
    // domain-rules §6: C1, α = 0.05, ISO year 2011 → 3.278854, 3.278854, 3.436517, 3.855617.
    let (dates, y) = series();
    let first_2011 = dates
        .iter()
        .position(|d| d.as_str() >= "2011-01-03")
        .unwrap();
    let scores = configure("ears-c1", Some(0.05), &[]).score(&y, Cadence::Weekly);
    let expected = [3.278854, 3.278854, 3.436517, 3.855617];
    for (i, e) in expected.iter().enumerate() {
        let u = scores[first_2011 + i].unwrap().threshold;
        assert!((u - e).abs() < 1e-6, "week {i}: {u} vs {e}");
    }
}

#[test]
fn ears_matches_r_on_every_week() {
    for name in ["ears-c1", "ears-c2", "ears-c3"] {
        let fixture = match name {
            "ears-c1" => include_str!("fixtures/surveillance/ears-c1.csv"),
            "ears-c2" => include_str!("fixtures/surveillance/ears-c2.csv"),
            _ => include_str!("fixtures/surveillance/ears-c3.csv"),
        };
        let n = against_r(fixture, &configure(name, Some(0.05), &[]));
        assert!(n > 500, "{name}: {n} weeks compared");
    }
}

#[test]
fn farrington_matches_r_flexible_original_settings() {
    let n = against_r(
        include_str!("fixtures/surveillance/farrington.csv"),
        &configure("farrington", Some(0.05), &[]),
    );
    assert!(n > 150, "{n} weeks compared");
}

#[test]
fn farrington_noufaily_matches_r() {
    let n = against_r(
        include_str!("fixtures/surveillance/farrington-noufaily.csv"),
        &configure("farrington-noufaily", Some(0.05), &[]),
    );
    assert!(n > 150, "{n} weeks compared");
}

#[test]
fn farrington_threshold_oracle() {
    // domain-rules §6: μ₀ = 5, se = 0.2, φ = 1, α = 0.05, power 2/3 → U = 9.1154825.
    let u = farrington_delta_threshold(5.0, 0.2, 1.0, 0.05);
    assert!((u - 9.1154825).abs() < 1e-6, "{u}");
}

#[test]
fn farrington_reweighting_oracle() {
    // domain-rules §6: s = five 0s and five 2s, threshold 0 → weights 1.6 and 0.4.
    let s = [0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0, 2.0];
    let w = anscombe_weights(&s, 0.0);
    for (i, w) in w.iter().enumerate() {
        let e = if i < 5 { 1.6 } else { 0.4 };
        assert!((w - e).abs() < 1e-6, "{i}: {w}");
    }
}
