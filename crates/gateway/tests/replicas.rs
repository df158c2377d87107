//! Two gateway replicas on one PostgreSQL database (and Redis, when given): a key revoked
//! or a version retired on one is refused on the other within a second, credit is never
//! overspent between them, and Redis-backed rate limits are shared.
//!
//! Replicas need PostgreSQL (SQLite is one process's file): on SQLite these tests say so
//! and pass; `.ci/run` runs the suite again on PostgreSQL and Redis, where they run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{World, inspector, serve, tool_call};
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tollgate_gateway::ratelimit::{MemoryRateLimiter, RateLimiter, RedisRateLimiter};
use tollgate_gateway::{Gateway, SharedCounters};
use tollgate_store::Store;

/// A second replica of `world`'s gateway: its own store connection (and change listener)
/// on the same schema, its own caches and credit lease. Returns its base URL.
async fn second_replica(
    world: &World,
    limiter: Arc<dyn RateLimiter>,
    shared: Option<SharedCounters>,
) -> (Gateway, String) {
    let store = Store::connect_in_schema(&world.store.url, world.store.schema()).await.unwrap();
    store.listen_for_changes().await.unwrap();
    let gateway = Gateway::start(store, world.sealer.clone(), limiter, shared, world.config.clone()).unwrap();
    let base = serve(gateway.router()).await;
    (gateway, base)
}

fn on_postgres(test: &str) -> bool {
    if tollgate_store::testing::postgres_url().is_none() {
        println!("{test}: replicas need PostgreSQL; this runs in the PostgreSQL pass (TOLLGATE_TEST_POSTGRES_URL)");
        return false;
    }
    true
}

async fn call(world: &World, base: &str, key: &str, agent: &str, id: i64) -> u16 {
    world
        .http
        .post(format!("{base}/{agent}/mcp"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(tool_call(id, "work", json!({})))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn ok(_: &str) -> (u16, &'static str, String) {
    (200, "application/json", json!({"jsonrpc": "2.0", "id": 1, "result": {"content": []}}).to_string())
}

fn priced() -> serde_json::Value {
    json!([{"name": "work", "pricing": {"model": "per_request", "price": "0.001"}, "free_calls": 0, "free_reset": "lifetime"}])
}

/// Polls `check` until it is true, for at most `within`; returns how long it took.
async fn eventually(within: Duration, mut check: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revocation_on_one_replica_is_refused_on_the_other_within_a_second() {
    if !on_postgres("a_revocation_on_one_replica_is_refused_on_the_other_within_a_second") {
        return;
    }
    let world = World::new().await;
    world.store.listen_for_changes().await.unwrap();
    let (upstream, _) = inspector(ok).await;
    let (_replica, other) = second_replica(&world, Arc::new(MemoryRateLimiter::new()), None).await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let (inst, key_id, key) =
        world.listed(&publisher, &consumer, "work", &format!("{upstream}/mcp"), "0", priced()).await;
    assert_eq!(
        call(&world, &other, &key, "work/1.0.0", 1).await,
        200,
        "the other replica serves the key (and caches it)"
    );

    world.api(Method::DELETE, &format!("/api/v1/keys/{key_id}"), None, &consumer.token).await;
    let took =
        eventually(Duration::from_secs(1), async || call(&world, &other, &key, "work/1.0.0", 2).await == 403).await;
    assert!(took.is_some(), "the revoked key still worked on the other replica after a second");
    println!("revocation reached the other replica in {took:?}");

    // Uninstalling revokes every key; retiring a version answers 410 everywhere.
    let (status, second) = world
        .api(Method::POST, &format!("/api/v1/installations/{inst}/keys"), Some(json!({"name": "2"})), &consumer.token)
        .await;
    assert_eq!(status, 201);
    let second = second["key"].as_str().unwrap().to_string();
    assert_eq!(call(&world, &other, &second, "work/1.0.0", 3).await, 200);
    // An org's own rate limit, set through this replica, holds on the other within a second.
    let path = format!("/api/v1/orgs/{}/rate-limits", consumer.org_id);
    let (status, _) = world.api(Method::PUT, &path, Some(json!({"minute": 1})), &consumer.token).await;
    assert_eq!(status, 200);
    let limited =
        eventually(Duration::from_secs(1), async || call(&world, &other, &second, "work/1.0.0", 5).await == 429).await;
    assert!(limited.is_some(), "the org's new rate limit did not reach the other replica within a second");
    world
        .api(Method::PATCH, "/api/v1/agents/work/versions/1.0.0", Some(json!({"status": "retired"})), &publisher.token)
        .await;
    let retired =
        eventually(Duration::from_secs(1), async || call(&world, &other, &second, "work/1.0.0", 4).await == 410).await;
    assert!(retired.is_some(), "the retired version still answered on the other replica after a second");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_never_spend_more_than_the_balance_between_them() {
    if !on_postgres("replicas_never_spend_more_than_the_balance_between_them") {
        return;
    }
    let world = World::with(|c| c.rate_limits = [0, 0, 0]).await;
    let (upstream, _) = inspector(ok).await;
    let (replica, other) = second_replica(&world, Arc::new(MemoryRateLimiter::new()), None).await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let (_, _, key) = world.listed(&publisher, &consumer, "work", &format!("{upstream}/mcp"), "0", priced()).await;
    world.set_balance(&consumer, 40_000_000).await;

    let mut tasks = Vec::new();
    for i in 0..100 {
        let base = if i % 2 == 0 { world.base.clone() } else { other.clone() };
        let (http, key) = (world.http.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            http.post(format!("{base}/work/1.0.0/mcp"))
                .bearer_auth(&key)
                .header("content-type", "application/json")
                .body(tool_call(i, "work", json!({})))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert!(statuses.iter().all(|s| *s == 200 || *s == 402), "{statuses:?}");
    assert!(ok <= 40, "{ok} calls of 0.001 were admitted on a balance of 0.040");
    replica.shutdown().await;
    world.gateway.shutdown().await;
    let org =
        world.store.ledger_account(tollgate_store::ledger::AccountKind::OrgCredit, &consumer.org_id).await.unwrap();
    assert_eq!(org.balance.0, 40_000_000 - ok as i64 * 1_000_000, "each admitted call was charged once");
    assert!(org.balance.0 >= 0 && org.pending.0 == 0);
    world.assert_ledger_balances().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_rate_limits_are_shared_by_replicas() {
    if !on_postgres("redis_rate_limits_are_shared_by_replicas") {
        return;
    }
    let Some(redis) = std::env::var("TOLLGATE_TEST_REDIS_URL").ok().filter(|u| !u.is_empty()) else {
        assert!(std::env::var("CI").is_err(), "CI runs the PostgreSQL pass with TOLLGATE_TEST_REDIS_URL");
        println!("redis_rate_limits_are_shared_by_replicas: set TOLLGATE_TEST_REDIS_URL to run it");
        return;
    };
    let world = World::with(|c| c.rate_limits = [5, 0, 0]).await;
    let limiter: Arc<dyn RateLimiter> = Arc::new(RedisRateLimiter::connect(&redis).await.unwrap());
    let (upstream, _) = inspector(ok).await;
    // Both replicas on Redis: the first one is rebuilt with the shared limiter.
    let (_a, first) =
        second_replica(&world, limiter.clone(), Some(SharedCounters::connect(&redis).await.unwrap())).await;
    let (_b, second) = second_replica(&world, limiter, Some(SharedCounters::connect(&redis).await.unwrap())).await;
    let publisher = world.person("p@example.com").await;
    let consumer = world
        .person(&format!("c-{}@example.com", tollgate_domain::secret::random_token(8).unwrap().to_lowercase()))
        .await;
    let (_, _, key) = world.listed(&publisher, &consumer, "work", &format!("{upstream}/mcp"), "0", priced()).await;
    let mut statuses = Vec::new();
    for i in 0..10 {
        let base = if i % 2 == 0 { &first } else { &second };
        statuses.push(call(&world, base, &key, "work/1.0.0", i).await);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 5, "five a minute across both replicas: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_daily_limits_and_free_calls_are_shared_by_replicas() {
    if !on_postgres("redis_daily_limits_and_free_calls_are_shared_by_replicas") {
        return;
    }
    let Some(redis) = std::env::var("TOLLGATE_TEST_REDIS_URL").ok().filter(|u| !u.is_empty()) else {
        assert!(std::env::var("CI").is_err(), "CI runs the PostgreSQL pass with TOLLGATE_TEST_REDIS_URL");
        println!("redis_daily_limits_and_free_calls_are_shared_by_replicas: set TOLLGATE_TEST_REDIS_URL to run it");
        return;
    };
    let world = World::with(|c| c.rate_limits = [0, 0, 0]).await;
    let limiter: Arc<dyn RateLimiter> = Arc::new(RedisRateLimiter::connect(&redis).await.unwrap());
    let (upstream, _) = inspector(ok).await;
    let (_a, first) =
        second_replica(&world, limiter.clone(), Some(SharedCounters::connect(&redis).await.unwrap())).await;
    let (_b, second) = second_replica(&world, limiter, Some(SharedCounters::connect(&redis).await.unwrap())).await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let functions = json!([{"name": "work", "pricing": {"model": "per_request", "price": "0.001"}, "free_calls": 3, "free_reset": "monthly"}]);
    let (inst, _, key) = world.listed(&publisher, &consumer, "work", &format!("{upstream}/mcp"), "0", functions).await;
    let before = world.balance(&consumer).await;
    // Free calls: three for the org, whichever replica serves them.
    for i in 0..6 {
        let base = if i % 2 == 0 { &first } else { &second };
        assert_eq!(call(&world, base, &key, "work/1.0.0", i).await, 200);
    }
    let (store_a, store_b) = (_a, _b);
    store_a.flush().await;
    store_b.flush().await;
    assert_eq!(before - world.balance(&consumer).await, 3 * 1_000_000, "three free calls, three paid, across replicas");

    // A key's daily limit of four requests, across replicas.
    let (status, limited) = world
        .api(Method::POST, &format!("/api/v1/installations/{inst}/keys"), Some(json!({"name": "limited", "daily_limits": {"requests": 4, "input_tokens": 0, "output_tokens": 0, "cache_tokens": 0}})), &consumer.token)
        .await;
    assert_eq!(status, 201);
    let limited = limited["key"].as_str().unwrap();
    let mut statuses = Vec::new();
    for i in 0..8 {
        let base = if i % 2 == 0 { &first } else { &second };
        statuses.push(call(&world, base, limited, "work/1.0.0", i).await);
    }
    assert_eq!(statuses, vec![200, 200, 200, 200, 429, 429, 429, 429], "four a day across both replicas");
}
