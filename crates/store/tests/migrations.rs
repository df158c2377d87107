//! Migrations: idempotent, and safe when replicas start together.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tollgate_store::Store;
use tollgate_store::testing::TestStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_migrating_at_once_apply_each_migration_once() {
    let base = TestStore::new().await.unwrap();
    // Several rounds, each with three "replicas" of a fresh database (a new schema on
    // PostgreSQL, a new file on SQLite) migrating at the same moment: one round alone
    // loses the race only now and then.
    for round in 0..4 {
        let suffix = tollgate_domain::secret::random_token(10).unwrap().to_ascii_lowercase();
        let schema = base.schema().map(|_| format!("m_{suffix}"));
        let url = if schema.is_some() {
            base.url.clone()
        } else {
            base.url.replace("tollgate.db", &format!("replicas-{round}.db"))
        };
        let mut replicas = Vec::new();
        for _ in 0..3 {
            replicas.push(Store::connect_in_schema(&url, schema.as_deref()).await.unwrap());
        }
        let (ra, rb, rc) = tokio::join!(replicas[0].migrate(), replicas[1].migrate(), replicas[2].migrate());
        let (ra, rb, rc) = (ra.unwrap(), rb.unwrap(), rc.unwrap());
        assert_eq!(ra + rb + rc, Store::EMBEDDED_MIGRATIONS, "each migration ran exactly once ({ra} + {rb} + {rc})");
        assert_eq!(replicas[0].migrate().await.unwrap(), 0);
        replicas[0].ping().await.unwrap();
        for replica in replicas {
            replica.close().await;
        }
        if let Some(schema) = schema {
            let admin = Store::connect(&base.url).await.unwrap();
            admin.drop_schema_for_tests(&schema).await.unwrap();
            admin.close().await;
        }
    }
}

/// A fresh SQLite store in a temporary directory, whatever the test backend is.
async fn sqlite_store() -> (Store, String, std::path::PathBuf) {
    let suffix = tollgate_domain::secret::random_token(10).unwrap().to_ascii_lowercase();
    let dir = std::env::temp_dir().join(format!("tollgate-wal-{suffix}"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("tollgate.db").display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    (store, url, dir)
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode() {
    let (store, url, dir) = sqlite_store().await;
    // WAL is a property of the database file: a plain connection that sets nothing sees it.
    sqlx::any::install_default_drivers();
    let plain = sqlx::AnyPool::connect(&url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&plain).await.unwrap();
    assert_eq!(mode.to_ascii_lowercase(), "wal");
    plain.close().await;
    store.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// `(version, name)` of every file in `migrations/`: `NNNN_name.sql`, or a pair
/// `NNNN_name.sqlite.sql` / `NNNN_name.postgres.sql`.
fn migration_files() -> Vec<(i64, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut found = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        let Some(stem) = file.strip_suffix(".sql") else {
            assert_eq!(file, "README.md", "unexpected file in migrations/");
            continue;
        };
        let stem = stem.strip_suffix(".sqlite").or_else(|| stem.strip_suffix(".postgres")).unwrap_or(stem);
        let (version, name) = stem.split_once('_').unwrap_or_else(|| panic!("{file}: not NNNN_name.sql"));
        assert_eq!(version.len(), 4, "{file}: the version has four digits");
        found.insert((version.parse::<i64>().unwrap_or_else(|_| panic!("{file}: bad version")), name.to_string()));
    }
    found.into_iter().collect()
}

#[tokio::test]
async fn every_migration_file_is_embedded_and_applied() {
    let files = migration_files();
    let versions: Vec<i64> = files.iter().map(|(v, _)| *v).collect();
    // Numbers are reserved by the change that needs one, so a branch may lack a number
    // another branch holds: versions only have to start at 1 and rise, once each.
    assert_eq!(versions.first(), Some(&1), "versions start at 1");
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "one file (or pair) per version: {versions:?}");

    let store = TestStore::new().await.unwrap();
    sqlx::any::install_default_drivers();
    let plain = sqlx::AnyPool::connect(&store.url).await.unwrap();
    // The schema name was made by the test harness from [a-z0-9_].
    let table = store.schema().map_or("schema_migrations".to_string(), |s| format!("{s}.schema_migrations"));
    let rows =
        sqlx::query(&format!("SELECT version, name FROM {table} ORDER BY version")).fetch_all(&plain).await.unwrap();
    use sqlx::Row;
    let applied: Vec<(i64, String)> = rows.iter().map(|r| (r.get("version"), r.get("name"))).collect();
    assert_eq!(applied, files, "schema_migrations lists exactly the files in migrations/");
    plain.close().await;
}

#[tokio::test]
async fn an_applied_migration_whose_sql_changed_is_refused_and_old_records_get_checksums() {
    let (store, url, dir) = sqlite_store().await;
    sqlx::any::install_default_drivers();
    let plain = sqlx::AnyPool::connect(&url).await.unwrap();
    let recorded = || async {
        let rows: Vec<(i64, Option<String>)> =
            sqlx::query_as("SELECT version, checksum FROM schema_migrations ORDER BY version")
                .fetch_all(&plain)
                .await
                .unwrap();
        rows
    };
    let first = recorded().await;
    assert_eq!(first.len(), Store::EMBEDDED_MIGRATIONS);
    assert!(first.iter().all(|(_, c)| c.as_deref().is_some_and(|c| c.len() == 64)), "{first:?}");

    // A database migrated before checksums were recorded (no column, then an empty one):
    // they are filled in, nothing re-runs.
    sqlx::query("ALTER TABLE schema_migrations DROP COLUMN checksum").execute(&plain).await.unwrap();
    assert_eq!(store.migrate().await.unwrap(), 0);
    assert_eq!(recorded().await, first);
    sqlx::query("UPDATE schema_migrations SET checksum = NULL").execute(&plain).await.unwrap();
    assert_eq!(store.migrate().await.unwrap(), 0);
    assert_eq!(recorded().await, first);

    // The SQL of an applied migration differs from what this build embeds: refused.
    sqlx::query("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1").execute(&plain).await.unwrap();
    let refused = store.migrate().await.unwrap_err().to_string();
    assert!(refused.contains("0001_foundation") && refused.contains("never be edited"), "{refused}");
    plain.close().await;
    store.close().await;
    let _ = std::fs::remove_dir_all(dir);
}
