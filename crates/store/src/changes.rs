//! The change feed: what the gateway caches (keys, versions, org settings) is announced when
//! it changes, so every replica drops its stale copy. Within a process the announcement
//! runs the registered hooks right after the change commits, before the call that made it
//! returns (a key revoked through the API is refused by the next request); across replicas
//! on PostgreSQL it is a `NOTIFY` sent in the same transaction (delivered only if the
//! change commits), which each replica's listener hands to the same hooks. If the listener
//! loses its connection, it announces [`Change::All`]: notifications may have been missed.

use crate::{Backend, Result, Store};
use sqlx::AnyConnection;
use std::sync::{Arc, RwLock};

/// Something that changed, as far as cached copies go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A key (by the SHA-256 of its secret) was revoked or its limits changed.
    Key(String),
    /// An installation was uninstalled (and all its keys revoked).
    Installation(String),
    /// A member left an org (and their keys in it were revoked): `(org id, user id)`.
    Member(String, String),
    /// An agent's versions changed (published, deprecated, retired), by agent id.
    Agent(String),
    /// An org's settings changed (budget, rate limits).
    Org(String),
    /// Anything may have changed.
    All,
}

impl Change {
    /// The text sent in a notification.
    pub fn payload(&self) -> String {
        match self {
            Change::Key(hash) => format!("key:{hash}"),
            Change::Installation(id) => format!("installation:{id}"),
            Change::Member(org, user) => format!("member:{org}:{user}"),
            Change::Agent(id) => format!("agent:{id}"),
            Change::Org(id) => format!("org:{id}"),
            Change::All => "all".into(),
        }
    }

    /// Reads a notification's text; anything unreadable means everything may have changed.
    pub fn parse(payload: &str) -> Change {
        let (kind, rest) = payload.split_once(':').unwrap_or((payload, ""));
        match (kind, rest) {
            ("key", hash) if !hash.is_empty() => Change::Key(hash.into()),
            ("installation", id) if !id.is_empty() => Change::Installation(id.into()),
            ("member", pair) => match pair.split_once(':') {
                Some((org, user)) if !org.is_empty() && !user.is_empty() => Change::Member(org.into(), user.into()),
                _ => Change::All,
            },
            ("agent", id) if !id.is_empty() => Change::Agent(id.into()),
            ("org", id) if !id.is_empty() => Change::Org(id.into()),
            _ => Change::All,
        }
    }
}

/// Something to run on each change (it must be quick: it runs on the announcing task).
pub type Hook = Arc<dyn Fn(&Change) + Send + Sync>;

/// The hooks a store runs on each change.
#[derive(Clone, Default)]
pub(crate) struct Hooks(Arc<RwLock<Vec<Hook>>>);

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hooks")
    }
}

impl Hooks {
    fn run(&self, change: &Change) {
        for hook in self.0.read().unwrap_or_else(|p| p.into_inner()).iter() {
            hook(change);
        }
    }
}

impl Store {
    /// Runs `hook` on every change: this process's own (before the call that made it
    /// returns), and on PostgreSQL other replicas' too once [`Store::listen_for_changes`]
    /// runs.
    pub fn on_change(&self, hook: Hook) {
        self.hooks.0.write().unwrap_or_else(|p| p.into_inner()).push(hook);
    }

    /// The PostgreSQL channel this store's changes are announced on (one per schema, so
    /// stores in different schemas of one database do not hear each other).
    pub(crate) fn channel(&self) -> String {
        format!("tollgate_changes_{}", self.schema.as_deref().unwrap_or("public"))
    }

    /// Inside the transaction making `changes`: on PostgreSQL, `NOTIFY`s them to every
    /// replica when it commits. Call [`Store::announced`] after the commit.
    pub(crate) async fn announce(&self, conn: &mut AnyConnection, changes: &[Change]) -> Result<()> {
        if self.backend() == Backend::Postgres {
            for change in changes {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(self.channel())
                    .bind(change.payload())
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(())
    }

    /// After a commit: runs this process's hooks.
    pub(crate) fn announced(&self, changes: Vec<Change>) {
        for change in &changes {
            self.hooks.run(change);
        }
    }

    /// On PostgreSQL, listens for other replicas' changes and runs the hooks on them until
    /// the store is closed. Does nothing on SQLite (one process owns the file).
    ///
    /// When the listening connection is lost, notifications sent until it listens again are
    /// lost with it: the hooks get [`Change::All`] at once (nothing cached is trusted while
    /// deaf), and again once listening has resumed, so a change made in the gap (one whose
    /// `NOTIFY` nobody heard, after a cache had been refilled) never waits for a cache's
    /// expiry.
    pub async fn listen_for_changes(&self) -> Result<()> {
        let Some(url) = self.url.clone().filter(|_| self.backend() == Backend::Postgres) else {
            return Ok(());
        };
        let channel = self.channel();
        let mut listener = sqlx::postgres::PgListener::connect(&url).await?;
        // A lost connection is reported at once (not after reconnecting), so the hooks hear
        // of the gap before and after it.
        listener.eager_reconnect(false);
        listener.listen(&channel).await?;
        let hooks = self.hooks.clone();
        let closed = self.write.clone();
        tokio::spawn(async move {
            while !closed.is_closed() {
                match listener.try_recv().await {
                    Ok(Some(notification)) => hooks.run(&Change::parse(notification.payload())),
                    Ok(None) => {
                        tracing::warn!(
                            "lost the change feed's connection; dropping every cached copy and listening again"
                        );
                        hooks.run(&Change::All);
                        resume(&mut listener, &channel, &hooks, &closed).await;
                    }
                    Err(e) => {
                        if closed.is_closed() {
                            return;
                        }
                        tracing::warn!(error = %e, "the change feed failed; listening again");
                        hooks.run(&Change::All);
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        resume(&mut listener, &channel, &hooks, &closed).await;
                    }
                }
            }
        });
        Ok(())
    }
}

/// Reconnects `listener` (retrying every second until it listens on `channel` again or the
/// store is closed), then tells the hooks that anything may have changed while it was deaf.
async fn resume(listener: &mut sqlx::postgres::PgListener, channel: &str, hooks: &Hooks, closed: &sqlx::AnyPool) {
    while !closed.is_closed() {
        // LISTEN reconnects first when the connection is gone (and re-listens every channel).
        match listener.listen(channel).await {
            Ok(()) => {
                tracing::info!("the change feed is listening again");
                hooks.run(&Change::All);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "the change feed could not listen again; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Change;

    #[test]
    fn payloads_round_trip() {
        for change in [
            Change::Key("ab12".into()),
            Change::Installation("inst_1".into()),
            Change::Member("org_1".into(), "usr_2".into()),
            Change::Agent("agt_3".into()),
            Change::Org("org_4".into()),
            Change::All,
        ] {
            assert_eq!(Change::parse(&change.payload()), change);
        }
        for garbage in ["", "key:", "member:x", "member::y", "nope:1", "agent"] {
            assert_eq!(Change::parse(garbage), Change::All, "{garbage:?}");
        }
    }
}
