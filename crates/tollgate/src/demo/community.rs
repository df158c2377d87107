//! The demo's people and what they did besides publishing: reviews, installations, the
//! consumer's demo key, a team with members and invitations, a budget, auto-recharge,
//! an account token and operator grants.

use super::{Account, CONSUMER, Demo, LABS, PUBLISHER};
use anyhow::{Context, Result};
use axum::http::Method;
use serde_json::json;
use tollgate_domain::Nanos;
use tollgate_store::Store;
use tollgate_store::installs::Installation;

/// The consumer's team and who is in it.
pub(super) const TEAM: &str = "Acme Robotics";
/// A team of Ben's that invites the consumer (an unread notification on first start).
const BENS_TEAM: &str = "Okafor Studio";
/// Invited to the consumer's team, never signed up: a pending invitation.
const PENDING_INVITEE: &str = "dana@demo.tollgate.dev";

/// Everyone in the demo.
pub(super) struct People<'a> {
    pub publisher: Account<'a>,
    pub labs: Account<'a>,
    pub consumer: Account<'a>,
    /// Ana, Ben and Chen: they install and review agents, and are on the consumer's team.
    pub reviewers: [Account<'a>; 3],
}

impl<'a> People<'a> {
    pub async fn seed(demo: &'a Demo<'a>) -> Result<People<'a>> {
        let account = |email, name| async move {
            demo.account(email, name).await.with_context(|| format!("seeding the demo account {email}"))
        };
        Ok(People {
            publisher: account(PUBLISHER, "Demo Publisher").await?,
            labs: account(LABS, "Northwind Labs").await?,
            consumer: account(CONSUMER, "Demo User").await?,
            reviewers: [
                account("ana@demo.tollgate.dev", "Ana Souza").await?,
                account("ben@demo.tollgate.dev", "Ben Okafor").await?,
                account("chen@demo.tollgate.dev", "Chen Wei").await?,
            ],
        })
    }

    /// Ends the sessions the seeder opened.
    pub async fn finish(self) -> Result<()> {
        let [ana, ben, chen] = self.reviewers;
        for account in [self.publisher, self.labs, self.consumer, ana, ben, chen] {
            account.finish().await?;
        }
        Ok(())
    }

    /// The consumer or a reviewer, by index: 0 the consumer, 1–3 Ana, Ben, Chen.
    pub fn member(&self, i: usize) -> &Account<'a> {
        if i == 0 { &self.consumer } else { &self.reviewers[i - 1] }
    }
}

/// Reviews: (agent, 0 = consumer / 1–3 = Ana, Ben, Chen, stars, text).
const REVIEWS: &[(&str, usize, i64, &str)] = &[
    ("echo", 0, 5, "Exactly what I needed to test my MCP setup."),
    ("echo", 1, 5, "Our onboarding checklist starts here: key, client, one call."),
    ("echo", 3, 4, "Countdown is a neat way to see streaming work end to end."),
    ("summarizer", 0, 4, "Fast, and the token usage it reports matches my own counts."),
    ("summarizer", 2, 3, "Does what it says, but the summary is only the opening words."),
    ("word-counter", 0, 5, "Simple and correct with emoji and accents."),
    ("word-counter", 1, 4, "Handy for keeping release posts short."),
    ("release-notes", 2, 4, "Saves me a few minutes every release."),
    ("ticket-triage", 1, 3, "Useful sizing; I'd like real categories one day."),
    ("audit-trail", 3, 5, "The declared controls made our security review quick."),
    ("meeting-minutes", 1, 2, "The first call of the morning is slow (cold start)."),
    ("meeting-minutes", 3, 4, "Good enough minutes for stand-ups."),
    ("invoice-reader", 2, 5, "1.1.0 is cheaper and just as accurate."),
    ("paper-digest", 3, 4, "Nice for skimming; the per-token cost is clear."),
    ("commit-message", 0, 5, "Short subjects, every time."),
    ("commit-message", 2, 4, "Does one thing well."),
    ("seo-snippet", 1, 2, "No data-handling declaration at all, so we could not adopt it."),
    ("latency-probe", 3, 3, "Great for testing timeouts; not much else."),
];

/// Installations: (0 = consumer / 1–3 = reviewers, agent, version).
pub(super) const INSTALLS: &[(usize, &str, &str)] = &[
    (0, "echo", "latest"),
    (0, "word-counter", "latest"),
    (0, "summarizer", "latest"),
    (0, "release-notes", "1.0.0"),
    (0, "ticket-triage", "latest"),
    (0, "invoice-reader", "1.0.0"),
    (0, "commit-message", "latest"),
    (0, "latency-probe", "latest"),
    (1, "echo", "latest"),
    (1, "word-counter", "latest"),
    (1, "summarizer", "latest"),
    (1, "ticket-triage", "latest"),
    (1, "meeting-minutes", "latest"),
    (1, "seo-snippet", "latest"),
    (2, "summarizer", "latest"),
    (2, "release-notes", "latest"),
    (2, "invoice-reader", "latest"),
    (2, "commit-message", "latest"),
    (3, "echo", "latest"),
    (3, "audit-trail", "latest"),
    (3, "meeting-minutes", "latest"),
    (3, "paper-digest", "latest"),
    (3, "latency-probe", "latest"),
];

/// The consumer's team's members besides the consumer (the owner): (reviewer, role).
const TEAM_MEMBERS: &[(usize, &str)] = &[(1, "admin"), (2, "member"), (3, "viewer")];

/// Agents the team installs.
pub(super) const TEAM_INSTALLS: &[&str] = &["ticket-triage", "word-counter"];

/// The installation of `slug` the demo made in `org`: the first one, whatever became of
/// it (an uninstalled one stays so).
pub(super) async fn seeded_installation(store: &Store, org: &str, slug: &str) -> Result<Option<Installation>> {
    let mut all: Vec<Installation> =
        store.installations(org, true).await?.into_iter().filter(|i| i.agent_slug == slug).collect();
    all.sort_by_key(|i| i.created_at);
    Ok(all.into_iter().next())
}

/// Installs `slug` at `version` in `org` (the person's personal org when `None`) unless
/// the demo did before.
async fn install(demo: &Demo<'_>, who: &Account<'_>, org: Option<&str>, slug: &str, version: &str) -> Result<()> {
    let in_org = org.unwrap_or(&who.personal_org_id);
    if seeded_installation(&demo.state.store, in_org, slug).await?.is_none() {
        let body = json!({"agent": slug, "version": version});
        who.api().await?.create_in(org, "/api/v1/installations", body).await?;
    }
    Ok(())
}

/// Everything but the catalog and the usage; returns the demo key when it was made now.
pub(super) async fn seed(demo: &Demo<'_>, people: &People<'_>) -> Result<Option<String>> {
    let store = &demo.state.store;
    for (slug, who, rating, body) in REVIEWS {
        let author = people.member(*who);
        let agent = store.agent_by_slug(slug).await?;
        if store.user_review(&agent.id, &author.user_id).await?.is_none() {
            let review = json!({"rating": rating, "body": body});
            author.api().await?.create(&format!("/api/v1/agents/{slug}/reviews"), review).await?;
        }
    }
    let key = demo_key(demo, &people.consumer).await?;
    for (who, slug, version) in INSTALLS {
        install(demo, people.member(*who), None, slug, version).await?;
    }
    team(demo, people).await?;
    billing(demo, people).await?;
    Ok(key)
}

/// Installs Echo for the demo consumer and makes its "Demo key", unless done before;
/// returns the key when it was made now. An installation the consumer uninstalled, or a
/// key they revoked, stays so.
async fn demo_key(demo: &Demo<'_>, consumer: &Account<'_>) -> Result<Option<String>> {
    let store = &demo.state.store;
    install(demo, consumer, None, "echo", "latest").await?;
    let installation = seeded_installation(store, &consumer.personal_org_id, "echo")
        .await?
        .context("the demo installation of Echo is missing after installing it")?;
    if installation.status != "active" {
        return Ok(None);
    }
    if store.installation_keys(&installation.id).await?.iter().any(|k| k.name == "Demo key") {
        return Ok(None);
    }
    let path = format!("/api/v1/installations/{}/keys", installation.id);
    let key = consumer.api().await?.call(Method::POST, &path, Some(json!({"name": "Demo key"}))).await?;
    Ok(key["key"].as_str().map(str::to_string))
}

/// The team `name` owned by `owner`, created unless it exists; its id.
async fn owned_team(demo: &Demo<'_>, owner: &Account<'_>, name: &str) -> Result<String> {
    let store = &demo.state.store;
    let find = || async {
        let orgs = store.orgs_of_user(&owner.user_id).await?;
        Ok::<_, anyhow::Error>(orgs.into_iter().find(|(o, _)| !o.personal && o.name == name).map(|(o, _)| o.id))
    };
    if let Some(id) = find().await? {
        return Ok(id);
    }
    owner.api().await?.create("/api/v1/orgs", json!({"name": name})).await?;
    find().await?.with_context(|| format!("the demo team {name} is missing after creating it"))
}

/// Invites `email` to `team` as `role` unless they are a member or invited already.
async fn invite(demo: &Demo<'_>, owner: &Account<'_>, team: &str, email: &str, role: &str) -> Result<()> {
    let store = &demo.state.store;
    if store.org_invitations(team).await?.iter().any(|i| i.email == email) {
        return Ok(());
    }
    let path = format!("/api/v1/orgs/{team}/invitations");
    owner.api().await?.create(&path, json!({"email": email, "role": role})).await
}

/// The consumer's team, its members (each invited, then accepting with the invitation's
/// link), a pending invitation, its installations and a grant; and Ben's team, which
/// invites the consumer.
async fn team(demo: &Demo<'_>, people: &People<'_>) -> Result<()> {
    let store = &demo.state.store;
    let team = owned_team(demo, &people.consumer, super::community::TEAM).await?;
    for (who, role) in TEAM_MEMBERS {
        let member = people.member(*who);
        if store.membership(&team, &member.user_id).await?.is_some() {
            continue;
        }
        // Only the link's token accepts, and it is shown once: an invitation left pending
        // by a seeding cut off before the member accepted is revoked and made again.
        let owner = people.consumer.api().await?;
        for stale in store.org_invitations(&team).await?.iter().filter(|i| i.email == member.email) {
            if stale.status == "pending" {
                owner.call(Method::DELETE, &format!("/api/v1/orgs/{team}/invitations/{}", stale.id), None).await?;
            }
        }
        let invited = owner
            .call(
                Method::POST,
                &format!("/api/v1/orgs/{team}/invitations"),
                Some(json!({"email": member.email, "role": role})),
            )
            .await?;
        let token = invited["token"].as_str().context("an invitation answers its token")?;
        member.api().await?.call(Method::POST, &format!("/api/v1/invitations/{token}/accept"), None).await?;
    }
    invite(demo, &people.consumer, &team, PENDING_INVITEE, "member").await?;
    for slug in TEAM_INSTALLS {
        install(demo, &people.consumer, Some(&team), slug, "latest").await?;
    }
    grant(demo, &team, "40", "Team credits from the operator").await?;

    let ben = &people.reviewers[1];
    let studio = owned_team(demo, ben, BENS_TEAM).await?;
    invite(demo, ben, &studio, CONSUMER, "member").await
}

/// Grants `usd` to `org` from the operator, once (what `tollgate admin grant-credits`
/// does, under an idempotency key of the demo's).
async fn grant(demo: &Demo<'_>, org: &str, usd: &str, memo: &str) -> Result<()> {
    let amount = Nanos::parse_usd(usd).map_err(|e| anyhow::anyhow!("{e}"))?;
    tollgate_api::service::grant_credits(demo.state, org, amount, memo, &format!("demo-grant-{org}"))
        .await
        .map_err(|e| anyhow::anyhow!("granting the demo credits: {e:?}"))?;
    Ok(())
}

/// The consumer's monthly budget, auto-recharge, a grant and an account token for scripts.
async fn billing(demo: &Demo<'_>, people: &People<'_>) -> Result<()> {
    let store = &demo.state.store;
    let consumer = &people.consumer;
    let org = store.org(&consumer.personal_org_id).await?;
    if org.monthly_budget.is_none() {
        let budget = Some(json!({"monthly_limit": "50.00"}));
        consumer.api().await?.call(Method::PUT, "/api/v1/billing/budget", budget).await?;
    }
    if org.auto_recharge.is_none() {
        let recharge = Some(json!({"enabled": true, "threshold": "10.00", "amount": "25.00"}));
        consumer.api().await?.call(Method::PUT, "/api/v1/billing/auto-recharge", recharge).await?;
    }
    grant(demo, &consumer.personal_org_id, "25", "Conference voucher").await?;
    if !store.account_tokens(&consumer.user_id).await?.iter().any(|t| t.name == "Spend report") {
        let token = json!({"name": "Spend report", "scopes": ["usage:read", "billing:read"], "expires_in_days": 90});
        consumer.api().await?.create("/api/v1/tokens", token).await?;
    }
    Ok(())
}
