//! What people are told, and when: the notices of each event (their words, their audience,
//! their one-per-event key) and where they are sent from. Money goes to an org's owners and
//! admins; agent changes to every member of the orgs using the agent. The words never carry
//! a call's content — only names, amounts and links.

use crate::error::ApiResult;
use crate::state::AppState;
use tollgate_domain::Nanos;
use tollgate_store::accounts::User;
use tollgate_store::catalog::{Agent, Version};
use tollgate_store::notices::{Audience, Notice};
use tollgate_store::orgs::Org;
use tollgate_store::payments::Payment;

/// An amount as people read it: `$1,234.50`; sub-cent amounts keep their digits.
pub fn dollars(amount: Nanos) -> String {
    let cents = amount.0 / 10_000_000;
    let exact = amount.0 % 10_000_000 == 0;
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if exact {
        format!("${grouped}.{:02}", cents % 100)
    } else {
        let text = amount.to_usd_string();
        let frac = text.split_once('.').map_or("", |(_, f)| f).trim_end_matches('0');
        format!("${grouped}.{frac:0<2}")
    }
}

/// "your" for a personal org, "the team X's" for a team.
fn whose(org: &Org) -> String {
    if org.personal { "your".into() } else { format!("the team {}'s", org.name) }
}

/// "your personal organization" or "the team X".
fn which(org: &Org) -> String {
    if org.personal { "your personal organization".into() } else { format!("the team {}", org.name) }
}

/// A notice built here; `email` follows whether email is set up.
fn notice(state: &AppState, kind: &str, title: String, body: String, link: &str, event_key: String) -> Notice {
    Notice { kind: kind.into(), title, body, link: Some(link.into()), event_key, email: state.email.is_some() }
}

/// The balance fell below the threshold (`crossed_at` names the crossing).
pub fn low_balance(
    state: &AppState,
    org: &Org,
    balance: Nanos,
    threshold: Nanos,
    recharging: Option<Nanos>,
    crossed_at: i64,
) -> Notice {
    let next = match recharging {
        Some(amount) => format!("Auto-recharge is buying {} with the card on file.", dollars(amount)),
        None => "Add credits so calls are not refused for lack of credits.".into(),
    };
    let body =
        format!("{} balance is {}, below {}. {next}", capitalized(&whose(org)), dollars(balance), dollars(threshold));
    notice(state, "low_balance", "Low balance".into(), body, "/billing", format!("low_balance:{}:{crossed_at}", org.id))
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// `level` percent (80 or 100) of the monthly budget is spent.
pub fn budget(state: &AppState, org: &Org, spent: Nanos, limit: Nanos, level: i64, month_start: i64) -> Notice {
    let (title, tail) = if level >= 100 {
        (
            "Monthly budget reached".to_string(),
            "Calls are refused with 429 until the first of next month or until the budget is raised.",
        )
    } else {
        (format!("{level}% of the monthly budget spent"), "At 100%, calls are refused until the budget is raised.")
    };
    let body = format!(
        "{} {} of the {} monthly budget is spent. {tail}",
        capitalized(&whose(org)),
        dollars(spent),
        dollars(limit)
    );
    let key = format!("budget:{}:{month_start}:{}:{level}", org.id, limit.0);
    notice(state, "budget", title, body, "/billing", key)
}

/// A purchase or an auto-recharge was paid and credited.
pub fn paid(state: &AppState, org: &Org, payment: &Payment) -> Notice {
    let (kind, title, what) = if payment.kind == "recharge" {
        ("auto_recharge", "Auto-recharge succeeded", "Auto-recharge bought")
    } else {
        ("payment", "Payment received", "Your card payment added")
    };
    let body = format!("{what} {} of credits to {}.", dollars(payment.amount), which(org));
    notice(state, kind, title.into(), body, "/billing", format!("payment:{}:paid", payment.id))
}

/// A purchase or an auto-recharge failed.
pub fn payment_failed(state: &AppState, org: &Org, payment: &Payment, reason: &str) -> Notice {
    let reason = reason.trim_end_matches('.');
    let amount = dollars(payment.amount);
    let (kind, title, body) = if payment.kind == "recharge" {
        (
            "auto_recharge",
            "Auto-recharge failed",
            format!(
                "Auto-recharge could not buy {amount} of credits for {}: {reason}. Buy credits once on the Billing \
                 page to save a card that works.",
                which(org)
            ),
        )
    } else {
        (
            "payment",
            "Payment failed",
            format!("The payment of {amount} for credits for {} failed: {reason}. Nothing was added.", which(org)),
        )
    };
    notice(state, kind, title.into(), body, "/billing", format!("payment:{}:failed", payment.id))
}

/// Auto-recharge skipped: this month's limit would be passed.
pub fn recharge_limited(state: &AppState, org: &Org, limit: Nanos, month_start: i64) -> Notice {
    let body = format!(
        "Auto-recharge did not buy credits for {}: it would pass its monthly limit of {}. Raise the limit or add credits on the Billing page.",
        which(org),
        dollars(limit)
    );
    let key = format!("recharge_limit:{}:{month_start}", org.id);
    notice(state, "auto_recharge", "Auto-recharge paused for this month".into(), body, "/billing", key)
}

/// Tells the members of every org that installed `agent` about its new `version`.
pub async fn new_version(state: &AppState, agent: &Agent, version: &Version) -> ApiResult<usize> {
    let n = notice(
        state,
        "agent_update",
        format!("{} {} is out", agent.name, version.version),
        format!(
            "A new version of {}, which your organization installed, is published. Installations on \"latest\" use it from now on; \
             pinned ones keep their version.",
            agent.name
        ),
        &format!("/agents/{}", agent.slug),
        format!("version:{}:published", version.id),
    );
    Ok(state.store.notify_audience(&Audience::Installers { agent_id: agent.id.clone() }, &n).await?)
}

/// Tells the members of every org using `version` (pinned, or on `latest` when it was the
/// newest active version) that it is now deprecated or retired.
pub async fn version_status(state: &AppState, agent: &Agent, version: &Version, was_latest: bool) -> ApiResult<usize> {
    let (title, what) = match version.status.as_str() {
        "retired" => (
            format!("{} {} is retired", agent.name, version.version),
            "is retired: calls to it are refused with 410. Install a newer version to keep calling it.",
        ),
        _ => (
            format!("{} {} is deprecated", agent.name, version.version),
            "is deprecated: it keeps working, but its publisher may retire it. Plan to move to a newer version.",
        ),
    };
    let n = notice(
        state,
        "deprecation",
        title,
        format!("{} {}, which your organization uses, {what}", agent.name, version.version),
        &format!("/agents/{}", agent.slug),
        format!("version:{}:{}", version.id, version.status),
    );
    let audience =
        Audience::VersionUsers { agent_id: agent.id.clone(), version: version.version.clone(), latest: was_latest };
    Ok(state.store.notify_audience(&audience, &n).await?)
}

/// Tells a key's owner that someone else revoked it (one key, or every key of an
/// installation that was uninstalled).
pub async fn keys_revoked(
    state: &AppState,
    owner_id: &str,
    by: &User,
    agent: &Agent,
    what: &str,
    event: &str,
) -> ApiResult<()> {
    let n = notice(
        state,
        "key_revoked",
        format!("Your key for {} was revoked", agent.name),
        format!("{} {what}. Calls with it are refused from now on.", by.name),
        "/dashboard",
        format!("key_revoked:{event}"),
    );
    state.store.notify_audience(&Audience::User(owner_id.to_string()), &n).await?;
    Ok(())
}

/// Tells an existing account it was invited to a team (the link to accept is shown to
/// the inviter, never sent here: the Team page lists the invitation).
pub async fn invitation(
    state: &AppState,
    invitee_id: &str,
    by: &User,
    org: &Org,
    role: tollgate_domain::catalog::Role,
    invitation_id: &str,
) -> ApiResult<()> {
    let n = notice(
        state,
        "invitation",
        format!("{} invited you to {}", by.name, org.name),
        format!("Join as {} by opening the invitation link {} shares with you.", role.as_str(), by.name),
        "/team",
        format!("invitation:{invitation_id}"),
    );
    state.store.notify_audience(&Audience::User(invitee_id.to_string()), &n).await?;
    Ok(())
}

/// Logs a notification that could not be sent; the action it follows stands.
pub fn log_failure(what: &str, result: ApiResult<impl Sized>) {
    if let Err(e) = result {
        tracing::warn!(error = %e, notification = what, "a notification could not be sent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_read_as_people_write_them() {
        assert_eq!(dollars(Nanos(0)), "$0.00");
        assert_eq!(dollars(Nanos(25_000_000_000)), "$25.00");
        assert_eq!(dollars(Nanos(1_234_500_000_000)), "$1,234.50");
        assert_eq!(dollars(Nanos(10_000_000_000_000)), "$10,000.00");
        assert_eq!(dollars(Nanos(4_000_500_000)), "$4.0005");
        assert_eq!(dollars(Nanos(123_456_789_012)), "$123.456789012");
    }
}
