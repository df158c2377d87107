//! The API's answers as the pages read them: the fields of `/api/v1` views that the UI
//! shows. Unknown fields are ignored, so the API may grow without breaking the pages.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    /// `light`, `dark` or `system`.
    #[serde(default)]
    pub theme: String,
    #[serde(default)]
    pub email_notifications: bool,
    pub personal_org_id: String,
}

/// An org with the caller's role in it.
#[derive(Debug, Clone, Deserialize)]
pub struct OrgRef {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub personal: bool,
    #[serde(default)]
    pub role: Option<String>,
}

/// An invitation to join an org.
#[derive(Debug, Clone, Deserialize)]
pub struct Invitation {
    pub id: String,
    pub org_id: String,
    pub org_name: String,
    pub email: String,
    pub role: String,
    pub status: String,
    pub expires_at: String,
}

/// `GET /api/v1/me`.
#[derive(Debug, Clone, Deserialize)]
pub struct Me {
    pub user: User,
    #[serde(default)]
    pub orgs: Vec<OrgRef>,
    #[serde(default)]
    pub invitations: Vec<Invitation>,
    #[serde(default)]
    pub unread_notifications: Option<i64>,
    pub csrf_token: Option<String>,
}

/// A member of an org.
#[derive(Debug, Clone, Deserialize)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub joined_at: String,
}

/// `POST /api/v1/orgs/{org}/invitations`: the only time the link is there.
#[derive(Debug, Clone, Deserialize)]
pub struct NewInvitation {
    pub invitation: Invitation,
    pub accept_url: String,
}

/// A notification.
#[derive(Debug, Clone, Deserialize)]
pub struct Notification {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
    pub read: bool,
    pub created_at: String,
}

/// An account token as listed.
#[derive(Debug, Clone, Deserialize)]
pub struct Token {
    pub id: String,
    pub name: String,
    pub prefix: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub created_at: String,
    pub status: String,
}

/// An account token as created: the only time the secret is there.
#[derive(Debug, Clone, Deserialize)]
pub struct NewToken {
    pub id: String,
    pub name: String,
    pub token: String,
}

/// `GET /api/v1/billing/balance`.
#[derive(Debug, Clone, Deserialize)]
pub struct Balance {
    pub balance: String,
    pub available: String,
    pub pending: String,
    pub monthly_budget: Option<String>,
    pub spent_this_month: String,
    pub auto_recharge: Option<Value>,
}

/// A line of the transaction history.
#[derive(Debug, Clone, Deserialize)]
pub struct Transaction {
    pub kind: String,
    pub amount: String,
    pub memo: String,
    pub created_at: String,
}

/// `GET /api/v1/billing/transactions`.
#[derive(Debug, Clone, Deserialize)]
pub struct TransactionPage {
    pub transactions: Vec<Transaction>,
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
}

/// A version as its publisher sees it.
#[derive(Debug, Clone, Deserialize)]
pub struct PublisherVersion {
    #[serde(flatten)]
    pub version: Version,
    pub upstream_url: String,
    pub has_upstream_headers: bool,
}

/// An agent as its publisher sees it (`GET /api/v1/agents`).
#[derive(Debug, Clone, Deserialize)]
pub struct PublisherAgent {
    pub slug: String,
    pub name: String,
    pub category: String,
    pub protocol: String,
    pub trust_score: i64,
    pub listed: bool,
    pub versions: Vec<PublisherVersion>,
}

/// Calls, errors and earnings.
#[derive(Debug, Clone, Deserialize)]
pub struct EarningsTotals {
    pub calls: i64,
    pub errors: i64,
    pub error_rate: f64,
    pub average_latency_ms: Option<f64>,
    pub earnings: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EarningsPoint {
    pub start: String,
    pub calls: i64,
    pub earnings: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VersionEarnings {
    pub version: String,
    #[serde(flatten)]
    pub totals: EarningsTotals,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InstallEarnings {
    pub install_token: String,
    #[serde(flatten)]
    pub totals: EarningsTotals,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AgentEarnings {
    pub slug: String,
    pub installs: i64,
    #[serde(flatten)]
    pub totals: EarningsTotals,
    #[serde(default)]
    pub versions: Vec<VersionEarnings>,
    #[serde(default)]
    pub installations: Vec<InstallEarnings>,
}

/// `GET /api/v1/publisher/usage`.
#[derive(Debug, Clone, Deserialize)]
pub struct PublisherUsage {
    pub bucket: String,
    #[serde(flatten)]
    pub totals: EarningsTotals,
    pub series: Vec<EarningsPoint>,
    pub agents: Vec<AgentEarnings>,
}

/// A store card.
#[derive(Debug, Clone, Deserialize)]
pub struct Card {
    pub slug: String,
    pub name: String,
    pub publisher: String,
    pub description: String,
    pub category: String,
    pub protocol: String,
    #[serde(default)]
    pub rating: Option<f64>,
    #[serde(default)]
    pub review_count: i64,
    pub installs: i64,
    pub trust_score: i64,
    pub cold_start: bool,
    pub freemium: bool,
    #[serde(default)]
    pub compliance: Vec<String>,
}

/// `GET /api/v1/store/agents`.
#[derive(Debug, Clone, Deserialize)]
pub struct StorePage {
    pub agents: Vec<Card>,
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Governance {
    #[serde(default)]
    pub data_collected: Vec<String>,
    #[serde(default)]
    pub collects_no_data: bool,
    pub storage_region: Option<String>,
    pub storage_provider: Option<String>,
    pub retention_days: Option<i64>,
    pub training_use: Option<bool>,
    #[serde(default)]
    pub compliance: Vec<String>,
    #[serde(default)]
    pub security_measures: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Support {
    pub email: Option<String>,
    pub url: Option<String>,
    pub docs_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Function {
    pub name: String,
    pub pricing: Value,
    pub free_calls: i64,
    pub free_reset: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Dependency {
    pub agent: String,
    pub version: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Version {
    pub version: String,
    pub status: String,
    pub protocol: String,
    pub endpoint: String,
    pub base_fee: String,
    pub functions: Vec<Function>,
    pub default_pricing: Option<Value>,
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
    pub task_timeout_seconds: i64,
    pub cold_start: bool,
    pub created_at: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Rating {
    pub average: Option<f64>,
    pub count: i64,
    #[serde(default)]
    pub stars: Vec<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Review {
    pub rating: i64,
    pub body: String,
    pub author: String,
    pub created_at: String,
    pub updated_at: String,
}

/// `GET /api/v1/agents/{slug}/reviews`.
#[derive(Debug, Clone, Deserialize)]
pub struct ReviewPage {
    pub reviews: Vec<Review>,
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
    pub rating: Rating,
}

/// `GET /api/v1/store/agents/{slug}`.
#[derive(Debug, Clone, Deserialize)]
pub struct AgentDetail {
    pub slug: String,
    pub name: String,
    pub publisher: String,
    pub description: String,
    pub category: String,
    pub protocol: String,
    #[serde(default)]
    pub platforms: Vec<String>,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub use_cases: Vec<String>,
    #[serde(default)]
    pub governance: Governance,
    pub trust_score: i64,
    #[serde(default)]
    pub support: Support,
    pub installs: i64,
    pub rating: Rating,
    pub latest_version: Option<String>,
    pub cold_start: bool,
    pub versions: Vec<Version>,
    pub updated_at: String,
}

/// An installation.
#[derive(Debug, Clone, Deserialize)]
pub struct Installation {
    pub id: String,
    pub org_id: String,
    pub agent: String,
    pub agent_name: String,
    pub version: String,
    pub status: String,
    pub task_timeout_seconds: Option<i64>,
    pub created_at: String,
}

#[derive(Debug, Clone, Copy, Deserialize, Default)]
pub struct Limits {
    #[serde(default)]
    pub requests: i64,
    #[serde(default)]
    pub input_tokens: i64,
    #[serde(default)]
    pub output_tokens: i64,
    #[serde(default)]
    pub cache_tokens: i64,
}

/// A gateway key as listed.
#[derive(Debug, Clone, Deserialize)]
pub struct Key {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub daily_limits: Limits,
    #[serde(default)]
    pub managed: bool,
    pub status: String,
    pub last_used_at: Option<String>,
}

/// A key as created: the only time the secret is there.
#[derive(Debug, Clone, Deserialize)]
pub struct NewKey {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub key: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Cost {
    pub input: String,
    pub output: String,
    pub cache: String,
    pub requests: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Tokens {
    pub input: i64,
    pub output: i64,
    pub cache: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Latency {
    pub average: Option<f64>,
    pub p50: Option<i64>,
    pub p95: Option<i64>,
    pub p99: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Point {
    pub start: String,
    pub calls: i64,
    pub spend: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KeyUsage {
    pub key_id: Option<String>,
    pub calls: i64,
    pub spend: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_tokens: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InstallationUsage {
    pub installation_id: String,
    pub calls: i64,
    pub spend: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FreeQuota {
    pub function: String,
    pub free_calls: i64,
    pub reset: String,
    pub used: i64,
    pub remaining: i64,
    pub resets_at: Option<String>,
}

/// `GET /api/v1/usage`.
#[derive(Debug, Clone, Deserialize)]
pub struct Usage {
    pub bucket: String,
    pub calls: i64,
    pub errors: i64,
    pub error_rate: f64,
    pub free_tier_calls: i64,
    pub divergent_calls: i64,
    pub spend: String,
    pub cost: Cost,
    pub tokens: Tokens,
    pub latency_ms: Latency,
    pub series: Vec<Point>,
    #[serde(default)]
    pub by_key: Vec<KeyUsage>,
    #[serde(default)]
    pub by_installation: Vec<InstallationUsage>,
    #[serde(default)]
    pub free_quota: Vec<FreeQuota>,
}

/// One call of the audit log.
#[derive(Debug, Clone, Deserialize)]
pub struct AuditRow {
    pub request_id: String,
    pub time: String,
    pub version: String,
    pub function: String,
    pub method: String,
    pub key_name: Option<String>,
    pub key_prefix: Option<String>,
    pub member_name: Option<String>,
    pub member_email: Option<String>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_tokens: i64,
    pub counted_input_tokens: i64,
    pub counted_output_tokens: i64,
    pub latency_ms: i64,
    pub status: i64,
    pub success: bool,
    pub error_code: Option<String>,
    pub cost: String,
    pub free_tier: bool,
    pub divergent: bool,
    pub parent_task_id: Option<String>,
    pub transfer_id: Option<String>,
}

/// `GET /api/v1/usage/audit`.
#[derive(Debug, Clone, Deserialize)]
pub struct AuditPage {
    pub rows: Vec<AuditRow>,
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
}
