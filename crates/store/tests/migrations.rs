//! Migrations: idempotent, and safe when replicas start together.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tollgate_store::Store;
use tollgate_store::testing::TestStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_migrating_at_once_apply_each_migration_once() {
    let base = TestStore::new().await.unwrap();
    // A second and third "replica" on the same database (a fresh schema on PostgreSQL,
    // the same file on SQLite), migrating at the same moment.
    let schema = format!("m_{}", tollgate_domain::secret::random_token(10).unwrap().to_ascii_lowercase());
    let schema = base.schema().map(|_| schema);
    let url = if schema.is_some() { base.url.clone() } else { base.url.replace("tollgate.db", "replicas.db") };
    let a = Store::connect_in_schema(&url, schema.as_deref()).await.unwrap();
    let b = Store::connect_in_schema(&url, schema.as_deref()).await.unwrap();
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra + rb, Store::EMBEDDED_MIGRATIONS, "each migration ran exactly once ({ra} + {rb})");
    assert_eq!(a.migrate().await.unwrap(), 0);
    a.ping().await.unwrap();
    a.close().await;
    b.close().await;
    if let Some(schema) = schema {
        let admin = Store::connect(&base.url).await.unwrap();
        admin.drop_schema_for_tests(&schema).await.unwrap();
        admin.close().await;
    }
}
