//! The generated district, checked from the database it was written to.

use std::path::PathBuf;

use dhp_core::{IdentityNumber, OrgKind};
use dhp_store::{content_digest, Table};
use dhp_synth::{config, generate_into, GenerateError, Params, Quiet};

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p =
            std::env::temp_dir().join(format!("dhp_synth_{name}_{}_{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    fn url(&self, file: &str) -> String {
        format!("sqlite://{}", self.0.join(file).display())
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_district_reproduces_every_calibration_target() {
    use dhp_analytics::indicators as engine;
    use dhp_core::indicators::Period;

    let dir = Dir::new("calibration");
    let params = Params::new(100_000, 20_201);
    let (store, summary) = generate_into(&dir.url("d.db"), &params, &Quiet)
        .await
        .unwrap();
    assert_eq!(summary.residents, 100_000);
    // Each figure is its indicator (the calibration file names it) counted by the
    // indicator engine over the stored records.
    let year = Period::Year(summary.calibration_year);
    let counts = engine::compute(&*store, &[year], &mut |_| {})
        .await
        .unwrap()
        .counts;
    let district = dhp_store::organisations(&*store)
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.kind == OrgKind::District)
        .unwrap();
    let rows = engine::scorecard(&counts, district.id, year);
    let row = |id: &str| rows.iter().find(|r| r.indicator.id == id).unwrap();
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for t in &config::calibration().targets {
        let r = row(&t.indicator);
        let got = r.value.unwrap_or(f64::NAN);
        // Percentages within ±tolerance points; ratios per 1,000 within ±tolerance %.
        let off = if t.is_percent() {
            (got - t.value).abs()
        } else {
            (got / t.value - 1.0).abs() * 100.0
        };
        report.push(format!(
            "{:<32} plan {:>7.2} generated {:>7.2} ({} / {})",
            t.key, t.value, got, r.num, r.den
        ));
        if off.is_nan() || off > t.tolerance {
            failures.push(t.key.clone());
        }
    }
    println!("{}", report.join("\n"));
    assert!(
        failures.is_empty(),
        "off target: {failures:?}\n{}",
        report.join("\n")
    );
    // The denominators are big enough for the rates to mean something.
    assert!(row("key_population_signing").den > 20_000, "{report:?}");
    assert!(row("hypertension_management").den > 5_000, "{report:?}");
    assert!(row("diabetes_management").den > 1_500, "{report:?}");
    assert!(row("community_visit_rate").den > 10_000, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_gives_the_same_bytes() {
    let dir = Dir::new("determinism");
    let params = Params::new(3_000, 7);
    let (a, _) = generate_into(&dir.url("a.db"), &params, &Quiet)
        .await
        .unwrap();
    let (b, _) = generate_into(&dir.url("b.db"), &params, &Quiet)
        .await
        .unwrap();
    let (c, _) = generate_into(&dir.url("c.db"), &Params::new(3_000, 8), &Quiet)
        .await
        .unwrap();
    let (counts_a, digest_a) = content_digest(&*a).await.unwrap();
    let (counts_b, digest_b) = content_digest(&*b).await.unwrap();
    assert_eq!(digest_a, digest_b);
    assert_eq!(counts_a, counts_b);
    assert_ne!(content_digest(&*c).await.unwrap().1, digest_a);
    for (table, n) in &counts_a {
        assert!(*n > 0, "{table:?} is empty");
    }

    // The same district on PostgreSQL is byte-for-byte the same district.
    if let Ok(admin_url) = std::env::var("DHP_TEST_POSTGRES_URL") {
        let name = format!("dhp_synth_{}", std::process::id());
        let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
        let (pg, _) = generate_into(&url, &params, &Quiet).await.unwrap();
        assert_eq!(content_digest(&*pg).await.unwrap().1, digest_a);
        // A second generation into the same database is refused and changes nothing.
        let again = generate_into(&url, &params, &Quiet).await;
        assert!(matches!(
            again,
            Err(GenerateError::Store(dhp_store::StoreError::NotEmpty(_)))
        ));
        assert_eq!(content_digest(&*pg).await.unwrap().1, digest_a);
        drop(pg);
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_valid_and_shaped_like_qingpu() {
    let dir = Dir::new("shape");
    let params = Params::new(5_000, 11);
    let (store, _) = generate_into(&dir.url("d.db"), &params, &Quiet)
        .await
        .unwrap();
    let orgs = dhp_store::organisations(&*store).await.unwrap();
    let names: Vec<&str> = orgs.iter().map(|o| o.name_zh.as_str()).collect();
    for expected in [
        "青浦区",
        "夏阳街道",
        "朱家角镇",
        "复旦大学附属中山医院青浦分院",
        "朱家角人民医院",
        "金泽镇社区卫生服务中心商榻分中心",
    ] {
        assert!(names.contains(&expected), "{expected} missing");
    }
    assert_eq!(
        orgs.iter()
            .filter(|o| o.kind == OrgKind::CommunityHealthCentre)
            .count(),
        12
    );
    for o in &orgs {
        if o.kind != OrgKind::City {
            assert!(o.parent_id.is_some(), "{} has no parent", o.code);
        }
    }
    // Every identity number is valid, unique, and matches the recorded sex and birth date.
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
    let residents = store
        .page(Table::Residents, 0, 10_000)
        .await
        .unwrap()
        .residents;
    assert_eq!(residents.len(), 5_000);
    let mut seen = std::collections::HashSet::new();
    let mut over_65 = 0;
    for r in &residents {
        let id = IdentityNumber::parse(r.identity_number.as_str(), today).unwrap();
        assert_eq!(id.birth_date(), r.birth_date);
        assert_eq!(id.sex(), r.sex);
        assert!(seen.insert(id.as_str().to_string()));
        if r.age_on(params.end) >= 65 {
            over_65 += 1;
        }
    }
    let share = over_65 as f64 / residents.len() as f64;
    assert!((0.12..0.25).contains(&share), "65+ share {share}");
    let regions: std::collections::HashSet<&str> = residents
        .iter()
        .map(|r| r.identity_number.region())
        .collect();
    assert!(regions.contains("310118") && regions.contains("310229"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_changes_nothing() {
    let dir = Dir::new("bad");
    let url = dir.url("d.db");
    let zero = generate_into(&url, &Params::new(0, 1), &Quiet).await;
    assert!(matches!(zero, Err(GenerateError::Invalid(m)) if m.contains("--residents")));
    assert!(!dir.0.join("d.db").exists(), "nothing written for N = 0");
    let unwritable = generate_into(
        "sqlite:///nonexistent-dir/sub/d.db",
        &Params::new(10, 1),
        &Quiet,
    )
    .await;
    assert!(unwritable.is_err());
    assert!(!std::path::Path::new("/nonexistent-dir/sub/d.db").exists());
    let scheme = generate_into("mysql://x/y", &Params::new(10, 1), &Quiet).await;
    assert!(matches!(
        scheme,
        Err(GenerateError::Store(dhp_store::StoreError::BadUrl(_)))
    ));
    generate_into(&url, &Params::new(50, 1), &Quiet)
        .await
        .unwrap();
    let again = generate_into(&url, &Params::new(50, 1), &Quiet).await;
    assert!(matches!(again, Err(GenerateError::Exists(_))));
    // The database and SQLite's own WAL sidecars, and no partial generation.
    let files: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(files.contains(&"d.db".to_string()), "{files:?}");
    assert!(
        files
            .iter()
            .all(|f| f == "d.db" || f == "d.db-wal" || f == "d.db-shm"),
        "no partial files left: {files:?}"
    );
}
