//! `dhp backup` and `dhp restore`: a consistent copy of a district taken while it is in
//! use, and put back where nothing is, proven by its digests (等保三级 data backup and
//! recovery, GB/T 22239-2019 8.1.4.9).

use std::path::Path;

use anyhow::{bail, Context, Result};
use dhp_store::{content_digest, redact_url, sqlite_path};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn file_digest(path: &Path) -> Result<String> {
    let mut h = Sha256::new();
    std::io::copy(
        &mut std::fs::File::open(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        &mut h,
    )?;
    Ok(hex::encode(h.finalize()))
}

fn manifest_path(out: &Path) -> std::path::PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".json");
    name.into()
}

/// The content digest of the district at `url` (as `dhp stats` prints it).
async fn digest_of(url: &str) -> Result<String> {
    let store = dhp_store::connect(url).await?;
    let (_, digest) = content_digest(&*store).await?;
    store.close().await;
    Ok(digest)
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Run a PostgreSQL client tool (`pg_dump`, `pg_restore`), its error output in the
/// message if it fails.
fn pg_tool(tool: &str, args: &[&str]) -> Result<()> {
    let out = std::process::Command::new(tool)
        .args(args)
        .output()
        .with_context(|| format!("{tool} cannot be run: install the PostgreSQL client tools"))?;
    if !out.status.success() {
        bail!(
            "{tool} failed: {}",
            redact_url(String::from_utf8_lossy(&out.stderr).trim())
        );
    }
    Ok(())
}

/// The content digest of what the dump `file` holds: restored into a scratch database
/// beside `url`'s, digested, dropped.
async fn dump_digest(url: &str, file: &Path) -> Result<String> {
    let name = format!(
        "dhp_backup_check_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let admin = dhp_store::AdminPool::connect(url).await?;
    let scratch = admin.fresh_database(url, &name).await?;
    let file_arg = file.display().to_string();
    let digest = match pg_tool(
        "pg_restore",
        &[
            "--exit-on-error",
            "--no-owner",
            "--dbname",
            &scratch,
            &file_arg,
        ],
    ) {
        Ok(()) => digest_of(&scratch).await,
        Err(e) => Err(e),
    };
    admin
        .execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    digest
}

/// `dhp backup --database URL --out FILE`: SQLite's online backup (`VACUUM INTO`, one
/// read transaction: a consistent state while writers go on), then a manifest
/// `FILE.json` with the file's SHA-256 and the content digest of what it holds.
pub async fn backup(url: &str, out: &Path) -> Result<()> {
    if out.exists() {
        bail!("--out {} exists; give a new file", out.display());
    }
    let partial = out.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let started = std::time::Instant::now();
    let (format, digest) = if is_postgres(url) {
        // pg_dump reads the whole database in one repeatable-read snapshot: consistent
        // while writers go on. What the dump holds is proven by restoring it.
        let file_arg = partial.display().to_string();
        pg_tool(
            "pg_dump",
            &[
                "--format=custom",
                "--no-owner",
                "--file",
                &file_arg,
                "--dbname",
                url,
            ],
        )?;
        std::fs::File::open(&partial)?.sync_all()?;
        let digest = dump_digest(url, &partial).await?;
        std::fs::rename(&partial, out)?;
        ("pg_dump custom", digest)
    } else {
        if sqlite_path(url).is_none() {
            bail!("--database: expected sqlite://PATH or postgres://…");
        }
        let store = crate::commands::open_existing(url).await?;
        store
            .backup_into(&partial.display().to_string())
            .await
            .context("the backup failed")?;
        store.close().await;
        std::fs::File::open(&partial)?.sync_all()?;
        std::fs::rename(&partial, out)?;
        ("sqlite", digest_of(&sqlite_url(out)).await?)
    };
    let sha256 = file_digest(out)?;
    let manifest = json!({
        "source": redact_url(url),
        "format": format,
        "taken": chrono::Utc::now().to_rfc3339(),
        "file_sha256": sha256,
        "content_digest": digest,
        "bytes": std::fs::metadata(out)?.len(),
    });
    std::fs::write(manifest_path(out), serde_json::to_string_pretty(&manifest)?)?;
    println!(
        "backed up {} to {} in {:.1} s; content digest sha256:{digest}; file sha256:{sha256}",
        redact_url(url),
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `dhp restore --from FILE --database URL`: the backup checked against its manifest,
/// copied to a new SQLite file (never over an existing one), and the restored district's
/// content digest compared with the one recorded when the backup was taken.
pub async fn restore(from: &Path, url: &str) -> Result<()> {
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(manifest_path(from))
            .with_context(|| format!("{} has no manifest beside it", from.display()))?,
    )?;
    let expected = |k: &str| manifest[k].as_str().map(str::to_string).unwrap_or_default();
    let dump = expected("format") == "pg_dump custom";
    if dump != is_postgres(url) {
        bail!(
            "--database: {} is a {} backup; restore it into a {} database",
            from.display(),
            if dump { "PostgreSQL" } else { "SQLite" },
            if dump {
                "postgres://…"
            } else {
                "sqlite://…"
            }
        );
    }
    if file_digest(from)? != expected("file_sha256") {
        bail!(
            "{} does not match the digest of its manifest: it changed or is incomplete",
            from.display()
        );
    }
    let (restored, place) = if dump {
        // Only into an empty database: nothing there is overwritten.
        let store = dhp_store::connect(url).await?;
        let residents = store.count(dhp_store::Table::Residents).await;
        let users = store.users().await.map(|u| u.len());
        store.close().await;
        if !matches!((residents, users), (Ok(0), Ok(0))) {
            bail!(
                "--database {}: restore only into a new, empty database",
                redact_url(url)
            );
        }
        // The empty schema made by connecting goes, then the dump's own comes in.
        let admin = dhp_store::AdminPool::connect(url).await?;
        admin.execute("DROP SCHEMA public CASCADE").await?;
        admin.execute("CREATE SCHEMA public").await?;
        let from_arg = from.display().to_string();
        pg_tool(
            "pg_restore",
            &["--exit-on-error", "--no-owner", "--dbname", url, &from_arg],
        )?;
        (url.to_string(), redact_url(url))
    } else {
        let Some(target) = sqlite_path(url) else {
            bail!("--database: expected sqlite://PATH or postgres://…");
        };
        let target = Path::new(target);
        if target.exists() {
            bail!(
                "--database {} exists; restore into a new file",
                target.display()
            );
        }
        let partial = target.with_extension("partial");
        std::fs::copy(from, &partial)
            .with_context(|| format!("cannot write {}", partial.display()))?;
        std::fs::File::open(&partial)?.sync_all()?;
        std::fs::rename(&partial, target)?;
        (sqlite_url(target), target.display().to_string())
    };
    let digest = digest_of(&restored).await?;
    if digest != expected("content_digest") {
        bail!("the restored district's content digest {digest} differs from the backup's");
    }
    println!(
        "restored {} (taken {}) into {place}; content digest sha256:{digest}, equal to the backup's",
        from.display(),
        expected("taken"),
    );
    Ok(())
}
