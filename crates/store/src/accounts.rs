//! Users, sessions and account tokens.

use crate::ledger::{AccountKind, NewTransfer, PLATFORM, account_in, transfer_in};
use crate::orgs::{ORG_COLUMNS, Org, org_from};
use crate::row::{flag, get};
use crate::{Result, Store, StoreError};
use sqlx::any::AnyRow;
use tollgate_domain::Nanos;
use tollgate_domain::secret::new_id;
use tollgate_domain::time::now_ms;

/// A person with an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub is_operator: bool,
    pub personal_org_id: String,
    /// `light`, `dark`, or `system` (follow the device; what new users start with).
    pub theme: String,
    pub email_notifications: bool,
    pub created_at: i64,
}

const USER_COLUMNS: &str = "id, email, name, is_operator, personal_org_id, theme, email_notifications, created_at";

fn user_from(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: get(row, "id")?,
        email: get(row, "email")?,
        name: get(row, "name")?,
        is_operator: flag(row, "is_operator")?,
        personal_org_id: get(row, "personal_org_id")?,
        theme: get(row, "theme")?,
        email_notifications: flag(row, "email_notifications")?,
        created_at: get(row, "created_at")?,
    })
}

/// An account token (`tg_usr_…`) as listed; the secret itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountToken {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub prefix: String,
    /// Space-separated scope names; empty = every scope.
    pub scopes: String,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub created_at: i64,
}

const TOKEN_COLUMNS: &str = "id, user_id, name, prefix, scopes, expires_at, revoked_at, last_used_at, created_at";

fn token_from(row: &AnyRow) -> Result<AccountToken> {
    Ok(AccountToken {
        id: get(row, "id")?,
        user_id: get(row, "user_id")?,
        name: get(row, "name")?,
        prefix: get(row, "prefix")?,
        scopes: get(row, "scopes")?,
        expires_at: get(row, "expires_at")?,
        revoked_at: get(row, "revoked_at")?,
        last_used_at: get(row, "last_used_at")?,
        created_at: get(row, "created_at")?,
    })
}

/// At most this many unrevoked, unexpired account tokens per user.
pub const MAX_ACTIVE_TOKENS: i64 = 10;

impl Store {
    /// Creates a user with a personal org (owner), its credit account and the signup
    /// grant, all in one transaction. A taken email is a conflict.
    pub async fn create_user(
        &self,
        email: &str,
        name: &str,
        password_hash: &str,
        signup_grant: Nanos,
    ) -> Result<(User, Org)> {
        let now = now_ms();
        let user_id = new_id("usr")?;
        let org_id = new_id("org")?;
        let mut tx = self.begin().await?;
        let taken: Option<String> =
            sqlx::query_scalar("SELECT id FROM users WHERE email = $1").bind(email).fetch_optional(&mut *tx).await?;
        if taken.is_some() {
            return Err(StoreError::Conflict("users_email_key".into()));
        }
        sqlx::query("INSERT INTO orgs (id, name, personal, created_at) VALUES ($1, $2, 1, $3)")
            .bind(&org_id)
            .bind(format!("{name}'s org"))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, is_operator, personal_org_id, theme, created_at) \
             VALUES ($1, $2, $3, $4, 0, $5, 'system', $6)",
        )
        .bind(&user_id)
        .bind(email)
        .bind(name)
        .bind(password_hash)
        .bind(&org_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)")
            .bind(&org_id)
            .bind(&user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let credit = account_in(&mut tx, AccountKind::OrgCredit, &org_id).await?;
        if signup_grant.0 > 0 {
            let grants = account_in(&mut tx, AccountKind::Grants, PLATFORM).await?;
            let key = format!("signup:{org_id}");
            let grant = NewTransfer {
                idempotency_key: &key,
                debit_account_id: &grants.id,
                credit_account_id: &credit.id,
                amount: signup_grant,
                kind: "signup_grant",
                memo: "Welcome credits",
                allow_overdraft: true,
            };
            transfer_in(&mut tx, &grant, None).await?;
        }
        tx.commit().await?;
        Ok((self.user(&user_id).await?, self.org(&org_id).await?))
    }

    /// A user by id.
    pub async fn user(&self, id: &str) -> Result<User> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        user_from(&sqlx::query(&sql).bind(id).fetch_one(&self.read).await?)
    }

    /// A user and their password hash, by (lowercased) email.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<(User, String)>> {
        let sql = format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = $1");
        let Some(row) = sqlx::query(&sql).bind(email).fetch_optional(&self.read).await? else {
            return Ok(None);
        };
        Ok(Some((user_from(&row)?, get(&row, "password_hash")?)))
    }

    /// Makes a user an operator (or not).
    pub async fn set_operator(&self, user_id: &str, operator: bool) -> Result<()> {
        let done = sqlx::query("UPDATE users SET is_operator = $1 WHERE id = $2")
            .bind(i64::from(operator))
            .bind(user_id)
            .execute(&self.write)
            .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Updates a user's profile and preferences; `None` leaves a field as it is.
    pub async fn update_user(
        &self,
        user_id: &str,
        name: Option<&str>,
        theme: Option<&str>,
        email_notifications: Option<bool>,
    ) -> Result<User> {
        sqlx::query(
            "UPDATE users SET name = COALESCE($1, name), theme = COALESCE($2, theme), \
             email_notifications = COALESCE($3, email_notifications) WHERE id = $4",
        )
        .bind(name)
        .bind(theme)
        .bind(email_notifications.map(i64::from))
        .bind(user_id)
        .execute(&self.write)
        .await?;
        self.user(user_id).await
    }

    /// Starts a session, stored by the SHA-256 of its cookie value.
    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: &str,
        csrf_token: &str,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query("INSERT INTO sessions (token_hash, user_id, csrf_token, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(token_hash)
            .bind(user_id)
            .bind(csrf_token)
            .bind(expires_at)
            .bind(now_ms())
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// The user and CSRF token of an unexpired session.
    pub async fn session(&self, token_hash: &str, now: i64) -> Result<Option<(User, String)>> {
        let sql = "SELECT u.id, u.email, u.name, u.is_operator, u.personal_org_id, u.theme, u.email_notifications, u.created_at, s.csrf_token \
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > $2";
        let Some(row) = sqlx::query(sql).bind(token_hash).bind(now).fetch_optional(&self.read).await? else {
            return Ok(None);
        };
        Ok(Some((user_from(&row)?, get(&row, "csrf_token")?)))
    }

    /// Deletes sessions that ended before `now`; returns how many.
    pub async fn delete_expired_sessions(&self, now: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now).execute(&self.write).await?;
        Ok(done.rows_affected())
    }

    /// Ends a session.
    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(&self.write).await?;
        Ok(())
    }

    /// Stores a new account token unless the user already has [`MAX_ACTIVE_TOKENS`] active
    /// (unrevoked and unexpired at `t.created_at`); too many is a [`StoreError::Conflict`].
    ///
    /// Safe under concurrency: the transaction first writes the user's row, which on
    /// PostgreSQL holds a row lock until commit, so parallel creations for one user take
    /// turns and each counts what the previous ones committed (READ COMMITTED takes a new
    /// snapshot per statement). On SQLite every write already goes through one connection.
    pub async fn create_account_token(&self, t: &AccountToken, token_hash: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        let locked = sqlx::query("UPDATE users SET email_notifications = email_notifications WHERE id = $1")
            .bind(&t.user_id)
            .execute(&mut *tx)
            .await?;
        if locked.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let active: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM account_tokens WHERE user_id = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(&t.user_id)
        .bind(t.created_at)
        .fetch_one(&mut *tx)
        .await?;
        if active >= MAX_ACTIVE_TOKENS {
            return Err(StoreError::Conflict("too_many_tokens".into()));
        }
        sqlx::query(
            "INSERT INTO account_tokens (id, user_id, name, prefix, token_hash, scopes, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&t.id)
        .bind(&t.user_id)
        .bind(&t.name)
        .bind(&t.prefix)
        .bind(token_hash)
        .bind(&t.scopes)
        .bind(t.expires_at)
        .bind(t.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The active token with this hash and its user; marks it used.
    pub async fn account_token_by_hash(&self, token_hash: &str, now: i64) -> Result<Option<(AccountToken, User)>> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM account_tokens WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)"
        );
        let Some(row) = sqlx::query(&sql).bind(token_hash).bind(now).fetch_optional(&self.read).await? else {
            return Ok(None);
        };
        let token = token_from(&row)?;
        // Coarse (one write a minute at most per token) so reads stay reads.
        if token.last_used_at.is_none_or(|t| now - t > 60_000) {
            sqlx::query("UPDATE account_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&token.id)
                .execute(&self.write)
                .await?;
        }
        let user = self.user(&token.user_id).await?;
        Ok(Some((token, user)))
    }

    /// A user's tokens, newest first.
    pub async fn account_tokens(&self, user_id: &str) -> Result<Vec<AccountToken>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM account_tokens WHERE user_id = $1 ORDER BY created_at DESC, id");
        let rows = sqlx::query(&sql).bind(user_id).fetch_all(&self.read).await?;
        rows.iter().map(token_from).collect()
    }

    /// Revokes one of the user's tokens. Another user's token is [`StoreError::NotFound`].
    pub async fn revoke_account_token(&self, user_id: &str, token_id: &str) -> Result<()> {
        let done = sqlx::query(
            "UPDATE account_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND user_id = $3",
        )
        .bind(now_ms())
        .bind(token_id)
        .bind(user_id)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// The personal org of a user.
    pub async fn personal_org(&self, user: &User) -> Result<Org> {
        let sql = format!("SELECT {ORG_COLUMNS} FROM orgs WHERE id = $1");
        org_from(&sqlx::query(&sql).bind(&user.personal_org_id).fetch_one(&self.read).await?)
    }
}
