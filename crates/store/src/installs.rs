//! Installations (org × agent) and their API keys, including the gateway's key lookup.

use crate::changes::Change;
use crate::row::{flag, get};
use crate::{Result, Store, StoreError};
use sqlx::any::AnyRow;
use tollgate_domain::secret::{new_id, random_token};
use tollgate_domain::time::now_ms;

/// An org's installation of an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    pub id: String,
    pub org_id: String,
    pub agent_id: String,
    pub agent_slug: String,
    pub agent_name: String,
    pub version: String,
    /// The pseudonymous token the publisher sees instead of the org.
    pub install_token: String,
    /// `active` or `uninstalled`.
    pub status: String,
    pub installed_by: String,
    pub task_timeout_seconds: Option<i64>,
    pub created_at: i64,
    pub uninstalled_at: Option<i64>,
}

const INSTALL_SELECT: &str = "SELECT i.id, i.org_id, i.agent_id, a.slug, a.name, i.version, i.install_token, i.status, \
    i.installed_by, i.task_timeout_seconds, i.created_at, i.uninstalled_at FROM installations i JOIN agents a ON a.id = i.agent_id";

fn installation_from(row: &AnyRow) -> Result<Installation> {
    Ok(Installation {
        id: get(row, "id")?,
        org_id: get(row, "org_id")?,
        agent_id: get(row, "agent_id")?,
        agent_slug: get(row, "slug")?,
        agent_name: get(row, "name")?,
        version: get(row, "version")?,
        install_token: get(row, "install_token")?,
        status: get(row, "status")?,
        installed_by: get(row, "installed_by")?,
        task_timeout_seconds: get(row, "task_timeout_seconds")?,
        created_at: get(row, "created_at")?,
        uninstalled_at: get(row, "uninstalled_at")?,
    })
}

/// Per-key daily limits; 0 = unlimited. They reset at 00:00 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DailyLimits {
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_tokens: i64,
}

/// A gateway API key (its secret is never stored, only its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub installation_id: String,
    pub org_id: String,
    pub agent_id: String,
    pub user_id: String,
    pub name: String,
    pub prefix: String,
    pub limits: DailyLimits,
    /// Created by Tollgate (A2A dependency keys), not by a person.
    pub managed: bool,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

const KEY_COLUMNS: &str = "k.id, k.installation_id, k.org_id, k.agent_id, k.user_id, k.name, k.prefix, k.limit_requests, \
    k.limit_input_tokens, k.limit_output_tokens, k.limit_cache_tokens, k.managed, k.created_at, k.revoked_at, k.last_used_at";

fn key_from(row: &AnyRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: get(row, "id")?,
        installation_id: get(row, "installation_id")?,
        org_id: get(row, "org_id")?,
        agent_id: get(row, "agent_id")?,
        user_id: get(row, "user_id")?,
        name: get(row, "name")?,
        prefix: get(row, "prefix")?,
        limits: DailyLimits {
            requests: get(row, "limit_requests")?,
            input_tokens: get(row, "limit_input_tokens")?,
            output_tokens: get(row, "limit_output_tokens")?,
            cache_tokens: get(row, "limit_cache_tokens")?,
        },
        managed: flag(row, "managed")?,
        created_at: get(row, "created_at")?,
        revoked_at: get(row, "revoked_at")?,
        last_used_at: get(row, "last_used_at")?,
    })
}

/// What the gateway needs to admit a call, found by the key's hash in one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayKey {
    pub key: ApiKey,
    pub agent_slug: String,
    pub installation_status: String,
    pub install_token: String,
}

impl Store {
    /// Installs an agent version for an org with a fresh pseudonymous token. An org has
    /// at most one active installation per agent ([`StoreError::Conflict`] otherwise).
    pub async fn install(&self, org_id: &str, agent_id: &str, version: &str, user_id: &str) -> Result<Installation> {
        let id = new_id("inst")?;
        sqlx::query(
            "INSERT INTO installations (id, org_id, agent_id, version, install_token, status, installed_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'active', $6, $7)",
        )
        .bind(&id)
        .bind(org_id)
        .bind(agent_id)
        .bind(version)
        .bind(format!("it_{}", random_token(24)?))
        .bind(user_id)
        .bind(now_ms())
        .execute(&self.write)
        .await?;
        self.installation(&id).await
    }

    /// An installation by id.
    pub async fn installation(&self, id: &str) -> Result<Installation> {
        let sql = format!("{INSTALL_SELECT} WHERE i.id = $1");
        installation_from(&sqlx::query(&sql).bind(id).fetch_one(&self.read).await?)
    }

    /// An org's installations (active first, newest first).
    pub async fn installations(&self, org_id: &str, include_uninstalled: bool) -> Result<Vec<Installation>> {
        let sql = format!(
            "{INSTALL_SELECT} WHERE i.org_id = $1 AND ($2 = 1 OR i.status = 'active') ORDER BY i.status, i.created_at DESC, i.id"
        );
        let rows = sqlx::query(&sql).bind(org_id).bind(i64::from(include_uninstalled)).fetch_all(&self.read).await?;
        rows.iter().map(installation_from).collect()
    }

    /// Uninstalls and revokes every key of the installation, at once.
    pub async fn uninstall(&self, id: &str) -> Result<()> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE installations SET status = 'uninstalled', uninstalled_at = $1 WHERE id = $2 AND status = 'active'",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE installation_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let changes = vec![Change::Installation(id.to_string())];
        self.announce(&mut tx, &changes).await?;
        tx.commit().await?;
        self.announced(changes);
        Ok(())
    }

    /// Sets an installation's task-token timeout override (A2A), or clears it.
    pub async fn set_installation_task_timeout(&self, id: &str, seconds: Option<i64>) -> Result<()> {
        sqlx::query("UPDATE installations SET task_timeout_seconds = $1 WHERE id = $2")
            .bind(seconds)
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Stores a new key for an active installation. The installation's row stays locked
    /// until the key is in, so an uninstall in parallel either comes first (no key) or
    /// after (and revokes it): never an active key on an uninstalled installation.
    pub async fn create_key(&self, key: &ApiKey, key_hash: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        let active = sqlx::query("UPDATE installations SET status = status WHERE id = $1 AND status = 'active'")
            .bind(&key.installation_id)
            .execute(&mut *tx)
            .await?;
        if active.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "INSERT INTO api_keys (id, installation_id, org_id, agent_id, user_id, name, prefix, key_hash, limit_requests, \
             limit_input_tokens, limit_output_tokens, limit_cache_tokens, managed, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&key.id)
        .bind(&key.installation_id)
        .bind(&key.org_id)
        .bind(&key.agent_id)
        .bind(&key.user_id)
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(key_hash)
        .bind(key.limits.requests)
        .bind(key.limits.input_tokens)
        .bind(key.limits.output_tokens)
        .bind(key.limits.cache_tokens)
        .bind(i64::from(key.managed))
        .bind(key.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A key by id.
    pub async fn key(&self, id: &str) -> Result<ApiKey> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.id = $1");
        key_from(&sqlx::query(&sql).bind(id).fetch_one(&self.read).await?)
    }

    /// The keys of an installation, newest first.
    pub async fn installation_keys(&self, installation_id: &str) -> Result<Vec<ApiKey>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.installation_id = $1 ORDER BY k.created_at DESC, k.id"
        );
        let rows = sqlx::query(&sql).bind(installation_id).fetch_all(&self.read).await?;
        rows.iter().map(key_from).collect()
    }

    /// Renames a key and/or changes its daily limits.
    pub async fn update_key(&self, id: &str, name: Option<&str>, limits: Option<DailyLimits>) -> Result<ApiKey> {
        let l = limits.unwrap_or_default();
        let has = i64::from(limits.is_some());
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE api_keys SET name = COALESCE($1, name), \
             limit_requests = CASE WHEN $2 = 1 THEN $3 ELSE limit_requests END, \
             limit_input_tokens = CASE WHEN $2 = 1 THEN $4 ELSE limit_input_tokens END, \
             limit_output_tokens = CASE WHEN $2 = 1 THEN $5 ELSE limit_output_tokens END, \
             limit_cache_tokens = CASE WHEN $2 = 1 THEN $6 ELSE limit_cache_tokens END WHERE id = $7",
        )
        .bind(name)
        .bind(has)
        .bind(l.requests)
        .bind(l.input_tokens)
        .bind(l.output_tokens)
        .bind(l.cache_tokens)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        self.announce_key(tx, id).await?;
        self.key(id).await
    }

    /// Revokes a key (idempotent).
    pub async fn revoke_key(&self, id: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.announce_key(tx, id).await
    }

    /// Announces that key `id` changed, and commits `tx`.
    async fn announce_key(&self, mut tx: sqlx::Transaction<'static, sqlx::Any>, id: &str) -> Result<()> {
        let hash: Option<String> =
            sqlx::query_scalar("SELECT key_hash FROM api_keys WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
        let changes: Vec<Change> = hash.into_iter().map(Change::Key).collect();
        self.announce(&mut tx, &changes).await?;
        tx.commit().await?;
        self.announced(changes);
        Ok(())
    }

    /// The gateway's lookup: a key by the SHA-256 of its secret, with its installation and
    /// agent. Revoked keys are returned too, so the gateway can answer 403 rather than 401.
    pub async fn gateway_key(&self, key_hash: &str) -> Result<Option<GatewayKey>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS}, a.slug AS agent_slug, i.status AS installation_status, i.install_token \
             FROM api_keys k JOIN installations i ON i.id = k.installation_id JOIN agents a ON a.id = k.agent_id WHERE k.key_hash = $1"
        );
        let Some(row) = sqlx::query(&sql).bind(key_hash).fetch_optional(&self.read).await? else {
            return Ok(None);
        };
        Ok(Some(GatewayKey {
            key: key_from(&row)?,
            agent_slug: get(&row, "agent_slug")?,
            installation_status: get(&row, "installation_status")?,
            install_token: get(&row, "install_token")?,
        }))
    }
}
