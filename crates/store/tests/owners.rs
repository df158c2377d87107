//! A team never loses its last owner, even when its owners demote or remove each other at
//! the same moment (on PostgreSQL, where transactions run in parallel).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tollgate_domain::Nanos;
use tollgate_domain::catalog::Role;
use tollgate_domain::time::now_ms;
use tollgate_store::testing::TestStore;

/// A team with two owners; answers (team id, first owner, second owner).
async fn two_owners(store: &TestStore, round: usize) -> (String, String, String) {
    let (a, _) = store.create_user(&format!("a{round}@example.com"), "A", "x", Nanos(0)).await.unwrap();
    let (b, _) = store.create_user(&format!("b{round}@example.com"), "B", "x", Nanos(0)).await.unwrap();
    let team = store.create_team(&format!("Team {round}"), &a.id).await.unwrap();
    let token_hash = format!("hash-{round}");
    store.create_invitation(&team.id, &b.email, Role::Owner, &token_hash, &a.id, now_ms() + 60_000).await.unwrap();
    store.accept_invitation(&token_hash, &b.id, &b.email).await.unwrap();
    (team.id, a.id, b.id)
}

async fn owners(store: &TestStore, team: &str) -> usize {
    store.members(team).await.unwrap().iter().filter(|m| m.role == Role::Owner).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_demoting_each_other_at_once_leave_one_owner() {
    let store = TestStore::new().await.unwrap();
    for round in 0..10 {
        let (team, a, b) = two_owners(&store, round).await;
        let (first, second) =
            tokio::join!(store.set_role(&team, &a, Role::Admin), store.set_role(&team, &b, Role::Admin));
        assert_eq!(first.is_ok() as u8 + second.is_ok() as u8, 1, "round {round}: {first:?} {second:?}");
        assert_eq!(owners(&store, &team).await, 1, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_removing_each_other_at_once_leave_one_owner() {
    let store = TestStore::new().await.unwrap();
    for round in 0..10 {
        let (team, a, b) = two_owners(&store, round).await;
        let (first, second) = tokio::join!(store.remove_member(&team, &a), store.remove_member(&team, &b));
        assert_eq!(first.is_ok() as u8 + second.is_ok() as u8, 1, "round {round}: {first:?} {second:?}");
        assert_eq!(owners(&store, &team).await, 1, "round {round}");
        assert_eq!(store.members(&team).await.unwrap().len(), 1, "round {round}");
    }
}
