//! `dhp audit verify` and `dhp audit archive`: the audit log's hash chain checked, and
//! entries past the retention period moved to compressed files with their digests
//! (the Cybersecurity Law, art. 21: network logs kept no less than six months).

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use chrono::{Duration, Utc};
use dhp_store::{audit_entry_hash, AuditEvent, SealedAudit, AUDIT_GENESIS};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The shortest retention allowed: six months (183 days).
pub const MIN_KEEP_DAYS: i64 = 183;

/// Entries per archive file at most.
const FILE_ENTRIES: usize = 1_000_000;

fn spinner(what: &'static str) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template(&format!("{{spinner}} {what} {{msg}}"))
            .expect("valid template"),
    );
    pb
}

/// `dhp audit verify`: seal what is not sealed yet, check the chain in the database
/// (and with `archives`, every archive file: its digest and its part of the chain).
pub async fn verify(url: &str, archives: Option<&Path>) -> Result<ExitCode> {
    let store = crate::commands::open_existing(url).await?;
    let sealed = store.seal_audit().await?;
    let mut ok = true;
    if let Some(dir) = archives {
        let head = store.audit_head().await?;
        match verify_archives(dir, &head.archived_hash, head.archived_seq)? {
            Ok(n) => println!(
                "archives in {}: {n} entries, #1 to #{}, one unbroken chain ending where the database's begins",
                dir.display(),
                head.archived_seq
            ),
            Err(why) => {
                println!("archives in {}: BROKEN: {why}", dir.display());
                ok = false;
            }
        }
    }
    let pb = spinner("verifying the audit chain");
    let report = store
        .verify_audit(&mut |n| pb.set_message(format!("{n} entries")))
        .await?;
    pb.finish_and_clear();
    store.close().await;
    let h = &report.head;
    match &report.broken {
        None => println!(
            "audit log verified: {} entries (#{} to #{}) in one unbroken chain; head sha256:{}; {sealed} sealed now; {} archived before",
            report.checked,
            h.archived_seq + 1,
            h.seq,
            h.hash,
            h.archived_seq
        ),
        Some(b) => {
            println!("audit log BROKEN at entry #{}: {}", b.seq, b.what);
            ok = false;
        }
    }
    if report.unsealed > 0 {
        println!(
            "{} entries were written while verifying (not sealed yet)",
            report.unsealed
        );
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `dhp audit archive`: entries older than `keep_days` (no less than six months), in
/// chain order, to `out/audit-<first>-<last>.ndjson.gz` with a manifest
/// (`….json`: the file's SHA-256, the chain places and hashes it spans); then removed
/// from the database, the chain's head keeping where it continues.
pub async fn archive(url: &str, out: &Path, keep_days: i64) -> Result<()> {
    if keep_days < MIN_KEEP_DAYS {
        bail!("--keep-days must be at least {MIN_KEEP_DAYS}: network logs are kept no less than six months (Cybersecurity Law, art. 21)");
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let store = crate::commands::open_existing(url).await?;
    store.seal_audit().await?;
    let before = (Utc::now() - Duration::days(keep_days)).naive_utc();
    let head = store.audit_head().await?;
    let (mut after, mut prev) = (head.archived_seq, head.archived_hash.clone());
    let pb = spinner("archiving the audit log");
    let mut total = 0u64;
    loop {
        // One file: the longest run of entries from the archive mark recorded before
        // the cut-off.
        let mut run: Vec<SealedAudit> = Vec::new();
        'fill: while run.len() < FILE_ENTRIES {
            let page = store.sealed_audit(after + run.len() as i64, 10_000).await?;
            if page.is_empty() {
                break;
            }
            for s in page {
                if s.event.recorded >= before || run.len() >= FILE_ENTRIES {
                    break 'fill;
                }
                run.push(s);
            }
        }
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            break;
        };
        let (first_seq, last_seq, last_hash) = (first.seq, last.seq, last.hash.clone());
        let name = format!("audit-{first_seq:012}-{last_seq:012}");
        let data = out.join(format!("{name}.ndjson.gz"));
        let digest = write_archive(&data, &run)?;
        let manifest = json!({
            "file": format!("{name}.ndjson.gz"),
            "sha256": digest,
            "entries": run.len(),
            "first_seq": first_seq,
            "last_seq": last_seq,
            "chained_to": prev,
            "last_hash": last_hash,
            "first_recorded": first.event.recorded.to_string(),
            "last_recorded": last.event.recorded.to_string(),
            "kept_days": keep_days,
        });
        write_synced(
            &out.join(format!("{name}.json")),
            serde_json::to_string_pretty(&manifest)?.as_bytes(),
        )?;
        // Only once the file and its manifest are on disk do the entries leave.
        let removed = store.forget_archived_audit(last_seq, &last_hash).await?;
        total += removed;
        pb.set_message(format!("{total} entries"));
        after = last_seq;
        prev = last_hash;
    }
    pb.finish_and_clear();
    store.close().await;
    println!(
        "archived {total} audit entries recorded before {} to {}; the database keeps the last {keep_days} days",
        before.date(),
        out.display()
    );
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

fn entry_json(s: &SealedAudit) -> Value {
    let e = &s.event;
    json!({
        "seq": s.seq, "hash": s.hash, "id": e.id,
        "recorded": e.recorded.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        "username": e.username, "role": e.role, "org_id": e.org_id,
        "resident_id": e.resident_id, "action": e.action, "resource": e.resource,
        "outcome": e.outcome, "detail": e.detail,
    })
}

/// Write the entries gzip-compressed, synced; the file's SHA-256.
fn write_archive(path: &Path, run: &[SealedAudit]) -> Result<String> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut gz = GzEncoder::new(BufWriter::new(file), flate2::Compression::default());
    for s in run {
        serde_json::to_writer(&mut gz, &entry_json(s))?;
        gz.write_all(b"\n")?;
    }
    let file = gz
        .finish()?
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    file.sync_all()?;
    let mut h = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

fn text(v: &Value, k: &str) -> Result<String> {
    v[k].as_str()
        .map(str::to_string)
        .with_context(|| format!("{k} missing"))
}

fn event_of(v: &Value) -> Result<AuditEvent> {
    Ok(AuditEvent {
        id: text(v, "id")?,
        recorded: chrono::NaiveDateTime::parse_from_str(
            &text(v, "recorded")?,
            "%Y-%m-%dT%H:%M:%S%.f",
        )?,
        username: text(v, "username")?,
        role: text(v, "role")?,
        org_id: v["org_id"].as_i64(),
        resident_id: v["resident_id"].as_i64(),
        action: text(v, "action")?,
        resource: text(v, "resource")?,
        outcome: text(v, "outcome")?,
        detail: text(v, "detail")?,
    })
}

/// Check every archive in `dir` (by manifest, in chain order): the file's digest, each
/// entry's hash, and that the files chain from the first entry to `ends_hash` at
/// `ends_seq` (where the database's chain begins). The number of entries, or why not.
fn verify_archives(dir: &Path, ends_hash: &str, ends_seq: i64) -> Result<Result<u64, String>> {
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().and_then(|e| e.to_str()) == Some("json")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("audit-"))
        })
        .collect();
    manifests.sort();
    let (mut seq, mut hash) = (0i64, AUDIT_GENESIS.to_string());
    let mut n = 0u64;
    for m in manifests {
        let manifest: Value = serde_json::from_slice(&std::fs::read(&m)?)
            .with_context(|| format!("{} is not a manifest", m.display()))?;
        let data = dir.join(text(&manifest, "file")?);
        let mut bytes = Vec::new();
        std::fs::File::open(&data)
            .with_context(|| format!("cannot open {}", data.display()))?
            .read_to_end(&mut bytes)?;
        if hex::encode(Sha256::digest(&bytes)) != text(&manifest, "sha256")? {
            return Ok(Err(format!("{} does not match its digest", data.display())));
        }
        for line in BufReader::new(GzDecoder::new(&bytes[..])).lines() {
            let v: Value = serde_json::from_str(&line?)?;
            let s = v["seq"].as_i64().unwrap_or(-1);
            if s != seq + 1 {
                return Ok(Err(format!(
                    "entry #{} is missing ({})",
                    seq + 1,
                    data.display()
                )));
            }
            let expected = audit_entry_hash(&hash, &event_of(&v)?);
            if expected != text(&v, "hash")? {
                return Ok(Err(format!("entry #{s} was changed ({})", data.display())));
            }
            seq = s;
            hash = expected;
            n += 1;
        }
    }
    if seq != ends_seq || hash != ends_hash {
        return Ok(Err(format!(
            "the archives end at entry #{seq}, the database continues from #{ends_seq}"
        )));
    }
    Ok(Ok(n))
}

/// `dhp bench audit`: write `entries` audit entries (in batches of 1,000, as a busy
/// server does), then time sealing them into the chain and verifying it.
pub async fn bench(entries: u64, postgres: Option<&str>) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("dhp-bench-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut targets: Vec<crate::transfer::Target> = vec![(
        "sqlite".into(),
        dhp_store::connect(&format!("sqlite://{}", dir.join("audit.db").display())).await?,
        None,
    )];
    if let Some(admin_url) = postgres {
        let name = format!("dhp_bench_audit_{}", std::process::id());
        let admin = dhp_store::AdminPool::connect(admin_url).await?;
        let url = admin.fresh_database(admin_url, &name).await?;
        targets.push((
            "postgres".into(),
            dhp_store::connect(&url).await?,
            Some((admin, name)),
        ));
    }
    let start = Utc::now().naive_utc();
    for (label, store, cleanup) in targets {
        let written = std::time::Instant::now();
        for chunk in 0..entries.div_ceil(1_000) {
            let batch: Vec<AuditEvent> = (chunk * 1_000..((chunk + 1) * 1_000).min(entries))
                .map(|i| AuditEvent {
                    id: format!("bench-{i:09}"),
                    recorded: start + Duration::microseconds(i as i64),
                    username: "doctor".into(),
                    role: "family_doctor".into(),
                    org_id: Some(4),
                    resident_id: Some((i % 100_000) as i64 + 1),
                    action: "read".into(),
                    resource: format!("Patient/{}", i % 100_000 + 1),
                    outcome: "success".into(),
                    detail: String::new(),
                })
                .collect();
            store.insert_audits(&batch).await?;
        }
        let written = written.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let sealed = store.seal_audit().await?;
        let seal = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let report = store.verify_audit(&mut |_| {}).await?;
        let verify = t.elapsed().as_secs_f64();
        if report.broken.is_some() || report.checked != entries {
            bail!("{label}: the chain did not verify: {report:?}");
        }
        println!(
            "{label}: {entries} entries written in {written:.1} s; sealed {sealed} in {seal:.1} s ({:.0} entries/s); verified in {verify:.1} s ({:.0} entries/s)",
            sealed as f64 / seal,
            entries as f64 / verify
        );
        store.close().await;
        if let Some((admin, name)) = cleanup {
            admin
                .execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
