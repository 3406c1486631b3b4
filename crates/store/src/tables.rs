//! The database as a whole: generated batches written in bulk, any table read by page or key, the `meta` settings, clearing, backup and close.

use async_trait::async_trait;
use dhp_core::Id;

use crate::rows::{self, Col};
use crate::shared::{one, Backend, Exec, Param};
use crate::{Batch, Result, StoreError, Table};

pub(crate) async fn page<E: Exec>(e: &E, table: Table, after: Id, limit: i64) -> Result<Batch> {
    let rows = e
        .rows(
            &rows::page_sql(table),
            vec![Param::I64(after), Param::I64(limit)],
        )
        .await?;
    let mut batch = Batch::default();
    for r in &rows {
        rows::push(&mut batch, table, r)?;
    }
    Ok(batch)
}

pub(crate) async fn count<E: Exec>(e: &E, table: Table) -> Result<i64> {
    let sql = format!("SELECT COUNT(*) FROM {}", table.name());
    one(e, &sql, vec![], || table.name().into()).await?.i64(0)
}

pub(crate) async fn meta<E: Exec>(e: &E, key: &str) -> Result<Option<String>> {
    let rows = e
        .rows("SELECT value FROM meta WHERE key = $1", vec![key.into()])
        .await?;
    rows.first().map(|r| r.text(0)).transpose()
}

/// Insert or replace one setting.
pub(crate) const SET_META: &str =
    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";

pub(crate) async fn set_meta<E: Exec>(e: &E, key: &str, value: &str) -> Result<()> {
    e.execute(SET_META, vec![key.into(), value.into()]).await
}

fn by_id_sql(table: Table) -> String {
    format!(
        "SELECT {} FROM {} WHERE id = $1",
        rows::columns(table),
        table.name()
    )
}

/// One row of `table` by id, decoded through the paging decoder.
pub(crate) async fn by_id<E: Exec>(e: &E, table: Table, id: Id) -> Result<Batch> {
    let row = one(e, &by_id_sql(table), vec![Param::I64(id)], || {
        format!("{} {id}", table.name())
    })
    .await?;
    let mut batch = Batch::default();
    rows::push(&mut batch, table, &row)?;
    Ok(batch)
}

/// The database as a whole: generated batches written in bulk, any table read by page or key, the `meta` settings, clearing, backup and close.
#[async_trait]
pub trait TableStore: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Write every row of `batch` in one transaction: all or nothing.
    async fn insert_batch(&self, batch: &Batch) -> Result<()>;
    /// Up to `limit` rows of `table` with `id > after`, in id order.
    async fn page(&self, table: Table, after: Id, limit: i64) -> Result<Batch>;
    /// Number of rows in `table`.
    async fn count(&self, table: Table) -> Result<i64>;
    /// The row of `table` with `id` (in the batch's vector for that table).
    async fn get(&self, table: Table, id: Id) -> Result<Batch>;
    /// A value of the `meta` table (generation parameters and the like).
    async fn meta(&self, key: &str) -> Result<Option<String>>;
    /// Set a value of the `meta` table.
    async fn set_meta(&self, key: &str, value: &str) -> Result<()>;
    /// Remove every row of every table (used to undo a failed generation on a server
    /// database, where the load cannot be one file renamed into place).
    async fn clear(&self) -> Result<()>;
    /// A consistent copy of the whole database into the new file `path`, taken while
    /// others go on writing (SQLite: `VACUUM INTO`).
    async fn backup_into(&self, path: &str) -> Result<()>;
    /// Refresh the query planner's statistics after a bulk write (PostgreSQL:
    /// `ANALYZE`, which autovacuum would do later; SQLite: `PRAGMA optimize`), so the
    /// first queries after a load get the plans the data calls for.
    async fn refresh_statistics(&self) -> Result<()>;
    async fn close(&self);
}

#[async_trait]
impl<B: Backend> TableStore for B {
    fn backend(&self) -> &'static str {
        self.name()
    }
    async fn insert_batch(&self, batch: &Batch) -> Result<()> {
        self.write_batch(batch).await
    }
    async fn page(&self, table: Table, after: Id, limit: i64) -> Result<Batch> {
        page(self.pool(), table, after, limit).await
    }
    async fn count(&self, table: Table) -> Result<i64> {
        count(self.pool(), table).await
    }
    async fn get(&self, table: Table, id: Id) -> Result<Batch> {
        by_id(self.pool(), table, id).await
    }
    async fn meta(&self, key: &str) -> Result<Option<String>> {
        meta(self.pool(), key).await
    }
    async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        set_meta(self.pool(), key, value).await?;
        crate::shared::crash_point();
        Ok(())
    }
    async fn clear(&self) -> Result<()> {
        self.clear_all().await
    }
    async fn backup_into(&self, path: &str) -> Result<()> {
        if self.backup_file(path).await? {
            Ok(())
        } else {
            Err(StoreError::Invalid(format!(
                "{} has no file backup; use its own dump tool",
                self.name()
            )))
        }
    }
    async fn refresh_statistics(&self) -> Result<()> {
        let sql = if self.name() == "postgres" {
            "ANALYZE"
        } else {
            "PRAGMA optimize"
        };
        self.pool().execute(sql, Vec::new()).await
    }
    async fn close(&self) {
        self.shut().await
    }
}
