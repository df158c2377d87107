//! Closing an account: everything that lets a person act stops at once, in one
//! transaction, and what others rely on (the ledger, usage records, reviews, teams they
//! leave) stays, without their name or email.

use crate::changes::Change;
use crate::row::get;
use crate::{Result, Store, StoreError};
use tollgate_domain::time::now_ms;

/// The name a closed account's reviews and records show.
pub const CLOSED_NAME: &str = "Deleted user";

impl Store {
    /// Closes `user_id`'s account in one transaction: leaves the orgs `leave` (refused with
    /// [`StoreError::Conflict`] if the user is the last owner of one), uninstalls every
    /// active installation of the orgs `inert` (the personal org and teams with no other
    /// member, which nobody can use afterwards), revokes every key and account token of
    /// the user, ends their sessions, deletes their notifications, and replaces their
    /// email, name, password hash and personal org's name, so nobody can log in as them
    /// and what they wrote reads [`CLOSED_NAME`]. No ledger account or transfer is
    /// touched: balances stay where they are and the ledger stays balanced. Caches are
    /// told of every revoked key.
    pub async fn close_account(&self, user_id: &str, leave: &[String], inert: &[String]) -> Result<()> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let mut changes = Vec::new();
        for org in leave {
            let owners: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role = 'owner'")
                    .bind(org)
                    .fetch_one(&mut *tx)
                    .await?;
            let role: Option<String> =
                sqlx::query_scalar("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
                    .bind(org)
                    .bind(user_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if role.as_deref() == Some("owner") && owners <= 1 {
                return Err(StoreError::Conflict(format!("last_owner:{org}")));
            }
            sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
                .bind(org)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            changes.push(Change::Member(org.clone(), user_id.to_string()));
        }
        for org in inert {
            let rows = sqlx::query("SELECT id FROM installations WHERE org_id = $1 AND status = 'active'")
                .bind(org)
                .fetch_all(&mut *tx)
                .await?;
            for row in &rows {
                let id: String = get(row, "id")?;
                sqlx::query("UPDATE installations SET status = 'uninstalled', uninstalled_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE installation_id = $2 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                changes.push(Change::Installation(id));
            }
        }
        let hashes: Vec<String> =
            sqlx::query_scalar("SELECT key_hash FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL")
                .bind(user_id)
                .fetch_all(&mut *tx)
                .await?;
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        changes.extend(hashes.into_iter().map(Change::Key));
        sqlx::query("UPDATE account_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM notifications WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
        sqlx::query("UPDATE orgs SET name = $1 WHERE id = (SELECT personal_org_id FROM users WHERE id = $2)")
            .bind(format!("{CLOSED_NAME}'s org"))
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let closed = sqlx::query(
            "UPDATE users SET email = $1, name = $2, password_hash = '!', email_notifications = 0 WHERE id = $3",
        )
        .bind(format!("closed-{user_id}@closed.invalid"))
        .bind(CLOSED_NAME)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        if closed.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.announce(&mut tx, &changes).await?;
        tx.commit().await?;
        self.announced(changes);
        Ok(())
    }
}
