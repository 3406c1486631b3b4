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

/// The content digest of the SQLite district at `path` (as `dhp stats` prints it).
async fn digest_of(path: &Path) -> Result<String> {
    let store = dhp_store::connect(&format!("sqlite://{}", path.display())).await?;
    let (_, digest) = content_digest(&*store).await?;
    store.close().await;
    Ok(digest)
}

/// `dhp backup --database URL --out FILE`: SQLite's online backup (`VACUUM INTO`, one
/// read transaction: a consistent state while writers go on), then a manifest
/// `FILE.json` with the file's SHA-256 and the content digest of what it holds.
pub async fn backup(url: &str, out: &Path) -> Result<()> {
    if sqlite_path(url).is_none() {
        bail!("--database: backup is implemented for SQLite districts; for PostgreSQL use pg_dump --format=custom (a consistent snapshot) until dhp backup covers it");
    }
    if out.exists() {
        bail!("--out {} exists; give a new file", out.display());
    }
    let store = crate::commands::open_existing(url).await?;
    let partial = out.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let started = std::time::Instant::now();
    store
        .backup_into(&partial.display().to_string())
        .await
        .context("the backup failed")?;
    store.close().await;
    std::fs::File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, out)?;
    let digest = digest_of(out).await?;
    let sha256 = file_digest(out)?;
    let manifest = json!({
        "source": redact_url(url),
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
    let Some(target) = sqlite_path(url) else {
        bail!("--database: restore is implemented for SQLite districts (sqlite://PATH)");
    };
    let target = Path::new(target);
    if target.exists() {
        bail!(
            "--database {} exists; restore into a new file",
            target.display()
        );
    }
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(manifest_path(from))
            .with_context(|| format!("{} has no manifest beside it", from.display()))?,
    )?;
    let expected = |k: &str| manifest[k].as_str().map(str::to_string).unwrap_or_default();
    if file_digest(from)? != expected("file_sha256") {
        bail!(
            "{} does not match the digest of its manifest: it changed or is incomplete",
            from.display()
        );
    }
    let partial = target.with_extension("partial");
    std::fs::copy(from, &partial).with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, target)?;
    let digest = digest_of(target).await?;
    if digest != expected("content_digest") {
        bail!("the restored district's content digest {digest} differs from the backup's");
    }
    println!(
        "restored {} (taken {}) into {}; content digest sha256:{digest}, equal to the backup's",
        from.display(),
        expected("taken"),
        target.display()
    );
    Ok(())
}
