//! Commands, their output and their exit codes.

use crate::{dhp, stderr, stdout, Scratch};

#[test]
fn id_check_passes_the_domain_rules_vectors() {
    let o = dhp(&["id", "check", "11010519491231002X"]);
    assert!(o.status.success());
    assert_eq!(
        stdout(&o).trim(),
        r#"{"valid":true,"birth_date":"1949-12-31","sex":"female","region":"110105"}"#
    );
    let o = dhp(&["id", "check", "53010219200508011X"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains(r#""birth_date":"1920-05-08","sex":"male","region":"530102""#));
    // lower-case x is accepted
    assert!(dhp(&["id", "check", "11010519491231002x"]).status.success());
}

#[test]
fn id_check_rejects_each_bad_case_with_its_own_message() {
    let cases = [
        ("1101051949123100", "18 characters"),
        ("110105194912310021", "check character should be X"),
        ("110105194902300021", "not a real date"),
        ("110105209901010028", "in the future"),
        ("1101051949123100AX", "must be a digit"),
        ("990105194912310021", "province"),
    ];
    let mut reasons = Vec::new();
    for (number, expect) in cases {
        let o = dhp(&["id", "check", number]);
        assert_eq!(o.status.code(), Some(1), "{number}");
        let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        assert_eq!(v["valid"], false);
        let reason = v["reason"].as_str().unwrap().to_string();
        assert!(reason.contains(expect), "{number}: {reason}");
        assert!(stderr(&o).starts_with("error: "));
        reasons.push(reason);
    }
    reasons.sort();
    reasons.dedup();
    assert_eq!(reasons.len(), cases.len());
}

#[test]
fn generate_twice_with_one_seed_gives_one_digest() {
    let dir = Scratch::new("digest");
    let run = |file: &str, seed: &str| {
        let o = dhp(&[
            "generate",
            "--database",
            &dir.url(file),
            "--residents",
            "1500",
            "--seed",
            seed,
            "--years",
            "5",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("generated 1500 residents"));
        assert!(stdout(&o).contains("doctor"), "demo accounts printed");
        let s = dhp(&["stats", "--database", &dir.url(file), "--json"]);
        assert!(s.status.success(), "{}", stderr(&s));
        serde_json::from_str::<serde_json::Value>(stdout(&s).trim()).unwrap()
    };
    let a = run("a.db", "42");
    let b = run("b.db", "42");
    let c = run("c.db", "43");
    assert_eq!(a["digest"], b["digest"]);
    assert_eq!(a["tables"], b["tables"]);
    assert_ne!(a["digest"], c["digest"]);
    assert_eq!(a["tables"]["residents"], 1500);
    assert_eq!(a["seed"], "42");
    let text = dhp(&["stats", "--database", &dir.url("a.db")]);
    assert!(stdout(&text).contains(&format!("sha256:{}", a["digest"].as_str().unwrap())));
}

#[test]
fn bad_input_is_one_line_nonzero_and_writes_nothing() {
    let dir = Scratch::new("bad");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--residents".into(),
                "0".into(),
                "--database".into(),
                dir.url("z.db"),
            ],
            "--residents must be at least 1",
        ),
        (
            vec![
                "--residents".into(),
                "10".into(),
                "--database".into(),
                "mysql://h/db".into(),
            ],
            "unsupported database url",
        ),
        (
            vec![
                "--residents".into(),
                "10".into(),
                "--database".into(),
                "sqlite:///no/such/dir/x.db".into(),
            ],
            "does not exist",
        ),
        (
            vec![
                "--residents".into(),
                "10".into(),
                "--years".into(),
                "0".into(),
                "--database".into(),
                dir.url("y.db"),
            ],
            "--years",
        ),
    ];
    for (args, expect) in cases {
        let mut full = vec!["generate".to_string()];
        full.extend(args);
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        let o = dhp(&refs);
        assert_ne!(o.status.code(), Some(0), "{full:?}");
        let err = stderr(&o);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(expect), "{full:?}: {err}");
    }
    let o = dhp(&[
        "generate",
        "--database",
        &dir.url("m.db"),
        "--residents",
        "abc",
    ]);
    assert_eq!(o.status.code(), Some(2), "malformed flag");
    assert!(stderr(&o).contains("--residents"));
    assert!(dir.files().is_empty(), "nothing written: {:?}", dir.files());

    // An existing database is not overwritten, and stats on a missing file creates none.
    assert!(dhp(&[
        "generate",
        "--database",
        &dir.url("d.db"),
        "--residents",
        "20"
    ])
    .status
    .success());
    let o = dhp(&[
        "generate",
        "--database",
        &dir.url("d.db"),
        "--residents",
        "20",
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("already exists"));
    let o = dhp(&["stats", "--database", &dir.url("missing.db")]);
    assert_ne!(o.status.code(), Some(0));
    let files = dir.files();
    assert!(files.contains(&"d.db".to_string()), "{files:?}");
    assert!(
        files
            .iter()
            .all(|f| f == "d.db" || f == "d.db-wal" || f == "d.db-shm"),
        "only the database and its WAL sidecars: {files:?}"
    );
}
