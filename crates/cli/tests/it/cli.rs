//! Commands, their output and their exit codes.

use crate::{dhp, stderr, stdout, Scratch};

mod archive;
pub(crate) use archive::*;

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

/// An 18-character identity number with its check character (GB 11643).
fn identity(body17: &str) -> String {
    let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body17
        .chars()
        .zip(weights)
        .map(|(c, w)| c.to_digit(10).unwrap() * w)
        .sum();
    format!(
        "{body17}{}",
        "10X98765432".as_bytes()[(sum % 11) as usize] as char
    )
}

#[test]
fn export_and_import_report_resume_and_refuse_per_bundle() {
    let dir = Scratch::new("transfer");
    let db = dir.url("d.db");
    let o = dhp(&[
        "generate",
        "--database",
        &db,
        "--residents",
        "40",
        "--seed",
        "2",
        "--years",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // Export: NDJSON per type, and one Bundle per resident.
    let out = dir.0.join("out");
    let o = dhp(&["export", "--database", &db, "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let patients = std::fs::read_to_string(out.join("Patient.ndjson")).unwrap();
    assert_eq!(patients.lines().count(), 40);
    for line in patients.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["resourceType"], "Patient");
    }
    let o = dhp(&[
        "export",
        "--database",
        &db,
        "--out",
        out.to_str().unwrap(),
        "--bundles",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bundles = std::fs::read_dir(out.join("bundles")).unwrap().count();
    assert_eq!(bundles, 40);

    // Importing the district's own residents again: every Bundle is refused whole
    // (the identity numbers are taken), each reported, nothing written.
    let before = stdout(&dhp(&["stats", "--database", &db, "--json"]));
    let o = dhp(&[
        "import",
        "--database",
        &db,
        out.join("bundles").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o)
            .matches("bundle not imported (nothing written)")
            .count(),
        40,
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("identity number already registered"));
    let after = stdout(&dhp(&["stats", "--database", &db, "--json"]));
    let digest = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap()["digest"].clone();
    assert_eq!(digest(&before), digest(&after));

    // A new resident's Bundle lands; run again, it is skipped as already imported.
    let bundle = serde_json::json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [{
            "fullUrl": "urn:uuid:0b7c0f3e-1111-4111-8111-000000000001",
            "request": { "method": "POST", "url": "Patient" },
            "resource": {
                "resourceType": "Patient",
                "identifier": [{ "system": "https://fhir.dhp.example/sid/cn-resident-id", "value": identity("31011819300101997") }],
                "name": [{ "text": "周建国" }],
                "managingOrganization": { "reference": "Organization?identifier=https://fhir.dhp.example/sid/org-code|310118-CHC-XY" },
            }
        }]
    });
    let file = dir.0.join("new.json");
    std::fs::write(&file, bundle.to_string()).unwrap();
    let o = dhp(&["import", "--database", &db, file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("imported 1 resources from 1 files"),
        "{}",
        stdout(&o)
    );
    let o = dhp(&["import", "--database", &db, file.to_str().unwrap()]);
    assert!(o.status.success());
    assert!(
        stdout(&o).contains("1 files already imported"),
        "{}",
        stdout(&o)
    );

    // Bad input: a missing path, and a file that is not JSON.
    let o = dhp(&[
        "import",
        "--database",
        &db,
        dir.0.join("nope").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("does not exist"));
    std::fs::write(dir.0.join("bad.json"), "{ nope").unwrap();
    let o = dhp(&[
        "import",
        "--database",
        &db,
        dir.0.join("bad.json").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not JSON"), "{}", stderr(&o));
}

#[test]
fn due_lists_print_as_csv_and_json_and_refuse_bad_flags() {
    let dir = Scratch::new("due");
    let url = dir.url("d.db");
    let o = dhp(&[
        "generate",
        "--database",
        &url,
        "--residents",
        "2000",
        "--seed",
        "5",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = dhp(&["due", "--database", &url, "--date", "2026-06-30"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = stdout(&o);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("programme,resident_id,resident_name,key,item,earliest,due,overdue_after,status,rule")
    );
    let rows: Vec<&str> = lines.collect();
    assert!(rows.len() > 50, "a 2,000-resident district has work due");
    for programme in [
        "immunization",
        "hypertension",
        "diabetes",
        "elderly",
        "child",
    ] {
        assert!(
            rows.iter().any(|r| r.starts_with(&format!("{programme},"))),
            "{programme}"
        );
    }
    assert!(rows
        .iter()
        .all(|r| r.contains(",overdue,") || r.contains(",due,")));
    // JSON, one programme, one centre: a subset of the district's list.
    let centre = dhp(&[
        "due",
        "--database",
        &url,
        "--date",
        "2026-06-30",
        "--org",
        "310118-CHC-XY",
        "--programme",
        "hypertension",
        "--format",
        "json",
    ]);
    assert!(centre.status.success(), "{}", stderr(&centre));
    let items: serde_json::Value = serde_json::from_str(&stdout(&centre)).unwrap();
    let items = items.as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items
        .iter()
        .all(|i| i["programme"] == "hypertension" && i["rule"].as_str().unwrap().contains("§4")));
    let district_ht = rows
        .iter()
        .filter(|r| r.starts_with("hypertension,"))
        .count();
    assert!(items.len() < district_ht);
    // Bad flags: exit 1 with the flag named.
    for (args, flag) in [
        (vec!["--org", "NOPE"], "--org"),
        (vec!["--programme", "dental"], "--programme"),
        (vec!["--format", "xml"], "--format"),
        (vec!["--org", "310118-H-ZSQP"], "--org"),
    ] {
        let mut all = vec!["due", "--database", &url, "--date", "2026-06-30"];
        all.extend(args);
        let o = dhp(&all);
        assert_eq!(o.status.code(), Some(1), "{all:?}");
        assert!(stderr(&o).contains(flag), "{all:?}: {}", stderr(&o));
    }
}

/// The row counts of a database, table by table (`dhp stats --json`).
fn tables(db: &str) -> serde_json::Value {
    let o = dhp(&["stats", "--database", db, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()["tables"].clone()
}

/// A generated district of 300 residents exported as one Bundle per resident, in
/// `dir/out/bundles`; the `dir/out` path.
fn exported_bundles(dir: &Scratch) -> std::path::PathBuf {
    let src = dir.url("src.db");
    let o = dhp(&[
        "generate",
        "--database",
        &src,
        "--residents",
        "300",
        "--seed",
        "3",
        "--years",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = dir.0.join("out");
    let o = dhp(&[
        "export",
        "--database",
        &src,
        "--out",
        out.to_str().unwrap(),
        "--bundles",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    out
}

#[test]
fn an_import_killed_at_any_moment_and_run_again_writes_each_record_once() {
    let dir = Scratch::new("import-kill");
    let out = exported_bundles(&dir);
    let bundles = out.join("bundles");
    let template = dir.0.join("empty.db");
    nearly_empty_district(&dir.url("empty.db"));
    let fresh = |name: &str| {
        std::fs::copy(&template, dir.0.join(name)).unwrap();
        dir.url(name)
    };
    killed_imports_resume_exactly(&bundles, &fresh);
}

/// The same on PostgreSQL: each run into a database of its own.
#[test]
fn an_import_killed_at_any_moment_on_postgres_writes_each_record_once() {
    if std::env::var("DHP_TEST_POSTGRES_URL").is_err() {
        eprintln!("DHP_TEST_POSTGRES_URL not set: PostgreSQL import kill test skipped");
        return;
    }
    let dir = Scratch::new("import-kill-pg");
    let out = exported_bundles(&dir);
    let bundles = out.join("bundles");
    let made = std::cell::RefCell::new(Vec::new());
    let fresh = |name: &str| {
        let name = name.trim_end_matches(".db");
        let (url, drop_it) = postgres_database(&format!("import_{name}")).unwrap();
        nearly_empty_district(&url);
        made.borrow_mut().push(drop_it);
        url
    };
    killed_imports_resume_exactly(&bundles, &fresh);
    for drop_it in made.into_inner() {
        drop_it();
    }
}

/// A district with its registry and one resident: what an import fills.
fn nearly_empty_district(url: &str) {
    let o = dhp(&[
        "generate",
        "--database",
        url,
        "--residents",
        "1",
        "--seed",
        "99",
        "--years",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Import `bundles` into districts `fresh` makes: once uninterrupted, then killed at
/// moments through the run and after each of its commits, each resumed; every resumed
/// run must end with the uninterrupted run's counts.
fn killed_imports_resume_exactly(bundles: &std::path::Path, fresh: &dyn Fn(&str) -> String) {
    // A tenth of the files as batch Bundles (each entry on its own), the rest as
    // transactions; some refer to staff the target does not have and are refused.
    for (n, e) in std::fs::read_dir(bundles).unwrap().enumerate() {
        if n % 10 == 0 {
            let path = e.unwrap().path();
            let mut b: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            b["type"] = "batch".into();
            std::fs::write(&path, b.to_string()).unwrap();
        }
    }
    let import_crashing = |db: &str, after: Option<u32>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_dhp"));
        c.args(["import", "--database", db, bundles.to_str().unwrap()])
            .env("DHP_LOG", "error");
        if let Some(n) = after {
            c.env("DHP_CRASH_AFTER_COMMITS", n.to_string());
        }
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let import = |db: &str| import_crashing(db, None);

    // Uninterrupted: what every interrupted run must end with.
    let whole = fresh("whole.db");
    let started = std::time::Instant::now();
    let status = import(&whole).wait().unwrap();
    let took = started.elapsed();
    assert_eq!(status.code(), Some(1), "some bundles are refused");
    let expected = tables(&whole);
    assert!(expected["residents"].as_i64().unwrap() > 200, "{expected}");

    // Killed (SIGKILL) at several moments through the run, then run again.
    let mut interrupted = 0;
    for (k, at) in [0.1, 0.3, 0.5, 0.7, 0.9].into_iter().enumerate() {
        let db = fresh(&format!("killed{k}.db"));
        let mut child = import(&db);
        std::thread::sleep(took.mul_f64(at));
        let finished = child.try_wait().unwrap().is_some();
        child.kill().ok();
        child.wait().unwrap();
        let partial = tables(&db);
        if !finished && partial != expected {
            interrupted += 1;
        }
        let status = import(&db).wait().unwrap();
        assert_eq!(status.code(), Some(1));
        assert_eq!(
            tables(&db),
            expected,
            "killed at {at} of the run, then resumed"
        );
        // A third run finds every file done or refused again, and writes nothing.
        import(&db).wait().unwrap();
        assert_eq!(tables(&db), expected, "run a third time");
    }
    eprintln!("{interrupted} of 5 kills landed part way through the import");

    // Stopped dead right after its first, second, … committed write: the moments
    // between one transaction and the next, where a mark written apart from its data
    // would be lost.
    let mut crashed = 0;
    for after in 1.. {
        let db = fresh(&format!("crashed{after}.db"));
        let status = import_crashing(&db, Some(after)).wait().unwrap();
        if status.code() == Some(1) {
            // The run needed fewer commits than that: it finished.
            break;
        }
        assert!(status.code().is_none(), "{status:?}");
        crashed += 1;
        let status = import(&db).wait().unwrap();
        assert_eq!(status.code(), Some(1));
        assert_eq!(
            tables(&db),
            expected,
            "stopped after commit {after}, then resumed"
        );
    }
    assert!(crashed >= 3, "the import stopped at only {crashed} commits");
}
