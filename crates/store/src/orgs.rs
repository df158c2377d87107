//! Orgs, memberships, invitations and notifications.

use crate::catalog::{AGENT_COLUMNS, agent_from};
use crate::changes::Change;
use crate::ledger::{AccountKind, account_in};
use crate::row::{flag, get};
use crate::{Result, Store, StoreError};
use sqlx::any::AnyRow;
use tollgate_domain::Nanos;
use tollgate_domain::catalog::Role;
use tollgate_domain::secret::{new_id, ordered_id};
use tollgate_domain::time::now_ms;

/// An org: a user's personal one or a team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub personal: bool,
    pub monthly_budget: Option<Nanos>,
    /// Auto-recharge settings as JSON, if set.
    pub auto_recharge: Option<String>,
    pub rate_limit_minute: Option<i64>,
    pub rate_limit_hour: Option<i64>,
    pub rate_limit_day: Option<i64>,
    pub created_at: i64,
}

pub(crate) const ORG_COLUMNS: &str =
    "id, name, personal, monthly_budget, auto_recharge, rate_limit_minute, rate_limit_hour, rate_limit_day, created_at";

pub(crate) fn org_from(row: &AnyRow) -> Result<Org> {
    Ok(Org {
        id: get(row, "id")?,
        name: get(row, "name")?,
        personal: flag(row, "personal")?,
        monthly_budget: get::<Option<i64>>(row, "monthly_budget")?.map(Nanos),
        auto_recharge: get(row, "auto_recharge")?,
        rate_limit_minute: get(row, "rate_limit_minute")?,
        rate_limit_hour: get(row, "rate_limit_hour")?,
        rate_limit_day: get(row, "rate_limit_day")?,
        created_at: get(row, "created_at")?,
    })
}

fn role(text: &str) -> Result<Role> {
    Role::parse(text).ok_or_else(|| StoreError::Corrupt(format!("role {text}")))
}

/// A member of an org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub joined_at: i64,
}

/// An invitation to join an org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub id: String,
    pub org_id: String,
    pub org_name: String,
    pub email: String,
    pub role: Role,
    pub invited_by: String,
    pub status: String,
    pub expires_at: i64,
    pub created_at: i64,
}

const INVITATION_SELECT: &str = "SELECT i.id, i.org_id, o.name AS org_name, i.email, i.role, i.invited_by, i.status, \
    i.expires_at, i.created_at FROM invitations i JOIN orgs o ON o.id = i.org_id";

fn invitation_from(row: &AnyRow) -> Result<Invitation> {
    Ok(Invitation {
        id: get(row, "id")?,
        org_id: get(row, "org_id")?,
        org_name: get(row, "org_name")?,
        email: get(row, "email")?,
        role: role(&get::<String>(row, "role")?)?,
        invited_by: get(row, "invited_by")?,
        status: get(row, "status")?,
        expires_at: get(row, "expires_at")?,
        created_at: get(row, "created_at")?,
    })
}

/// A notification for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
    pub read_at: Option<i64>,
    pub created_at: i64,
}

impl Store {
    /// Creates a team org with `owner` as its owner.
    pub async fn create_team(&self, name: &str, owner_user_id: &str) -> Result<Org> {
        let id = new_id("org")?;
        let now = now_ms();
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO orgs (id, name, personal, created_at) VALUES ($1, $2, 0, $3)")
            .bind(&id)
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)")
            .bind(&id)
            .bind(owner_user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        account_in(&mut tx, AccountKind::OrgCredit, &id).await?;
        tx.commit().await?;
        self.org(&id).await
    }

    /// An org by id.
    pub async fn org(&self, id: &str) -> Result<Org> {
        let sql = format!("SELECT {ORG_COLUMNS} FROM orgs WHERE id = $1");
        org_from(&sqlx::query(&sql).bind(id).fetch_one(&self.read).await?)
    }

    /// Renames an org and, in the same transaction, rebuilds the search text of the agents
    /// it publishes (the store's search matches the publisher's name).
    pub async fn rename_org(&self, id: &str, name: &str) -> Result<Org> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE orgs SET name = $1 WHERE id = $2").bind(name).bind(id).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE publisher_org_id = $1");
        let agents = sqlx::query(&sql).bind(id).fetch_all(&mut *tx).await?;
        for row in &agents {
            let agent = agent_from(row)?;
            sqlx::query("UPDATE agents SET search_text = $1 WHERE id = $2")
                .bind(agent.listing().search_text(&agent.slug, name))
                .bind(&agent.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.org(id).await
    }

    /// The role of `user_id` in `org_id`, if a member.
    pub async fn membership(&self, org_id: &str, user_id: &str) -> Result<Option<Role>> {
        let text: Option<String> =
            sqlx::query_scalar("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
                .bind(org_id)
                .bind(user_id)
                .fetch_optional(&self.read)
                .await?;
        text.map(|t| role(&t)).transpose()
    }

    /// The orgs a user belongs to, with their role, personal org first.
    pub async fn orgs_of_user(&self, user_id: &str) -> Result<Vec<(Org, Role)>> {
        let sql = "SELECT o.id, o.name, o.personal, o.monthly_budget, o.auto_recharge, o.rate_limit_minute, o.rate_limit_hour, \
            o.rate_limit_day, o.created_at, m.role FROM memberships m JOIN orgs o ON o.id = m.org_id WHERE m.user_id = $1 \
            ORDER BY o.personal DESC, o.created_at, o.id";
        let rows = sqlx::query(sql).bind(user_id).fetch_all(&self.read).await?;
        rows.iter().map(|r| Ok((org_from(r)?, role(&get::<String>(r, "role")?)?))).collect()
    }

    /// The members of an org, oldest first.
    pub async fn members(&self, org_id: &str) -> Result<Vec<Member>> {
        let rows = sqlx::query(
            "SELECT u.id, u.email, u.name, m.role, m.created_at FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.org_id = $1 ORDER BY m.created_at, u.id",
        )
        .bind(org_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Member {
                    user_id: get(r, "id")?,
                    email: get(r, "email")?,
                    name: get(r, "name")?,
                    role: role(&get::<String>(r, "role")?)?,
                    joined_at: get(r, "created_at")?,
                })
            })
            .collect()
    }

    async fn owner_count(&self, conn: &mut sqlx::AnyConnection, org_id: &str) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role = 'owner'")
            .bind(org_id)
            .fetch_one(&mut *conn)
            .await?)
    }

    /// Takes the org's row lock for the rest of `tx`, so changes to its owners made in
    /// parallel take turns (PostgreSQL; SQLite has one writer anyway): two owners demoting
    /// or removing each other at once must not both see the other one still an owner.
    async fn lock_org(&self, conn: &mut sqlx::AnyConnection, org_id: &str) -> Result<()> {
        let locked = sqlx::query("UPDATE orgs SET name = name WHERE id = $1").bind(org_id).execute(&mut *conn).await?;
        if locked.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Changes a member's role; the last owner cannot stop being one.
    pub async fn set_role(&self, org_id: &str, user_id: &str, new_role: Role) -> Result<()> {
        let mut tx = self.begin().await?;
        self.lock_org(&mut tx, org_id).await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
                .bind(org_id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        let current = role(&current.ok_or(StoreError::NotFound)?)?;
        if current == Role::Owner && new_role != Role::Owner && self.owner_count(&mut tx, org_id).await? <= 1 {
            return Err(StoreError::Conflict("last_owner".into()));
        }
        sqlx::query("UPDATE memberships SET role = $1 WHERE org_id = $2 AND user_id = $3")
            .bind(new_role.as_str())
            .bind(org_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a member (and revokes their keys in the org); never the last owner.
    pub async fn remove_member(&self, org_id: &str, user_id: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        self.lock_org(&mut tx, org_id).await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
                .bind(org_id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        let current = role(&current.ok_or(StoreError::NotFound)?)?;
        if current == Role::Owner && self.owner_count(&mut tx, org_id).await? <= 1 {
            return Err(StoreError::Conflict("last_owner".into()));
        }
        sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE org_id = $2 AND user_id = $3 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(org_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let changes = vec![Change::Member(org_id.to_string(), user_id.to_string())];
        self.announce(&mut tx, &changes).await?;
        tx.commit().await?;
        self.announced(changes);
        Ok(())
    }

    /// Records an invitation (its token stored as a hash).
    pub async fn create_invitation(
        &self,
        org_id: &str,
        email: &str,
        role: Role,
        token_hash: &str,
        invited_by: &str,
        expires_at: i64,
    ) -> Result<Invitation> {
        let id = new_id("inv")?;
        sqlx::query(
            "INSERT INTO invitations (id, org_id, email, role, token_hash, invited_by, status, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8)",
        )
        .bind(&id)
        .bind(org_id)
        .bind(email)
        .bind(role.as_str())
        .bind(token_hash)
        .bind(invited_by)
        .bind(expires_at)
        .bind(now_ms())
        .execute(&self.write)
        .await?;
        self.invitation(&id).await
    }

    /// An invitation by id.
    pub async fn invitation(&self, id: &str) -> Result<Invitation> {
        let sql = format!("{INVITATION_SELECT} WHERE i.id = $1");
        invitation_from(&sqlx::query(&sql).bind(id).fetch_one(&self.read).await?)
    }

    /// An org's invitations, newest first.
    pub async fn org_invitations(&self, org_id: &str) -> Result<Vec<Invitation>> {
        let sql = format!("{INVITATION_SELECT} WHERE i.org_id = $1 ORDER BY i.created_at DESC, i.id");
        let rows = sqlx::query(&sql).bind(org_id).fetch_all(&self.read).await?;
        rows.iter().map(invitation_from).collect()
    }

    /// Pending, unexpired invitations addressed to `email`.
    pub async fn invitations_for_email(&self, email: &str) -> Result<Vec<Invitation>> {
        let sql = format!(
            "{INVITATION_SELECT} WHERE i.email = $1 AND i.status = 'pending' AND i.expires_at > $2 ORDER BY i.created_at DESC"
        );
        let rows = sqlx::query(&sql).bind(email).bind(now_ms()).fetch_all(&self.read).await?;
        rows.iter().map(invitation_from).collect()
    }

    /// Accepts a pending invitation addressed to `email`, found by its token's hash, adding
    /// `user_id` to the org. Already a member: the invitation is used up, role kept.
    pub async fn accept_invitation(&self, token_hash: &str, user_id: &str, email: &str) -> Result<Invitation> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "SELECT id, org_id, role FROM invitations WHERE token_hash = $1 AND email = $2 AND status = 'pending' AND expires_at > $3",
        )
        .bind(token_hash)
        .bind(email)
        .bind(now_ms())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let (id, org_id, role): (String, String, String) = (get(&row, "id")?, get(&row, "org_id")?, get(&row, "role")?);
        sqlx::query("UPDATE invitations SET status = 'accepted' WHERE id = $1").bind(&id).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (org_id, user_id) DO NOTHING")
            .bind(&org_id)
            .bind(user_id)
            .bind(&role)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.invitation(&id).await
    }

    /// Revokes a pending invitation of `org_id`.
    pub async fn revoke_invitation(&self, org_id: &str, id: &str) -> Result<()> {
        let done = sqlx::query(
            "UPDATE invitations SET status = 'revoked' WHERE id = $1 AND org_id = $2 AND status = 'pending'",
        )
        .bind(id)
        .bind(org_id)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Sets (or clears) an org's monthly budget.
    pub async fn set_budget(&self, org_id: &str, monthly_limit: Option<Nanos>) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE orgs SET monthly_budget = $1 WHERE id = $2")
            .bind(monthly_limit.map(|n| n.0))
            .bind(org_id)
            .execute(&mut *tx)
            .await?;
        let changes = vec![Change::Org(org_id.to_string())];
        self.announce(&mut tx, &changes).await?;
        tx.commit().await?;
        self.announced(changes);
        Ok(())
    }

    /// Sets an org's gateway rate limits per member per agent, per minute, hour and day
    /// (`None`: the operator's default; `Some(0)`: unlimited). Every replica's gateway is
    /// told (the change feed), so the next call is checked against them.
    pub async fn set_rate_limits(&self, org_id: &str, limits: [Option<i64>; 3]) -> Result<Org> {
        if limits.iter().flatten().any(|l| *l < 0) {
            return Err(StoreError::Conflict("a rate limit cannot be negative".into()));
        }
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE orgs SET rate_limit_minute = $1, rate_limit_hour = $2, rate_limit_day = $3 WHERE id = $4",
        )
        .bind(limits[0])
        .bind(limits[1])
        .bind(limits[2])
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let changes = vec![Change::Org(org_id.to_string())];
        self.announce(&mut tx, &changes).await?;
        tx.commit().await?;
        self.announced(changes);
        self.org(org_id).await
    }

    /// Sets (or clears) an org's auto-recharge settings (JSON).
    pub async fn set_auto_recharge(&self, org_id: &str, settings: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE orgs SET auto_recharge = $1 WHERE id = $2")
            .bind(settings)
            .bind(org_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Adds a notification for a user.
    pub async fn notify(&self, user_id: &str, kind: &str, title: &str, body: &str, link: Option<&str>) -> Result<()> {
        sqlx::query("INSERT INTO notifications (id, user_id, kind, title, body, link, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(ordered_id("ntf"))
            .bind(user_id)
            .bind(kind)
            .bind(title)
            .bind(body)
            .bind(link)
            .bind(now_ms())
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// A user's notifications, newest first (those of one millisecond in the order they
    /// were sent: their ids are ordered).
    pub async fn notifications(&self, user_id: &str, limit: i64) -> Result<Vec<Notification>> {
        let rows = sqlx::query(
            "SELECT id, kind, title, body, link, read_at, created_at FROM notifications WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Notification {
                    id: get(r, "id")?,
                    kind: get(r, "kind")?,
                    title: get(r, "title")?,
                    body: get(r, "body")?,
                    link: get(r, "link")?,
                    read_at: get(r, "read_at")?,
                    created_at: get(r, "created_at")?,
                })
            })
            .collect()
    }

    /// How many of a user's notifications are unread.
    pub async fn unread_notifications(&self, user_id: &str) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL")
            .bind(user_id)
            .fetch_one(&self.read)
            .await?)
    }

    /// Marks one (or, with `None`, every unread) notification of a user read. A notification
    /// that is not the user's is [`StoreError::NotFound`]; one already read stays as it was.
    pub async fn mark_notifications_read(&self, user_id: &str, id: Option<&str>) -> Result<()> {
        let now = now_ms();
        let Some(id) = id else {
            sqlx::query("UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL")
                .bind(now)
                .bind(user_id)
                .execute(&self.write)
                .await?;
            return Ok(());
        };
        let done =
            sqlx::query("UPDATE notifications SET read_at = COALESCE(read_at, $1) WHERE user_id = $2 AND id = $3")
                .bind(now)
                .bind(user_id)
                .bind(id)
                .execute(&self.write)
                .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }
}
