//! `dhp surveillance …` as an epidemiologist and a CDC run it.

use super::accounts::with_stdin;
use super::{dhp, stderr, stdout, Scratch};

/// Runs `dhp surveillance detect` with `input` on standard input.
fn detect(args: &[&str], input: &str) -> std::process::Output {
    let mut all = vec!["surveillance", "detect"];
    all.extend_from_slice(args);
    with_stdin(&all, input)
}

const SALM: &str =
    include_str!("../../../core/tests/fixtures/surveillance/salmNewport-germany.csv");

#[test]
fn detect_prints_every_scored_point_and_matches_the_r_oracle() {
    let o = detect(&["--algorithm", "ears-c1", "--alpha", "0.05"], SALM);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("date,count,threshold,alarm"));
    let rows: Vec<&str> = lines.collect();
    // 528 weekly points, the first 7 are the first baseline.
    assert_eq!(rows.len(), SALM.lines().count() - 1 - 7);
    // domain-rules §6: the first four weeks of ISO 2011.
    let i = rows
        .iter()
        .position(|r| r.starts_with("2011-01-03,"))
        .unwrap();
    let bounds: Vec<f64> = rows[i..i + 4]
        .iter()
        .map(|r| r.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    for (b, e) in bounds.iter().zip([3.278854, 3.278854, 3.436517, 3.855617]) {
        assert!((b - e).abs() < 1e-6, "{b} vs {e}");
    }
    // Every algorithm runs on the weekly series with its parameters.
    for name in [
        "fixed",
        "mpm",
        "ears-c2",
        "ears-c3",
        "ears-c3-hutwagner",
        "farrington",
        "farrington-noufaily",
        "cusum",
    ] {
        let o = detect(&["--algorithm", name], SALM);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert!(stdout(&o).lines().count() > 1, "{name} scored nothing");
    }
    let o = detect(
        &[
            "--algorithm",
            "mpm",
            "--param",
            "percentile=75",
            "--param",
            "strict=false",
        ],
        SALM,
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn detect_refuses_bad_input_in_one_line_naming_the_field() {
    let cases: [(&[&str], &str, &str); 6] = [
        (&["--algorithm", "ears-c9"], SALM, "unknown algorithm"),
        (
            &["--algorithm", "mpm", "--param", "percent=75"],
            SALM,
            "percent",
        ),
        (&["--algorithm", "ears-c1", "--alpha", "2"], SALM, "alpha"),
        (
            &["--algorithm", "ears-c1"],
            "date,count\n2026-01-01,3\n2026-01-02,x\n",
            "count",
        ),
        (
            &["--algorithm", "ears-c1"],
            "2026-01-01,3\n2026-01-03,4\n2026-01-05,1\n",
            "date",
        ),
        (
            &["--algorithm", "ears-c1"],
            "2026-01-01,3\n2026-01-02,4\n2026-01-04,1\n",
            "date",
        ),
    ];
    for (args, input, needle) in cases {
        let o = detect(args, input);
        assert!(!o.status.success(), "{args:?} should fail");
        let err = stderr(&o);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(stdout(&o).is_empty());
    }
}

#[test]
fn run_and_evaluate_over_a_generated_district() {
    let dir = Scratch::new("surveillance");
    let url = dir.url("d.db");
    let o = dhp(&[
        "generate",
        "--database",
        &url,
        "--residents",
        "500",
        "--seed",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // `dhp surveillance COMMAND --database URL ARGS…`
    let surveillance = |command: &str, args: &[&str]| {
        let mut all = vec!["surveillance", command, "--database", url.as_str()];
        all.extend_from_slice(args);
        dhp(&all)
    };
    let o = surveillance("run", &["--date", "2026-06-30", "--from", "2026-06-01"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("new signals"), "{out}");
    assert!(out.contains("missing report"), "{out}");
    // Again: nothing new.
    let o = surveillance("run", &["--date", "2026-06-30", "--from", "2026-06-01"]);
    assert!(stdout(&o).contains("→ 0 new signals"), "{}", stdout(&o));
    let o = surveillance("evaluate", &["--format", "csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = stdout(&o);
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 8, "{csv}");
    for r in &rows {
        let f: Vec<&str> = r.split(',').collect();
        let sensitivity: f64 = f[3].parse().unwrap();
        assert!((0.0..=100.0).contains(&sensitivity));
        assert!(
            f[1].parse::<usize>().unwrap() > 0,
            "outbreaks evaluated: {r}"
        );
    }
    let o = surveillance("evaluate", &["--format", "xml"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--format"));
    let o = surveillance("run", &["--date", "2026-06-01", "--from", "2026-06-30"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--from"));
}
