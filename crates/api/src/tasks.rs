//! The background tasks `tollgate serve` runs beside the server, off the gateway's hot
//! path: the billing watcher (low balances, auto-recharge, budget alerts, recharges the
//! provider never answered) and the mailer (the email queue). Each look is one function
//! the tests call directly; [`run`] repeats them every `watch_interval`. Replicas may all
//! run them: every step is claimed in the database, once.

use crate::error::ApiResult;
use crate::state::AppState;
use crate::{notify, payments};
use std::future::Future;
use tollgate_domain::Nanos;
use tollgate_domain::time::{now_ms, utc_month_start};
use tollgate_integrations::email::{Email, EmailError};
use tollgate_store::notices::Audience;
use tollgate_store::payments::{BudgetWatch, Crossing, Payment};

/// A recharge the provider has not answered for this long is given up (a payment that
/// went through after all is still credited when its webhook arrives).
pub const RECHARGE_TIMEOUT_MS: i64 = 60 * 60 * 1000;

/// An email is tried this many times at most.
pub const EMAIL_ATTEMPTS: i64 = 5;

/// What one look of the watcher did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watched {
    /// Orgs that fell below their low-balance threshold.
    pub low_balances: usize,
    /// Recharges started.
    pub recharges: usize,
    /// Budget alerts sent.
    pub budget_alerts: usize,
    /// Recharges given up for want of an answer.
    pub timed_out: usize,
}

/// One look at balances, recharges and budgets. A failure about one org is logged and
/// the look goes on with the others.
pub async fn watch_billing(state: &AppState) -> ApiResult<Watched> {
    let mut done = Watched::default();
    let now = now_ms();
    let month = utc_month_start(now);
    for crossing in state.store.balance_crossings(state.config.low_balance).await? {
        match fell_below(state, &crossing, month, now).await {
            Ok(recharged) => {
                done.low_balances += 1;
                done.recharges += usize::from(recharged);
            }
            Err(e) => tracing::warn!(org.id = %crossing.org_id, error = %e, "a low balance was not handled"),
        }
    }
    for stale in state.store.stale_recharges(now - RECHARGE_TIMEOUT_MS).await? {
        match give_up(state, &stale).await {
            Ok(ended) => done.timed_out += usize::from(ended),
            Err(e) => tracing::warn!(payment.id = %stale.id, error = %e, "a stale recharge was not ended"),
        }
    }
    for watch in state.store.budgets_to_watch(month).await? {
        match budget_alert(state, &watch, month).await {
            Ok(sent) => done.budget_alerts += usize::from(sent),
            Err(e) => tracing::warn!(org.id = %watch.org_id, error = %e, "a budget alert was not sent"),
        }
    }
    Ok(done)
}

/// An org's balance fell below its threshold (the crossing already claimed): tells its
/// owners and admins, and recharges if auto-recharge is on, a provider is set up, none is
/// in flight and the monthly limit allows. Returns whether a recharge was charged.
async fn fell_below(state: &AppState, crossing: &Crossing, month: i64, now: i64) -> ApiResult<bool> {
    let org = state.store.org(&crossing.org_id).await?;
    let recharge = crossing.recharge.filter(|_| state.payments.is_some() && crossing.in_flight.is_none());
    let notice =
        notify::low_balance(state, &org, crossing.balance, crossing.threshold, recharge.map(|r| r.amount), now);
    state.store.notify_audience(&Audience::OrgAdmins(org.id.clone()), &notice).await?;
    let (Some(settings), Some(provider)) = (recharge, state.payments.as_ref()) else { return Ok(false) };
    if let Some(limit) = settings.monthly_limit {
        let status = state.store.recharge_status(&org.id, month).await?;
        if status.this_month.checked_add(settings.amount).is_none_or(|total| total > limit) {
            let notice = notify::recharge_limited(state, &org, limit, month);
            state.store.notify_audience(&Audience::OrgAdmins(org.id.clone()), &notice).await?;
            return Ok(false);
        }
    }
    if payments::check_amount(state, "amount", settings.amount).is_err() {
        tracing::warn!(org.id = %org.id, "auto-recharge amount outside the purchase limits; not charged");
        return Ok(false);
    }
    let Some(payment) = state.store.begin_recharge(&org.id, provider.name(), settings.amount).await? else {
        return Ok(false);
    };
    tracing::info!(org.id = %org.id, payment.id = %payment.id, "auto-recharge started");
    payments::charge_recharge(state, provider.as_ref(), &payment).await?;
    Ok(true)
}

/// Ends a recharge the provider never confirmed, and tells the owners and admins.
async fn give_up(state: &AppState, stale: &Payment) -> ApiResult<bool> {
    let org = state.store.org(&stale.org_id).await?;
    let notice = notify::payment_failed(state, &org, stale, "the payment provider did not confirm it within an hour");
    let reason = Some("no confirmation from the payment provider");
    Ok(state.store.end_payment(&stale.id, "failed", reason, Some(&notice)).await?)
}

/// Sends the budget alert an org's spend this month calls for, if not sent yet.
async fn budget_alert(state: &AppState, watch: &BudgetWatch, month: i64) -> ApiResult<bool> {
    let spent = state.store.spend_since(&watch.account_id, month).await?;
    let level = budget_level(spent, watch.limit);
    if level <= watch.alerted {
        return Ok(false);
    }
    let org = state.store.org(&watch.org_id).await?;
    let notice = notify::budget(state, &org, spent, watch.limit, level, month);
    Ok(state.store.budget_alert(&org.id, month, watch.limit, level, &notice).await?)
}

/// 100 when `spent` reached `limit`, 80 past 80% of it, else 0.
fn budget_level(spent: Nanos, limit: Nanos) -> i64 {
    let (spent, limit) = (i128::from(spent.0), i128::from(limit.0));
    if spent >= limit {
        100
    } else if spent * 100 >= limit * 80 {
        80
    } else {
        0
    }
}

/// What one pass of the mailer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mailed {
    pub sent: usize,
    /// To be tried again later.
    pub deferred: usize,
    /// Given up, or no longer wanted.
    pub dropped: usize,
}

/// The email of a notification: its words and a link, never anything of a call.
fn email_of(state: &AppState, to: &str, title: &str, body: &str, link: Option<&str>) -> Email {
    let base = state.config.public_url.trim_end_matches('/');
    let open = link.map(|l| format!("\nOpen: {base}{l}\n")).unwrap_or_default();
    Email {
        to: to.to_string(),
        subject: title.to_string(),
        text: format!(
            "{title}\n\n{body}\n{open}\n--\nYou get this email because email notifications are on for your account. \
             Turn them off in Settings: {base}/settings\n"
        ),
    }
}

/// Sends the emails due now (when email is set up).
pub async fn send_emails(state: &AppState) -> ApiResult<Mailed> {
    let mut done = Mailed::default();
    let Some(sender) = &state.email else { return Ok(done) };
    let now = now_ms();
    for due in state.store.due_emails(now, 50).await? {
        if !due.wanted {
            state.store.finish_email(&due.id, "skipped").await?;
            done.dropped += 1;
            continue;
        }
        // Backoff: 1, 2, 4, 8 minutes between attempts.
        let retry_at = now + 60_000 * (1 << due.attempts.clamp(0, 10));
        if !state.store.claim_email(&due.id, now, retry_at).await? {
            continue;
        }
        match sender.send(&email_of(state, &due.to, &due.title, &due.body, due.link.as_deref())).await {
            Ok(()) => {
                state.store.finish_email(&due.id, "sent").await?;
                done.sent += 1;
            }
            Err(e) => {
                let give_up = matches!(e, EmailError::Permanent(_)) || due.attempts + 1 >= EMAIL_ATTEMPTS;
                tracing::warn!(notification.id = %due.id, error = %e, give_up, "an email was not sent");
                if give_up {
                    state.store.finish_email(&due.id, "failed").await?;
                    done.dropped += 1;
                } else {
                    done.deferred += 1;
                }
            }
        }
    }
    Ok(done)
}

/// Runs the watcher and the mailer every `watch_interval` until `shutdown` ends. A failed
/// look is logged and tried again at the next tick.
pub async fn run(state: AppState, shutdown: impl Future<Output = ()>) {
    let mut tick = tokio::time::interval(state.config.watch_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = tick.tick() => {
                match watch_billing(&state).await {
                    Ok(w) if w != Watched::default() => tracing::info!(
                        low_balances = w.low_balances, recharges = w.recharges, budget_alerts = w.budget_alerts,
                        timed_out = w.timed_out, "billing watched"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "the billing watcher failed"),
                }
                if let Err(e) = send_emails(&state).await {
                    tracing::warn!(error = %e, "the mailer failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_levels() {
        let limit = Nanos(50_000_000_000);
        assert_eq!(budget_level(Nanos(0), limit), 0);
        assert_eq!(budget_level(Nanos(39_999_999_999), limit), 0);
        assert_eq!(budget_level(Nanos(40_000_000_000), limit), 80);
        assert_eq!(budget_level(Nanos(49_999_999_999), limit), 80);
        assert_eq!(budget_level(Nanos(50_000_000_000), limit), 100);
        assert_eq!(budget_level(Nanos(i64::MAX), Nanos(i64::MAX - 1)), 100);
    }
}
