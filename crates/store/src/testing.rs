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

    /// Every value of every table as text, one line per row: what a person with the
    /// database file (or dump) would see. For tests of what is stored at rest.
    pub async fn dump(&self) -> Result<String> {
        dump(&self.store).await
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
                        // whose rollback waits on the blocked test runtime): this ends them first.
                        let _ = store.drop_schema_for_tests(&schema).await;
                        store.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// Every value of every table of `store` (in its schema, on PostgreSQL) as text, one line
/// per row. For tests of what is stored at rest.
pub async fn dump(store: &Store) -> Result<String> {
    use sqlx::{Column, Row};
    let tables: Vec<String> =
        match store.backend() {
            crate::Backend::Postgres => sqlx::query_scalar(
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = current_schema()",
            )
            .fetch_all(&store.read)
            .await?,
            crate::Backend::Sqlite => {
                sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'").fetch_all(&store.read).await?
            }
        };
    let mut out = String::new();
    for table in tables {
        // Table names come from the database's own catalog.
        for row in sqlx::query(&format!("SELECT * FROM {table}")).fetch_all(&store.read).await? {
            out.push_str(&table);
            for (i, column) in row.columns().iter().enumerate() {
                let text = row
                    .try_get::<Option<String>, _>(i)
                    .map(Option::unwrap_or_default)
                    .or_else(|_| row.try_get::<Option<i64>, _>(i).map(|v| v.map(|v| v.to_string()).unwrap_or_default()))
                    .unwrap_or_default();
                out.push_str(&format!(" {}={text}", column.name()));
            }
            out.push('\n');
        }
    }
    Ok(out)
}
