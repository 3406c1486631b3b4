//! Conformance suite of the `Store` trait. Every story runs on SQLite (a throwaway file)
//! and, when `DHP_TEST_POSTGRES_URL` names a server, on PostgreSQL (a throwaway
//! database created for the story and dropped after it).

mod fixture;
mod stories;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use dhp_store::Store;

/// A store and what to clean up after it.
#[allow(missing_debug_implementations)]
pub struct Harness {
    pub store: Arc<dyn Store>,
    cleanup: Option<(String, String)>,
    _dir: Option<TempDir>,
}

/// A directory removed on drop.
#[derive(Debug)]
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn sqlite() -> Harness {
    let dir = std::env::temp_dir().join(unique("dhp_store_it"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("test.db").display());
    Harness {
        store: dhp_store::connect(&url).await.unwrap(),
        cleanup: None,
        _dir: Some(TempDir(dir)),
    }
}

/// `None` when no PostgreSQL server is configured.
pub async fn postgres() -> Option<Harness> {
    let admin_url = std::env::var("DHP_TEST_POSTGRES_URL").ok()?;
    let name = unique("dhp_it");
    let admin = sqlx::PgPool::connect(&admin_url)
        .await
        .expect("DHP_TEST_POSTGRES_URL is set but the server cannot be reached");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (base, _) = admin_url.rsplit_once('/').expect("url has a database name");
    let url = format!("{base}/{name}");
    Some(Harness {
        store: dhp_store::connect(&url).await.unwrap(),
        cleanup: Some((admin_url, name)),
        _dir: None,
    })
}

impl Harness {
    pub async fn finish(self) {
        let Harness { store, cleanup, .. } = self;
        drop(store);
        if let Some((admin_url, name)) = cleanup {
            if let Ok(admin) = sqlx::PgPool::connect(&admin_url).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&admin)
                    .await;
            }
        }
    }
}

/// Run one story on every configured backend.
#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test]
                async fn $name() {
                    let h = $crate::sqlite().await;
                    $crate::stories::$name(&*h.store).await;
                    h.finish().await;
                }
            )*
        }
        mod postgres_backend {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(h) = $crate::postgres().await else {
                        eprintln!("DHP_TEST_POSTGRES_URL not set: PostgreSQL story skipped");
                        return;
                    };
                    $crate::stories::$name(&*h.store).await;
                    h.finish().await;
                }
            )*
        }
    };
}

conformance!(
    a_new_store_is_empty,
    no_slot_is_booked_beyond_its_capacity,
    referrals_and_recognition_keep_their_rules,
    write_sets_book_through_the_pools_guard,
    a_freed_place_is_offered_down_the_waitlist,
    emergency_grants_open_a_record_until_they_expire,
    batches_round_trip_through_pages,
    a_failing_batch_writes_nothing,
    lookups_keep_not_found_apart,
    users_are_unique_and_redacted,
    meta_values_overwrite,
    clear_empties_every_table,
    digest_is_the_same_on_every_backend,
    single_rows_and_access_facts,
    audit_events_are_kept_newest_first,
    search_scope_matches_the_access_rules,
    search_filters_and_pages,
    audit_batches_and_household_lookups,
    reserved_ids_start_above_existing_rows,
    resources_are_versioned_and_checked,
    generated_rows_become_version_one_when_updated,
    a_failing_write_set_writes_nothing,
    programme_records_read_whole_records,
    contract_guards_catch_concurrent_changes,
    conditional_creates_are_one_step,
    login_failures_are_counted_and_forgotten,
    surveillance_reports_counts_and_signals,
    portal_rows_keep_their_rules,
);

fn raw_on<DB: sqlx::Database>(
    pool: sqlx::Pool<DB>,
) -> impl Fn(&'static str) -> stories::futures_like::BoxFuture + Sync
where
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
{
    move |sql: &'static str| {
        let pool = pool.clone();
        Box::pin(async move {
            sqlx::query::<DB>(sql).execute(&pool).await.unwrap();
        })
    }
}

#[tokio::test]
async fn the_audit_chain_finds_changed_removed_and_cut_entries_on_sqlite() {
    let h = sqlite().await;
    let path = h._dir.as_ref().unwrap().0.join("test.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    stories::the_audit_chain_finds_changed_removed_and_cut_entries(&*h.store, &raw_on(pool)).await;
    h.finish().await;
}

#[tokio::test]
async fn the_audit_chain_finds_changed_removed_and_cut_entries_on_postgres() {
    let Some(h) = postgres().await else {
        eprintln!("DHP_TEST_POSTGRES_URL not set: PostgreSQL story skipped");
        return;
    };
    let (admin_url, name) = h.cleanup.clone().unwrap();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    let pool = sqlx::PgPool::connect(&format!("{base}/{name}"))
        .await
        .unwrap();
    stories::the_audit_chain_finds_changed_removed_and_cut_entries(
        &*h.store,
        &raw_on(pool.clone()),
    )
    .await;
    pool.close().await;
    h.finish().await;
}
