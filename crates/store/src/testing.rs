//! Fresh, isolated stores for tests: SQLite in a temporary directory, or a new PostgreSQL
//! schema when `TOLLGATE_TEST_POSTGRES_URL` is set (dropped when the store is dropped).

use crate::{Result, Store};
use std::path::PathBuf;

/// A migrated store that cleans up after itself.
#[derive(Debug)]
pub struct TestStore {
    /// The store.
    pub store: Store,
    /// The URL it was opened with (tests that start the binary reuse it).
    pub url: String,
    schema: Option<String>,
    dir: Option<PathBuf>,
}

impl std::ops::Deref for TestStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

/// The PostgreSQL URL tests should use, if any. In CI (`CI=true`) an unset URL is fine:
/// the suite then runs on SQLite, and `.ci/run` runs it a second time with the URL set.
pub fn postgres_url() -> Option<String> {
    std::env::var("TOLLGATE_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty())
}

impl TestStore {
    /// A fresh, migrated store on the test backend.
    pub async fn new() -> Result<TestStore> {
        let suffix = tollgate_domain::secret::random_token(12)?.to_ascii_lowercase();
        if let Some(base) = postgres_url() {
            let schema = format!("t_{suffix}");
            let store = Store::connect_in_schema(&base, Some(&schema)).await?;
            store.migrate().await?;
            return Ok(TestStore { store, url: base, schema: Some(schema), dir: None });
        }
        let dir = std::env::temp_dir().join(format!("tollgate-test-{suffix}"));
        std::fs::create_dir_all(&dir).map_err(|e| crate::StoreError::Corrupt(e.to_string()))?;
        let url = format!("sqlite://{}?mode=rwc", dir.join("tollgate.db").display());
        let store = Store::connect(&url).await?;
        store.migrate().await?;
        Ok(TestStore { store, url, schema: None, dir: Some(dir) })
    }

    /// The PostgreSQL schema, when on PostgreSQL.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let (Some(schema), Some(url)) = (self.schema.take(), postgres_url()) {
            // Drop the schema on a thread of its own: this may run inside a runtime.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
                rt.block_on(async move {
                    if let Ok(store) = Store::connect(&url).await {
                        // The test's own pool may still hold connections (even in a transaction
                        // whose rollback waits on the blocked test runtime): end them first.
                        let _ = sqlx::query(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                        )
                        .bind(&schema)
                        .execute(&store.write)
                        .await;
                        let _ =
                            sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&store.write).await;
                        store.close().await;
                    }
                });
            })
            .join();
        }
    }
}
