//! Connecting, migrating and the two pools.

use crate::{Result, StoreError};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::str::FromStr;
use std::time::Duration;

/// Which database a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database. Reads go to `read`; every write goes to `write`. On SQLite `write` is a
/// single connection, so writers queue in-process instead of failing with `SQLITE_BUSY`,
/// and WAL lets readers run beside it. On PostgreSQL both are the same pool.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) read: AnyPool,
    pub(crate) write: AnyPool,
    backend: Backend,
    /// The URL connected to (for the PostgreSQL change listener).
    pub(crate) url: Option<String>,
    /// The PostgreSQL schema, when isolated in one.
    pub(crate) schema: Option<String>,
    pub(crate) hooks: crate::changes::Hooks,
}

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// The advisory lock key that serializes migrations on PostgreSQL.
const MIGRATION_LOCK: i64 = 0x746f_6c6c_6761_7465;

/// The embedded migrations, in order. See `migrations/README.md`.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sqlite: include_str!("../migrations/0001_foundation.sql"),
        postgres: include_str!("../migrations/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "gateway",
        sqlite: include_str!("../migrations/0002_gateway.sql"),
        postgres: include_str!("../migrations/0002_gateway.sql"),
    },
    Migration {
        version: 3,
        name: "refusals",
        sqlite: include_str!("../migrations/0003_refusals.sql"),
        postgres: include_str!("../migrations/0003_refusals.sql"),
    },
    Migration {
        version: 4,
        name: "payments",
        sqlite: include_str!("../migrations/0004_payments.sqlite.sql"),
        postgres: include_str!("../migrations/0004_payments.postgres.sql"),
    },
    Migration {
        version: 5,
        name: "throttles",
        sqlite: include_str!("../migrations/0005_throttles.sql"),
        postgres: include_str!("../migrations/0005_throttles.sql"),
    },
];

type ConnectFuture<'c> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), sqlx::Error>> + Send + 'c>>;

/// Per-connection SQLite settings: WAL, foreign keys, a busy timeout for other processes
/// (`tollgate admin` beside a running server).
fn sqlite_pragmas(conn: &mut sqlx::AnyConnection, _: sqlx::pool::PoolConnectionMetadata) -> ConnectFuture<'_> {
    Box::pin(async move {
        conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA wal_autocheckpoint = 0;")
            .await?;
        Ok(())
    })
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Checkpoints the WAL from a reading connection every [`CHECKPOINT_EVERY`], for as long as
/// `pool` is open. SQLite would otherwise checkpoint inside the commit that crosses its
/// threshold, on the one write connection, while the gateway's writer and the calls behind
/// it wait; a passive checkpoint here runs beside the writer instead (the connections turn
/// automatic checkpoints off). Outside a Tokio runtime there is none: the last connection
/// to close checkpoints.
fn checkpoint_beside_the_writer(pool: &sqlx::AnyPool) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    let pool = pool.clone();
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                return;
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
                tracing::debug!(error = %e, "WAL checkpoint failed; trying again later");
            }
        }
    });
}

impl Store {
    /// How many migrations this build embeds.
    pub const EMBEDDED_MIGRATIONS: usize = MIGRATIONS.len();

    /// Connects to `url` (`sqlite://path` or `postgres://…`) without migrating.
    pub async fn connect(url: &str) -> Result<Store> {
        Self::connect_in_schema(url, None).await
    }

    /// Connects to PostgreSQL with every connection's `search_path` set to `schema`
    /// (created if missing): isolated databases for tests. Ignored on SQLite.
    pub async fn connect_in_schema(url: &str, schema: Option<&str>) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::Database(sqlx::Error::Configuration(
                "the database URL must start with sqlite:// or postgres://".into(),
            )));
        };
        let options = AnyConnectOptions::from_str(url)?;
        match backend {
            Backend::Sqlite => {
                let pragmas = sqlite_pragmas;
                let write = AnyPoolOptions::new()
                    .max_connections(1)
                    .after_connect(pragmas)
                    .connect_with(options.clone())
                    .await?;
                let read =
                    AnyPoolOptions::new().max_connections(8).after_connect(pragmas).connect_with(options).await?;
                checkpoint_beside_the_writer(&read);
                Ok(Store { read, write, backend, url: None, schema: None, hooks: crate::changes::Hooks::default() })
            }
            Backend::Postgres => {
                if let Some(schema) = schema {
                    if !schema.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                        return Err(StoreError::Database(sqlx::Error::Configuration("bad schema name".into())));
                    }
                    let admin = AnyPoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
                    // A schema name cannot be bound; it was checked to be [A-Za-z0-9_] above.
                    admin.execute(format!("CREATE SCHEMA IF NOT EXISTS {schema}").as_str()).await?;
                    admin.close().await;
                }
                // The application name lets tests find (and end) a schema's connections.
                let search_path = schema.map(|s| format!("SET search_path TO {s}; SET application_name TO '{s}'"));
                let pool = AnyPoolOptions::new()
                    .max_connections(20)
                    .acquire_timeout(Duration::from_secs(10))
                    .after_connect(move |conn, _| {
                        let search_path = search_path.clone();
                        Box::pin(async move {
                            if let Some(sql) = search_path {
                                conn.execute(sql.as_str()).await?;
                            }
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?;
                Ok(Store {
                    read: pool.clone(),
                    write: pool,
                    backend,
                    url: Some(url.to_string()),
                    schema: schema.map(str::to_string),
                    hooks: crate::changes::Hooks::default(),
                })
            }
        }
    }

    /// Begins a write transaction, cancel-safely: the `BEGIN` runs on a task of its own, so
    /// a caller dropped mid-way (a client that hung up) cannot leave a pooled connection
    /// inside a transaction nobody ends — sqlx's own `begin` can, on PostgreSQL, and the
    /// next borrower's statements would then run in it and never commit. If the caller is
    /// gone when `BEGIN` completes, the transaction is dropped and rolled back.
    pub(crate) async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let pool = self.write.clone();
        match tokio::spawn(async move { pool.begin().await }).await {
            Ok(tx) => Ok(tx?),
            Err(e) => {
                tracing::error!(error = %e, "beginning a transaction failed");
                Err(StoreError::Database(sqlx::Error::WorkerCrashed))
            }
        }
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies every embedded migration not yet applied. Returns how many ran. Replicas
    /// that start together take turns: on PostgreSQL an advisory lock serializes whole
    /// runs; on SQLite each migration runs in a `BEGIN IMMEDIATE` transaction (the file's
    /// write lock) that checks again, inside it, whether another process applied it first.
    pub async fn migrate(&self) -> Result<usize> {
        self.migrate_until(i64::MAX).await
    }

    /// Applies the embedded migrations up to version `last` (as [`Store::migrate`] does
    /// for all): for tests of what a migration does to data written before it.
    pub async fn migrate_until(&self, last: i64) -> Result<usize> {
        let mut conn = self.write.acquire().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_lock($1)").bind(MIGRATION_LOCK).execute(&mut *conn).await?;
        }
        let result = self.migrate_on(&mut conn, last).await;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_unlock($1)").bind(MIGRATION_LOCK).execute(&mut *conn).await?;
        }
        result
    }

    async fn migrate_on(&self, conn: &mut sqlx::AnyConnection, last: i64) -> Result<usize> {
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL, checksum TEXT)",
        )
        .await?;
        // Databases made before checksums were recorded get the column.
        if sqlx::query("SELECT checksum FROM schema_migrations WHERE version = 0")
            .fetch_optional(&mut *conn)
            .await
            .is_err()
        {
            conn.execute("ALTER TABLE schema_migrations ADD COLUMN checksum TEXT").await?;
        }
        let mut applied = 0;
        for m in MIGRATIONS.iter().take_while(|m| m.version <= last) {
            let fail = |e| StoreError::Migration(format!("{:04}_{}", m.version, m.name), e);
            let sql = match self.backend {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
            };
            let checksum = tollgate_domain::secret::sha256_hex(sql.as_bytes());
            // SQLite: `BEGIN IMMEDIATE` takes the write lock now (waiting up to the busy
            // timeout), so the check below and the migration see the same database. A plain
            // `BEGIN` would read first, and two processes could both see "not applied".
            let mut tx = match self.backend {
                Backend::Sqlite => sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?,
                Backend::Postgres => sqlx::Connection::begin(&mut *conn).await?,
            };
            let done: Option<Option<String>> =
                sqlx::query_scalar("SELECT checksum FROM schema_migrations WHERE version = $1")
                    .bind(m.version)
                    .fetch_optional(&mut *tx)
                    .await?;
            match done {
                // Applied from other SQL than this build embeds: a released migration was
                // edited. Refuse rather than run on a schema nobody can describe.
                Some(Some(recorded)) if recorded != checksum => {
                    return Err(StoreError::Corrupt(format!(
                        "migration {:04}_{} was applied from different SQL than this build embeds; \
                         applied migrations must never be edited (add a new one)",
                        m.version, m.name
                    )));
                }
                Some(Some(_)) => {
                    tx.rollback().await?;
                    continue;
                }
                // Applied before checksums were recorded: record this one.
                Some(None) => {
                    sqlx::query("UPDATE schema_migrations SET checksum = $1 WHERE version = $2")
                        .bind(&checksum)
                        .bind(m.version)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    continue;
                }
                None => {}
            }
            tx.execute(sql).await.map_err(fail)?;
            sqlx::query("INSERT INTO schema_migrations (version, name, applied_at, checksum) VALUES ($1, $2, $3, $4)")
                .bind(m.version)
                .bind(m.name)
                .bind(tollgate_domain::time::now_ms())
                .bind(&checksum)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
            tx.commit().await.map_err(fail)?;
            tracing::info!(migration.version = m.version, migration.name = m.name, "applied migration");
            applied += 1;
        }
        Ok(applied)
    }

    /// Drops a PostgreSQL schema made by [`Store::connect_in_schema`] (tests only).
    #[cfg(feature = "testing")]
    pub async fn drop_schema_for_tests(&self, schema: &str) -> Result<()> {
        if !schema.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(StoreError::Database(sqlx::Error::Configuration("bad schema name".into())));
        }
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()")
            .bind(schema)
            .execute(&self.write)
            .await?;
        self.write.execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE").as_str()).await?;
        Ok(())
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    /// Closes both pools.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}
