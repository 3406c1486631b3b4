//! `dhp import`, `dhp export` and `dhp bench ingest`: FHIR in and out of a database
//! without the HTTP server, through the same write path as `POST /fhir`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use dhp_server::{export, import_bundles, import_resources, AppState, Import, IMPORTED};
use dhp_store::{redact_url, Store};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Bundles committed together (each still all or nothing).
const GROUP: usize = 64;

/// Resources per transaction when loading NDJSON.
const NDJSON_CHUNK: usize = 1_000;

/// The client name import writes under (in the audit log).
const IMPORT_CLIENT: &str = "dhp-import";

/// `.json` and `.ndjson` files of the inputs (directories walked), sorted; NDJSON files
/// of the bulk layout in dependency order (Patient before the records that refer to it).
fn input_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        if p.is_dir() {
            for e in std::fs::read_dir(p).with_context(|| format!("cannot read {}", p.display()))? {
                walk(&e?.path(), out)?;
            }
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("json" | "ndjson")
        ) {
            out.push(p.to_path_buf());
        }
        Ok(())
    }
    let mut out = Vec::new();
    for i in inputs {
        if !i.exists() {
            bail!("{} does not exist", i.display());
        }
        walk(i, &mut out)?;
    }
    let rank = |p: &Path| {
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        export::EXPORT_TYPES
            .iter()
            .position(|(k, _)| *k == stem)
            .unwrap_or(usize::MAX)
    };
    out.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    Ok(out)
}

/// What an import did.
#[derive(Debug, Default)]
struct Tally {
    files: u64,
    skipped: u64,
    resources: u64,
    failed: u64,
}

fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `dhp import`: every Bundle in one transaction; NDJSON in transactions of 1,000
/// (a failed chunk retried line by line, so each bad line is reported and the good
/// ones land). Files already imported are skipped (by content digest), and an NDJSON
/// file resumes after its last committed chunk. Each file's mark (`import.<digest>`:
/// done, the NDJSON lines in, a batch's entries in) is written in the transaction that
/// writes its data, so a run killed at any moment and run again writes each record
/// exactly once.
pub async fn import(url: &str, inputs: &[PathBuf]) -> Result<ExitCode> {
    let files = input_files(inputs)?;
    if files.is_empty() {
        bail!("no .json or .ndjson files in the inputs");
    }
    let store = crate::commands::open_existing(url).await?;
    let state = AppState::open(store.clone()).await?;
    let pb = ProgressBar::new(files.len() as u64);
    pb.set_style(
        ProgressStyle::with_template("{spinner} importing [{bar:40}] {pos}/{len} files {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let mut tally = Tally::default();
    let started = Instant::now();
    let mut group: Vec<(String, Import)> = Vec::new();
    for file in &files {
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let key = format!("import.{}", digest(&bytes));
        let done = store.meta(&key).await?;
        if done.as_deref() == Some(IMPORTED) {
            tally.skipped += 1;
            pb.inc(1);
            continue;
        }
        let name = file.display().to_string();
        if file.extension().and_then(|e| e.to_str()) == Some("ndjson") {
            flush(&state, &mut group, &mut tally, &pb).await?;
            let from: usize = done.and_then(|d| d.parse().ok()).unwrap_or(0);
            import_ndjson(&state, &name, &bytes, from, &key, &mut tally, &pb).await?;
            store.set_meta(&key, IMPORTED).await?;
            tally.files += 1;
            pb.inc(1);
        } else {
            match bundle_of(&bytes) {
                Ok(b) => group.push((name, Import::marked(b, key))),
                Err(e) => {
                    say(&pb, format!("{name}: not JSON: {e}"));
                    tally.failed += 1;
                    pb.inc(1);
                }
            }
            if group.len() >= GROUP {
                flush(&state, &mut group, &mut tally, &pb).await?;
            }
        }
        pb.set_message(format!("{} resources", tally.resources));
    }
    flush(&state, &mut group, &mut tally, &pb).await?;
    pb.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "imported {} resources from {} files into {} in {secs:.1} s ({:.0} resources/s); {} files already imported; {} failed",
        tally.resources,
        tally.files,
        redact_url(url),
        tally.resources as f64 / secs.max(1e-9),
        tally.skipped,
        tally.failed,
    );
    store.close().await;
    Ok(if tally.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A line on standard error, around the progress bar (which hides itself, and its own
/// printing, when standard error is not a terminal).
fn say(pb: &ProgressBar, line: String) {
    pb.suspend(|| eprintln!("{line}"));
}

/// Report one refused entry on standard error.
fn report(pb: &ProgressBar, name: &str, at: &str, o: &dhp_fhir::OperationOutcome) {
    for i in &o.issues {
        let path = i
            .expression
            .as_deref()
            .map(|p| format!(" [{p}]"))
            .unwrap_or_default();
        say(pb, format!("{name}: {at}: {}{path}", i.diagnostics));
    }
}

/// A file's JSON as a Bundle: a lone resource is a transaction of one.
fn bundle_of(bytes: &[u8]) -> serde_json::Result<Value> {
    let v: Value = serde_json::from_slice(bytes)?;
    if v.get("resourceType").and_then(Value::as_str) == Some("Bundle") {
        return Ok(v);
    }
    let kind = v
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok(serde_json::json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [{ "resource": v, "request": { "method": "POST", "url": kind } }],
    }))
}

/// Import the gathered Bundles together (each marked done in its own transaction).
async fn flush(
    state: &AppState,
    group: &mut Vec<(String, Import)>,
    tally: &mut Tally,
    pb: &ProgressBar,
) -> Result<()> {
    if group.is_empty() {
        return Ok(());
    }
    let (names, items): (Vec<String>, Vec<Import>) = std::mem::take(group).into_iter().unzip();
    let sizes: Vec<u64> = items
        .iter()
        .map(|i| {
            i.bundle
                .get("entry")
                .and_then(Value::as_array)
                .map_or(1, Vec::len) as u64
        })
        .collect();
    let answers = import_bundles(state, IMPORT_CLIENT, items)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    for ((name, size), answer) in names.into_iter().zip(sizes).zip(answers) {
        match answer {
            Ok(answer) => {
                // A batch answers per entry: count what landed, report what did not.
                for (i, e) in answer["entry"].as_array().into_iter().flatten().enumerate() {
                    let status = e
                        .pointer("/response/status")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if status.starts_with('2') {
                        tally.resources += 1;
                    } else {
                        tally.failed += 1;
                        let why = e
                            .pointer("/response/outcome/issue/0/diagnostics")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        say(pb, format!("{name}: entry {i}: {status} {why}"));
                    }
                }
                tally.files += 1;
            }
            Err(o) => {
                tally.failed += size;
                report(pb, &name, "bundle not imported (nothing written)", &o);
            }
        }
        pb.inc(1);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn import_ndjson(
    state: &AppState,
    name: &str,
    bytes: &[u8],
    from: usize,
    key: &str,
    tally: &mut Tally,
    pb: &ProgressBar,
) -> Result<()> {
    let mut lines: Vec<(usize, Value)> = Vec::new();
    for (n, line) in bytes.lines().enumerate() {
        let line = line?;
        if n < from || line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(v) => lines.push((n, v)),
            Err(e) => {
                tally.failed += 1;
                say(pb, format!("{name}: line {}: not JSON: {e}", n + 1));
            }
        }
    }
    for chunk in lines.chunks(NDJSON_CHUNK) {
        let resources: Vec<Value> = chunk.iter().map(|(_, v)| v.clone()).collect();
        // How far the file is in: written with the lines it counts.
        let upto = chunk.last().map_or(0, |(n, _)| n + 1).to_string();
        match import_resources(state, IMPORT_CLIENT, resources, Some((key, &upto)))
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
        {
            Ok(n) => tally.resources += n as u64,
            Err(_) => {
                // Find the bad lines: one at a time, the good ones land.
                for (n, v) in chunk {
                    let upto = (n + 1).to_string();
                    match import_resources(
                        state,
                        IMPORT_CLIENT,
                        vec![v.clone()],
                        Some((key, &upto)),
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?
                    {
                        Ok(k) => tally.resources += k as u64,
                        Err((_, o)) => {
                            tally.failed += 1;
                            report(pb, name, &format!("line {}", n + 1), &o);
                        }
                    }
                }
            }
        }
        pb.set_message(format!("{} resources", tally.resources));
    }
    Ok(())
}

/// `dhp export`: NDJSON per type (`Patient.ndjson`, …), or with `bundles` one
/// Synthea-layout transaction Bundle per resident (`bundles/<id>.json`).
pub async fn export_cmd(url: &str, out: &Path, bundles: bool) -> Result<()> {
    let store = crate::commands::open_existing(url).await?;
    let state = AppState::open(store.clone()).await?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} exporting {msg}").expect("valid template"),
    );
    let started = Instant::now();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    if bundles {
        let dir = out.join("bundles");
        std::fs::create_dir_all(&dir)?;
        let n = export::export_bundles(&state, |id, b| {
            pb.set_message(format!("resident {id}"));
            std::fs::write(dir.join(format!("{id}.json")), serde_json::to_vec(&b)?)
        })
        .await?;
        counts.insert("bundles".into(), n);
    } else {
        for (kind, _) in export::EXPORT_TYPES {
            let path = out.join(format!("{kind}.ndjson"));
            let mut w = BufWriter::new(
                std::fs::File::create(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            );
            let n = export::export_type(&state, kind, None, |v| {
                serde_json::to_writer(&mut w, &v)?;
                w.write_all(b"\n")
            })
            .await?;
            w.flush()?;
            pb.set_message(format!("{kind}: {n}"));
            counts.insert(kind.to_string(), n);
        }
    }
    pb.finish_and_clear();
    let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "exported {} to {} in {:.1} s",
        summary.join(", "),
        out.display(),
        started.elapsed().as_secs_f64()
    );
    store.close().await;
    Ok(())
}

/// A database to import into: its label, the store, and the scratch PostgreSQL
/// database to drop after.
pub(crate) type Target = (
    String,
    Arc<dyn Store>,
    Option<(dhp_store::AdminPool, String)>,
);

/// `dhp bench ingest`: Synthea-layout transaction Bundles of a generated district,
/// imported into an empty district with the same registry (SQLite, and PostgreSQL when
/// given), one transaction per Bundle, one after another.
pub async fn bench_ingest(residents: u64, seed: u64, postgres: Option<&str>) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("dhp-bench-ingest-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let source_url = format!("sqlite://{}", dir.join("source.db").display());
    let (source, _) = dhp_synth::generate_into(
        &source_url,
        &dhp_synth::Params::new(residents, seed),
        &dhp_synth::Quiet,
    )
    .await?;
    let source_state = AppState::open(source.clone()).await?;
    let mut bundles = Vec::new();
    export::export_bundles(&source_state, |_, b| {
        bundles.push(b);
        Ok(())
    })
    .await?;
    let resources: usize = bundles
        .iter()
        .map(|b| b["entry"].as_array().map_or(0, Vec::len))
        .sum();
    println!(
        "{} bundles, {resources} resources ({residents} residents, seed {seed})",
        bundles.len()
    );
    let mut targets: Vec<Target> = Vec::new();
    let sqlite_url = format!("sqlite://{}", dir.join("target.db").display());
    targets.push((
        "sqlite".into(),
        dhp_store::connect(&sqlite_url).await?,
        None,
    ));
    if let Some(admin_url) = postgres {
        let name = format!("dhp_bench_ingest_{}", std::process::id());
        let admin = dhp_store::AdminPool::connect(admin_url).await?;
        admin.execute(&format!("CREATE DATABASE {name}")).await?;
        let (base, _) = admin_url
            .rsplit_once('/')
            .context("the PostgreSQL URL names no database")?;
        targets.push((
            "postgres".into(),
            dhp_store::connect(&format!("{base}/{name}")).await?,
            Some((admin, name)),
        ));
    }
    for (label, target, cleanup) in targets {
        export::copy_registry(&*source, &*target).await?;
        let state = AppState::open(target.clone()).await?;
        let started = Instant::now();
        for group in bundles.chunks(GROUP) {
            let group = group.iter().cloned().map(Import::new).collect();
            let answers = import_bundles(&state, IMPORT_CLIENT, group)
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            if let Some(Err(o)) = answers.into_iter().find(Result::is_err) {
                bail!("a bundle was refused: {}", o.to_json());
            }
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{label}: {resources} resources in {secs:.2} s = {:.0} resources/s ({:.0} bundles/s)",
            resources as f64 / secs,
            bundles.len() as f64 / secs
        );
        target.close().await;
        if let Some((admin, name)) = cleanup {
            admin
                .execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
        }
    }
    source.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
