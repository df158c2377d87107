//! A server killed with SIGKILL under concurrent load, then restarted on the same data:
//! the ledger still balances, no call is charged twice, every usage record has exactly its
//! transfers — and with sync durability, every call a client saw complete is charged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use harness::{Db, Server, account, call, echo_upstream, publish_and_install, runtime, tool_call};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Whether a body is a whole JSON-RPC result.
fn whole_answer(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body).is_ok_and(|v| v.get("result").is_some())
}

/// Loads a server with `threads` clients for `for_how_long`, then kills it; returns the
/// request ids of the calls that were answered 200, each with how long before the kill its
/// answer arrived.
fn load_then_kill(server: Server, key: &str, threads: usize, for_how_long: Duration) -> Vec<(String, Duration)> {
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(Mutex::new(Vec::new()));
    let next_id = Arc::new(AtomicU64::new(1));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, answered, next_id) = (stop.clone(), answered.clone(), next_id.clone());
            let (url, key) = (server.url.clone(), key.to_string());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let id = next_id.fetch_add(1, Ordering::SeqCst);
                    match call(&url, &key, "crashy", &tool_call(id, "work", json!({"text": "load"}))) {
                        // Answered: the whole answer arrived (a connection cut by the kill
                        // can leave a 200 without its body, which no client takes as an answer).
                        Some(reply) if reply.status == 200 && whole_answer(&reply.body) => {
                            let id = reply.header("x-request-id").unwrap().to_string();
                            answered.lock().unwrap().push((id, Instant::now()));
                        }
                        Some(reply) if reply.status == 200 => {}
                        Some(reply) => assert!(reply.status == 200, "unexpected {}: {}", reply.status, reply.body),
                        None => {}
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(for_how_long);
    let killed = Instant::now();
    server.kill();
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.join().unwrap();
    }
    let answered: Vec<(String, Instant)> = Arc::try_unwrap(answered).unwrap().into_inner().unwrap();
    answered.into_iter().map(|(id, at)| (id, killed.saturating_duration_since(at))).collect()
}

fn crash_and_recover(durability: &str) {
    let db = Db::from_env(&format!("crash-{durability}"));
    let (_upstream_runtime, upstream) = echo_upstream();
    let flags = [
        "--billing-durability",
        durability,
        "--rate-limit-minute",
        "0",
        "--rate-limit-hour",
        "0",
        "--rate-limit-day",
        "0",
    ];
    let server = db.serve(&flags);
    let publisher = account(&server.url, "publisher@example.com");
    let consumer = account(&server.url, "consumer@example.com");
    let functions = json!([{"name": "work", "pricing": {"model": "per_request", "price": "0.0001"}, "free_calls": 0, "free_reset": "lifetime"}]);
    let key = publish_and_install(&server.url, &publisher, &consumer, "crashy", &format!("{upstream}/mcp"), functions);

    let answered = load_then_kill(server, &key, 8, Duration::from_millis(3000));
    assert!(answered.len() > 50, "the load was real: {} calls answered", answered.len());

    // Restart on the same data: it must come up, and the ledger must be whole.
    let server = db.serve(&flags);
    runtime().block_on(async {
        let store = db.open().await;
        let (sum, consistent) = store.ledger_audit().await.unwrap();
        assert_eq!((sum, consistent), (0, true), "the ledger balances after the crash");
        let audit = store.settlement_audit().await.unwrap();
        assert_eq!(audit.mismatched, 0, "every usage record has exactly its transfers: {audit:?}");
        assert_eq!(audit.orphans, 0, "no charge without its usage record: {audit:?}");
        assert!(audit.charged > 0 && audit.charged == audit.records, "{audit:?}");
        if durability == "sync" {
            for (id, _) in &answered {
                let (record, transfer) = store
                    .usage_record(id)
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("call {id} was answered but not recorded"));
                assert!(record.cost.0 == 100_000 && transfer.is_some(), "call {id} was answered but not charged");
            }
        } else {
            // Async: only calls answered just before the kill may be uncharged — the last
            // write window, and never further back than the gateway lets the writer fall
            // behind (200 ms; past that, a call's last bytes wait for its commit). A second
            // is a generous bound for a debug build on a busy machine.
            let recorded = audit.records as usize;
            assert!(recorded <= answered.len() + 8, "recorded {recorded} of {} answered", answered.len());
            let (mut uncharged, mut latest) = (0, Duration::ZERO);
            for (id, before_kill) in &answered {
                match store.usage_record(id).await.unwrap() {
                    Some((record, transfer)) => {
                        assert!(record.cost.0 == 100_000 && transfer.is_some(), "call {id} recorded but not charged")
                    }
                    None => {
                        uncharged += 1;
                        latest = latest.max(*before_kill);
                    }
                }
            }
            println!(
                "{uncharged} of {} answered calls were uncharged after the crash, the earliest answered {latest:?} before it",
                answered.len()
            );
            assert!(latest < Duration::from_secs(1), "a call answered {latest:?} before the crash went uncharged");
        }
        // The dead replica's credit lease is released by the sweeper once it expires.
        let expired = store.expire_holds(tollgate_domain::time::now_ms() + 3_600_000).await.unwrap();
        assert!(expired <= 1, "one lease at most");
        let (sum, consistent) = store.ledger_audit().await.unwrap();
        assert_eq!((sum, consistent), (0, true));
        store.close().await;
    });
    // The restarted server serves and bills again.
    let reply = call(&server.url, &key, "crashy", &tool_call(1, "work", json!({"text": "after"}))).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    server.stop();
}

#[test]
fn a_killed_server_keeps_the_ledger_whole_with_group_commit() {
    crash_and_recover("async");
}

#[test]
fn a_killed_server_has_charged_every_answered_call_with_sync_durability() {
    crash_and_recover("sync");
}
