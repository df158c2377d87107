//! Cancelled writes leave no connection behind inside a transaction: a caller dropped at
//! any point (a client that hung up, a timeout) must not make later writes on the same
//! pooled connection run in a transaction that is never committed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tollgate_domain::Nanos;
use tollgate_store::Store;
use tollgate_store::ledger::{AccountKind, NewTransfer, PLATFORM};
use tollgate_store::testing::TestStore;

/// Polls `future` until it has been pending `waits` times (or is done), then drops it.
async fn poll_then_drop<F: std::future::Future>(future: F, waits: usize) {
    let mut future = std::pin::pin!(future);
    let mut pending = 0;
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        std::task::Poll::Ready(_) => std::task::Poll::Ready(()),
        std::task::Poll::Pending => {
            pending += 1;
            if pending >= waits { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_after_cancelled_writes_are_committed() {
    let store = TestStore::new().await.unwrap();
    let grants = store.ledger_account(AccountKind::Grants, PLATFORM).await.unwrap();
    let org = store.ledger_account(AccountKind::OrgCredit, "org_cancel").await.unwrap();
    fn transfer<'a>(key: &'a str, from: &'a str, to: &'a str) -> NewTransfer<'a> {
        NewTransfer {
            idempotency_key: key,
            debit_account_id: from,
            credit_account_id: to,
            amount: Nanos(1),
            kind: "grant",
            memo: "",
            allow_overdraft: true,
        }
    }
    // Other connections see what this store writes.
    let other = match store.schema() {
        Some(schema) => Store::connect_in_schema(&store.url, Some(schema)).await.unwrap(),
        None => Store::connect(&store.url).await.unwrap(),
    };
    // Cancel transfers at many points of their round trips — each is polled until it has
    // waited `n` times, then dropped — and after each, write outside any transaction on
    // every pooled connection: a connection left inside a transaction would hide those
    // writes from everyone else.
    for i in 0..48usize {
        let key = format!("cancelled-{i}");
        poll_then_drop(store.transfer(&transfer(&key, &grants.id, &org.id)), 1 + i % 12).await;
        for j in 0..24 {
            let owner = format!("org_{i}_{j}");
            store.ledger_account(AccountKind::OrgCredit, &owner).await.unwrap();
            let seen = other.find_ledger_account(AccountKind::OrgCredit, &owner).await.unwrap();
            assert!(seen.is_some(), "a write after cancelled transfer {i} is not visible to other connections");
        }
    }
    // Then write for real: every one of these must be committed.
    for i in 0..100 {
        store.transfer(&transfer(&format!("kept-{i}"), &grants.id, &org.id)).await.unwrap();
    }
    // Seen from other connections.
    let transfers = other.account_transfers(&org.id, 1000, 0).await.unwrap();
    let kept = transfers.iter().filter(|t| t.idempotency_key.starts_with("kept-")).count();
    assert_eq!(kept, 100, "every write after the cancelled ones is committed");
    let (sum, consistent) = other.ledger_audit().await.unwrap();
    assert_eq!((sum, consistent), (0, true));
    other.close().await;
}
