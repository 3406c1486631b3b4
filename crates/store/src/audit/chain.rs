//! The audit log made tamper-evident (等保三级 security audit, GB/T 22239-2019
//! 8.1.4.3: audit records protected against deletion, modification and overwriting).
//!
//! Each entry, once sealed, carries its place in one chain (`chain_seq`) and
//! `chain_hash` = SHA-256 of the previous entry's hash and its own content: an entry
//! changed, removed or slipped in breaks the chain from there on. Entries are written
//! unsealed on the hot path (no lock, no extra statement) and sealed in order soon
//! after, in batches, by whoever holds the chain's head — one process at a time (the
//! head row is locked). Archived entries leave the table; the head keeps the hash of
//! the last one archived, so the chain still verifies from there.

use sha2::{Digest, Sha256};

use crate::audit::{audit_event as event, AUDIT_COLUMNS as COLUMNS};
use crate::rows::Col;
use crate::shared::{placeholders, Commit, Exec, Param};
use crate::{AuditEvent, Result};

/// The hash the first entry chains to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The head of an empty chain (the log cleared).
pub(crate) const RESET: &str = "UPDATE audit_chain SET seq = 0, hash = '0000000000000000000000000000000000000000000000000000000000000000', \
     archived_seq = 0, archived_hash = '0000000000000000000000000000000000000000000000000000000000000000' WHERE id = 1";

/// Entries sealed per transaction.
const SEAL_BATCH: i64 = 5_000;

/// The chain's head: the last sealed entry, and the last one archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
    pub archived_seq: i64,
    pub archived_hash: String,
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub head: ChainHead,
    /// Entries checked (those still in the table).
    pub checked: u64,
    /// Entries not sealed yet.
    pub unsealed: u64,
    /// The first place the chain does not hold, if any.
    pub broken: Option<ChainBreak>,
}

/// Where and how the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub seq: i64,
    pub what: String,
}

/// One sealed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedAudit {
    pub seq: i64,
    pub hash: String,
    pub event: AuditEvent,
}

/// The hash of `e` chained to `prev`: SHA-256 over the previous hash and every field,
/// each ended by a unit separator (so no two entries read alike); the time to the
/// microsecond, as both backends keep it.
pub fn entry_hash(prev: &str, e: &AuditEvent) -> String {
    let mut h = Sha256::new();
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    for field in [
        prev,
        &e.id,
        &e.recorded.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        &e.username,
        &e.role,
        &opt(e.org_id),
        &opt(e.resident_id),
        &e.action,
        &e.resource,
        &e.outcome,
        &e.detail,
    ] {
        h.update(field.as_bytes());
        h.update([0x1f]);
    }
    hex::encode(h.finalize())
}

pub(crate) async fn head<E: Exec>(e: &E, for_update: bool) -> Result<ChainHead> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let rows = e
        .rows(
            &format!(
                "SELECT seq, hash, archived_seq, archived_hash FROM audit_chain WHERE id = 1{lock}"
            ),
            vec![],
        )
        .await?;
    let r = rows
        .first()
        .ok_or_else(|| crate::StoreError::NotFound("the audit chain's head".into()))?;
    Ok(ChainHead {
        seq: r.i64(0)?,
        hash: r.text(1)?,
        archived_seq: r.i64(2)?,
        archived_hash: r.text(3)?,
    })
}

/// Seal one batch of entries on the open write transaction `tx` (which holds the
/// head: SQLite's write lock, or PostgreSQL's row lock taken here), and commit.
/// How many were sealed.
pub(crate) async fn seal_batch<T: Exec + Commit>(tx: T, postgres: bool) -> Result<u64> {
    let mut head = head(&tx, postgres).await?;
    let rows = tx
        .rows(
            &format!(
                "SELECT {COLUMNS} FROM audit_events WHERE chain_seq IS NULL \
                 ORDER BY recorded, id LIMIT $1"
            ),
            vec![Param::I64(SEAL_BATCH)],
        )
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut sealed = Vec::with_capacity(rows.len());
    for r in &rows {
        let e = event(r)?;
        head.seq += 1;
        head.hash = entry_hash(&head.hash, &e);
        sealed.push((e.id, head.seq, head.hash.clone()));
    }
    for chunk in sealed.chunks(1_000) {
        let mut params = Vec::with_capacity(chunk.len() * 3);
        let mut values = Vec::with_capacity(chunk.len());
        for (id, seq, hash) in chunk {
            values.push(placeholders(params.len(), 3, postgres));
            params.push(Param::Text(id.clone()));
            params.push(Param::I64(*seq));
            params.push(Param::Text(hash.clone()));
        }
        tx.execute(
            &format!(
                "UPDATE audit_events SET chain_seq = v.column2, chain_hash = v.column3 \
                 FROM (VALUES {}) AS v WHERE audit_events.id = v.column1",
                values.join(", ")
            ),
            params,
        )
        .await?;
    }
    tx.execute(
        "UPDATE audit_chain SET seq = $1, hash = $2 WHERE id = 1",
        vec![Param::I64(head.seq), Param::Text(head.hash)],
    )
    .await?;
    tx.commit().await?;
    Ok(sealed.len() as u64)
}

/// Sealed entries after `after` in chain order, at most `limit`.
pub(crate) async fn sealed<E: Exec>(e: &E, after: i64, limit: i64) -> Result<Vec<SealedAudit>> {
    e.rows(
        &format!(
            "SELECT {COLUMNS}, chain_seq, chain_hash FROM audit_events \
             WHERE chain_seq > $1 ORDER BY chain_seq LIMIT $2"
        ),
        vec![Param::I64(after), Param::I64(limit)],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(SealedAudit {
            event: event(r)?,
            seq: r.i64(10)?,
            hash: r.text(11)?,
        })
    })
    .collect()
}

/// Check the chain from the last archived entry to the head.
pub(crate) async fn verify<E: Exec>(
    e: &E,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<ChainReport> {
    let head = head(e, false).await?;
    let unsealed = e
        .rows(
            "SELECT COUNT(*) FROM audit_events WHERE chain_seq IS NULL",
            vec![],
        )
        .await?
        .first()
        .map(|r| r.i64(0))
        .transpose()?
        .unwrap_or(0) as u64;
    let (mut seq, mut hash) = (head.archived_seq, head.archived_hash.clone());
    let mut checked = 0u64;
    let mut broken = None;
    'pages: loop {
        let page = sealed(e, seq, 10_000).await?;
        if page.is_empty() {
            break;
        }
        for s in page {
            if s.seq != seq + 1 {
                broken = Some(ChainBreak {
                    seq: seq + 1,
                    what: if s.seq == seq + 2 {
                        format!("entry #{} is missing", seq + 1)
                    } else {
                        format!("entries #{} to #{} are missing", seq + 1, s.seq - 1)
                    },
                });
                break 'pages;
            }
            let expected = entry_hash(&hash, &s.event);
            if expected != s.hash {
                broken = Some(ChainBreak {
                    seq: s.seq,
                    what: format!(
                        "entry #{} ({}, {} {} by {:?}) was changed after it was sealed",
                        s.seq, s.event.recorded, s.event.action, s.event.resource, s.event.username
                    ),
                });
                break 'pages;
            }
            seq = s.seq;
            hash = s.hash;
            checked += 1;
        }
        progress(checked);
    }
    if broken.is_none() && (seq != head.seq || hash != head.hash) {
        broken = Some(ChainBreak {
            seq: seq + 1,
            what: if seq < head.seq {
                format!(
                    "the chain ends at entry #{seq} but its head says #{}: entries were removed from the end",
                    head.seq
                )
            } else {
                format!(
                    "the chain's head (#{}) does not match its last entry (#{seq})",
                    head.seq
                )
            },
        });
    }
    Ok(ChainReport {
        head,
        checked,
        unsealed,
        broken,
    })
}

/// Remove the sealed entries up to `upto` (archived elsewhere), and move the head's
/// archive mark there, on the open write transaction `tx`; commit.
pub(crate) async fn forget_archived<T: Exec + Commit>(
    tx: T,
    postgres: bool,
    upto: i64,
    upto_hash: &str,
) -> Result<u64> {
    let head = head(&tx, postgres).await?;
    if upto <= head.archived_seq {
        return Ok(0);
    }
    let n = tx
        .rows(
            "SELECT COUNT(*) FROM audit_events WHERE chain_seq > $1 AND chain_seq <= $2",
            vec![Param::I64(head.archived_seq), Param::I64(upto)],
        )
        .await?
        .first()
        .map(|r| r.i64(0))
        .transpose()?
        .unwrap_or(0);
    tx.execute(
        "DELETE FROM audit_events WHERE chain_seq <= $1",
        vec![Param::I64(upto)],
    )
    .await?;
    tx.execute(
        "UPDATE audit_chain SET archived_seq = $1, archived_hash = $2 WHERE id = 1",
        vec![Param::I64(upto), upto_hash.into()],
    )
    .await?;
    tx.commit().await?;
    Ok(n as u64)
}
