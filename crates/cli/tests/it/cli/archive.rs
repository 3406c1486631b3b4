//! Audit archives, and backups taken while an import writes.

use super::*;

#[test]
fn audit_entries_past_six_months_are_archived_and_the_chain_verifies_across() {
    let dir = Scratch::new("audit-archive");
    let db = dir.url("d.db");
    let o = dhp(&[
        "generate",
        "--database",
        &db,
        "--residents",
        "20",
        "--seed",
        "5",
        "--years",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A year-old stretch of the log, and last week's.
    let now = chrono::Utc::now().naive_utc();
    let entry = |i: i64, days_ago: i64| dhp_store::AuditEvent {
        id: format!("old-{days_ago}-{i:05}"),
        recorded: now - chrono::Duration::days(days_ago) + chrono::Duration::seconds(i),
        username: "doctor".into(),
        role: "family_doctor".into(),
        org_id: None,
        resident_id: Some(1),
        action: "read".into(),
        resource: "Patient/1".into(),
        outcome: "success".into(),
        detail: String::new(),
    };
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = dhp_store::connect(&db).await.unwrap();
        let old: Vec<_> = (0..1_000).map(|i| entry(i, 400)).collect();
        let recent: Vec<_> = (0..10).map(|i| entry(i, 7)).collect();
        store.insert_audits(&old).await.unwrap();
        store.insert_audits(&recent).await.unwrap();
        store.close().await;
    });
    let arch = dir.0.join("archive");
    let arch_s = arch.to_str().unwrap();

    // Less than six months is refused, naming the law's minimum.
    let o = dhp(&[
        "audit",
        "archive",
        "--database",
        &db,
        "--out",
        arch_s,
        "--keep-days",
        "90",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("at least 183"), "{}", stderr(&o));

    let o = dhp(&["audit", "archive", "--database", &db, "--out", arch_s]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("archived 1000 audit entries"),
        "{}",
        stdout(&o)
    );
    let files = std::fs::read_dir(&arch).unwrap().count();
    assert_eq!(files, 2, "one compressed file and its manifest");
    let o = dhp(&["audit", "verify", "--database", &db, "--archives", arch_s]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("archives in") && stdout(&o).contains("1000 entries"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("audit log verified"), "{}", stdout(&o));
    // Archiving again moves nothing more.
    let o = dhp(&["audit", "archive", "--database", &db, "--out", arch_s]);
    assert!(
        stdout(&o).contains("archived 0 audit entries"),
        "{}",
        stdout(&o)
    );

    // An archive file altered afterwards no longer matches its digest.
    let gz = std::fs::read_dir(&arch)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".ndjson.gz"))
        .unwrap();
    let mut bytes = std::fs::read(&gz).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x01;
    std::fs::write(&gz, &bytes).unwrap();
    let o = dhp(&["audit", "verify", "--database", &db, "--archives", arch_s]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("does not match its digest"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_backup_taken_while_an_import_writes_restores_to_its_own_digest() {
    let dir = Scratch::new("backup");
    let live = dir.url("live.db");
    let again = dir.0.join("again.db");
    backed_up_while_an_import_writes(&dir, &live, &dir.url("restored.db"), &dir.url("again.db"));
    assert!(!again.exists());
}

#[test]
fn a_postgres_backup_taken_while_an_import_writes_restores_to_its_own_digest() {
    let dbs: Vec<_> = ["backup_live", "backup_restored", "backup_again"]
        .into_iter()
        .map_while(postgres_database)
        .collect();
    if dbs.len() < 3 {
        eprintln!("DHP_TEST_POSTGRES_URL not set: PostgreSQL backup test skipped");
        return;
    }
    let dir = Scratch::new("backup-pg");
    backed_up_while_an_import_writes(&dir, &dbs[0].0, &dbs[1].0, &dbs[2].0);
    // The refused restore wrote nothing into its database.
    let o = dhp(&["stats", "--database", &dbs[2].0, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["tables"]["residents"], 0, "{v}");
    // Not into a database that holds a district.
    let o = dhp(&[
        "restore",
        "--from",
        dir.0.join("backup.db").to_str().unwrap(),
        "--database",
        &dbs[0].0,
    ]);
    assert_eq!(o.status.code(), Some(1));
    for (_, drop_it) in dbs {
        drop_it();
    }
}

/// A fresh PostgreSQL database for a test when `DHP_TEST_POSTGRES_URL` names a server:
/// its URL, and what drops it.
pub(crate) fn postgres_database(name: &str) -> Option<(String, Box<dyn FnOnce()>)> {
    let admin_url = std::env::var("DHP_TEST_POSTGRES_URL").ok()?;
    let name = format!("dhp_cli_{name}_{}", std::process::id());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = rt.block_on(async {
        let admin = dhp_store::AdminPool::connect(&admin_url).await.unwrap();
        admin.fresh_database(&admin_url, &name).await.unwrap()
    });
    Some((
        url,
        Box::new(move || {
            rt.block_on(async {
                let admin = dhp_store::AdminPool::connect(&admin_url).await.unwrap();
                admin
                    .execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .unwrap();
            })
        }),
    ))
}

/// Generate a district into `live`, back it up while an import writes into it, restore
/// into `restored` (new) and check the digests; a backup changed afterwards is refused
/// by `again`.
fn backed_up_while_an_import_writes(dir: &Scratch, live: &str, restored: &str, again: &str) {
    let out = exported_bundles(dir);
    let o = dhp(&[
        "generate",
        "--database",
        live,
        "--residents",
        "50",
        "--seed",
        "99",
        "--years",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Writes go on in another process while the backup is taken.
    let mut import = std::process::Command::new(env!("CARGO_BIN_EXE_dhp"))
        .args([
            "import",
            "--database",
            live,
            out.join("bundles").to_str().unwrap(),
        ])
        .env("DHP_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let backup = dir.0.join("backup.db");
    let o = dhp(&[
        "backup",
        "--database",
        live,
        "--out",
        backup.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    import.wait().unwrap();
    let recorded = stdout(&o)
        .split("content digest sha256:")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap()
        .to_string();
    let o = dhp(&[
        "backup",
        "--database",
        live,
        "--out",
        backup.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "never over an existing file");

    let o = dhp(&[
        "restore",
        "--from",
        backup.to_str().unwrap(),
        "--database",
        restored,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("equal to the backup's"),
        "{}",
        stdout(&o)
    );
    let stats = stdout(&dhp(&["stats", "--database", restored, "--json"]));
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(v["digest"], recorded.as_str());
    // The restored district is whole: its audit chain verifies.
    let o = dhp(&["audit", "verify", "--database", restored]);
    assert!(o.status.success(), "{}", stdout(&o));

    // A backup changed afterwards is refused, and nothing is written.
    let mut bytes = std::fs::read(&backup).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x01;
    std::fs::write(&backup, &bytes).unwrap();
    let o = dhp(&[
        "restore",
        "--from",
        backup.to_str().unwrap(),
        "--database",
        again,
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("does not match the digest"),
        "{}",
        stderr(&o)
    );
}
