//! Notifications about events, each sent once per person per event (the event's key is
//! unique per person), to the people of the org the event belongs to; and the email
//! queue: a notification whose person has email notifications on is `pending` until the
//! mailer sends it.
//!
//! Tenant invariant: recipients are always found through the memberships of the org the
//! event concerns (or the one person it concerns), never across orgs.

use crate::row::{flag, get};
use crate::{Result, Store};
use sqlx::AnyConnection;
use tollgate_domain::secret::ordered_id;
use tollgate_domain::time::now_ms;

/// A notification to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `low_balance`, `budget`, `payment`, `auto_recharge`, `agent_update`,
    /// `deprecation`, `key_revoked`, `invitation`, …
    pub kind: String,
    pub title: String,
    pub body: String,
    /// A path in the web UI (`/billing`).
    pub link: Option<String>,
    /// Names the event: a person gets one notification per key.
    pub event_key: String,
    /// Queue an email too, for people who have email notifications on.
    pub email: bool,
}

/// Who is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// One person.
    User(String),
    /// The owners and admins of an org (money matters).
    OrgAdmins(String),
    /// Every member of an org.
    OrgMembers(String),
    /// Every member of every org with an active installation of the agent.
    Installers { agent_id: String },
    /// Every member of every org whose active installation of the agent is pinned to
    /// `version`, or to `latest` when `latest` is true (the version was the newest active).
    VersionUsers { agent_id: String, version: String, latest: bool },
}

/// A notification waiting to be emailed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEmail {
    pub id: String,
    pub to: String,
    /// Whether the person still wants email notifications.
    pub wanted: bool,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
    pub attempts: i64,
}

/// Who `audience` is, distinct.
async fn recipients(conn: &mut AnyConnection, audience: &Audience) -> Result<Vec<String>> {
    let query = match audience {
        Audience::User(user_id) => return Ok(vec![user_id.clone()]),
        Audience::OrgAdmins(org_id) => sqlx::query_scalar(
            "SELECT user_id FROM memberships WHERE org_id = $1 AND role IN ('owner', 'admin') ORDER BY user_id",
        )
        .bind(org_id),
        Audience::OrgMembers(org_id) => {
            sqlx::query_scalar("SELECT user_id FROM memberships WHERE org_id = $1 ORDER BY user_id").bind(org_id)
        }
        Audience::Installers { agent_id } => sqlx::query_scalar(
            "SELECT DISTINCT m.user_id FROM installations i JOIN memberships m ON m.org_id = i.org_id \
             WHERE i.agent_id = $1 AND i.status = 'active' ORDER BY m.user_id",
        )
        .bind(agent_id),
        Audience::VersionUsers { agent_id, version, latest } => sqlx::query_scalar(
            "SELECT DISTINCT m.user_id FROM installations i JOIN memberships m ON m.org_id = i.org_id \
             WHERE i.agent_id = $1 AND i.status = 'active' AND (i.version = $2 OR ($3 = 1 AND i.version = 'latest')) \
             ORDER BY m.user_id",
        )
        .bind(agent_id)
        .bind(version)
        .bind(i64::from(*latest)),
    };
    Ok(query.fetch_all(&mut *conn).await?)
}

/// Sends `notice` to `audience` inside the caller's transaction; returns how many people
/// got it (those who had it already are skipped).
pub(crate) async fn notify_in(conn: &mut AnyConnection, audience: &Audience, notice: &Notice) -> Result<usize> {
    let now = now_ms();
    let mut sent = 0;
    for user_id in recipients(conn, audience).await? {
        let done = sqlx::query(
            "INSERT INTO notifications (id, user_id, kind, title, body, link, created_at, event_key, email_status, email_next_at) \
             SELECT $1, u.id, $2, $3, $4, $5, $6, $7, \
                    CASE WHEN $8 = 1 AND u.email_notifications = 1 THEN 'pending' END, $6 \
             FROM users u WHERE u.id = $9 \
             ON CONFLICT DO NOTHING",
        )
        .bind(ordered_id("ntf"))
        .bind(&notice.kind)
        .bind(&notice.title)
        .bind(&notice.body)
        .bind(notice.link.as_deref())
        .bind(now)
        .bind(&notice.event_key)
        .bind(i64::from(notice.email))
        .bind(&user_id)
        .execute(&mut *conn)
        .await?;
        sent += done.rows_affected() as usize;
    }
    Ok(sent)
}

impl Store {
    /// Sends `notice` to `audience`, once per person per event key; returns how many
    /// people got it now.
    pub async fn notify_audience(&self, audience: &Audience, notice: &Notice) -> Result<usize> {
        let mut tx = self.begin().await?;
        let sent = notify_in(&mut tx, audience, notice).await?;
        tx.commit().await?;
        Ok(sent)
    }

    /// Notifications due to be emailed at `now`, oldest first.
    pub async fn due_emails(&self, now: i64, limit: i64) -> Result<Vec<PendingEmail>> {
        let rows = sqlx::query(
            "SELECT n.id, u.email, u.email_notifications, n.title, n.body, n.link, n.email_attempts \
             FROM notifications n JOIN users u ON u.id = n.user_id \
             WHERE n.email_status = 'pending' AND n.email_next_at <= $1 ORDER BY n.email_next_at, n.id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PendingEmail {
                    id: get(r, "id")?,
                    to: get(r, "email")?,
                    wanted: flag(r, "email_notifications")?,
                    title: get(r, "title")?,
                    body: get(r, "body")?,
                    link: get(r, "link")?,
                    attempts: get(r, "email_attempts")?,
                })
            })
            .collect()
    }

    /// Takes a due email for sending, once across replicas: counts the attempt and moves
    /// its next try to `retry_at` (in case this sender dies mid-way). False when another
    /// sender took it first.
    pub async fn claim_email(&self, id: &str, now: i64, retry_at: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE notifications SET email_attempts = email_attempts + 1, email_next_at = $1 \
             WHERE id = $2 AND email_status = 'pending' AND email_next_at <= $3",
        )
        .bind(retry_at)
        .bind(id)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends a pending email: `sent`, `failed` (given up) or `skipped` (no longer wanted).
    pub async fn finish_email(&self, id: &str, status: &str) -> Result<()> {
        sqlx::query("UPDATE notifications SET email_status = $1 WHERE id = $2 AND email_status = 'pending'")
            .bind(status)
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }
}
