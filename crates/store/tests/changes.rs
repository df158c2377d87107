//! The change feed across replicas (PostgreSQL): a replica whose listening connection is
//! cut drops every cached copy when it notices, and again once it listens again, so a
//! change whose notification it missed in the gap never waits for a cache to expire.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sqlx::Connection;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tollgate_store::Store;
use tollgate_store::changes::Change;
use tollgate_store::testing::{TestStore, postgres_url};

async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_lost_its_listener_forgets_everything_after_listening_again() {
    let Some(url) = postgres_url() else {
        eprintln!("skipped: the change feed crosses replicas on PostgreSQL only (set TOLLGATE_TEST_POSTGRES_URL)");
        return;
    };
    let replica = TestStore::new().await.unwrap();
    let schema = replica.schema().unwrap().to_string();
    let seen: Arc<Mutex<Vec<Change>>> = Arc::default();
    let log = seen.clone();
    replica.on_change(Arc::new(move |change: &Change| log.lock().unwrap().push(change.clone())));
    replica.listen_for_changes().await.unwrap();
    let other = Store::connect_in_schema(&url, Some(&schema)).await.unwrap();

    // Heard while listening.
    other.set_budget("org_heard", None).await.unwrap();
    let heard = Change::Org("org_heard".into());
    assert!(eventually(Duration::from_secs(2), || seen.lock().unwrap().contains(&heard)).await);

    // Cut the listener's connection from the database side.
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    let pattern = format!("%LISTEN \"tollgate_changes_{schema}\"%");
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()",
    )
    .bind(&pattern)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(cut, vec![true], "one listening connection was cut");

    // Everything is forgotten when the loss is noticed and again after listening resumes.
    let alls = || seen.lock().unwrap().iter().filter(|c| **c == Change::All).count();
    assert!(eventually(Duration::from_secs(5), || alls() >= 2).await, "told twice, got {}", alls());
    let resumed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE query LIKE $1")
        .bind(&pattern)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(resumed >= 1, "the second time comes once the replica listens again");
    // And it hears changes again.
    other.set_budget("org_after", None).await.unwrap();
    let after = Change::Org("org_after".into());
    assert!(eventually(Duration::from_secs(2), || seen.lock().unwrap().contains(&after)).await);
    other.close().await;
}
