//! What the API returns: plain serializable views of store records. Money is a USD
//! decimal string, times are RFC 3339.

use serde::Serialize;
use tollgate_domain::Nanos;
use tollgate_domain::catalog::Role;
use tollgate_domain::time::rfc3339;
use tollgate_store::accounts::{AccountToken, User};
use tollgate_store::installs::{ApiKey, DailyLimits, Installation};
use tollgate_store::orgs::{Invitation, Member, Notification, Org};
use utoipa::ToSchema;

/// Nano-USD as a USD decimal string (`"99.998200"`).
pub fn usd(n: Nanos) -> String {
    n.to_usd_string()
}

fn opt_time(ms: Option<i64>) -> Option<String> {
    ms.map(rfc3339)
}

/// The error envelope.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// An error's code and message (and, for 422, the field at fault).
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable snake_case code, e.g. `invalid_request`.
    pub code: String,
    /// A sentence for a person.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// A user.
#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub is_operator: bool,
    pub personal_org_id: String,
    /// `light`, `dark` or `system` (follow the device).
    pub theme: String,
    pub email_notifications: bool,
    pub created_at: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            is_operator: u.is_operator,
            personal_org_id: u.personal_org_id.clone(),
            theme: u.theme.clone(),
            email_notifications: u.email_notifications,
            created_at: rfc3339(u.created_at),
        }
    }
}

/// An org, with the caller's role in it when known.
#[derive(Serialize, ToSchema)]
pub struct OrgView {
    pub id: String,
    pub name: String,
    pub personal: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Monthly spending limit in USD, if set.
    pub monthly_budget: Option<String>,
    pub created_at: String,
}

impl OrgView {
    /// The view of `org` for a caller with `role`.
    pub fn new(org: &Org, role: Option<Role>) -> Self {
        OrgView {
            id: org.id.clone(),
            name: org.name.clone(),
            personal: org.personal,
            role: role.map(|r| r.as_str().to_string()),
            monthly_budget: org.monthly_budget.map(usd),
            created_at: rfc3339(org.created_at),
        }
    }
}

/// A signed-in session.
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    pub user: UserView,
    pub org: OrgView,
    /// Send as `X-CSRF-Token` on cookie-authenticated mutations.
    pub csrf_token: String,
}

/// The caller, their orgs and invitations waiting for them.
#[derive(Serialize, ToSchema)]
pub struct MeView {
    pub user: UserView,
    pub orgs: Vec<OrgView>,
    pub invitations: Vec<InvitationView>,
    /// How many of the caller's notifications are unread (null for an account token
    /// without the `notifications:read` scope).
    pub unread_notifications: Option<i64>,
    /// Present for cookie sessions.
    pub csrf_token: Option<String>,
}

/// An account token as listed (never its secret).
#[derive(Serialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
    pub created_at: String,
    /// `active`, `expired` or `revoked`.
    pub status: String,
}

impl TokenView {
    /// The view of `t` at time `now`.
    pub fn new(t: &AccountToken, now: i64) -> Self {
        let status = if t.revoked_at.is_some() {
            "revoked"
        } else if t.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "active"
        };
        TokenView {
            id: t.id.clone(),
            name: t.name.clone(),
            prefix: t.prefix.clone(),
            scopes: t.scopes.split_whitespace().map(str::to_string).collect(),
            expires_at: opt_time(t.expires_at),
            revoked_at: opt_time(t.revoked_at),
            last_used_at: opt_time(t.last_used_at),
            created_at: rfc3339(t.created_at),
            status: status.into(),
        }
    }
}

/// A newly created account token: the only time its secret is shown.
#[derive(Serialize, ToSchema)]
pub struct NewTokenView {
    #[serde(flatten)]
    pub token: TokenView,
    /// The secret (`tg_usr_…`). Store it now: it is never shown again.
    #[serde(rename = "token")]
    pub token_secret: String,
}

/// A member of an org.
#[derive(Serialize, ToSchema)]
pub struct MemberView {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub joined_at: String,
}

impl From<&Member> for MemberView {
    fn from(m: &Member) -> Self {
        MemberView {
            user_id: m.user_id.clone(),
            email: m.email.clone(),
            name: m.name.clone(),
            role: m.role.as_str().into(),
            joined_at: rfc3339(m.joined_at),
        }
    }
}

/// An invitation.
#[derive(Serialize, ToSchema)]
pub struct InvitationView {
    pub id: String,
    pub org_id: String,
    pub org_name: String,
    pub email: String,
    pub role: String,
    pub status: String,
    pub expires_at: String,
    pub created_at: String,
}

impl From<&Invitation> for InvitationView {
    fn from(i: &Invitation) -> Self {
        InvitationView {
            id: i.id.clone(),
            org_id: i.org_id.clone(),
            org_name: i.org_name.clone(),
            email: i.email.clone(),
            role: i.role.as_str().into(),
            status: i.status.clone(),
            expires_at: rfc3339(i.expires_at),
            created_at: rfc3339(i.created_at),
        }
    }
}

/// A notification.
#[derive(Serialize, ToSchema)]
pub struct NotificationView {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
    pub read: bool,
    pub created_at: String,
}

impl From<&Notification> for NotificationView {
    fn from(n: &Notification) -> Self {
        NotificationView {
            id: n.id.clone(),
            kind: n.kind.clone(),
            title: n.title.clone(),
            body: n.body.clone(),
            link: n.link.clone(),
            read: n.read_at.is_some(),
            created_at: rfc3339(n.created_at),
        }
    }
}

/// An installation of an agent.
#[derive(Serialize, ToSchema)]
pub struct InstallationView {
    pub id: String,
    pub org_id: String,
    pub agent: String,
    pub agent_name: String,
    pub version: String,
    /// `active` or `uninstalled`.
    pub status: String,
    pub task_timeout_seconds: Option<i64>,
    pub created_at: String,
    pub uninstalled_at: Option<String>,
}

impl From<&Installation> for InstallationView {
    fn from(i: &Installation) -> Self {
        InstallationView {
            id: i.id.clone(),
            org_id: i.org_id.clone(),
            agent: i.agent_slug.clone(),
            agent_name: i.agent_name.clone(),
            version: i.version.clone(),
            status: i.status.clone(),
            task_timeout_seconds: i.task_timeout_seconds,
            created_at: rfc3339(i.created_at),
            uninstalled_at: opt_time(i.uninstalled_at),
        }
    }
}

/// Per-key daily limits; 0 = unlimited; reset at 00:00 UTC.
#[derive(Serialize, serde::Deserialize, ToSchema, Default, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct LimitsView {
    #[serde(default)]
    pub requests: i64,
    #[serde(default)]
    pub input_tokens: i64,
    #[serde(default)]
    pub output_tokens: i64,
    #[serde(default)]
    pub cache_tokens: i64,
}

impl From<DailyLimits> for LimitsView {
    fn from(l: DailyLimits) -> Self {
        LimitsView {
            requests: l.requests,
            input_tokens: l.input_tokens,
            output_tokens: l.output_tokens,
            cache_tokens: l.cache_tokens,
        }
    }
}

/// A gateway API key as listed (never its secret).
#[derive(Serialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    pub installation_id: String,
    pub name: String,
    /// Identifies the agent and the key, e.g. `tgk_web-search_AbC1`.
    pub prefix: String,
    pub user_id: String,
    pub daily_limits: LimitsView,
    pub managed: bool,
    /// `active` or `revoked`.
    pub status: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

impl From<&ApiKey> for KeyView {
    fn from(k: &ApiKey) -> Self {
        KeyView {
            id: k.id.clone(),
            installation_id: k.installation_id.clone(),
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            user_id: k.user_id.clone(),
            daily_limits: k.limits.into(),
            managed: k.managed,
            status: if k.revoked_at.is_some() { "revoked" } else { "active" }.into(),
            created_at: rfc3339(k.created_at),
            revoked_at: opt_time(k.revoked_at),
            last_used_at: opt_time(k.last_used_at),
        }
    }
}

/// A newly created key: the only time its secret is shown.
#[derive(Serialize, ToSchema)]
pub struct NewKeyView {
    #[serde(flatten)]
    pub view: KeyView,
    /// The key. Store it now: it is never shown again.
    pub key: String,
}
