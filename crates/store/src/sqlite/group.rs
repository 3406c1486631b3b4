//! Group commit: the write transactions of one process share SQLite's one write
//! transaction. Writers take turns in arrival order (SQLite has one writer at a time
//! anyway); each writer's work runs inside a savepoint of the shared transaction, which
//! is committed when no writer is waiting for its turn or [`MOST`] writers' work is in
//! it. A writer whose work fails rolls back to its savepoint and leaves the others'
//! work standing; a writer that commits is answered only once the shared commit is
//! done, so what it was told was written is on disk (and a failed shared commit fails
//! every member, none of whose work was written). One `BEGIN IMMEDIATE … COMMIT` and
//! one write of the changed pages to the log now serve many bookings.
//!
//! The turn's steps that end a transaction run in spawned tasks: a request dropped
//! half-way (a client that hung up) cannot leave the shared transaction open with
//! other writers waiting for its commit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{Sqlite, Transaction};
use tokio::sync::{oneshot, Mutex, OwnedMutexGuard};

use crate::{Result, StoreError};

/// The most writers' work one shared commit carries: each waits for the commit of its
/// group, so a bound on the group bounds the wait.
const MOST: usize = 64;

/// The shared transaction and the writers whose work is in it.
#[derive(Default)]
struct Group {
    tx: Option<Transaction<'static, Sqlite>>,
    /// Writers whose savepoint was released into `tx`, waiting for its commit.
    waiting: Vec<oneshot::Sender<std::result::Result<(), String>>>,
}

/// The writers of one store.
#[derive(Debug, Clone)]
pub(super) struct Writers {
    group: Arc<Mutex<Group>>,
    /// Writers waiting for their turn: while there are some, the transaction stays open
    /// for them.
    queued: Arc<AtomicUsize>,
    pool: SqlitePool,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Group({} waiting)", self.waiting.len())
    }
}

/// One writer's turn: the shared transaction, and once the writer writes, its savepoint.
struct Turn {
    group: Option<OwnedMutexGuard<Group>>,
    /// The savepoint is open: the first statement that is not a `SELECT` opens it, so a
    /// writer that only reads (a booking refused: the slot is full) has nothing to undo.
    wrote: bool,
    writers: Writers,
}

/// A write transaction: a savepoint of the shared transaction, during this writer's turn.
pub struct SqliteTx(Mutex<Turn>);

impl std::fmt::Debug for SqliteTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteTx")
    }
}

async fn run(g: &mut Group, sql: &'static str) -> std::result::Result<(), sqlx::Error> {
    let tx = g.tx.as_mut().ok_or(sqlx::Error::PoolClosed)?;
    sqlx::query(sql).execute(&mut **tx).await.map(|_| ())
}

impl Writers {
    pub(super) fn new(pool: SqlitePool) -> Self {
        Self {
            group: Default::default(),
            queued: Default::default(),
            pool,
        }
    }

    /// Wait for this writer's turn (the shared transaction begun if none is open).
    pub(super) async fn begin(&self) -> Result<SqliteTx> {
        let w = self.clone();
        // Spawned: a caller that goes away while waiting leaves the count right, and a
        // turn it no longer wants is ended by the turn's drop.
        let turn = tokio::spawn(async move {
            w.queued.fetch_add(1, Ordering::SeqCst);
            let mut g = w.group.clone().lock_owned().await;
            w.queued.fetch_sub(1, Ordering::SeqCst);
            if g.tx.is_none() {
                match w.pool.begin_with("BEGIN IMMEDIATE").await {
                    Ok(tx) => g.tx = Some(tx),
                    Err(e) => {
                        w.end_turn(g).await;
                        return Err(StoreError::from(e));
                    }
                }
            }
            Ok(Turn {
                group: Some(g),
                wrote: false,
                writers: w,
            })
        })
        .await
        .map_err(|e| StoreError::Embedded(format!("write turn: {e}")))??;
        Ok(SqliteTx(Mutex::new(turn)))
    }

    /// End a turn: commit the shared transaction when no writer waits for a turn (or
    /// the group is full), answering every member; else leave it open for the next.
    async fn end_turn(&self, mut g: OwnedMutexGuard<Group>) {
        let nobody_next = self.queued.load(Ordering::SeqCst) == 0;
        if g.waiting.is_empty() {
            if nobody_next {
                // Nothing to commit: let the write lock go.
                if let Some(tx) = g.tx.take() {
                    let _ = tx.rollback().await;
                }
            }
            return;
        }
        if nobody_next || g.waiting.len() >= MOST {
            let outcome = match g.tx.take() {
                Some(tx) => tx.commit().await.map_err(|e| e.to_string()),
                None => Err("the write transaction was lost".to_string()),
            };
            for w in g.waiting.drain(..) {
                let _ = w.send(outcome.clone());
            }
        }
    }

    /// The shared transaction is gone (a failure SQLite answers by rolling back the
    /// whole transaction): every member waiting for it is told its work was not written.
    async fn fail(&self, mut g: OwnedMutexGuard<Group>, why: &str) {
        if let Some(tx) = g.tx.take() {
            let _ = tx.rollback().await;
        }
        for w in g.waiting.drain(..) {
            let _ = w.send(Err(why.to_string()));
        }
        self.end_turn(g).await;
    }

    /// Undo this writer's work (its savepoint, if it wrote), keep the others', end the
    /// turn.
    async fn roll_back(&self, mut g: OwnedMutexGuard<Group>, wrote: bool) {
        if !wrote {
            return self.end_turn(g).await;
        }
        let undone = match run(&mut g, "ROLLBACK TO member").await {
            Ok(()) => run(&mut g, "RELEASE member").await,
            Err(e) => Err(e),
        };
        match undone {
            Ok(()) => self.end_turn(g).await,
            Err(e) => self.fail(g, &e.to_string()).await,
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        // Not committed: undo the savepoint, in a task of its own (no await in a drop).
        if let Some(g) = self.group.take() {
            let (w, wrote) = (self.writers.clone(), self.wrote);
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(async move { w.roll_back(g, wrote).await });
                }
                // No runtime left (the process is ending): dropping the transaction
                // rolls it back, and nobody is left to wait.
                Err(_) => drop(g),
            }
        }
    }
}

impl SqliteTx {
    /// The shared transaction's connection, for statement `sql` of this writer's work
    /// (`None`: statements that write); the savepoint opened before the first that
    /// may write.
    pub(super) async fn conn(
        &self,
        sql: Option<&str>,
    ) -> Result<tokio::sync::MappedMutexGuard<'_, SqliteConnection>> {
        let mut t = self.0.lock().await;
        let reads = sql.is_some_and(|q| {
            q.trim_start()
                .get(..6)
                .is_some_and(|w| w.eq_ignore_ascii_case("SELECT"))
        });
        if !reads && !t.wrote {
            let g = t
                .group
                .as_mut()
                .expect("a turn holds its group until it ends");
            run(g, "SAVEPOINT member").await?;
            t.wrote = true;
        }
        Ok(tokio::sync::MutexGuard::map(t, |t| {
            let g = t
                .group
                .as_mut()
                .expect("a turn holds its group until it ends");
            &mut **g
                .tx
                .as_mut()
                .expect("the shared transaction is open during a turn")
        }))
    }
}

#[async_trait::async_trait]
impl crate::shared::Commit for SqliteTx {
    async fn commit(self) -> Result<()> {
        let mut turn = self.0.into_inner();
        let Some(g) = turn.group.take() else {
            return Err(StoreError::Embedded("the write turn already ended".into()));
        };
        let (w, wrote) = (turn.writers.clone(), turn.wrote);
        let (tell, told) = oneshot::channel();
        // Spawned: the release and the turn's end happen whether or not the caller
        // stays for the answer. A writer that only read still waits for the commit of
        // what it read.
        tokio::spawn(async move {
            let mut g = g;
            let released = if wrote {
                run(&mut g, "RELEASE member").await
            } else {
                Ok(())
            };
            match released {
                Ok(()) => {
                    g.waiting.push(tell);
                    w.end_turn(g).await;
                }
                Err(e) => {
                    let why = e.to_string();
                    let _ = tell.send(Err(why.clone()));
                    w.fail(g, &why).await;
                }
            }
        });
        match told.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(StoreError::Embedded(why)),
            Err(_) => Err(StoreError::Embedded(
                "the write transaction ended without an answer".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::shared::{Commit, Exec, Param};
    use std::time::Duration;

    async fn store() -> (crate::sqlite::SqliteStore, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("dhp-group-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let s = crate::sqlite::SqliteStore::open(dir.join("g.db"))
            .await
            .expect("opened");
        (s, dir)
    }

    async fn count(s: &crate::sqlite::SqliteStore, like: &str) -> i64 {
        use crate::rows::Col;
        let rows = crate::shared::Backend::pool(s)
            .rows(
                "SELECT COUNT(*) FROM meta WHERE key LIKE $1",
                vec![Param::Text(like.into())],
            )
            .await
            .expect("counted");
        rows[0].i64(0).expect("a count")
    }

    /// Many writers at once, a third of them failing part-way or dropped uncommitted,
    /// some abandoned by their caller while waiting: exactly the committed ones' rows
    /// are written, and the store still takes writes after.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn members_fail_alone_and_commits_are_kept() {
        let (s, dir) = store().await;
        let mut tasks = Vec::new();
        for i in 0..300 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let tx = crate::shared::Backend::begin_write(&s).await?;
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ($1, 'x')",
                    vec![Param::Text(format!("g-{i}"))],
                )
                .await?;
                match i % 6 {
                    // A failing statement after a good one: the member's work undone.
                    0 => {
                        tx.execute(
                            "INSERT INTO meta (key, value) VALUES ($1, 'again')",
                            vec![Param::Text(format!("g-{i}"))],
                        )
                        .await?;
                        tx.commit().await.map(|_| false)
                    }
                    // Dropped uncommitted.
                    1 => Ok(false),
                    _ => tx.commit().await.map(|_| true),
                }
            }));
        }
        // Callers that give up at once, while waiting for a turn or half-way through.
        for i in 0..50 {
            let s = s.clone();
            let _: Option<crate::Result<()>> =
                tokio::time::timeout(Duration::from_micros(50), async move {
                    let tx = crate::shared::Backend::begin_write(&s).await?;
                    tx.execute(
                        "INSERT INTO meta (key, value) VALUES ($1, 'gone')",
                        vec![Param::Text(format!("gone-{i}"))],
                    )
                    .await?;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    crate::Result::Ok(())
                })
                .await
                .ok();
        }
        let mut committed = 0;
        for t in tasks {
            // A hang here would be a lost turn: a deadlock guard, not a timing.
            let done = tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .expect("every writer is answered")
                .expect("the writer ran");
            if let Ok(true) = done {
                committed += 1;
            }
        }
        assert_eq!(committed, 200);
        let tx = tokio::time::timeout(
            Duration::from_secs(60),
            crate::shared::Backend::begin_write(&s),
        )
        .await
        .expect("a turn after all that")
        .expect("began");
        tx.commit().await.expect("committed");
        assert_eq!(count(&s, "g-%").await, 200);
        assert_eq!(count(&s, "gone-%").await, 0);
        crate::shared::Backend::shut(&s).await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
